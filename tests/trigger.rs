//! The triggers against the emulated estate: the alarm trigger (confirmation, single-flight,
//! arming) and game days (dry run, drill). Executions are started in the emulator's Step
//! Functions, which records them and runs nothing; where a test needs the run itself, it hands
//! the recorded input to the ASL engine with the real Lambdas (as `scripts/demo` does).
//!
//! Modelled (moto lacks it): Route53 health checkers and alarm evaluation. `simulate_outage`
//! publishes the `HealthCheckStatus` minutes Route53 would, sets the alarm to ALARM and builds
//! the event CloudWatch would send to EventBridge.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::time::Duration;

use dr_core::time;

use aws_sdk_ec2::types::InstanceStateName;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{describe_auto_scaling_group, describe_standby_instances};
use dr_core::aws::metrics::{datapoints, per_minute};
use dr_core::error::parse_input;
use dr_core::game_day::{GameDayOutcome, handle_game_day};
use dr_core::readiness::{Check, CheckRow, Readiness, Scope, check_plan};
use dr_core::run::{Outcome, RunStatus};
use dr_core::runbook::compute::set_capacity;
use dr_core::runbook::report::RunReport;
use dr_core::store::{PlanState, PlanStatus, WriteOutcome};
use dr_core::trigger::prepare::{PREPARED_BY_TAG, PREPARED_CAPACITY_TAG, PREPARED_DESIRED_TAG};
use dr_core::trigger::{
    AlarmStateChange, DECISION_METRIC, DECISION_NAMESPACE, Decision, TriggerContext, TriggerOutcome,
    handle_alarm_event, incident_run_id, reevaluate,
};
use dr_core::{DrError, Plan};
use dr_emulator::control::hold_alarm;
use dr_emulator::outage::{Outage, alarm_state_change_event, simulate_outage, simulate_recovery};
use dr_tests::{recorded_executions, run_failover, seeded_estate, trigger_context, workspace_binary};

/// A seeded estate with its plan armed, and the alarm event of a simulated outage.
async fn armed_outage(
    outage: Outage,
    probe_url: Option<String>,
) -> (Plan, AwsClients, TriggerContext, serde_json::Value) {
    armed_outage_with(outage, |trigger| trigger.probe_url = probe_url).await
}

/// As [`armed_outage`], the plan's trigger settings edited first.
async fn armed_outage_with(
    outage: Outage,
    edit: impl FnOnce(&mut dr_core::plan::Trigger),
) -> (Plan, AwsClients, TriggerContext, serde_json::Value) {
    armed_estate_outage(|_| {}, outage, edit).await
}

/// [`armed_outage_with`] on an estate `estate` edits before it is seeded.
async fn armed_estate_outage(
    estate: impl FnOnce(&mut Plan),
    outage: Outage,
    edit: impl FnOnce(&mut dr_core::plan::Trigger),
) -> (Plan, AwsClients, TriggerContext, serde_json::Value) {
    let (mut plan, clients) = dr_tests::seeded_estate_with(estate).await;
    if let Some(trigger) = plan.trigger.as_mut() {
        edit(trigger);
    }
    let ctx = trigger_context(&plan, &clients).await;
    arm(&ctx, &plan).await;
    let event = simulate_outage(&clients, &plan, outage).await.expect("outage simulated");
    (plan, clients, ctx, event)
}

/// The readiness rows of the plan's own estate, to compare before and after: the vCPU quota's
/// row counts every instance running in the region, the other tests' too, so only its finding is
/// kept.
fn estate_rows(readiness: &Readiness) -> Vec<CheckRow> {
    let mut rows = readiness.rows.clone();
    for row in rows.iter_mut().filter(|row| row.check == Check::VcpuQuota) {
        row.detail.clear();
    }
    // A new alarm is INSUFFICIENT_DATA until the end of the minute it was created in, its first
    // evaluation (CloudWatch; crates/dr-emulator/moto/alarms.py): a minute's end between two looks
    // at a freshly seeded estate turns the routing alarm OK, with nothing changed. Either way
    // traffic stays; an ALARM still differs.
    for row in rows.iter_mut().filter(|row| row.check == Check::RoutingAlarm) {
        if let Some(rest) = row.detail.strip_prefix("INSUFFICIENT_DATA:") {
            row.detail = format!("OK:{rest}");
        }
    }
    rows
}

/// The schedule judges the last whole window before now, which slides on as the test runs: the
/// flap's minutes are published again relative to now, so that the window the schedule judges
/// holds the healthy minute however long the steps before took (a window that had slid past it
/// would rightly be judged a sustained outage).
async fn still_flapping(clients: &AwsClients, plan: &Plan) {
    simulate_outage(clients, plan, Outage::Flap).await.expect("flap simulated again");
}

async fn arm(ctx: &TriggerContext, plan: &Plan) {
    ctx.store.set_armed(&plan.name, true, "test", "armed for the test", false).await.expect("armed");
}

async fn status(ctx: &TriggerContext, plan: &Plan) -> PlanStatus {
    ctx.store.read_state(&plan.name).await.expect("plan state").state.status
}

/// The event as the alarm-trigger Lambda parses it.
fn alarm_event(event: &serde_json::Value) -> AlarmStateChange {
    parse_input(event.clone(), "alarm event").expect("a well-formed alarm event")
}

async fn deliver(ctx: &TriggerContext, event: &serde_json::Value) -> TriggerOutcome {
    handle_alarm_event(ctx, alarm_event(event)).await.expect("the trigger handles the event")
}

/// A game-day request as the game-day Lambda handles it: parsed, then started.
async fn game_day(ctx: &TriggerContext, request: serde_json::Value) -> Result<GameDayOutcome, DrError> {
    handle_game_day(ctx, parse_input(request, "game-day request")?).await
}

/// An event for the same alarm, about a later move to ALARM (a new incident).
fn later_incident(event: &serde_json::Value, later_by: Duration) -> serde_json::Value {
    let alarm = event["detail"]["alarmName"].as_str().expect("alarm name");
    let at = time::after(time::before(time::now(), Duration::from_secs(400)), later_by);
    alarm_state_change_event(alarm, "hc", "ALARM", "OK", at, "Threshold Crossed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_incident_starts_exactly_one_failover_even_when_delivered_50_times_at_once() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, None).await;

    let mut deliveries = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let (ctx, event) = (ctx.clone(), alarm_event(&event));
        deliveries.spawn(async move { handle_alarm_event(&ctx, event).await });
    }
    let mut decisions = Vec::new();
    while let Some(joined) = deliveries.join_next().await {
        decisions.push(joined.expect("delivery task").expect("delivery handled").decision);
    }
    let started = decisions.iter().filter(|d| **d == Decision::Started).count();
    assert_eq!(started, 1, "{decisions:?}");
    assert!(decisions.iter().all(|d| matches!(d, Decision::Started | Decision::AlreadyHandled)), "{decisions:?}");
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.len(), 1, "{executions:?}");
    assert_eq!(status(&ctx, &plan).await, PlanStatus::FailingOver);

    // A later delivery of the same event: the run is already there, nothing new starts.
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::AlreadyHandled);
    // A second incident while the plan is failing over starts nothing.
    let second = later_incident(&event, Duration::from_secs(60));
    assert_eq!(deliver(&ctx, &second).await.decision, Decision::NotArmed);
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
}

#[tokio::test]
async fn the_triggered_run_fails_over_reports_the_incident_and_leaves_the_plan_failed_over() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, None).await;
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");

    let executions = recorded_executions(&clients, &plan).await;
    let (name, input) = executions.first().expect("one execution");
    let execution = run_failover(input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(&report.head.run.id, name);
    let incident = report.head.run.incident.as_ref().expect("the report carries the incident");
    assert_eq!(Some(incident.alarm.as_str()), event["detail"]["alarmName"].as_str());
    assert!(incident.evidence.iter().any(|e| e.contains("HealthCheckStatus unhealthy in all")), "{incident:?}");
    assert_eq!(report.head.run.triggered_at, incident.alarm_at, "the RTO clock starts at detection");
    assert_eq!(status(&ctx, &plan).await, PlanStatus::FailedOver);

    // Failed over: a new incident starts nothing until an operator re-arms (no ping-pong) ...
    let second = later_incident(&event, Duration::from_secs(60));
    assert_eq!(deliver(&ctx, &second).await.decision, Decision::NotArmed);
    // ... re-armed while Ireland is primary, a Paris alarm still starts nothing: no plan allows
    // an automatic move to Paris (failback is planned, by an operator) ...
    arm(&ctx, &plan).await;
    let third = deliver(&ctx, &later_incident(&event, Duration::from_secs(120))).await;
    assert_eq!(third.decision, Decision::NotArmed);
    assert!(third.detail.contains("eu-west-1 is primary"), "{third:?}");
    // ... and once failed back (the plan state as a failback's report leaves it), the next
    // automatic run still waits for min_seconds_between_runs.
    let read = ctx.store.read_state(&plan.name).await.expect("state");
    let back = PlanState { primary_region: Some(plan.primary_region.clone()), ..read.state.clone() };
    assert_eq!(ctx.store.write_state(&read, &back).await.expect("written"), WriteOutcome::Won);
    let fourth = later_incident(&event, Duration::from_secs(180));
    assert_eq!(deliver(&ctx, &fourth).await.decision, Decision::TooSoon);
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
}

#[tokio::test]
async fn flaps_ok_unknown_stale_and_malformed_events_start_nothing_and_change_nothing() {
    let (plan, clients, ctx, flap) = armed_outage(Outage::Flap, None).await;
    let alarm = flap["detail"]["alarmName"].as_str().expect("alarm").to_string();
    let at = time::before(time::now(), Duration::from_secs(600));
    let ok = alarm_state_change_event(&alarm, "hc", "OK", "ALARM", at, "Threshold Crossed");
    let insufficient = alarm_state_change_event(&alarm, "hc", "INSUFFICIENT_DATA", "OK", at, "no data");
    let unknown = alarm_state_change_event("someone-elses-alarm", "hc", "ALARM", "OK", at, "Threshold Crossed");
    let two_hours_ago = time::before(time::now(), Duration::from_secs(7200));
    let stale = alarm_state_change_event(&alarm, "hc", "ALARM", "OK", two_hours_ago, "Threshold Crossed");
    let mut other_region = alarm_state_change_event(&alarm, "hc", "ALARM", "OK", at, "Threshold Crossed");
    other_region["region"] = "eu-west-1".into();
    let mark = clients.calls.mark();

    assert_eq!(deliver(&ctx, &flap).await.decision, Decision::Flap);
    assert_eq!(deliver(&ctx, &ok).await.decision, Decision::Ignored);
    assert_eq!(deliver(&ctx, &insufficient).await.decision, Decision::Ignored);
    assert_eq!(deliver(&ctx, &unknown).await.decision, Decision::UnknownAlarm);
    assert_eq!(deliver(&ctx, &stale).await.decision, Decision::Stale);
    assert_eq!(deliver(&ctx, &other_region).await.decision, Decision::UnknownAlarm);
    for malformed in [serde_json::json!({"detail-type": "CloudWatch Alarm State Change"}), serde_json::json!([1, 2])] {
        let err = match parse_input::<AlarmStateChange>(malformed, "alarm event") {
            Err(err) => err,
            Ok(event) => handle_alarm_event(&ctx, event).await.expect_err("malformed"),
        };
        assert_eq!(err.name(), "InvalidInput");
    }

    // Nothing changed: the only writes count the decisions (the flap's).
    let mutating: Vec<_> = clients.calls.since(mark).into_iter().filter(|c| c.is_mutating()).collect();
    assert!(mutating.iter().all(|c| c.operation == "PutMetricData"), "{mutating:?}");
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
}

/// An alarm event forged by someone allowed to invoke the function: another account in the
/// event, or the alarm's ARN in another account or region, or no ARN at all.
#[tokio::test]
async fn an_event_from_another_account_is_refused_by_name_before_any_call() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, None).await;
    let alarm = event["detail"]["alarmName"].as_str().expect("alarm").to_string();
    let mut other_account = event.clone();
    other_account["account"] = "999999999999".into();
    let mut arn_in_other_account = event.clone();
    arn_in_other_account["resources"] =
        serde_json::json!([format!("arn:aws:cloudwatch:us-east-1:999999999999:alarm:{alarm}")]);
    let mut arn_in_other_region = event.clone();
    arn_in_other_region["resources"] =
        serde_json::json!([format!("arn:aws:cloudwatch:eu-west-3:123456789012:alarm:{alarm}")]);
    let mut arn_of_other_alarm = event.clone();
    arn_of_other_alarm["resources"] = serde_json::json!(["arn:aws:cloudwatch:us-east-1:123456789012:alarm:another"]);
    let mut no_account = event.clone();
    no_account.as_object_mut().expect("an object").remove("account");
    let mut no_resources = event.clone();
    no_resources.as_object_mut().expect("an object").remove("resources");
    let mark = clients.calls.mark();

    for forged in
        [other_account, arn_in_other_account, arn_in_other_region, arn_of_other_alarm, no_account, no_resources]
    {
        let refused = handle_alarm_event(&ctx, alarm_event(&forged)).await.expect_err("a forged event is refused");
        assert_eq!(refused.name(), "ForeignEvent", "{refused}");
    }
    assert!(clients.calls.since(mark).is_empty(), "{:?}", clients.calls.since(mark));
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
    // The genuine event still starts the run.
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::Started);
}

#[tokio::test]
async fn a_plan_that_is_not_armed_is_never_failed_over_automatically_and_re_arming_works() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage simulated");
    let mark = clients.calls.mark();

    // Never armed: published plans start disarmed.
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::NotArmed);
    arm(&ctx, &plan).await;
    ctx.store.set_armed(&plan.name, false, "test", "maintenance", false).await.expect("disarmed");
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::NotArmed);
    let writes: Vec<_> = clients.calls.since(mark).into_iter().filter(|c| c.is_mutating()).collect();
    assert!(
        writes.iter().all(|c| ["PutObject", "PutMetricData"].contains(&c.operation.as_str())),
        "only the operator's state writes and the decisions' count: {writes:?}"
    );
    assert!(recorded_executions(&clients, &plan).await.is_empty());

    arm(&ctx, &plan).await;
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
    // An operator cannot re-arm a plan a run holds without --force.
    let busy = ctx.store.set_armed(&plan.name, true, "test", "oops", false).await;
    assert!(matches!(busy, Err(DrError::PlanBusy { .. })), "{busy:?}");
}

#[tokio::test]
async fn a_dry_run_makes_no_mutating_call_and_reports_what_it_would_do() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    let before = check_plan(&clients, &plan, Scope::Full).await;
    assert!(before.is_ready(), "{before:#?}");

    let request = serde_json::json!({
        "plan": plan.name, "mode": "dry-run", "requested_by": "alice", "reason": "quarterly game day",
    });
    let started = game_day(&ctx, request).await.expect("dry run started");
    let executions = recorded_executions(&clients, &plan).await;
    let (_, input) = executions.iter().find(|(name, _)| *name == started.run_id).expect("recorded");
    let execution = run_failover(input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");

    assert_eq!(report.head.status, RunStatus::DryRunCompleted);
    assert_eq!(report.mutating_calls, 0, "{:#?}", report.steps);
    let would: Vec<&str> =
        report.timeline.iter().filter(|e| e.outcome == Outcome::WouldChange).map(|e| e.phase.as_str()).collect();
    assert_eq!(
        would,
        [
            "fence the writer and barrier",
            "promote replica",
            "start standby EC2",
            "scale Auto Scaling group",
            "flip DNS"
        ],
        "{:#?}",
        report.timeline
    );
    assert!(
        report.timeline.iter().all(|e| e.detail.contains("would") || e.outcome == Outcome::Checked),
        "{:#?}",
        report.timeline
    );
    assert_eq!(report.achieved.rto_seconds, None, "a dry run measures no recovery");
    assert_eq!(report.head.run.requested_by.as_ref().map(|r| r.by.as_str()), Some("alice"));
    // The estate is exactly as it was: every check still passes, with the same details.
    let after = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(estate_rows(&before), estate_rows(&after));
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Disarmed, "a dry run does not take the plan");
}

#[tokio::test]
async fn a_drill_of_a_production_plan_needs_its_name_as_confirmation() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    let mark = clients.calls.mark();
    let drill = |confirm: Option<&str>| {
        serde_json::json!({
            "plan": plan.name, "mode": "drill", "requested_by": "bob", "reason": "annual drill", "confirm": confirm,
        })
    };
    for confirm in [None, Some("yes"), Some("paris-ireland-prod")] {
        let err = game_day(&ctx, drill(confirm)).await.expect_err("refused");
        assert_eq!(err.name(), "DrillNotConfirmed", "{err}");
    }
    let missing_reason =
        serde_json::json!({ "plan": plan.name, "mode": "drill", "requested_by": "bob", "reason": " " });
    assert_eq!(game_day(&ctx, missing_reason).await.map_err(|e| e.name()).err(), Some("InvalidInput"));
    let mutating: Vec<_> = clients.calls.since(mark).into_iter().filter(|c| c.is_mutating()).collect();
    assert!(mutating.is_empty(), "{mutating:?}");
    assert!(recorded_executions(&clients, &plan).await.is_empty());

    let started = game_day(&ctx, drill(Some(&plan.name))).await.expect("confirmed drill starts");
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
    assert_eq!(status(&ctx, &plan).await, PlanStatus::FailingOver);
    // The drill holds the plan: neither another drill nor an alarm starts anything.
    let again = game_day(&ctx, drill(Some(&plan.name))).await.expect_err("busy");
    assert_eq!(again.name(), "PlanBusy");
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage simulated");
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::NotArmed);
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1, "only the drill {}", started.run_id);
}

/// A primary endpoint that still answers: one HTTP 200 per connection, on loopback.
async fn answering_primary() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0_u8; 1024];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok").await;
        }
    });
    format!("http://{address}/health")
}

#[tokio::test]
async fn the_probe_must_agree_a_primary_that_still_answers_starts_nothing() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, Some(answering_primary().await)).await;
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Unconfirmed, "{outcome:?}");
    assert!(outcome.detail.contains("answered HTTP 200"), "{outcome:?}");
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
}

#[tokio::test]
async fn a_probe_that_cannot_reach_the_primary_adds_to_the_evidence() {
    // A port nobody listens on: connection refused, as from Ireland to a Paris that is down.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("address");
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, Some(format!("http://{closed}/health"))).await;
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    let executions = recorded_executions(&clients, &plan).await;
    let evidence = &executions[0].1["run"]["incident"]["evidence"];
    assert!(evidence.to_string().contains("failed"), "{evidence}");
}

/// How many decisions of this kind the trigger counted for the plan (its metric).
async fn decisions_counted(clients: &AwsClients, plan: &Plan, decision: Decision) -> f64 {
    let metric = per_minute(
        DECISION_NAMESPACE,
        DECISION_METRIC,
        &[("Plan", plan.name.as_str()), ("Decision", decision.name())],
        "Sum",
    );
    let since = time::before(time::now(), Duration::from_secs(600));
    let points = datapoints(&clients.dr.cloudwatch, metric, since, time::after(time::now(), Duration::from_secs(60)))
        .await
        .expect("GetMetricData");
    points.iter().map(|(_, count)| count).sum()
}

#[tokio::test]
async fn a_brownout_judged_a_flap_is_confirmed_by_the_schedule_and_started_once() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Brownout, None).await;
    // The event's window holds the one healthy minute: a flap. The alarm stays in ALARM.
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::Flap);
    assert!(recorded_executions(&clients, &plan).await.is_empty());

    // The schedule judges the last whole window: unhealthy throughout.
    let outcomes = reevaluate(&ctx).await.expect("re-evaluated");
    assert_eq!(outcomes.iter().map(|o| o.decision).collect::<Vec<_>>(), [Decision::Started], "{outcomes:#?}");
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.len(), 1);
    // The same incident as the event's: the run is named after the alarm's move to ALARM.
    let alarm_at = alarm_event(&event).detail.state.map(|s| s.timestamp).expect("state");
    assert_eq!(executions[0].0, incident_run_id(&plan, alarm_at));
    assert_eq!(status(&ctx, &plan).await, PlanStatus::FailingOver);

    // Every later tick sees the incident handled: nothing starts twice.
    let again = reevaluate(&ctx).await.expect("re-evaluated");
    assert_eq!(again.iter().map(|o| o.decision).collect::<Vec<_>>(), [Decision::AlreadyHandled]);
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
    assert!(decisions_counted(&clients, &plan, Decision::Flap).await >= 1.0);
    assert!(decisions_counted(&clients, &plan, Decision::Started).await >= 1.0);
}

#[tokio::test]
async fn the_schedule_judges_a_flapping_alarm_again_and_leaves_a_cleared_one_alone() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Flap, None).await;
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::Flap);
    // Still in ALARM, and the last whole window still has the healthy minute: a flap again.
    still_flapping(&clients, &plan).await;
    let outcomes = reevaluate(&ctx).await.expect("re-evaluated");
    assert_eq!(outcomes.iter().map(|o| o.decision).collect::<Vec<_>>(), [Decision::Flap], "{outcomes:#?}");
    assert!(decisions_counted(&clients, &plan, Decision::Flap).await >= 2.0);

    // Paris answers again: the alarm clears, and the schedule has nothing to judge. (CloudWatch
    // moves it to OK once the healthy minutes fill its evaluation periods, a few minutes later;
    // the recovery holds the alarm in the OK state it set, as it will be then.)
    simulate_recovery(&clients, &plan).await.expect("recovered");
    assert!(reevaluate(&ctx).await.expect("re-evaluated").is_empty());
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
}

#[tokio::test]
async fn a_window_not_settled_within_the_invocations_wait_is_left_pending_for_the_schedule() {
    let (plan, clients, mut ctx, event) = armed_outage(Outage::Sustained, None).await;
    ctx.confirmation_wait = Duration::from_secs(1);
    // The alarm moved just now: its window's data cannot have landed within a second.
    let now = later_incident(&event, Duration::from_secs(400));
    let outcome = deliver(&ctx, &now).await;
    assert_eq!(outcome.decision, Decision::Pending, "{outcome:?}");
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
    assert!(decisions_counted(&clients, &plan, Decision::Pending).await >= 1.0);
}

/// The plan written where drctl reads plans from.
fn plan_file(plan: &Plan) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", plan.name));
    std::fs::write(&path, toml::to_string(plan).expect("plan as TOML")).expect("plan file written");
    path
}

fn drctl_failover_start(plan: &std::path::Path, ctx: &TriggerContext, extra: &[&str]) -> std::process::Output {
    std::process::Command::new(workspace_binary("drctl"))
        .args(["failover", "start"])
        .arg(plan)
        .args(["--bucket", &ctx.store.reference().bucket, "--state-machine", ctx.starter.state_machine_arn()])
        .args(["--by", "sre@example.com", "--reason", "Paris database unreachable, alarm not confirmed"])
        .args(extra)
        .output()
        .expect("drctl runs")
}

#[tokio::test]
async fn a_manual_start_with_drctl_takes_the_plan_so_an_alarm_meanwhile_starts_nothing() {
    let (plan, clients, ctx, event) = armed_outage(Outage::Sustained, None).await;
    let file = plan_file(&plan);

    let started = drctl_failover_start(&file, &ctx, &[]);
    assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&started.stdout).expect("JSON answer");
    let run_id = answer["run_id"].as_str().expect("run id").to_string();
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!((state.status, state.run_id.as_deref()), (PlanStatus::FailingOver, Some(run_id.as_str())));
    let executions = recorded_executions(&clients, &plan).await;
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0].1["run"]["requested_by"]["by"], "sre@example.com");
    assert_eq!(executions[0].1["run"]["plan_state"]["bucket"], ctx.store.reference().bucket);

    // The alarm now: the plan is held, nothing else starts.
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::NotArmed);
    // A second operator (another run): refused by name, exit 2.
    let second = drctl_failover_start(&file, &ctx, &["--run-id", "another-operators-run"]);
    assert_eq!(second.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&second.stderr).contains("PlanBusy"), "{second:?}");
    // The same start again (its answer was lost): the same run, not a second one.
    let retried = drctl_failover_start(&file, &ctx, &["--run-id", &run_id]);
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
    let _ = std::fs::remove_file(file);
}

/// A flap is a flap whatever second of the minute it is judged at (the local alarm model
/// evaluates complete periods only, as CloudWatch does, so the unfinished minute is never taken
/// for missing data): ten in a row, each starting 7 s later in the minute than the one before,
/// each judged a flap on the event and on the schedule, and DNS never leaves Paris.
#[tokio::test]
async fn a_flap_is_judged_a_flap_ten_times_in_a_row_at_any_second() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    arm(&ctx, &plan).await;
    let mut seconds = Vec::new();
    for round in 0..10 {
        if round > 0 {
            tokio::time::sleep(Duration::from_secs(7)).await;
        }
        seconds.push(time::epoch_seconds(time::now()).rem_euclid(60));
        let event = simulate_outage(&clients, &plan, Outage::Flap).await.expect("flap simulated");
        assert_eq!(deliver(&ctx, &event).await.decision, Decision::Flap, "round {round}");
        let outcomes = reevaluate(&ctx).await.expect("re-evaluated");
        assert_eq!(outcomes.iter().map(|o| o.decision).collect::<Vec<_>>(), [Decision::Flap], "round {round}");
        let answer =
            clients.dns.answer(&plan.dns.records[0].record, &plan.dns.records[0].record_type).await.expect("DNS");
        assert_eq!(answer, std::slice::from_ref(&plan.dns.records[0].primary.value), "round {round}");
        assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
    }
    assert!(recorded_executions(&clients, &plan).await.is_empty(), "no run started (seconds {seconds:?})");
}

/// The schedule never goes blind silently: an alarm it cannot judge (here one that watches no
/// health check) is counted `failed` and fails the invocation (Lambda retries it, then the failure
/// queue; the template pages on the count), while the plan's other alarm is still judged.
#[tokio::test]
async fn a_re_evaluation_error_fails_the_invocation_and_is_counted() {
    let (mut plan, clients) = seeded_estate().await;
    simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage simulated");
    let misconfigured = format!("misconfigured-{}", dr_tests::estate_suffix(&plan));
    clients
        .route53_metrics
        .put_metric_alarm()
        .alarm_name(&misconfigured)
        .namespace("AWS/Route53")
        .metric_name("HealthCheckPercentageHealthy")
        .statistic(aws_sdk_cloudwatch::types::Statistic::Minimum)
        .period(60)
        .evaluation_periods(1)
        .threshold(50.0)
        .comparison_operator(aws_sdk_cloudwatch::types::ComparisonOperator::LessThanThreshold)
        .send()
        .await
        .expect("alarm created");
    let alarm_state = clients.route53_metrics.set_alarm_state().alarm_name(&misconfigured);
    let alarm_state = alarm_state.state_value(aws_sdk_cloudwatch::types::StateValue::Alarm).state_reason("test");
    alarm_state.send().await.expect("in ALARM");
    hold_alarm(&clients, "us-east-1", &misconfigured, true).await.expect("held in ALARM");
    // Judged first: its failure must not keep the plan's real alarm from being judged.
    if let Some(trigger) = plan.trigger.as_mut() {
        trigger.alarms.insert(0, misconfigured.clone());
    }
    let ctx = trigger_context(&plan, &clients).await;
    arm(&ctx, &plan).await;

    let err = reevaluate(&ctx).await.expect_err("the invocation fails");
    assert_eq!(err.name(), "InvalidInput", "{err}");
    assert!(err.to_string().contains(&misconfigured), "{err}");
    assert!(decisions_counted(&clients, &plan, Decision::Failed).await >= 1.0);
    // The well-configured alarm was judged all the same: the outage is confirmed, the run started.
    assert!(decisions_counted(&clients, &plan, Decision::Started).await >= 1.0);
    assert_eq!(recorded_executions(&clients, &plan).await.len(), 1);
}

/// A flap's undo puts back only what the preparation started: an operator who had started a
/// standby instance and raised the DR group by hand (a manual failover getting ready) finds both
/// as they left them; the instance the preparation started is stopped again.
#[tokio::test]
async fn a_flaps_undo_leaves_the_compute_an_operator_started_by_hand() {
    let (plan, clients, ctx, flap) =
        armed_outage_with(Outage::Flap, |trigger| trigger.prepare_while_confirming = true).await;
    let standby = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("standby instances");
    assert_eq!(standby.len(), 2, "{standby:?}");
    let (by_hand, left) = (standby[0].id.clone(), standby[1].id.clone());
    clients.dr.ec2.start_instances().instance_ids(&by_hand).send().await.expect("started by hand");
    let raised_by_hand = (1, 1, 3);
    set_capacity(&clients.dr.autoscaling, &dr_tests::dr_group(&plan).group, raised_by_hand)
        .await
        .expect("raised by hand");

    let mark = clients.calls.mark();
    let outcome = deliver(&ctx, &flap).await;
    assert_eq!(outcome.decision, Decision::Flap, "{outcome:?}");
    assert!(outcome.detail.contains("preparation undone"), "{outcome:?}");
    let mut mutations = mutations_since(&clients, mark);
    mutations.sort();
    assert_eq!(
        mutations,
        [
            "CreateOrUpdateTags",
            "CreateTags",
            "DeleteTags",
            "DeleteTags",
            "PutMetricData",
            "StartInstances",
            "StopInstances",
            "UpdateAutoScalingGroup",
            "UpdateAutoScalingGroup"
        ]
    );

    let after = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("standby instances");
    let state_of = |id: &str| after.iter().find(|i| i.id == id).map(|i| i.state.clone());
    assert_eq!(state_of(&by_hand), Some(InstanceStateName::Running), "the operator's instance still runs");
    assert_eq!(state_of(&left), Some(InstanceStateName::Stopped), "the prepared one is stopped again");
    assert!(after.iter().all(|i| i.tag(PREPARED_BY_TAG).is_none()), "no mark left: {after:?}");
    let group = describe_auto_scaling_group(&clients.dr.autoscaling, &dr_tests::dr_group(&plan).group)
        .await
        .expect("group")
        .expect("the DR group");
    let capacity =
        (group.min_size().unwrap_or(-1), group.desired_capacity().unwrap_or(-1), group.max_size().unwrap_or(-1));
    assert_eq!(capacity, raised_by_hand, "the operator's capacity, not the standby size");
    assert!(group.tags().iter().all(|t| t.key() != Some(PREPARED_CAPACITY_TAG)), "no mark left");
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
}

/// The mutating operations the trigger made since `mark`, in order.
fn mutations_since(clients: &AwsClients, mark: usize) -> Vec<String> {
    clients.calls.since(mark).into_iter().filter(|c| c.is_mutating()).map(|c| c.operation.clone()).collect()
}

/// `trigger.prepare_while_confirming` on an estate with ECS services: each service is marked with
/// its desired count, then raised with the group; the run finds it raised. A flap gives each
/// service back the count it had and drops its mark.
#[tokio::test]
async fn preparing_while_confirming_raises_the_ecs_services_and_a_flap_gives_each_its_count_back() {
    let prepares = |trigger: &mut dr_core::plan::Trigger| trigger.prepare_while_confirming = true;
    let (plan, clients, ctx, flap) = armed_estate_outage(dr_tests::with_ecs_services, Outage::Flap, prepares).await;
    let desired = |counts: Vec<(i32, i32)>| counts.into_iter().map(|(desired, _)| desired).collect::<Vec<_>>();
    let standby: Vec<i32> = plan.ecs_services.iter().map(|s| i32::from(s.standby_count)).collect();
    assert_eq!(desired(crate::ecs::counts(&clients, &plan).await), standby);
    let mark = clients.calls.mark();
    let outcome = deliver(&ctx, &flap).await;
    assert_eq!(outcome.decision, Decision::Flap, "{outcome:?}");
    assert!(outcome.detail.contains("preparation undone") && outcome.detail.contains("back to desired"), "{outcome:?}");
    let mutations = mutations_since(&clients, mark);
    let positions =
        |op: &str| mutations.iter().enumerate().filter(|(_, m)| *m == op).map(|(i, _)| i).collect::<Vec<_>>();
    let (tagged, updated, untagged) =
        (positions("TagResource"), positions("UpdateService"), positions("UntagResource"));
    let services = plan.ecs_services.len();
    assert_eq!((tagged.len(), untagged.len()), (services, services), "each marked, each mark dropped: {mutations:?}");
    assert_eq!(updated.len(), 2 * services, "each raised, each given back: {mutations:?}");
    assert!(tagged.iter().max() < updated.iter().min(), "marked before any is raised: {mutations:?}");
    assert_eq!(desired(crate::ecs::counts(&clients, &plan).await), standby, "each back to the count it had");
    let described =
        dr_core::aws::lookup::describe_ecs_services(&clients.dr.ecs, &plan.ecs_services).await.expect("described");
    for found in described {
        let dr_core::aws::lookup::EcsServiceFound::Found(status) = found else { panic!("a service missing") };
        let arn = status.arn.expect("an ARN");
        let tags = clients.dr.ecs.list_tags_for_resource().resource_arn(&arn).send().await.expect("tags");
        assert!(tags.tags().iter().all(|t| t.key() != Some(PREPARED_DESIRED_TAG)), "{arn}: {tags:?}");
    }

    // Confirmed: the services are raised before the plan is taken, and the run finds them so.
    let (plan, clients, ctx, event) =
        armed_estate_outage(dr_tests::with_ecs_services, Outage::Sustained, prepares).await;
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    let failover: Vec<i32> = plan.ecs_services.iter().map(|s| i32::from(s.failover_count)).collect();
    assert_eq!(desired(crate::ecs::counts(&clients, &plan).await), failover, "{outcome:?}");
    let executions = recorded_executions(&clients, &plan).await;
    let (_, input) = executions.first().expect("one execution");
    let execution = run_failover(input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let raised = report.steps.iter().find(|s| s.step == "scale-asg").expect("scale-asg ran");
    assert_eq!(raised.outcome, Outcome::AlreadyDone, "{raised:#?}");
}

/// `trigger.prepare_while_confirming`: the standby instances are started and the DR group raised
/// when the alarm arrives, before the confirmation; the run then finds them done. A flap puts
/// them back: the estate's readiness table is as before, the plan still armed.
#[tokio::test]
async fn preparing_while_confirming_starts_the_compute_early_and_a_flap_puts_it_back() {
    // Confirmed: the compute is up when the run starts, and the run's own steps find it so.
    let (plan, clients, ctx, event) =
        armed_outage_with(Outage::Sustained, |trigger| trigger.prepare_while_confirming = true).await;
    let mark = clients.calls.mark();
    let outcome = deliver(&ctx, &event).await;
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    assert!(outcome.detail.contains("prepared while confirming: started"), "{outcome:?}");
    let mutations = mutations_since(&clients, mark);
    let first = |op: &str| mutations.iter().position(|m| m == op).unwrap_or_else(|| panic!("{op} in {mutations:?}"));
    assert!(first("StartInstances") < first("PutObject"), "started before the plan was taken: {mutations:?}");
    assert!(first("UpdateAutoScalingGroup") < first("PutObject"), "{mutations:?}");
    let executions = recorded_executions(&clients, &plan).await;
    let (_, input) = executions.first().expect("one execution");
    let execution = run_failover(input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    for step in ["start-standby", "scale-asg"] {
        let record = report.steps.iter().find(|s| s.step == step).unwrap_or_else(|| panic!("{step} ran"));
        assert_eq!(record.outcome, Outcome::AlreadyDone, "{record:#?}");
    }

    // A flap: prepared, then put back; nothing else changed.
    let (plan, clients, ctx, flap) =
        armed_outage_with(Outage::Flap, |trigger| trigger.prepare_while_confirming = true).await;
    let before = check_plan(&clients, &plan, Scope::Full).await;
    assert!(before.is_ready(), "{before:#?}");
    let mark = clients.calls.mark();
    let outcome = deliver(&ctx, &flap).await;
    assert_eq!(outcome.decision, Decision::Flap, "{outcome:?}");
    assert!(outcome.detail.contains("preparation undone"), "{outcome:?}");
    assert_eq!(
        mutations_since(&clients, mark),
        [
            "CreateTags",
            "StartInstances",
            "CreateOrUpdateTags",
            "UpdateAutoScalingGroup",
            "StopInstances",
            "UpdateAutoScalingGroup",
            "DeleteTags",
            "DeleteTags",
            "PutMetricData"
        ],
        "what it starts is marked first; the undo stops and lowers what is marked, then drops the marks"
    );
    let after = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(estate_rows(&before), estate_rows(&after));
    assert_eq!(status(&ctx, &plan).await, PlanStatus::Armed);
    assert!(recorded_executions(&clients, &plan).await.is_empty());
    // The schedule judges the alarm, still in ALARM, again: a flap again, and it prepares nothing
    // (its window is over: nothing to wait for); the compute is found on standby.
    still_flapping(&clients, &plan).await;
    let mark = clients.calls.mark();
    let outcomes = reevaluate(&ctx).await.expect("re-evaluated");
    assert_eq!(outcomes.iter().map(|o| o.decision).collect::<Vec<_>>(), [Decision::Flap], "{outcomes:#?}");
    assert!(outcomes[0].detail.contains("compute on standby"), "{outcomes:#?}");
    assert_eq!(mutations_since(&clients, mark), ["PutMetricData"]);

    // A plan that is not armed is not prepared: nothing is started.
    let (plan, clients, ctx, event) =
        armed_outage_with(Outage::Sustained, |trigger| trigger.prepare_while_confirming = true).await;
    ctx.store.set_armed(&plan.name, false, "test", "maintenance", false).await.expect("disarmed");
    let mark = clients.calls.mark();
    assert_eq!(deliver(&ctx, &event).await.decision, Decision::NotArmed);
    assert!(mutations_since(&clients, mark).iter().all(|m| m == "PutMetricData"));
}
