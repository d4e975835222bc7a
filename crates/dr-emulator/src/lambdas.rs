//! The local Lambda service: the real function binaries (built once, in the workspace's
//! `target/`) behind the Lambda Invoke API, each instance talking to its own Runtime API, with
//! Lambda's timeouts enforced.
//!
//! What it models of AWS Lambda (and `cargo lambda watch`, which it replaces here, does not):
//! - a function that runs past its timeout (template.yaml's `Timeout`) is killed, and the invoke
//!   answers `Sandbox.Timedout`, as Lambda does; the next invocation starts a new instance;
//! - a function that exits before answering is `Runtime.ExitError`;
//! - a function error is HTTP 200 with `X-Amz-Function-Error: Unhandled` and the
//!   `{errorType, errorMessage}` payload, which is how Step Functions learns the error's name;
//! - one request at a time per instance; concurrent invokes start more instances; an idle
//!   instance is reused (a warm start);
//! - the environment Lambda sets (`AWS_LAMBDA_FUNCTION_NAME`, `AWS_LAMBDA_RUNTIME_API`,
//!   `AWS_LAMBDA_LOG_FORMAT`, `_HANDLER`, ...), plus the function's own variables.
//!
//! Each function signs its calls with credentials that stand for its own template role
//! (`FunctionSpec::access_key`, `local-lambda-<FunctionLogicalId>`), as Lambda gives each function
//! its role's credentials: the emulator authorizes every call against that role
//! (crates/dr-emulator/moto/iam.py), and its fault layer touches only the functions' calls (all
//! their keys start with [`LAMBDA_ACCESS_KEY`]), not a test's own setup and checks. The protected
//! application's own hooks sign with [`LAMBDA_ACCESS_KEY`] itself: not the orchestrator's roles.
//!
//! Each instance's time from process start to its first poll of `/runtime/invocation/next` (its
//! init) is recorded; `GET /dr-local/stats` returns them.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// The prefix of every access key the local functions sign with (`Faults::for_the_lambdas`
/// targets it), and the key of the application's own hooks.
pub const LAMBDA_ACCESS_KEY: &str = "local-lambda";

/// One function as template.yaml declares it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionSpec {
    /// The binary (`BuildProperties.Binary`), found in the binaries directory.
    pub binary: String,
    /// The function's `Handler`, given to the binary as `_HANDLER` (Lambda's custom runtime
    /// variable), which picks the handler of the one binary that serves every function.
    #[serde(default = "FunctionSpec::default_handler")]
    pub handler: String,
    pub timeout_seconds: u64,
    #[serde(default = "FunctionSpec::default_memory")]
    pub memory_mb: u32,
    /// The function's environment variables, resolved for the local stack.
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    /// The access key of the function's role (`local-lambda-<FunctionLogicalId>`); none for the
    /// application's hooks, which sign with [`LAMBDA_ACCESS_KEY`].
    #[serde(default)]
    pub access_key: Option<String>,
}

impl FunctionSpec {
    fn default_memory() -> u32 {
        128
    }

    fn default_handler() -> String {
        "bootstrap".into()
    }
}

/// The service's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Function name -> spec (the name is the template's function name as the tests call it).
    pub functions: BTreeMap<String, FunctionSpec>,
    /// Where the binaries are (`target/debug`).
    pub binaries: PathBuf,
    /// Variables every function gets (the emulator's endpoint, throwaway credentials, region).
    pub environment: BTreeMap<String, String>,
    pub region: String,
    pub account: String,
}

/// What one instance's init took, for `GET /dr-local/stats`.
#[derive(Debug, Clone, Serialize)]
pub struct InitRecord {
    pub function: String,
    /// Process start to the first poll of the Runtime API.
    pub init_ms: f64,
}

#[derive(Debug, Default, Serialize)]
struct Stats {
    inits: Vec<InitRecord>,
    invocations: u64,
    timeouts: u64,
}

struct Service {
    config: Config,
    idle: Mutex<HashMap<String, Vec<Instance>>>,
    stats: Arc<Mutex<Stats>>,
    request_ids: AtomicU64,
}

/// A request handed to an instance.
struct Invocation {
    request_id: String,
    payload: Bytes,
    deadline_ms: u128,
    function_arn: String,
    done: oneshot::Sender<Completion>,
}

enum Completion {
    Response(Bytes),
    Error(Bytes),
}

/// A running function process and the Runtime API it polls.
struct Instance {
    child: Child,
    invocations: mpsc::Sender<Invocation>,
    runtime: tokio::task::JoinHandle<()>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        // A timed-out or crashed instance is gone for good, as Lambda resets the environment.
        let _ = self.child.start_kill();
        self.runtime.abort();
    }
}

/// Serves the Invoke API on `address` until the process is stopped.
pub async fn serve(config: Config, address: SocketAddr) -> std::io::Result<()> {
    let service = Arc::new(Service {
        config,
        idle: Mutex::new(HashMap::new()),
        stats: Arc::new(Mutex::new(Stats::default())),
        request_ids: AtomicU64::new(1),
    });
    let app = Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .route("/2015-03-31/functions/{name}", get(get_function))
        .route("/dr-local/stats", get(stats))
        .route("/", get(|| async { "dr-emulator lambdas" }))
        .with_state(service);
    let listener = TcpListener::bind(address).await?;
    axum::serve(listener, app).await
}

async fn stats(State(service): State<Arc<Service>>) -> Response {
    let body = service.stats.lock().map(|stats| serde_json::to_vec(&*stats).unwrap_or_default()).unwrap_or_default();
    (StatusCode::OK, [("content-type", "application/json")], body).into_response()
}

/// The function name of an Invoke request: a name, or an ARN (`...:function:<name>[:qualifier]`).
fn function_name(requested: &str) -> &str {
    match requested.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => requested,
    }
}

async fn invoke(
    State(service): State<Arc<Service>>,
    Path(requested): Path<String>,
    headers: HeaderMap,
    payload: Bytes,
) -> Response {
    let name = function_name(&requested).to_string();
    let Some(spec) = service.config.functions.get(&name).cloned() else {
        let arn = service.function_arn(&name);
        return aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &format!("Function not found: {arn}"));
    };
    let asynchronous = headers.get("x-amz-invocation-type").is_some_and(|t| t == "Event");
    if asynchronous {
        let service = Arc::clone(&service);
        tokio::spawn(async move {
            let _ = service.run(&name, &spec, payload).await;
        });
        return StatusCode::ACCEPTED.into_response();
    }
    match service.run(&name, &spec, payload).await {
        Ok(Completion::Response(body)) => (StatusCode::OK, body).into_response(),
        Ok(Completion::Error(body)) => function_error(body),
        Err(body) => function_error(body),
    }
}

/// GetFunction: the function's configuration as Lambda answers it (the fields the readiness
/// check reads), or `ResourceNotFoundException`.
async fn get_function(State(service): State<Arc<Service>>, Path(requested): Path<String>) -> Response {
    let name = function_name(&requested).to_string();
    let arn = service.function_arn(&name);
    let Some(spec) = service.config.functions.get(&name) else {
        return aws_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &format!("Function not found: {arn}"));
    };
    let body = serde_json::json!({
        "Configuration": {
            "FunctionName": name,
            "FunctionArn": arn,
            "Timeout": spec.timeout_seconds,
            "MemorySize": spec.memory_mb,
            "State": "Active",
        }
    });
    (StatusCode::OK, [("content-type", "application/json")], body.to_string()).into_response()
}

/// Lambda's answer to a function error: 200, the error payload, `X-Amz-Function-Error`.
fn function_error(body: Bytes) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    response.headers_mut().insert("x-amz-function-error", HeaderValue::from_static("Unhandled"));
    response
}

/// A Lambda service error (restJson1): the error type in `x-amzn-ErrorType` and the body.
fn aws_error(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let body = serde_json::json!({ "Type": "User", "message": message }).to_string();
    (status, [("x-amzn-errortype", kind), ("content-type", "application/json")], body).into_response()
}

fn error_payload(kind: &str, message: String) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": kind, "errorMessage": message }).to_string())
}

impl Service {
    fn function_arn(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.config.region, self.config.account)
    }

    /// Runs one invocation on an idle instance, or a new one; `Err` carries Lambda's error
    /// payload for a timeout or a crash.
    async fn run(&self, name: &str, spec: &FunctionSpec, payload: Bytes) -> Result<Completion, Bytes> {
        let request_id = format!("{:08x}-local", self.request_ids.fetch_add(1, Ordering::Relaxed));
        if let Ok(mut stats) = self.stats.lock() {
            stats.invocations += 1;
        }
        let idle = self.idle_instance(name);
        let mut instance = match idle {
            Some(instance) => instance,
            None => self.start(name, spec).await.map_err(|e| {
                error_payload("Runtime.Unknown", format!("RequestId: {request_id} Error: cannot start {name}: {e}"))
            })?,
        };
        let timeout = Duration::from_secs(spec.timeout_seconds);
        let deadline_ms = (SystemTime::now() + timeout).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        let (done, completion) = oneshot::channel();
        let invocation = Invocation {
            request_id: request_id.clone(),
            payload,
            deadline_ms,
            function_arn: self.function_arn(name),
            done,
        };
        if instance.invocations.send(invocation).await.is_err() {
            return Err(error_payload(
                "Runtime.ExitError",
                format!("RequestId: {request_id} Error: Runtime exited before the invocation"),
            ));
        }
        tokio::select! {
            completed = completion => match completed {
                Ok(completion) => {
                    if let Ok(mut idle) = self.idle.lock() {
                        idle.entry(name.to_string()).or_default().push(instance);
                    }
                    Ok(completion)
                }
                Err(_) => Err(error_payload(
                    "Runtime.ExitError",
                    format!("RequestId: {request_id} Error: Runtime exited without providing a reason"),
                )),
            },
            () = tokio::time::sleep(timeout) => {
                if let Ok(mut stats) = self.stats.lock() {
                    stats.timeouts += 1;
                }
                tracing::warn!(function = name, request_id, "task timed out after {} s: instance killed", spec.timeout_seconds);
                drop(instance);
                Err(error_payload(
                    "Sandbox.Timedout",
                    format!("RequestId: {request_id} Error: Task timed out after {}.00 seconds", spec.timeout_seconds),
                ))
            }
            exited = instance.child.wait() => {
                let status = exited.map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(error_payload(
                    "Runtime.ExitError",
                    format!("RequestId: {request_id} Error: Runtime exited with error: {status}"),
                ))
            }
        }
    }

    /// A warm instance of the function whose process is still alive, if any.
    fn idle_instance(&self, name: &str) -> Option<Instance> {
        let mut idle = self.idle.lock().ok()?;
        let instances = idle.get_mut(name)?;
        while let Some(mut instance) = instances.pop() {
            if matches!(instance.child.try_wait(), Ok(None)) {
                return Some(instance);
            }
        }
        None
    }

    /// Starts an instance: its Runtime API on a free loopback port, then the process.
    async fn start(&self, name: &str, spec: &FunctionSpec) -> std::io::Result<Instance> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let runtime_address = listener.local_addr()?;
        let (invocations, next) = mpsc::channel(1);
        let runtime = Arc::new(Runtime {
            next: tokio::sync::Mutex::new(next),
            pending: Mutex::new(HashMap::new()),
            started: Instant::now(),
            first_poll: Mutex::new(None),
            function: name.to_string(),
            stats: Arc::clone(&self.stats),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(invocation_response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(invocation_error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(Arc::clone(&runtime));
        let runtime_task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let mut command = Command::new(self.config.binaries.join(&spec.binary));
        command
            .env_clear()
            .envs(std::env::vars().filter(|(key, _)| key == "PATH" || key == "HOME"))
            .env("AWS_ACCESS_KEY_ID", spec.access_key.as_deref().unwrap_or(LAMBDA_ACCESS_KEY))
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .envs(&self.config.environment)
            .envs(&spec.environment)
            .env("AWS_LAMBDA_RUNTIME_API", runtime_address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", spec.memory_mb.to_string())
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .env("AWS_REGION", &self.config.region)
            .env("AWS_DEFAULT_REGION", &self.config.region)
            .env("_HANDLER", &spec.handler)
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let child = command.spawn();
        let child = match child {
            Ok(child) => child,
            Err(err) => {
                runtime_task.abort();
                return Err(err);
            }
        };
        Ok(Instance { child, invocations, runtime: runtime_task })
    }
}

/// One instance's Runtime API.
struct Runtime {
    next: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Completion>>>,
    started: Instant,
    first_poll: Mutex<Option<Instant>>,
    function: String,
    stats: Arc<Mutex<Stats>>,
}

async fn next_invocation(State(runtime): State<Arc<Runtime>>) -> Response {
    if let Ok(mut first) = runtime.first_poll.lock()
        && first.is_none()
    {
        let now = Instant::now();
        *first = Some(now);
        let init_ms = now.duration_since(runtime.started).as_secs_f64() * 1000.0;
        if let Ok(mut stats) = runtime.stats.lock() {
            stats.inits.push(InitRecord { function: runtime.function.clone(), init_ms });
        }
    }
    let Some(invocation) = runtime.next.lock().await.recv().await else {
        return StatusCode::GONE.into_response();
    };
    if let Ok(mut pending) = runtime.pending.lock() {
        pending.insert(invocation.request_id.clone(), invocation.done);
    }
    let headers = [
        ("lambda-runtime-aws-request-id", invocation.request_id),
        ("lambda-runtime-deadline-ms", invocation.deadline_ms.to_string()),
        ("lambda-runtime-invoked-function-arn", invocation.function_arn),
        ("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000;Sampled=0".to_string()),
        ("content-type", "application/json".to_string()),
    ];
    (StatusCode::OK, headers, invocation.payload).into_response()
}

fn complete(runtime: &Runtime, id: &str, completion: Completion) -> Response {
    let sender = runtime.pending.lock().ok().and_then(|mut pending| pending.remove(id));
    match sender {
        Some(sender) => {
            let _ = sender.send(completion);
            StatusCode::ACCEPTED.into_response()
        }
        None => StatusCode::BAD_REQUEST.into_response(),
    }
}

async fn invocation_response(State(runtime): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&runtime, &id, Completion::Response(body))
}

async fn invocation_error(State(runtime): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&runtime, &id, Completion::Error(body))
}

async fn init_error(State(runtime): State<Arc<Runtime>>, body: Bytes) -> Response {
    tracing::error!(function = %runtime.function, "init error: {}", String::from_utf8_lossy(&body));
    StatusCode::ACCEPTED.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A function whose binary is this shell script, with a one-second timeout.
    fn script_function(dir: &std::path::Path, name: &str, script: &str) -> (String, FunctionSpec) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).expect("script written");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("executable");
        let spec = FunctionSpec {
            binary: name.to_string(),
            handler: FunctionSpec::default_handler(),
            timeout_seconds: 1,
            memory_mb: 128,
            environment: BTreeMap::new(),
            access_key: None,
        };
        (name.to_string(), spec)
    }

    /// Invokes `function` as Step Functions does: the error name Lambda gives, if any.
    async fn invoke_error(address: SocketAddr, function: &str) -> Option<String> {
        let url = format!("http://{address}/2015-03-31/functions/{function}/invocations");
        let response = dr_core::aws::tls::http_client_builder()
            .build()
            .expect("HTTP client")
            .post(url)
            .body("{}")
            .send()
            .await
            .expect("invoke answered");
        assert_eq!(response.status(), 200, "a function error is HTTP 200, as in Lambda");
        let flagged = response.headers().get("x-amz-function-error").is_some();
        let body: serde_json::Value = response.json().await.expect("a JSON payload");
        flagged.then(|| body["errorType"].as_str().unwrap_or_default().to_string())
    }

    #[tokio::test]
    async fn a_function_past_its_timeout_is_killed_and_answers_sandbox_timedout_and_a_crash_runtime_exit_error() {
        let dir = std::env::temp_dir().join(format!("dr-lambdas-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let functions = BTreeMap::from([
            // Never polls the Runtime API: runs past its timeout, as a step stuck on a hung region.
            script_function(&dir, "hangs", "sleep 30"),
            script_function(&dir, "crashes", "exit 3"),
        ]);
        let config = Config {
            functions,
            binaries: dir.clone(),
            environment: BTreeMap::new(),
            region: "eu-west-1".into(),
            account: "123456789012".into(),
        };
        let address = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
        tokio::spawn(serve(config, address));
        tokio::time::sleep(Duration::from_millis(200)).await;

        assert_eq!(invoke_error(address, "hangs").await.as_deref(), Some("Sandbox.Timedout"));
        assert_eq!(invoke_error(address, "crashes").await.as_deref(), Some("Runtime.ExitError"));
        let stats: serde_json::Value = reqwest::get(format!("http://{address}/dr-local/stats"))
            .await
            .expect("stats")
            .json()
            .await
            .expect("JSON stats");
        assert_eq!(stats["timeouts"], 1, "the hung instance was killed at its timeout: {stats}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn functions_are_found_by_name_or_arn() {
        assert_eq!(function_name("preflight"), "preflight");
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:123456789012:function:preflight"), "preflight");
        assert_eq!(function_name("arn:aws:lambda:eu-west-1:123456789012:function:preflight:$LATEST"), "preflight");
    }
}
