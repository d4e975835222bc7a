//! Least privilege, proven: every call a local function makes is authorized against its own
//! template role by a real IAM evaluator (crates/dr-emulator/moto/iam.py). These tests show the
//! enforcement itself (a call outside the role is AccessDenied, answered as AWS answers and named
//! by the run) and the paths the review found denied on AWS, each red on the template before the
//! fix: the scheduled RPO check, the readiness check's health checks, and the fence's hooks.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use dr_core::run::{RunInfo, RunbookState};
use dr_emulator::estate::{SeedOptions, seed};
use dr_emulator::iam::report;
use dr_tests::{emulator_clients, example_plan_path, invoke_lambda, repo_root, seeded_estate, unique_suffix};

fn state_for(plan: dr_core::Plan) -> RunbookState {
    RunbookState::new(plan, RunInfo::new(format!("iam-{}", unique_suffix()), dr_core::time::now(), "test"))
}

/// The local Lambda service's environment for a function (`.emulator/functions.json`, written from
/// template.yaml by scripts/lambdas): where its scheduled runs read their plans.
fn function_variable(handler: &str, variable: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(".emulator/functions.json")).expect("scripts/lambdas wrote it");
    let functions: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    functions[handler]["environment"][variable].as_str().expect("the variable is set").to_string()
}

/// A step's call on a resource its role does not name is refused by IAM as AWS refuses it
/// (AccessDenied, with the action and the resource), the step fails with the stable name
/// `AccessDenied` that Step Functions sees, and the local IAM records the denial against the
/// function.
#[tokio::test]
async fn a_call_outside_the_functions_role_is_access_denied_and_the_run_names_it() {
    let (plan, clients) = seeded_estate().await;
    let mut outside = plan.clone();
    // A replica no deployment's role names.
    outside.database.replica_instance = format!("iam-denied-{}", unique_suffix());
    let payload = serde_json::json!({ "action": "act", "state": state_for(outside.clone()) });
    let (answer, function_error) = invoke_lambda("promote-replica", &payload);
    assert_eq!(function_error.as_deref(), Some("Unhandled"), "{answer}");
    assert_eq!(answer["errorType"], "AccessDenied", "{answer}");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("rds:DescribeDBInstances"), "{message}");
    assert!(message.contains(&outside.database.replica_instance), "{message}");
    let seen = report(&clients).await.expect("the local IAM's report");
    let denied = &seen.functions["PromoteReplicaFunction"].denied;
    assert!(
        denied.iter().any(|d| d.resource.as_deref().is_some_and(|r| r.ends_with(&outside.database.replica_instance))),
        "{denied:?}"
    );
    // The same step on the deployment's own replica is allowed.
    let (answer, function_error) =
        invoke_lambda("promote-replica", &serde_json::json!({ "action": "status", "state": state_for(plan) }));
    assert_eq!(function_error, None, "{answer}");
}

/// The scheduled functions run as deployed, on the local stack's own plan store and plan (the
/// example plan): the RPO check reads the plan's state and its previous snapshot (S3 answers 403
/// for a missing object without s3:ListBucket) and publishes its metrics; the readiness check
/// finds both health checks through their tags (route53:ListTagsForResources). On the template
/// before the fix both failed on every run.
#[tokio::test]
async fn the_scheduled_checks_run_under_their_roles() {
    let plan = dr_core::Plan::load(&example_plan_path()).expect("the example plan");
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("the example estate");
    let bucket = function_variable("rpo-check", "PLAN_STATE_BUCKET");
    dr_tests::register_stand_in(&clients, &plan, &bucket, "dr-failover").await;
    let schedule: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/rpo-check-schedule.json")).expect("the sample event"),
    )
    .expect("JSON");
    for function in ["rpo-check", "readiness-check"] {
        let (answer, function_error) = invoke_lambda(function, &schedule);
        assert_eq!(function_error, None, "{function}: {answer}");
        let text = answer.to_string();
        assert!(!text.contains("AccessDenied") && !text.contains("not authorized"), "{function}: {text}");
        // A readiness row whose lookup failed (the health checks' tags denied) is CheckFailed.
        assert!(!text.contains("CheckFailed"), "{function}: {text}");
    }
    let seen = report(&clients).await.expect("the local IAM's report");
    for function in ["RpoCheckFunction", "ReadinessCheckFunction"] {
        let calls = &seen.functions[function];
        assert!(calls.calls > 0, "{function} made no call");
        assert!(calls.denied.is_empty(), "{function}: {:?}", calls.denied);
    }
    assert!(seen.functions["ReadinessCheckFunction"].actions.contains_key("route53:ListTagsForResources"));
    assert!(seen.functions["RpoCheckFunction"].actions.contains_key("cloudwatch:PutMetricData"));
}
