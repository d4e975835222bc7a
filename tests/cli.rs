//! The operator's and the developer's command-line tools as they are run: exit status and output.
//! The binaries are the workspace's own build (`target/debug`, built by `scripts/lambdas start`).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use dr_tests::{example_plan_path, workspace_binary};

fn run(binary: &PathBuf, args: &[&str]) -> Output {
    Command::new(binary).args(args).output().unwrap_or_else(|e| panic!("{} runs: {e}", binary.display()))
}

fn drctl(args: &[&str]) -> Output {
    run(&workspace_binary("drctl"), args)
}

fn example_plan() -> PathBuf {
    example_plan_path()
}

/// The example plan with every resource name made unique, written to a temporary file.
fn isolated_plan_file(tag: &str) -> PathBuf {
    let suffix = format!("{tag}{}", std::process::id());
    let mut text = std::fs::read_to_string(example_plan()).expect("example plan");
    for name in [
        "paris-ireland-prod",
        "platform-db-paris",
        "platform-db-ireland",
        "platform-web-ireland",
        "platform-paris-primary",
        "platform-assets-paris",
        "platform-assets-ireland",
        "platform-dr-reports-ireland",
    ] {
        text = text.replace(name, &format!("{name}-{suffix}"));
    }
    text = text.replace("platform.example.com", &format!("{suffix}.example.com"));
    let path = std::env::temp_dir().join(format!("drctl-cli-{suffix}.toml"));
    std::fs::write(&path, text).expect("temporary plan written");
    path
}

#[test]
fn check_exits_1_until_the_estate_is_seeded_then_0() {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        panic!("AWS_ENDPOINT_URL is not set: run the suite with scripts/test, which starts the emulator");
    }
    let plan = isolated_plan_file("chk");
    let plan = plan.to_str().expect("utf-8 path");

    let before = drctl(&["plan", "check", plan]);
    assert_eq!(before.status.code(), Some(1), "{before:?}");
    let table = String::from_utf8_lossy(&before.stdout);
    assert!(table.contains("ReplicaMissing") && table.contains("NOT READY"), "{table}");

    let seeded = run(&workspace_binary("dr-emulator"), &["seed", plan]);
    assert!(seeded.status.success(), "{seeded:?}");

    let after = drctl(&["plan", "check", plan, "--json"]);
    assert_eq!(after.status.code(), Some(0), "{after:?}");
    let json: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON table");
    let rows = json["rows"].as_array().expect("rows");
    assert!(rows.len() >= 10 && rows.iter().all(|row| row["finding"].is_null()), "{json:#}");
}
