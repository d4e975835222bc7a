//! A lost answer on a conditional write of the plan store is not a lost race (issue 28, part 4).
//! S3 applies a conditional write and its answer is lost: the SDK tries the same request again,
//! which now fails its precondition (412) because the first attempt changed the object. The fault
//! layer does exactly that to the first conditional write about the estate
//! (`Faults::lose_conditional_writes`); the trigger, the game day, drctl and the report must each
//! go on exactly once, tell once, and leave the plan in the state the run reached.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::process::Command;

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::error::parse_input;
use dr_core::game_day::handle_game_day;
use dr_core::notify::NoticeKind;
use dr_core::runbook::report::RunReport;
use dr_core::store::{PlanStatus, PlanStore};
use dr_core::trigger::{Decision, handle_alarm_event};
use dr_emulator::control::{Faults, clear_faults, fault_report, inject_faults};
use dr_emulator::executions::execution_input;
use dr_emulator::outage::{Outage, simulate_outage};
use dr_tests::{
    estate_suffix, notices, of_kind, plan_file, recorded_executions, register_stand_in, run_failover, seeded_estate,
    subscribe, trigger_context, workspace_binary,
};

/// The tests' own key (scripts/lib.sh): the code under test runs in-process, or as drctl.
const OPERATOR_ACCESS_KEY: &str = "testing";

/// The answer of the next conditional write about `plan`'s estate signed with `access_key` is lost.
async fn lose_next_conditional_write(clients: &AwsClients, plan: &Plan, access_key: &str) {
    let faults = Faults {
        scope: estate_suffix(plan).to_string(),
        access_key: access_key.to_string(),
        lose_conditional_writes: 1,
        ..Faults::default()
    };
    inject_faults(clients, &faults).await.expect("faults injected");
}

/// The faults stopped; asserts that one answer was lost.
async fn one_answer_was_lost(clients: &AwsClients, plan: &Plan) {
    let report = fault_report(clients, estate_suffix(plan)).await.expect("fault report");
    clear_faults(clients, estate_suffix(plan)).await.expect("faults cleared");
    assert_eq!(report.injected.get("lost"), Some(&1), "{report:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_trigger_whose_take_lost_its_answer_starts_the_run_once_and_tells_once() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage");

    lose_next_conditional_write(&clients, &plan, OPERATOR_ACCESS_KEY).await;
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm").expect("event")).await.expect("handled");
    one_answer_was_lost(&clients, &plan).await;

    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.status, PlanStatus::FailingOver);
    assert_eq!(state.run_id.as_deref(), Some(executions[0].0.as_str()));
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    assert_eq!(of_kind(&seen, NoticeKind::RunStarted).len(), 1, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_game_day_whose_take_lost_its_answer_starts_its_drill_once_and_holds_the_plan() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");

    lose_next_conditional_write(&clients, &plan, OPERATOR_ACCESS_KEY).await;
    let request = serde_json::json!({
        "plan": plan.name, "mode": "drill", "requested_by": "alice", "reason": "game day", "confirm": plan.name,
    });
    let started = handle_game_day(&ctx, parse_input(request, "game-day request").expect("request")).await;
    one_answer_was_lost(&clients, &plan).await;

    let started = started.expect("the drill starts: its own write is not someone else's");
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), [started.run_id.as_str()]);
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert!(state.is_held_by(&started.run_id), "{state:?}");
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    assert_eq!(of_kind(&seen, NoticeKind::RunStarted).len(), 1, "{seen:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn drctl_whose_take_lost_its_answer_starts_the_failover_once() {
    let (plan, clients) = seeded_estate().await;
    let bucket = format!("plans-{}", plan.name);
    let machine = register_stand_in(&clients, &plan, &bucket, &plan.name).await;
    let store = PlanStore::new(clients.dr.s3.clone(), &bucket);
    store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");

    lose_next_conditional_write(&clients, &plan, OPERATOR_ACCESS_KEY).await;
    let file = plan_file(&plan);
    let out = Command::new(workspace_binary("drctl"))
        .args(["failover", "start", file.to_str().expect("utf-8"), "--bucket", &bucket, "--state-machine", &machine])
        .args(["--planned", "--by", "alice@example.com", "--reason", "planned move"])
        .output()
        .expect("drctl runs");
    one_answer_was_lost(&clients, &plan).await;

    assert!(out.status.success(), "{out:?}");
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let run_id = started["run_id"].as_str().expect("run id");
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), [run_id]);
    assert!(store.read_state(&plan.name).await.expect("state").state.is_held_by(run_id));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_report_whose_write_lost_its_answer_marks_the_plan_failed_over_and_tells_once() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage");
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm").expect("event")).await.expect("handled");
    let arn = outcome.execution_arn.expect("started");
    let input: serde_json::Value =
        serde_json::from_str(&execution_input(&clients, &arn).await.expect("input")).expect("JSON");

    // The functions' first conditional write about the estate is the report's, of the plan state.
    let faults = Faults { lose_conditional_writes: 1, ..Faults::for_the_lambdas(estate_suffix(&plan)) };
    inject_faults(&clients, &faults).await.expect("faults injected");
    let execution = run_failover(&input);
    one_answer_was_lost(&clients, &plan).await;

    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output.clone()).expect("a run report");
    let said = report.plan_state.clone().unwrap_or_default();
    assert!(!said.contains("someone else"), "{said}");
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.status, PlanStatus::FailedOver, "{state:?}");
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    assert_eq!(of_kind(&seen, NoticeKind::RunFinished).len(), 1, "{seen:#?}");
}
