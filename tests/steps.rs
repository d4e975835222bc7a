//! Runbook steps called directly (no state machine) against the emulated estate: the guards.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use dr_core::run::{Approval, GateVerdict, RunInfo, RunbookState, StepAction};
use dr_core::runbook::preflight::preflight;
use dr_core::runbook::{FailoverStep, run_step};
use dr_tests::{seeded_estate, unique_suffix};

fn state_for(plan: dr_core::Plan) -> RunbookState {
    RunbookState::new(plan, RunInfo::new(format!("steps-{}", unique_suffix()), dr_core::time::now(), "test"))
}

#[tokio::test]
async fn every_step_refuses_bad_input_before_any_aws_call() {
    let (plan, clients) = seeded_estate().await;
    let mut bad_run_id = state_for(plan.clone());
    bad_run_id.run.id = "not a run id!".to_string();
    let mut bad_plan = state_for(plan);
    bad_plan.plan.auto_scaling.failover.desired = 0;
    for (state, expected) in [(bad_run_id, "InvalidInput"), (bad_plan, "InvalidPlan")] {
        for step in [
            FailoverStep::Preflight,
            FailoverStep::PromoteReplica,
            FailoverStep::StartStandby,
            FailoverStep::ScaleAsg,
            FailoverStep::FlipDns,
            FailoverStep::Report,
            FailoverStep::Fence,
            FailoverStep::RetirePrimary,
            FailoverStep::CreateReplica,
        ] {
            for action in [StepAction::Act, StepAction::Status] {
                let mark = clients.calls.mark();
                let err = run_step(step, action, &clients, &state).await.expect_err("bad input is refused");
                assert_eq!(err.name(), expected, "{step:?} {action:?}");
                assert!(clients.calls.since(mark).is_empty(), "{step:?} {action:?} called AWS");
            }
        }
    }
}

#[tokio::test]
async fn a_replica_promoted_outside_the_runbook_needs_a_human_approval() {
    let (plan, clients) = seeded_estate().await;
    // Someone promoted the replica by hand, days ago: its data age is unknown to the runbook.
    clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&plan.database.replica_instance)
        .send()
        .await
        .expect("PromoteReadReplica");
    let state = state_for(plan);
    let err = preflight(&clients, &state).await.expect_err("no approval, no failover");
    assert_eq!(err.name(), "ReplicaNotReplicating", "{err}");

    let mut approved = state;
    approved.approval = Some(Approval { by: "dba@example.com".into(), reason: "checked the data by hand".into() });
    let record = preflight(&clients, &approved).await.expect("approved preflight");
    let gate = record.gate.expect("gate decision");
    assert_eq!(gate.verdict, GateVerdict::Approved);
    assert_eq!(gate.approval, approved.approval);
}

/// A task input the Lambda cannot parse (a half plan, a time that is not RFC 3339) is refused
/// with `InvalidInput` before the handler runs, so before any AWS call.
#[tokio::test]
async fn a_malformed_task_input_gets_invalid_input_from_the_lambda() {
    let (plan, _) = seeded_estate().await;
    let mut bad_time = serde_json::json!({ "action": "act", "state": state_for(plan) });
    bad_time["state"]["run"]["triggered_at"] = "yesterday".into();
    let half_plan = serde_json::json!({"action": "act", "state": {"plan": {"name": "x"}}});
    for payload in [half_plan, bad_time] {
        for function in ["preflight", "promote-replica", "start-standby", "scale-asg", "flip-dns", "failover-report"] {
            let (answer, function_error) = dr_tests::invoke_lambda(function, &payload);
            assert_eq!(function_error.as_deref(), Some("Unhandled"), "{function}: {answer}");
            assert_eq!(answer["errorType"], "InvalidInput", "{function}: {answer}");
        }
    }
}
