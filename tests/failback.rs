//! The way back (issue 14) on real PostgreSQL: a planned failover Paris -> Ireland, reprotect (a
//! Paris replica of Ireland), a failback Ireland -> Paris with the same runbook faced the other
//! way (`$.run.direction = to-primary`), and reprotect of the original direction (an Ireland
//! replica of Paris). Every leg is the real state machine with the real Lambdas; the plan store
//! records which region is primary, and the RPO check and `plan check` follow it. At the end the
//! readiness table is the one from before the failover, both old primaries are kept with their
//! final snapshots, and no row written during the round trip is lost. A failback while the Paris
//! replica lags past the RPO is refused before any change.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{describe_auto_scaling_group, describe_db_instance};
use dr_core::error::parse_input;
use dr_core::notify::NoticeKind;
use dr_core::plan::Direction;
use dr_core::readiness::{Scope, check_plan};
use dr_core::rpo::check::{DEFAULT_NAMESPACE, run_check};
use dr_core::run::{FailoverKind, RunMode, RunbookState, StepAction};
use dr_core::runbook::FAILOVER;
use dr_core::runbook::fence::FENCE_CAPACITY_TAG;
use dr_core::runbook::report::RunReport;
use dr_core::runbook::reprotect::{final_snapshot_id, retired_id};
use dr_core::store::{PlanStatus, PlanStore, WriteOutcome};
use dr_core::trigger::{Decision as TriggerDecision, handle_alarm_event, reevaluate};
use dr_emulator::estate::publish_replica_lag;
use dr_emulator::outage::{Outage, simulate_outage, simulate_recovery};
use dr_emulator::postgres::{Pair, psql};
use dr_tests::{
    backed_estate, backed_estate_with, failover_input, failover_substitutions, local_substitutions, notices, of_kind,
    recorded_executions, run_state_machine, run_state_machine_waiting, subscribe, trigger_context, unique_suffix,
    with_ecs_services,
};

/// A live planned move of `plan` in `direction`, holding the plan in `store` as `drctl failover
/// start` does.
pub(crate) async fn planned_move(store: &PlanStore, plan: &Plan, direction: Direction, label: &str) -> RunbookState {
    let mut state = move_input(plan, direction, label).await;
    store.take_for_run(plan, direction, &state.run.id, "test", label).await.expect("plan taken");
    state.run.plan_state = Some(store.reference());
    state
}

/// The input of a planned move of `plan` in `direction`.
async fn move_input(plan: &Plan, direction: Direction, label: &str) -> RunbookState {
    let run_id = format!("{label}-{}", unique_suffix());
    let mut state: RunbookState = serde_json::from_value(failover_input(plan, &run_id).await).expect("state");
    state.plan = plan.clone();
    state.run.kind = FailoverKind::Planned;
    state.run.direction = direction;
    state
}

pub(crate) fn run_move(state: &RunbookState) -> dr_tests::Execution {
    let input = serde_json::to_value(state).expect("input");
    run_state_machine_waiting("failover.asl.json", &failover_substitutions(), &input, Duration::from_millis(300))
}

/// Reprotect after a move in `direction`: the old primary retired, a replica of the new one.
async fn reprotect(plan: &Plan, direction: Direction, label: &str) -> RunbookState {
    let state = move_input(plan, direction, label).await;
    let input = serde_json::to_value(&state).expect("input");
    let execution = run_state_machine("reprotect.asl.json", &local_substitutions("reprotect.local.json"), &input);
    assert_eq!(execution.status, "SUCCEEDED", "{label}: {execution:#?}");
    state
}

/// A step's record in a run report.
fn failback_step<'a>(report: &'a RunReport, step: &str) -> &'a dr_core::run::StepRecord {
    report.steps.iter().find(|record| record.step == step).unwrap_or_else(|| panic!("no {step} record"))
}

/// The port of the server behind an emulated instance.
async fn port_of(rds: &aws_sdk_rds::Client, instance: &str) -> u16 {
    let db = describe_db_instance(rds, instance).await.expect("describe").expect("instance");
    db.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()).expect("a backed endpoint")
}

/// Inserts `rows` into `orders` on the server at `port`; the numbers it acknowledged.
fn write_rows(port: u16, rows: std::ops::Range<u64>) -> Vec<u64> {
    rows.filter(|n| psql(port, &format!("INSERT INTO orders VALUES ({n})")).is_ok()).collect()
}

fn rows_at(port: u16) -> Vec<u64> {
    psql(port, "SELECT n FROM orders ORDER BY n").expect("rows").lines().filter_map(|line| line.parse().ok()).collect()
}

fn wait_for_rows(port: u16, wanted: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while rows_at(port).len() < wanted {
        assert!(Instant::now() < deadline, "the replica at {port} never caught up to {wanted} rows");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The readiness table as rows that must not change: check, resource, finding.
fn table(readiness: &dr_core::readiness::Readiness) -> Vec<(String, String, Option<String>)> {
    readiness
        .rows
        .iter()
        .map(|row| (row.check.label().to_string(), row.resource.clone(), row.finding.map(|f| f.name().to_string())))
        .collect()
}

/// What a failover and its reprotect left: Ireland primary (the pair's standby server, promoted),
/// Paris its replica (a new server).
pub(crate) struct Reprotected {
    pub(crate) plan: Plan,
    pub(crate) clients: AwsClients,
    pub(crate) pair: Pair,
    pub(crate) store: PlanStore,
    /// The readiness table before the failover.
    pub(crate) before: Vec<(String, String, Option<String>)>,
    /// The reprotect run (its old-primary names).
    pub(crate) reprotect: RunbookState,
    /// The rows acknowledged so far.
    pub(crate) written: Vec<u64>,
}

/// A planned failover and reprotect on a real pair, rows 1..=20 written along the way.
pub(crate) async fn failed_over_and_reprotected(name: &str) -> Reprotected {
    // Its compute includes ECS services: the failover raises them, the failback's stand-down
    // sets them back to their standby count.
    let (plan, clients, pair) = backed_estate_with(name, with_ecs_services).await;
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
    let before = check_plan(&clients, &plan, Scope::Full).await;
    assert!(before.is_ready(), "{before:#?}");
    let store = trigger_context(&plan, &clients).await.store;
    pair.sql(&pair.primary, "CREATE TABLE orders (n bigint PRIMARY KEY)").expect("table");
    let mut written = write_rows(pair.primary.port, 1..11);

    let failover = planned_move(&store, &plan, Direction::ToDr, "failover").await;
    let execution = run_move(&failover);
    assert_eq!(execution.status, "SUCCEEDED", "failover: {execution:#?}");
    let state = store.read_state(&plan.name).await.expect("state").state;
    assert_eq!((state.status, state.primary_region.as_deref()), (PlanStatus::FailedOver, Some("eu-west-1")));
    written.extend(write_rows(pair.standby.port, 11..16));

    // RDS publishes the new Paris replica's ReplicaLag; moto does not.
    publish_replica_lag(&clients.primary, &plan.databases[0].primary_instance, 1.0).await.expect("lag");
    let reprotect = reprotect(&plan, Direction::ToDr, "reprotect").await;
    written.extend(write_rows(pair.standby.port, 16..21));
    Reprotected { before: table(&before), plan, clients, pair, store, reprotect, written }
}

async fn snapshot_exists(rds: &aws_sdk_rds::Client, id: &str) -> bool {
    let found = rds.describe_db_snapshots().db_snapshot_identifier(id).send().await;
    found.is_ok_and(|found| !found.db_snapshots().is_empty())
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_reprotect_failback_reprotect_leaves_the_estate_as_before_with_every_row() {
    let Reprotected { plan, clients, pair, store, before, reprotect: first, mut written } =
        failed_over_and_reprotected("roundtrip").await;
    let paris_port = port_of(&clients.primary.rds, &plan.databases[0].primary_instance).await;

    // Ireland primary: `plan check` of the plan as it stands (reversed) is green, and the RPO
    // check writes its heartbeat in Ireland and reads it on the Paris replica.
    let now = store.read_state(&plan.name).await.expect("state").state;
    let current = now.current_plan(&plan).expect("reversed plan");
    assert_eq!(current.primary_region, plan.dr_region);
    let faced = clients.facing(Direction::ToPrimary);
    let readiness = check_plan(&faced, &current, Scope::Full).await;
    assert!(readiness.is_ready(), "the reversed plan check: {readiness:#?}");
    let rpo = run_check(&faced, std::slice::from_ref(&current), DEFAULT_NAMESPACE).await.expect("RPO check");
    assert_eq!(rpo.within_rpo, rpo.pairs, "{rpo:#?}");

    // A dry run of the failback first: every step says what it would do, nothing changes.
    let mut dry = move_input(&plan, Direction::ToPrimary, "failback-dry").await;
    dry.run.mode = RunMode::DryRun;
    let execution = run_move(&dry);
    assert_eq!(execution.status, "SUCCEEDED", "failback dry run: {execution:#?}");
    let rehearsed: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(rehearsed.mutating_calls, 0, "{rehearsed:#?}");
    assert!(failback_step(&rehearsed, "stand-down").detail.starts_with("dry run: would"), "{rehearsed:#?}");
    assert_eq!(psql(paris_port, "SELECT pg_is_in_recovery()").expect("Paris"), "t", "still Ireland's replica");

    // The failback: fence Ireland, barrier, promote the Paris replica, traffic back, Paris's
    // group given back, Ireland's compute to standby.
    let failback = planned_move(&store, &plan, Direction::ToPrimary, "failback").await;
    let execution = run_move(&failback);
    assert_eq!(execution.status, "SUCCEEDED", "failback: {execution:#?}");
    let done: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(done.achieved.rpo_seconds, Some(0.0), "proven by the barrier: {done:#?}");
    let markdown = dr_core::runbook::report::render_markdown(&done).expect("markdown");
    assert!(
        markdown.contains("# Failback report") && markdown.contains("| stand down the DR region's compute"),
        "{markdown}"
    );
    let stand_down = failback_step(&done, "stand-down");
    assert!(stand_down.ready, "{stand_down:#?}");
    let state = store.read_state(&plan.name).await.expect("state").state;
    assert_eq!((state.status, state.primary_region.as_deref()), (PlanStatus::Disarmed, Some("eu-west-3")));
    assert_eq!(psql(paris_port, "SELECT pg_is_in_recovery()").expect("Paris"), "f", "Paris promoted");
    let ireland_group = describe_auto_scaling_group(&clients.dr.autoscaling, &dr_tests::dr_group(&plan).group)
        .await
        .expect("group")
        .expect("group");
    assert_eq!(ireland_group.desired_capacity(), Some(0), "Ireland's group back to standby");
    let standby: Vec<(i32, i32)> =
        plan.ecs_services.iter().map(|s| (i32::from(s.standby_count), i32::from(s.standby_count))).collect();
    assert_eq!(crate::ecs::counts(&clients, &plan).await, standby, "Ireland's ECS services back to standby");
    written.extend(write_rows(paris_port, 21..31));

    // Each failback step asked again after it succeeded (a lost answer, a retried Task) observes
    // the finished state and makes no mutating call.
    let mut again = failback.clone();
    again.run.plan_state = None;
    for (handler, action) in [
        ("promote-replica", StepAction::Act),
        ("start-standby", StepAction::Act),
        ("scale-asg", StepAction::Act),
        ("flip-dns", StepAction::Act),
        ("scale-asg", StepAction::Undo),
    ] {
        let record = Box::pin(FAILOVER.run(handler, action, &clients, &again)).await.expect("step");
        assert_eq!(record.mutating_calls(), 0, "{handler} {action:?} again: {record:#?}");
    }

    // Reprotect the original direction: Ireland's old primary retired, an Ireland replica of Paris.
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
    let second = reprotect(&plan, Direction::ToPrimary, "reprotect-back").await;
    let ireland_port = port_of(&clients.dr.rds, &plan.databases[0].replica_instance).await;
    assert_ne!(ireland_port, pair.standby.port, "a new Ireland replica");
    written.extend(write_rows(paris_port, 31..41));
    wait_for_rows(ireland_port, written.len());

    // The estate as before: `plan check` of the plan as written, the same table, green.
    let after = check_plan(&clients, &plan, Scope::Full).await;
    assert!(after.is_ready(), "{after:#?}");
    assert_eq!(table(&after), before, "the readiness table after the round trip is the one from before");

    // Both old primaries are kept beside their final snapshots; no acknowledged row is lost.
    let paris_old = (retired_id(&first, &first.plan.databases[0]), final_snapshot_id(&first, &first.plan.databases[0]));
    assert!(describe_db_instance(&clients.primary.rds, &paris_old.0).await.expect("describe").is_some());
    assert!(snapshot_exists(&clients.primary.rds, &paris_old.1).await, "Paris's final snapshot {}", paris_old.1);
    let second = second.facing().expect("the failback's plan");
    let ireland_old =
        (retired_id(&second, &second.plan.databases[0]), final_snapshot_id(&second, &second.plan.databases[0]));
    assert!(describe_db_instance(&clients.dr.rds, &ireland_old.0).await.expect("describe").is_some());
    assert!(snapshot_exists(&clients.dr.rds, &ireland_old.1).await, "Ireland's final snapshot {}", ireland_old.1);
    let (in_paris, in_ireland) = (rows_at(paris_port), rows_at(ireland_port));
    let lost: Vec<&u64> = written.iter().filter(|n| !in_paris.contains(n) || !in_ireland.contains(n)).collect();
    eprintln!(
        "round trip: {} rows acknowledged across both legs, {} in Paris, {} in Ireland, {} lost",
        written.len(),
        in_paris.len(),
        in_ireland.len(),
        lost.len()
    );
    assert_eq!(written.len(), 40, "every insert was acknowledged");
    assert!(lost.is_empty(), "acknowledged, then missing: {lost:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failback_while_the_paris_replica_lags_past_the_rpo_is_refused_before_any_change() {
    let Reprotected { plan, clients, store, pair: _servers, .. } = failed_over_and_reprotected("lagging").await;
    let ireland_port = port_of(&clients.dr.rds, &plan.databases[0].replica_instance).await;
    let paris_port = port_of(&clients.primary.rds, &plan.databases[0].primary_instance).await;
    // The Paris replica stopped replaying two hours ago: its newest heartbeat is that old. (The
    // heartbeats are backdated in Ireland, replayed, then replay is paused.)
    psql(ireland_port, "UPDATE dr_orchestrator.heartbeat SET written_at = now() - interval '120 minutes'")
        .expect("heartbeats backdated");
    let deadline = Instant::now() + Duration::from_secs(30);
    while psql(
        paris_port,
        "SELECT count(*) FROM dr_orchestrator.heartbeat WHERE written_at > now() - interval '1 hour'",
    )
    .expect("Paris replica")
        != "0"
    {
        assert!(Instant::now() < deadline, "the Paris replica never replayed the backdated heartbeats");
        std::thread::sleep(Duration::from_millis(100));
    }
    psql(paris_port, "SELECT pg_wal_replay_pause()").expect("replay paused");

    let failback = planned_move(&store, &plan, Direction::ToPrimary, "failback").await;
    let execution = run_move(&failback);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("RpoExceeded"), "{execution:#?}");
    // Nothing changed: Ireland still writable and serving, Paris still its replica, Ireland's
    // group not fenced.
    assert_eq!(psql(ireland_port, "SELECT pg_is_in_recovery()").expect("Ireland"), "f");
    assert_eq!(psql(paris_port, "SELECT pg_is_in_recovery()").expect("Paris"), "t");
    let paris = describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance)
        .await
        .expect("describe")
        .expect("the Paris replica");
    assert!(paris.read_replica_source_db_instance_identifier().is_some(), "still a replica");
    let group = describe_auto_scaling_group(&clients.dr.autoscaling, &dr_tests::dr_group(&plan).group)
        .await
        .expect("group")
        .expect("group");
    assert!(group.desired_capacity() > Some(0), "Ireland's application not fenced");
    let mutations = dr_tests::changing_tasks_entered(&execution);
    assert!(mutations.is_empty(), "no step ran past preflight: {mutations:?}");
    psql(paris_port, "SELECT pg_wal_replay_resume()").expect("replay resumed");
}

/// Fence on return (issue 30): after an unplanned failover, Paris answers again (its detection
/// alarm back to OK): the alarm trigger's schedule fences it within one run (its group to zero,
/// its database read-only: no second writer) and tells the on-call, once; the failback later
/// gives the Paris group its capacity back.
#[tokio::test(flavor = "multi_thread")]
async fn paris_answering_again_after_an_unplanned_failover_is_fenced_and_told_and_a_failback_unfences_it() {
    let (plan, mut clients, pair) = backed_estate("on-return").await;
    assert!(plan.fences_on_return(), "a production plan fences on return by default");
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
    let (sqs, queue) = subscribe(&mut clients).await;
    let mut ctx = trigger_context(&plan, &clients).await;
    // The deployment's fence function, as FENCE_FUNCTION names it (template.yaml).
    ctx.fence_function = Some("fence".into());
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let paris_group = || async {
        describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group")
    };
    let before = paris_group().await;
    let before = (before.min_size(), before.desired_capacity(), before.max_size());

    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage");
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm event").expect("event")).await.expect("handled");
    assert_eq!(outcome.decision, TriggerDecision::Started, "{outcome:?}");
    let (_, input) = recorded_executions(&clients, &plan).await.into_iter().next().expect("the run");
    let execution =
        run_state_machine_waiting("failover.asl.json", &failover_substitutions(), &input, Duration::from_millis(300));
    assert_eq!(execution.status, "SUCCEEDED", "unplanned failover: {execution:#?}");
    assert_eq!(ctx.store.read_state(&plan.name).await.expect("state").state.status, PlanStatus::FailedOver);

    // Paris still down: nothing to fence.
    let judged = reevaluate(&ctx).await.expect("the schedule runs");
    assert!(judged.iter().all(|o| o.decision != TriggerDecision::FencedOnReturn), "{judged:?}");
    assert_eq!(paris_group().await.desired_capacity(), before.1);

    // Paris answers again: the next schedule fences it.
    simulate_recovery(&clients, &plan).await.expect("recovery");
    let judged = reevaluate(&ctx).await.expect("the schedule runs");
    let fenced = judged.iter().find(|o| o.decision == TriggerDecision::FencedOnReturn).expect("fenced on return");
    eprintln!("fence on return: {}", fenced.detail);
    assert!(fenced.detail.contains("scaled to zero") && fenced.detail.contains("read-only"), "{fenced:?}");
    let now = paris_group().await;
    assert_eq!(now.desired_capacity(), Some(0), "the Paris group scaled to zero");
    assert!(now.tags().iter().any(|t| t.key() == Some(FENCE_CAPACITY_TAG)), "{:?}", now.tags());
    assert!(psql(pair.primary.port, "CREATE TABLE second_writer (n int)").is_err(), "Paris refuses writes");
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert!(state.fenced_on_return.is_some(), "{state:?}");
    // Once per failover: the next schedule leaves it.
    let again = reevaluate(&ctx).await.expect("the schedule runs");
    assert!(again.iter().all(|o| o.decision != TriggerDecision::FencedOnReturn), "{again:?}");
    let mut seen = Vec::new();
    let seen = notices(&sqs, &queue, &plan.name, &mut seen).await;
    let told = of_kind(&seen, NoticeKind::FencedOnReturn);
    assert_eq!(told.len(), 1, "told once: {seen:#?}");
    assert!(told[0].text.contains("drctl failback start"), "{}", told[0].text);
    eprintln!("what the phone shows:\n{}\n{}", told[0].subject, told[0].text);

    // The way back: reprotect, then the failback gives Paris's group its capacity back.
    publish_replica_lag(&clients.primary, &plan.databases[0].primary_instance, 1.0).await.expect("lag");
    reprotect(&plan, Direction::ToDr, "reprotect").await;
    // Paris seen answering only after reprotect (the schedule off meanwhile): the primary's name
    // is now Ireland's replica, which takes no writes; the fence holds the group and says so.
    let read = ctx.store.read_state(&plan.name).await.expect("state");
    let unmarked = dr_core::store::PlanState { fenced_on_return: None, ..read.state.clone() };
    assert_eq!(ctx.store.write_state(&read, &unmarked).await.expect("written"), WriteOutcome::Won);
    let judged = reevaluate(&ctx).await.expect("the schedule runs");
    let fenced = judged.iter().find(|o| o.decision == TriggerDecision::FencedOnReturn).expect("fenced on return");
    assert!(fenced.detail.contains("is a replica (in recovery): it takes no writes"), "{fenced:?}");
    let failback = planned_move(&ctx.store, &plan, Direction::ToPrimary, "failback").await;
    let execution = run_move(&failback);
    assert_eq!(execution.status, "SUCCEEDED", "failback: {execution:#?}");
    let after = paris_group().await;
    assert_eq!((after.min_size(), after.desired_capacity(), after.max_size()), before, "the Paris group is back");
    assert!(after.tags().iter().all(|t| t.key() != Some(FENCE_CAPACITY_TAG)), "{:?}", after.tags());
    let state = ctx.store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.primary_region.as_deref(), Some(plan.primary_region.as_str()));
    assert_eq!(state.fenced_on_return, None, "cleared by the next run");
}
