//! Cold starts: for each function of the `sam build` output, its init time (process start to its
//! first request to the Lambda Runtime API) and its peak memory at that moment (VmHWM), against a
//! stub of the Runtime API that notes the first poll and never answers; in the same run, the
//! Python/boto3 equivalent (`tests/cold_start_boto3.py`: the same clients built at import, as a
//! Python Lambda builds them), with and without its clients.
//!
//!   scripts/bench     (runs `scripts/package` first; the functions' variables come from
//!                      .emulator/functions.json, written by `scripts/lambdas start`)
//!   bench-cold-start BUILD_DIR FUNCTIONS_JSON PYTHON [RUNS]

// A benchmark binary: a failed setup step ends it with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use dr_tests::median;
use serde::Deserialize;
use tokio::process::Command;
use tokio::sync::mpsc;

/// One function as `scripts/local_functions.py` lists it.
#[derive(Deserialize)]
struct Function {
    function: Option<String>,
    handler: String,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

/// One start: milliseconds from spawn to the first poll, and the peak resident memory in KiB.
struct Start {
    init_ms: f64,
    peak_kib: u64,
}

/// The Runtime API stub: every first poll is told on `polled`; no poll is ever answered.
async fn runtime_api_stub() -> (String, mpsc::UnboundedReceiver<Instant>) {
    let (polled, polls) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let _ = polled.send(Instant::now());
            std::future::pending::<&'static str>()
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
    let address = listener.local_addr().expect("its address").to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (address, polls)
}

/// The process's peak resident set (VmHWM), read while it waits for its first event.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Starts `command` as the Lambda service would and waits for its first poll.
async fn start(mut command: Command, polls: &mut mpsc::UnboundedReceiver<Instant>, what: &str) -> Start {
    while polls.try_recv().is_ok() {}
    command.kill_on_drop(true).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let spawned = Instant::now();
    let mut child = command.spawn().unwrap_or_else(|err| panic!("{what}: {err}"));
    let pid = child.id().expect("a running child");
    let polled = tokio::select! {
        polled = polls.recv() => polled.expect("the stub runs"),
        status = child.wait() => {
            let output = child.wait_with_output().await.map(|o| String::from_utf8_lossy(&o.stderr).to_string());
            panic!("{what} exited before its first poll ({status:?}): {output:?}")
        }
        _ = tokio::time::sleep(Duration::from_secs(20)) => panic!("{what}: no poll within 20 s"),
    };
    let peak = peak_kib(pid);
    let _ = child.kill().await;
    Start { init_ms: (polled - spawned).as_secs_f64() * 1000.0, peak_kib: peak }
}

/// The Lambda environment of a function (its template variables, the runtime's own).
fn lambda_command(program: &Path, address: &str, function: &Function) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .envs(&function.environment)
        .env("AWS_LAMBDA_RUNTIME_API", address)
        .env("AWS_LAMBDA_FUNCTION_NAME", &function.handler)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_REGION", "eu-west-1")
        .env("AWS_DEFAULT_REGION", "eu-west-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("_HANDLER", &function.handler);
    command
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, build, functions, python, rest @ ..] = args.as_slice() else {
        panic!("usage: bench-cold-start BUILD_DIR FUNCTIONS_JSON PYTHON [RUNS]")
    };
    let runs: usize = rest.first().and_then(|r| r.parse().ok()).unwrap_or(15).max(1);
    let functions: BTreeMap<String, Function> =
        serde_json::from_str(&std::fs::read_to_string(functions).expect("functions.json")).expect("functions.json");
    let (address, mut polls) = runtime_api_stub().await;

    println!("\ncold starts: process start -> first Runtime API poll, median of {runs} starts; peak RSS (VmHWM) then");
    println!("  {:<24} {:>9} {:>10}", "function (handler)", "init", "peak RSS");
    let mut rust_init = Vec::new();
    let mut rust_peak = 0;
    for function in functions.values() {
        let Some(logical_id) = &function.function else { continue };
        let bootstrap = PathBuf::from(build).join(logical_id).join("bootstrap");
        let mut starts = Vec::new();
        for _ in 0..runs {
            starts.push(start(lambda_command(&bootstrap, &address, function), &mut polls, &function.handler).await);
        }
        let init = median(starts.iter().map(|s| s.init_ms).collect());
        let peak = starts.iter().map(|s| s.peak_kib).max().unwrap_or(0);
        println!("  {:<24} {:>6.1} ms {:>7.1} MB", function.handler, init, peak as f64 / 1024.0);
        rust_init.extend(starts.iter().map(|s| s.init_ms));
        rust_peak = rust_peak.max(peak);
    }
    let rust = median(rust_init);

    let script = dr_tests::repo_root().join("tests/cold_start_boto3.py");
    let python_function = Function { function: None, handler: "python".into(), environment: BTreeMap::new() };
    let mut python_rows = Vec::new();
    for (label, extra) in [("boto3, the same clients", None), ("boto3 imported, no client", Some("--no-clients"))] {
        let mut starts = Vec::new();
        for _ in 0..runs {
            let mut command = lambda_command(Path::new(python), &address, &python_function);
            command.arg(&script).args(extra).env("PATH", std::env::var("PATH").unwrap_or_default());
            starts.push(start(command, &mut polls, label).await);
        }
        let init = median(starts.iter().map(|s| s.init_ms).collect());
        let peak = starts.iter().map(|s| s.peak_kib).max().unwrap_or(0);
        python_rows.push((label, init, peak));
    }

    println!("\n  {:<40} {:>9} {:>10} {:>14}", "runtime", "init", "peak RSS", "Rust is faster");
    println!(
        "  {:<40} {:>6.1} ms {:>7.1} MB {:>14}",
        "Rust (every function, median)",
        rust,
        rust_peak as f64 / 1024.0,
        ""
    );
    for (label, init, peak) in python_rows {
        println!(
            "  {:<40} {:>6.1} ms {:>7.1} MB {:>13.1}x",
            format!("Python 3, {label}"),
            init,
            peak as f64 / 1024.0,
            init / rust
        );
    }
}
