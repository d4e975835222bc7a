//! Runbook steps called directly (no state machine) against the emulated estate: the guards.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::time::SystemTime;

use dr_core::runbook::{FailoverStep, RunInfo, RunbookState, StepAction, format_time, run_step};
use dr_tests::{seeded_estate, unique_suffix};

fn state_for(plan: dr_core::Plan) -> RunbookState {
    RunbookState {
        plan,
        run: RunInfo {
            id: format!("steps-{}", unique_suffix()),
            triggered_at: format_time(SystemTime::now()),
            trigger: "test".to_string(),
        },
        approval: None,
        steps: Default::default(),
        error: None,
    }
}

#[tokio::test]
async fn every_step_refuses_bad_input_before_any_aws_call() {
    let (plan, clients) = seeded_estate().await;
    let mut bad_run_id = state_for(plan.clone());
    bad_run_id.run.id = "not a run id!".to_string();
    let mut bad_time = state_for(plan.clone());
    bad_time.run.triggered_at = "yesterday".to_string();
    let mut bad_plan = state_for(plan);
    bad_plan.plan.auto_scaling.failover.desired = 0;
    for (state, expected) in [(bad_run_id, "InvalidInput"), (bad_time, "InvalidInput"), (bad_plan, "InvalidPlan")] {
        for step in [
            FailoverStep::Preflight,
            FailoverStep::PromoteReplica,
            FailoverStep::StartStandby,
            FailoverStep::ScaleAsg,
            FailoverStep::FlipDns,
            FailoverStep::Report,
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
