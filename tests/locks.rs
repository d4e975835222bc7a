//! A lock never outlives its run (issue 28, part 5). A run takes its plan (failing-over, held by
//! it) and its report ends the hold. A start that fails gives the plan back at once; a run stopped
//! before any change (preflight, its RPO gate, a rejected decision) gives it back through its
//! report (RefusalReport); a run that ends without its report, or never starts, is found by the
//! reconciler (`dr_core::reconcile`), which gives the plan back when the run changed nothing and
//! tells the on-call either way.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dr_core::error::parse_input;
use dr_core::game_day::handle_game_day;
use dr_core::notify::NoticeKind;
use dr_core::plan::Direction;
use dr_core::reconcile::{Verdict, reconcile};
use dr_core::run::{RunbookState, Starter};
use dr_core::runbook::report::RunReport;
use dr_core::store::{PlanStatus, WriteOutcome};
use dr_core::time;
use dr_tests::{failover_input, notices, of_kind, run_failover, seeded_estate, subscribe, trigger_context};

use crate::operator::{drctl, lagging_estate, start_failover, wait_for_question};
use crate::under_faults::first_standby_instance;

#[tokio::test(flavor = "multi_thread")]
async fn a_game_day_whose_start_fails_gives_the_plan_back_at_once() {
    let (plan, clients) = seeded_estate().await;
    let mut ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    // A state machine that does not exist: the start fails after the drill took the plan.
    let missing = format!("arn:aws:states:{}:123456789012:stateMachine:missing-{}", plan.dr_region, plan.name);
    ctx.starter = Starter::new(clients.dr.sfn.clone(), missing);
    let request = serde_json::json!({
        "plan": plan.name, "mode": "drill", "requested_by": "alice", "reason": "game day", "confirm": plan.name,
    });
    let refused = handle_game_day(&ctx, parse_input(request, "game-day request").expect("request")).await;
    assert!(refused.is_err(), "{refused:?}");
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.status, PlanStatus::Armed, "given back at once: {state:?}");
    assert!(state.reason.contains("could not be started"), "{state:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_refused_by_preflight_gives_the_plan_back_armed_and_says_so() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    // A standby instance is gone: preflight refuses before anything changes.
    let instance = first_standby_instance(&clients, &plan).await;
    clients.dr.ec2.terminate_instances().instance_ids(&instance).send().await.expect("terminated");
    let mut state: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("refused-{}", plan.name)).await).expect("state");
    ctx.store
        .take_for_run(&plan, Direction::ToDr, &state.run.id, "operator: test", "a move by hand")
        .await
        .expect("taken");
    state.run.plan_state = Some(ctx.store.reference());

    let execution = run_failover(&serde_json::to_value(&state).expect("input"));
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("PreflightFailed"), "{execution:#?}");
    let back = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(back.status, PlanStatus::Armed, "{back:?}");
    let report = dr_tests::read_report(&clients, &plan, &state.run.id, "report.json").await;
    let report: RunReport = serde_json::from_slice(&report).expect("the failure report");
    assert!(report.plan_state.as_deref().is_some_and(|said| said.starts_with("armed: given back")), "{report:#?}");
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    let failed = of_kind(&seen, NoticeKind::RunFailed);
    assert_eq!(failed.len(), 1, "{seen:#?}");
    assert!(failed[0].text.contains("given back, the run changed nothing"), "{}", failed[0].text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stopped_by_hand_is_found_by_the_reconciler_its_plan_given_back_and_told_once() {
    let (plan, mut clients, file, store, runbook) = lagging_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let mut ctx = trigger_context(&plan, &clients).await;
    ctx.store = store.clone();
    ctx.starter = Starter::new(clients.dr.sfn.clone(), &runbook);
    let (arn, run_id) = start_failover(&file, &store, &runbook);
    wait_for_question(&store, &plan, &run_id).await;
    // Stopped by hand while it waits: the execution ends ABORTED, its report never runs.
    let stopped = drctl(&["run", "stop", &arn, "--by", "alice@example.com", "--reason", "Paris is back"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(store.read_state(&plan.name).await.expect("state").state.is_held_by(&run_id), "still held");

    let reconciled = reconcile(&ctx).await.expect("reconciled");
    assert_eq!(reconciled.len(), 1, "{reconciled:?}");
    assert_eq!((reconciled[0].ended.as_str(), &reconciled[0].verdict), ("ABORTED", &Verdict::GivenBack));
    let state = store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.status, PlanStatus::Armed, "{state:?}");
    // Judged once: the next round finds nothing held.
    assert!(reconcile(&ctx).await.expect("reconciled").is_empty());
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    let told = of_kind(&seen, NoticeKind::HoldReconciled);
    assert_eq!(told.len(), 1, "{seen:#?}");
    assert!(told[0].text.contains(&run_id) && told[0].text.contains("ABORTED"), "{}", told[0].text);
    assert!(told[0].text.contains("Estate: "), "{}", told[0].text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plan_held_by_a_run_that_never_started_is_given_back_after_the_grace() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    // Taken by a trigger whose Lambda then timed out before the start (and before giving back).
    let read = ctx.store.read_state(&plan.name).await.expect("state");
    let mut taken = read.state.taken(&format!("{}-lost", plan.name), "alarm-trigger", "incident");
    let young = taken.clone();
    assert_eq!(ctx.store.write_state(&read, &young).await.expect("written"), WriteOutcome::Won);
    // Young: the start may still be under way.
    assert!(reconcile(&ctx).await.expect("reconciled").is_empty());
    let read = ctx.store.read_state(&plan.name).await.expect("state");
    taken.changed_at = Some(time::before(time::now(), dr_core::reconcile::START_GRACE + Duration::from_secs(60)));
    assert_eq!(ctx.store.write_state(&read, &taken).await.expect("written"), WriteOutcome::Won);

    let reconciled = reconcile(&ctx).await.expect("reconciled");
    assert_eq!(reconciled.len(), 1, "{reconciled:?}");
    assert_eq!((reconciled[0].ended.as_str(), &reconciled[0].verdict), ("NEVER_STARTED", &Verdict::GivenBack));
    assert_eq!(ctx.store.read_state(&plan.name).await.expect("state").state.status, PlanStatus::Armed);
}
