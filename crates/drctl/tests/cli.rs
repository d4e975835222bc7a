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
