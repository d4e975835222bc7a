//! drctl as an operator runs it: exit status and output.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn drctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drctl")).args(args).output().expect("drctl runs")
}

fn example_plan() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../plans/paris-ireland.toml")
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
fn validate_accepts_the_example_plan() {
    let out = drctl(&["plan", "validate", example_plan().to_str().expect("utf-8 path")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("paris-ireland-prod is valid"));
}

#[test]
fn validate_lists_every_problem_and_exits_2() {
    let text = std::fs::read_to_string(example_plan())
        .expect("example plan")
        .replace("ttl_seconds = 60", "ttl_seconds = 300")
        .replace("dr_region = \"eu-west-1\"", "dr_region = \"eu-west-3\"");
    let path = std::env::temp_dir().join(format!("drctl-invalid-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("temporary plan written");
    let out = drctl(&["plan", "validate", path.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for name in ["InvalidPlan", "TtlTooHighForTier", "ReplicaInPrimaryRegion"] {
        assert!(stderr.contains(name), "{name} missing from {stderr}");
    }
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

    let seeded = drctl(&["estate", "seed", plan]);
    assert!(seeded.status.success(), "{seeded:?}");

    let after = drctl(&["plan", "check", plan, "--json"]);
    assert_eq!(after.status.code(), Some(0), "{after:?}");
    let json: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON table");
    let rows = json["rows"].as_array().expect("rows");
    assert!(rows.len() >= 10 && rows.iter().all(|row| row["finding"].is_null()), "{json:#}");
}
