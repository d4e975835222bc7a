//! The contract between `statemachines/*.asl.json` and the Rust side, checked on every definition:
//!
//! - every `ResultPath` is `$.steps.<StepKey>` or one of the state's other known paths;
//! - every Choice reads `$.steps.<StepKey>.ready`, a field every step record has;
//! - every name in a `Retry` or `Catch` is one the Rust side produces (a `DrError` name) or one
//!   Step Functions or Lambda produces (`States.*`, `Lambda.*`, `Sandbox.Timedout`,
//!   `Runtime.ExitError`);
//! - every Task retries exactly the retryable `DrError` names (`ErrorName::is_retryable`), and
//!   Lambda's crashes and timeouts.
//!
//! No emulator needed.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use dr_core::error::ErrorName;
use dr_core::run::{STATE_RESULT_PATHS, StepKey};
use serde_json::Value;

/// Names Step Functions and Lambda produce themselves.
fn is_platform_error(name: &str) -> bool {
    name.starts_with("States.")
        || name.starts_with("Lambda.")
        || ["Sandbox.Timedout", "Runtime.ExitError", "Runtime.Unknown"].contains(&name)
}

/// What a Lambda's crash or timeout surfaces as: every Task must retry these.
const CRASHES_AND_TIMEOUTS: &[&str] = &["Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError"];

fn definitions() -> Vec<(String, Value)> {
    let dir = dr_tests::repo_root().join("statemachines");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("statemachines/") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).expect("definition");
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            found.push((name, serde_json::from_str(&text).expect("a definition is JSON")));
        }
    }
    assert!(found.len() >= 2, "{found:?}");
    found
}

/// Every state of a definition, Parallel branches and Map iterators included: (name, state).
fn states(definition: &Value) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    let mut pending = vec![definition.clone()];
    while let Some(machine) = pending.pop() {
        for (name, state) in machine["States"].as_object().expect("States").clone() {
            for branch in state["Branches"].as_array().cloned().unwrap_or_default() {
                pending.push(branch);
            }
            for key in ["Iterator", "ItemProcessor"] {
                if state[key].is_object() {
                    pending.push(state[key].clone());
                }
            }
            all.push((name, state));
        }
    }
    all
}

fn step_key(text: &str) -> Option<StepKey> {
    serde_json::from_value(Value::String(text.to_string())).ok()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

#[test]
fn result_paths_and_choices_name_what_the_rust_side_produces() {
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            let mut paths: Vec<&str> = state["ResultPath"].as_str().into_iter().collect();
            paths.extend(state["Catch"].as_array().into_iter().flatten().filter_map(|c| c["ResultPath"].as_str()));
            for path in paths {
                let known = match path.strip_prefix("$.steps.") {
                    Some(key) => step_key(key).is_some(),
                    None => path.strip_prefix("$.").is_some_and(|top| STATE_RESULT_PATHS.contains(&top)),
                };
                assert!(known, "{file} {name}: ResultPath {path} is not produced or read by the Rust side");
            }
            for choice in state["Choices"].as_array().into_iter().flatten() {
                let rules: Vec<&Value> =
                    choice["And"].as_array().map_or_else(|| vec![choice], |and| and.iter().collect());
                for rule in rules {
                    let variable = rule["Variable"].as_str().expect("a Variable");
                    let parts: Vec<&str> = variable.split('.').collect();
                    let ok = matches!(parts.as_slice(), ["$", "steps", key, "ready"] if step_key(key).is_some());
                    assert!(ok, "{file} {name}: a Choice reads {variable}; steps answer `$.steps.<key>.ready`");
                }
            }
        }
    }
}

#[test]
fn retry_and_catch_name_only_errors_that_exist() {
    let ours: BTreeSet<&str> = ErrorName::all().map(ErrorName::as_str).collect();
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            let blocks = state["Retry"].as_array().into_iter().chain(state["Catch"].as_array()).flatten();
            for error in blocks.flat_map(|block| names(&block["ErrorEquals"])) {
                assert!(
                    ours.contains(error.as_str()) || is_platform_error(&error),
                    "{file} {name}: {error} is neither a DrError name nor a Step Functions / Lambda error"
                );
            }
        }
    }
}

#[test]
fn every_task_retries_exactly_the_retryable_errors_and_lambda_crashes() {
    let retryable: BTreeSet<String> =
        ErrorName::all().filter(|n| n.is_retryable()).map(|n| n.as_str().to_string()).collect();
    let ours: BTreeSet<&str> = ErrorName::all().map(ErrorName::as_str).collect();
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            if state["Type"] != "Task" {
                continue;
            }
            let retried: BTreeSet<String> =
                state["Retry"].as_array().into_iter().flatten().flat_map(|r| names(&r["ErrorEquals"])).collect();
            let our_retried: BTreeSet<String> = retried.iter().filter(|n| ours.contains(n.as_str())).cloned().collect();
            assert_eq!(
                our_retried, retryable,
                "{file} {name}: retries {our_retried:?}, the retryable names are {retryable:?}"
            );
            for crash in CRASHES_AND_TIMEOUTS {
                assert!(retried.contains(*crash), "{file} {name}: a Lambda {crash} is not retried");
            }
        }
    }
}
