//! The round-trip game day (issue 14) on real PostgreSQL: the game-day Lambda's logic starts
//! `statemachines/round-trip.asl.json` (recorded by the emulator's Step Functions), which the ASL
//! engine runs with the real Lambdas: a planned failover, the verification window, reprotect, a
//! planned failback, reprotect of the original direction, each leg an execution of its own
//! machine (startExecution.sync, run in the same engine), then one report of the whole. An
//! application keeps writing to whichever database takes writes; at the end the estate is as
//! before, re-armed, and every acknowledged row is in Paris and in Ireland. A round trip whose
//! failover is refused stops there, reports what ran, and changes nothing; one that cannot start
//! is refused before any change.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dr_core::DrError;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::describe_db_instance;
use dr_core::game_day::{GameDayMode, GameDayOutcome, GameDayRequest, handle_game_day};
use dr_core::plan::Direction;
use dr_core::readiness::{Readiness, Scope, check_plan};
use dr_core::run::RunInfo;
use dr_core::run::Starter;
use dr_core::runbook::round_trip::{Leg, LegStatus, RoundTripReport, RoundTripState, prepare_leg};
use dr_core::store::PlanStatus;
use dr_core::trigger::TriggerContext;
use dr_emulator::estate::publish_replica_lag;
use dr_emulator::executions::execution_input;
use dr_emulator::postgres::psql;
use dr_tests::{
    Execution, backed_estate, local_substitutions, read_report, recorded_executions, register_stand_in,
    run_state_machine_waiting, seeded_estate, trigger_context, unique_suffix,
};

/// The triggers' context with a (stand-in) round-trip machine registered beside the failover one.
pub(crate) async fn round_trip_context(plan: &dr_core::Plan, clients: &AwsClients) -> TriggerContext {
    let mut ctx = trigger_context(plan, clients).await;
    let bucket = ctx.store.reference().bucket;
    let arn = register_stand_in(clients, plan, &bucket, &format!("{}-round-trip", plan.name)).await;
    ctx.round_trip = Some(Starter::new(clients.dr.sfn.clone(), arn));
    ctx
}

/// [`round_trip_context`] with the plan armed, as a game day finds it.
pub(crate) async fn armed_round_trip_context(plan: &dr_core::Plan, clients: &AwsClients) -> TriggerContext {
    let ctx = round_trip_context(plan, clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed before the game day", false).await.expect("armed");
    ctx
}

pub(crate) fn request(plan: &str) -> GameDayRequest {
    GameDayRequest {
        plan: plan.to_string(),
        mode: GameDayMode::Drill,
        requested_by: "alice@example.com".into(),
        reason: "quarterly round-trip game day".into(),
        confirm: Some(plan.to_string()),
        direction: Direction::ToDr,
        round_trip: true,
        verification_minutes: Some(1),
    }
}

/// Runs the round trip the game day started (its input, as Step Functions has it) in the ASL
/// engine, its legs too, every Wait lasting `wait`.
pub(crate) async fn run_started_round_trip(
    clients: &AwsClients,
    outcome: &GameDayOutcome,
    wait: Duration,
) -> Execution {
    let input: serde_json::Value =
        serde_json::from_str(&execution_input(clients, &outcome.execution_arn).await.expect("recorded input"))
            .expect("input is JSON");
    run_state_machine_waiting("round-trip.asl.json", &local_substitutions("round-trip.local.json"), &input, wait)
}

fn table(readiness: &Readiness) -> Vec<(String, String, Option<String>)> {
    readiness
        .rows
        .iter()
        .map(|row| (row.check.label().to_string(), row.resource.clone(), row.finding.map(|f| f.name().to_string())))
        .collect()
}

/// The application of a round trip, writing throughout: its `orders` table created in the
/// primary, then [`application`] running.
pub(crate) struct Writer {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Vec<u64>>,
}

impl Writer {
    pub(crate) async fn start(
        clients: &AwsClients,
        plan: &dr_core::Plan,
        pair: &dr_emulator::postgres::Pair,
    ) -> Writer {
        pair.sql(&pair.primary, "CREATE TABLE orders (n bigint PRIMARY KEY)").expect("table");
        let stop = Arc::new(AtomicBool::new(false));
        let handle = application(clients.clone(), plan.clone(), Arc::clone(&stop));
        tokio::time::sleep(Duration::from_millis(500)).await;
        Writer { stop, handle }
    }

    /// Stops it: the numbers it had acknowledged.
    pub(crate) async fn stop(self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.await.expect("the application")
    }
}

/// The application: inserts numbered rows, one session each, into whichever of the plan's two
/// database instances takes writes (as it would follow DNS and its connection string), until
/// told to stop. Returns the numbers acknowledged.
fn application(clients: AwsClients, plan: dr_core::Plan, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut acknowledged = Vec::new();
        let mut n = 1_u64;
        while !stop.load(Ordering::Relaxed) {
            for (rds, instance) in [
                (&clients.primary.rds, &plan.databases[0].primary_instance),
                (&clients.dr.rds, &plan.databases[0].replica_instance),
            ] {
                let Ok(Some(db)) = describe_db_instance(rds, instance).await else { continue };
                let Some(port) = db.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()) else {
                    continue;
                };
                let insert = format!("INSERT INTO orders VALUES ({n})");
                if tokio::task::spawn_blocking(move || psql(port, &insert)).await.is_ok_and(|done| done.is_ok()) {
                    acknowledged.push(n);
                    n += 1;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        acknowledged
    })
}

/// A round-trip game day of `plan` (armed first) with its application writing throughout: the
/// game day's outcome, the round trip's report (every leg succeeded) and the rows acknowledged.
pub(crate) async fn round_trip_with_writer(
    clients: &AwsClients,
    plan: &dr_core::Plan,
    pair: &dr_emulator::postgres::Pair,
) -> (GameDayOutcome, RoundTripReport, Vec<u64>) {
    let ctx = armed_round_trip_context(plan, clients).await;
    let writer = Writer::start(clients, plan, pair).await;
    let outcome = handle_game_day(&ctx, request(&plan.name)).await.expect("round trip started");
    let execution = run_started_round_trip(clients, &outcome, Duration::from_millis(300)).await;
    let acknowledged = writer.stop().await;
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RoundTripReport =
        serde_json::from_value(execution.output["report"].clone()).expect("the round-trip report");
    assert!(report.legs.iter().all(|leg| leg.status == LegStatus::Succeeded), "{report:#?}");
    assert!(acknowledged.len() > 10, "the application wrote throughout: {}", acknowledged.len());
    (outcome, report, acknowledged)
}

/// Every acknowledged row is in both instances of the plan's (first) database, after a round
/// trip: none lost either way.
pub(crate) async fn assert_no_row_lost(clients: &AwsClients, plan: &dr_core::Plan, acknowledged: &[u64]) {
    for (rds, instance) in [
        (&clients.primary.rds, &plan.databases[0].primary_instance),
        (&clients.dr.rds, &plan.databases[0].replica_instance),
    ] {
        let rows = rows_in(rds, instance).await;
        let lost: Vec<&u64> = acknowledged.iter().filter(|n| !rows.contains(n)).collect();
        assert!(lost.is_empty(), "acknowledged, missing in {instance}: {lost:?}");
    }
}

pub(crate) async fn rows_in(rds: &aws_sdk_rds::Client, instance: &str) -> Vec<u64> {
    let db = describe_db_instance(rds, instance).await.expect("describe").expect("instance");
    let port = db.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()).expect("a backed endpoint");
    psql(port, "SELECT n FROM orders ORDER BY n").expect("rows").lines().filter_map(|line| line.parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_trip_game_day_is_one_run_with_one_report_and_leaves_the_estate_as_before() {
    let (plan, clients, pair) = backed_estate("roundtrip").await;
    let before = check_plan(&clients, &plan, Scope::Full).await;
    assert!(before.is_ready(), "{before:#?}");
    let ctx = armed_round_trip_context(&plan, &clients).await;
    let writer = Writer::start(&clients, &plan, &pair).await;

    // The game day takes the plan for the failover leg before anything starts.
    let outcome = handle_game_day(&ctx, request(&plan.name)).await.expect("round trip started");
    assert!(outcome.run_id.starts_with(&format!("{}-roundtrip-", plan.name)), "{outcome:?}");
    let held = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(held.status, PlanStatus::FailingOver);
    assert_eq!(held.run_id, Some(format!("{}-failover", outcome.run_id)));

    let execution = run_started_round_trip(&clients, &outcome, Duration::from_millis(300)).await;
    let acknowledged = writer.stop().await;
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let legs: Vec<(&str, &str)> =
        execution.children.iter().map(|child| (child.machine.as_str(), child.status.as_str())).collect();
    assert_eq!(
        legs,
        [("failover", "SUCCEEDED"), ("reprotect", "SUCCEEDED"), ("failover", "SUCCEEDED"), ("reprotect", "SUCCEEDED")]
    );

    // One report of the whole: every leg, RTO and data loss per move, downtime, re-armed.
    let report: RoundTripReport =
        serde_json::from_value(execution.output["report"].clone()).expect("the round-trip report");
    assert_eq!(report.head.status, dr_core::run::RunStatus::Succeeded, "{report:#?}");
    assert!(report.legs.iter().all(|leg| leg.status == LegStatus::Succeeded), "{report:#?}");
    for leg in [Leg::Failover, Leg::Failback] {
        let summary = report.leg(leg).expect("a move");
        let achieved = summary.achieved.as_ref().expect("the move's own report");
        assert_eq!(achieved.rpo_seconds, Some(0.0), "{leg:?} proven by its barrier: {summary:#?}");
        assert_eq!(achieved.rto_met, Some(true), "{summary:#?}");
        assert!(summary.downtime_seconds.is_some_and(|s| s > 0.0), "{summary:#?}");
        assert!(summary.timeline.iter().any(|entry| entry.phase == "promote replica"), "{summary:#?}");
    }
    let reprotect = report.leg(Leg::Reprotect).expect("reprotect");
    assert_eq!(reprotect.timeline.len(), 2, "retire and replicate: {reprotect:#?}");
    assert!(report.dr_served_seconds.is_some_and(|s| s > 0.0), "{report:#?}");
    assert_eq!(report.data_lost_seconds, Some(0.0));
    assert!(report.plan_state.starts_with("armed again"), "{}", report.plan_state);
    assert!(report.final_state.iter().all(|row| row.is_ready()), "{:#?}", report.final_state);

    let markdown = String::from_utf8(read_report(&clients, &plan, &outcome.run_id, "report.md").await).expect("md");
    for wanted in [
        "# Round-trip game day report",
        "| failover RTO (trigger to DNS moved) | 14400 s |",
        "| failback RPO (data lost) | 3600 s | 0 s | met |",
        "| failback to Paris |",
        "**Downtime seen by users:**",
    ] {
        assert!(markdown.contains(wanted), "{wanted:?} in:\n{markdown}");
    }
    let svg = String::from_utf8(read_report(&clients, &plan, &outcome.run_id, "timeline.svg").await).expect("svg");
    for wanted in
        ["failover: promote replica", "Ireland serves alone", "failback: stand down", "reprotect-back: retire"]
    {
        assert!(svg.contains(wanted), "{wanted:?} in the timeline picture");
    }

    // The estate as before, armed again, Paris primary; every acknowledged row in both regions.
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!((state.status, state.primary_region.as_deref()), (PlanStatus::Armed, Some("eu-west-3")));
    let after = check_plan(&clients, &plan, Scope::Full).await;
    let failed: Vec<_> = after.rows.iter().filter(|row| row.finding.is_some()).map(|row| &row.detail).collect();
    assert_eq!(
        table(&after),
        table(&before),
        "the readiness table after the round trip is the one from before; what it found: {failed:?}"
    );
    let in_paris = rows_in(&clients.primary.rds, &plan.databases[0].primary_instance).await;
    let mut in_ireland = rows_in(&clients.dr.rds, &plan.databases[0].replica_instance).await;
    for _ in 0..50 {
        if acknowledged.iter().all(|n| in_ireland.contains(n)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        in_ireland = rows_in(&clients.dr.rds, &plan.databases[0].replica_instance).await;
    }
    let lost: Vec<&u64> = acknowledged.iter().filter(|n| !in_paris.contains(n) || !in_ireland.contains(n)).collect();
    eprintln!(
        "round trip in {:.1} s: {} rows acknowledged, {} in Paris, {} in Ireland, {} lost; downtime {:?} s",
        execution.wall_ms / 1000.0,
        acknowledged.len(),
        in_paris.len(),
        in_ireland.len(),
        lost.len(),
        report.downtime_seconds
    );
    assert!(acknowledged.len() > 10, "the application wrote throughout: {}", acknowledged.len());
    assert!(lost.is_empty(), "acknowledged, then missing: {lost:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_trip_that_cannot_start_is_refused_before_any_change() {
    let (plan, clients, _pair) = backed_estate("roundtrip-refused").await;
    let ctx = round_trip_context(&plan, &clients).await;
    let unchanged = ctx.store.read_state(&plan.name).await.expect("state").state;

    // Not a live failover drill, or a window longer than a day: InvalidInput.
    let dry = GameDayRequest { mode: GameDayMode::DryRun, ..request(&plan.name) };
    let back = GameDayRequest { direction: Direction::ToPrimary, ..request(&plan.name) };
    let long = GameDayRequest { verification_minutes: Some(24 * 60 + 1), ..request(&plan.name) };
    let window_alone = GameDayRequest { round_trip: false, ..request(&plan.name) };
    for bad in [dry, back, long, window_alone] {
        let refused = handle_game_day(&ctx, bad.clone()).await.expect_err("refused");
        assert!(matches!(refused, DrError::InvalidInput { .. }), "{bad:?}: {refused:?}");
    }

    // A plan another run holds: PlanBusy, and the round trip is not started.
    ctx.store.take_for_run(&plan, Direction::ToDr, "someone-else", "test", "an incident").await.expect("held");
    let refused = handle_game_day(&ctx, request(&plan.name)).await.expect_err("busy");
    assert!(matches!(refused, DrError::PlanBusy { .. }), "{refused:?}");

    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.run_id.as_deref(), Some("someone-else"), "the holder is unchanged");
    assert_ne!(unchanged.status, PlanStatus::FailingOver);
    assert!(recorded_executions(&clients, &plan).await.is_empty(), "no failover started");
    let round_trip =
        dr_tests::registered_machine(&clients, &format!("{}-round-trip", plan.name)).await.expect("registered");
    let started = clients.dr.sfn.list_executions().state_machine_arn(round_trip).send().await.expect("executions");
    assert!(started.executions().is_empty(), "no round trip started");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_trip_whose_failover_is_refused_stops_there_and_reports_what_ran() {
    let (plan, clients, pair) = backed_estate("roundtrip-stopped").await;
    let ctx = round_trip_context(&plan, &clients).await;
    // The Ireland replica reads two hours behind: the failover leg's RPO gate refuses it.
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 7200.0).await.expect("lag");
    let outcome = handle_game_day(&ctx, request(&plan.name)).await.expect("round trip started");
    let execution = run_started_round_trip(&clients, &outcome, Duration::ZERO).await;
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("States.TaskFailed"), "the failed leg, as Step Functions names it");
    let legs: Vec<(&str, &str)> =
        execution.children.iter().map(|child| (child.machine.as_str(), child.status.as_str())).collect();
    assert_eq!(legs, [("failover", "FAILED")], "no leg after the failed one");

    // The round trip's report says what ran and why it stopped.
    let json = read_report(&clients, &plan, &outcome.run_id, "report.json").await;
    let report: RoundTripReport = serde_json::from_slice(&json).expect("the round-trip report");
    assert_eq!(report.head.status, dr_core::run::RunStatus::Failed);
    let statuses: Vec<LegStatus> = report.legs.iter().map(|leg| leg.status).collect();
    assert_eq!(statuses, [LegStatus::Failed, LegStatus::NotRun, LegStatus::NotRun, LegStatus::NotRun]);
    let failover = report.leg(Leg::Failover).expect("failover");
    assert!(failover.detail.contains("RpoExceeded"), "{failover:#?}");
    assert!(failover.report.iter().any(|location| location.ends_with("report.md")), "its own failure report");
    assert!(report.plan_state.contains("review"), "{}", report.plan_state);

    // Nothing moved: Ireland is still Paris's replica, Paris still takes writes.
    assert_eq!(psql(pair.standby.port, "SELECT pg_is_in_recovery()").expect("Ireland"), "t");
    assert_eq!(psql(pair.primary.port, "SELECT pg_is_in_recovery()").expect("Paris"), "f");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leg_prepared_again_after_a_lost_answer_keeps_the_plan_it_took() {
    let (plan, clients) = seeded_estate().await;
    let ctx = round_trip_context(&plan, &clients).await;
    let mut run = RunInfo::new(format!("{}-roundtrip-{}", plan.name, unique_suffix()), dr_core::time::now(), "test");
    run.plan_state = Some(ctx.store.reference());
    let state = RoundTripState::new(plan.clone(), run, 60, false);

    let first = prepare_leg(&ctx.store, &state, Leg::Failover).await.expect("the plan taken for the leg");
    // The Lambda's answer was lost and Step Functions asks again: the leg holds the plan already.
    let again = prepare_leg(&ctx.store, &state, Leg::Failover).await.expect("asked again");
    assert_eq!(first.run.id, again.run.id);
    let held = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!((held.status, held.run_id), (PlanStatus::FailingOver, Some(state.leg_run_id(Leg::Failover))));

    // Another round trip's leg is refused: one run holds the plan.
    let mut other = state.clone();
    other.run.id = format!("{}-roundtrip-other", plan.name);
    let refused = prepare_leg(&ctx.store, &other, Leg::Failover).await.expect_err("busy");
    assert!(matches!(refused, DrError::PlanBusy { .. }), "{refused:?}");
}
