//! The database path on real PostgreSQL: two local servers in streaming replication stand for
//! the Paris primary and its Ireland read replica (crates/dr-emulator/src/postgres.rs), and the
//! emulated RDS replica is backed by the standby, so the runbook's PromoteReadReplica (sent to
//! the emulator, as every RDS call) promotes the real standby.
//!
//! And what RDS does that moto does not: a promotion without a backup retention keeps 1 day.
//!
//! Planned and unplanned moves (issue 12): a planned drill fences the writer in Paris and proves
//! by a barrier replayed in Ireland that nothing acknowledged is lost; a barrier that never
//! arrives (replay paused) promotes nothing and undoes the fence; an unplanned run measures the
//! data lost at the incident's start from the newest replayed heartbeat, not the outage's length;
//! the periodic RPO check measures the pair by the same heartbeat.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{describe_auto_scaling_group, describe_db_instance};
use dr_core::aws::postgres::{Credentials, Endpoint, HEARTBEAT_TABLE, RPO_CHECK_SOURCE};
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{Heartbeat, PairKind, check_pairs, pairs_of};
use dr_core::run::{FailoverKind, RunbookState};
use dr_core::runbook::fence::FENCE_CAPACITY_TAG;
use dr_core::runbook::report::RunReport;
use dr_core::time;
use dr_emulator::control::back_instance_with;
use dr_emulator::estate::publish_replica_lag;
use dr_emulator::postgres::{Pair, Signer};
use dr_tests::{
    backed_estate, failover_input, failover_substitutions, read_report, run_failover, run_state_machine_waiting,
    seeded_estate, unique_suffix,
};

/// Waits until the standby has replayed `rows` rows of `orders`.
fn wait_for_replay(pair: &Pair, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: u64 = pair
            .sql(&pair.standby, "SELECT count(*) FROM orders")
            .ok()
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        if replayed >= rows {
            return;
        }
        assert!(Instant::now() < deadline, "the standby replayed {replayed} of {rows} rows in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runbooks_promotion_promotes_the_real_standby_with_every_replicated_row() {
    let (plan, clients) = seeded_estate().await;
    let pair = Pair::start(&format!("promote-{}", unique_suffix())).expect("a PostgreSQL primary and standby");
    back_instance_with(&clients, &plan.dr_region, &plan.databases[0].replica_instance, &pair.standby)
        .await
        .expect("replica backed by the standby");

    pair.sql(&pair.primary, "CREATE TABLE orders (id bigserial PRIMARY KEY, placed_at timestamptz DEFAULT now())")
        .expect("table");
    pair.sql(&pair.primary, "INSERT INTO orders SELECT FROM generate_series(1, 500)").expect("rows");
    wait_for_replay(&pair, 500);
    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "t");
    assert!(pair.sql(&pair.standby, "INSERT INTO orders DEFAULT VALUES").is_err(), "a standby refuses writes");

    let execution = run_failover(&failover_input(&plan, &format!("pg-{}", unique_suffix())).await);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");

    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "f", "promoted");
    assert_eq!(pair.sql(&pair.standby, "SELECT count(*) FROM orders").expect("count"), "500");
    pair.sql(&pair.standby, "INSERT INTO orders DEFAULT VALUES").expect("the new primary takes writes");
    let promote = report.steps.iter().find(|s| s.step == "promote-replica").expect("promote step");
    assert!(promote.detail.contains("35 days of backups, window 01:00-01:30 UTC"), "{}", promote.detail);
}

#[tokio::test]
async fn a_promotion_without_a_retention_keeps_one_day_of_backups_as_rds_does() {
    let (plan, clients) = seeded_estate().await;
    clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&plan.databases[0].replica_instance)
        .send()
        .await
        .expect("promoted");
    let promoted = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("the promoted instance");
    assert_eq!(promoted.backup_retention_period(), Some(1));
}

/// The failover input of a run of `kind`.
async fn input_of(plan: &Plan, run_id: &str, kind: FailoverKind) -> serde_json::Value {
    let mut state: RunbookState = serde_json::from_value(failover_input(plan, run_id).await).expect("state");
    state.run.kind = kind;
    serde_json::to_value(&state).expect("input")
}

/// Runs a planned move of `plan` (the engine's waits of `wait`).
async fn run_planned(plan: &Plan, run_id: &str, wait: Duration) -> dr_tests::Execution {
    run_state_machine_waiting(
        "failover.asl.json",
        &failover_substitutions(),
        &input_of(plan, run_id, FailoverKind::Planned).await,
        wait,
    )
}

/// Neither the emulated replica nor its standby was promoted.
async fn assert_nothing_promoted(clients: &AwsClients, plan: &Plan, pair: &Pair) {
    let replica = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("replica");
    assert!(replica.read_replica_source_db_instance_identifier().is_some(), "still a replica: nothing promoted");
    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "t", "standby still");
}

/// The application in Paris: inserts rows, one session each, until told to stop; the numbers of
/// the rows Paris acknowledged (committed), and how many inserts it refused.
pub(crate) fn start_writer(pair: &Pair, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<(Vec<u64>, u64)> {
    let port = pair.primary.port;
    std::thread::spawn(move || {
        let (mut acknowledged, mut refused) = (Vec::new(), 0);
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            match dr_emulator::postgres::psql(port, &format!("INSERT INTO writes (n) VALUES ({n})")) {
                Ok(_) => acknowledged.push(n),
                Err(_) => refused += 1,
            }
        }
        (acknowledged, refused)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_planned_drill_with_a_writer_throughout_loses_no_acknowledged_row() {
    let (plan, clients, pair) = backed_estate("planned").await;
    pair.sql(&pair.primary, "CREATE TABLE writes (n bigint PRIMARY KEY)").expect("table");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&pair, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));

    let run_id = format!("planned-{}", unique_suffix());
    let execution = run_planned(&plan, &run_id, Duration::from_millis(500)).await;
    // The writer keeps trying a moment after the move: Paris must refuse it.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, refused) = writer.join().expect("writer");
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");

    assert!(acknowledged.len() > 5, "the writer wrote throughout: {} rows", acknowledged.len());
    assert!(refused > 0, "Paris refused writes once fenced");
    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "f", "promoted");
    let in_ireland: Vec<u64> = pair
        .sql(&pair.standby, "SELECT n FROM writes ORDER BY n")
        .expect("rows in Ireland")
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect();
    let lost: Vec<&u64> = acknowledged.iter().filter(|n| !in_ireland.contains(n)).collect();
    eprintln!(
        "planned drill: {} rows acknowledged in Paris, {} in Ireland, {} lost, {refused} refused after the fence",
        acknowledged.len(),
        in_ireland.len(),
        lost.len()
    );
    assert!(lost.is_empty(), "acknowledged in Paris, missing in Ireland: {lost:?}");
    let loss = report.data_loss.as_ref().expect("data loss");
    assert_eq!(loss.summary, "data lost: none (proven by the barrier)");
    assert!(loss.fenced_at.is_some() && loss.barrier_confirmed_at.is_some(), "{loss:?}");
    assert_eq!(report.achieved.rpo_seconds, Some(0.0));
    let markdown = String::from_utf8(read_report(&clients, &plan, &run_id, "report.md").await).expect("markdown");
    assert!(markdown.contains("data lost: none (proven by the barrier)"), "{markdown}");
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let paris = describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    assert_eq!(paris.desired_capacity(), Some(0), "the Paris application stays fenced after the move");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_barrier_that_never_arrives_promotes_nothing_and_undoes_the_fence() {
    let (mut plan, clients, pair) = backed_estate("barrier").await;
    if let Some(fence) = plan.fence.as_mut() {
        fence.barrier_timeout_seconds = 5;
    }
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let before =
        describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    pair.pause_replay(true).expect("replay paused");

    let run_id = format!("no-barrier-{}", unique_suffix());
    let execution = run_planned(&plan, &run_id, Duration::from_secs(1)).await;
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("BarrierNotReached"), "{execution:#?}");

    assert_nothing_promoted(&clients, &plan, &pair).await;
    let after = describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    assert_eq!(
        (after.min_size(), after.desired_capacity(), after.max_size()),
        (before.min_size(), before.desired_capacity(), before.max_size()),
        "the Paris group is back at its size"
    );
    assert!(after.tags().iter().all(|t| t.key() != Some(FENCE_CAPACITY_TAG)), "{:?}", after.tags());
    pair.sql(&pair.primary, "CREATE TABLE after_the_run (n int)").expect("Paris takes writes again");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let loss = failure.data_loss.as_ref().expect("data loss");
    assert_eq!(loss.primary, "fence undone: Paris serves again");
    assert_eq!(failure.head.error.as_ref().map(|e| e.error.as_str()), Some("BarrierNotReached"));
    pair.pause_replay(false).expect("replay resumed");
}

/// Writes heartbeat `source` on the primary as written `minutes_ago`, and waits until the standby
/// replayed it.
fn heartbeat_written(pair: &Pair, source: &str, minutes_ago: u64) {
    pair.sql(
        &pair.primary,
        // As the orchestrator's role writes it (docs/database.sql): its table.
        "SET ROLE dr_orchestrator; \
         CREATE TABLE IF NOT EXISTS dr_orchestrator.heartbeat (source text PRIMARY KEY, written_at timestamptz NOT NULL)",
    )
    .expect("table");
    pair.sql(
        &pair.primary,
        &format!(
            "INSERT INTO dr_orchestrator.heartbeat VALUES ('{source}', now() - interval '{minutes_ago} minutes') \
             ON CONFLICT (source) DO UPDATE SET written_at = excluded.written_at"
        ),
    )
    .expect("heartbeat");
    let deadline = Instant::now() + Duration::from_secs(30);
    while pair
        .sql(&pair.standby, &format!("SELECT 1 FROM dr_orchestrator.heartbeat WHERE source = '{source}'"))
        .map_or(true, |found| found.is_empty())
    {
        assert!(Instant::now() < deadline, "the standby never replayed the heartbeat");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An unplanned run started 90 minutes into an outage (ReplicaLag has grown to 5,400 s, over the
/// 1 h RPO), whose last replicated write was `last_write_minutes_ago`.
async fn late_unplanned_run(last_write_minutes_ago: u64) -> (serde_json::Value, Option<String>, Plan, AwsClients) {
    let (plan, clients, pair) = backed_estate("unplanned").await;
    heartbeat_written(&pair, "rpo-check", last_write_minutes_ago);
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 5400.0).await.expect("lag published");
    let run_id = format!("late-{}", unique_suffix());
    let mut state: RunbookState =
        serde_json::from_value(input_of(&plan, &run_id, FailoverKind::Unplanned).await).expect("state");
    state.run.triggered_at = time::before(time::now(), Duration::from_secs(90 * 60));
    let execution = run_failover(&serde_json::to_value(&state).expect("input"));
    drop(pair);
    let error = execution.error.clone();
    let output = if execution.status == "SUCCEEDED" {
        execution.output
    } else {
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report")
    };
    (output, error, plan, clients)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unplanned_run_long_after_the_outage_reports_the_last_writes_age_not_the_outages_length() {
    // The last write replicated 2 minutes before the incident started, 90 minutes ago.
    let (output, error, _, _) = late_unplanned_run(92).await;
    assert_eq!(error, None, "the loss (120 s) is within the RPO: no approval needed");
    let report: RunReport = serde_json::from_value(output).expect("report");
    let lost = report.achieved.rpo_seconds.expect("data loss measured");
    eprintln!("unplanned run 90 min into the outage: data lost {lost:.0} s (ReplicaLag now 5400 s)");
    assert!((115.0..=130.0).contains(&lost), "the last write's age at the incident's start: {lost}");
    let loss = report.data_loss.as_ref().expect("data loss");
    assert!(loss.summary.contains("newest heartbeat replayed in Ireland"), "{loss:?}");
    assert_eq!(loss.primary, "not fenced: fence Paris (or keep it down) before it serves again");

    // The same outage whose last replicated write came 80 minutes before it: the gate refuses.
    let (output, error, _, _) = late_unplanned_run(170).await;
    assert_eq!(error.as_deref(), Some("RpoExceeded"));
    let failure: RunReport = serde_json::from_value(output).expect("failure report");
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(
        cause.contains("lags 480") && !cause.contains("5400"),
        "80 minutes lost, not the 90-minute outage: {cause}"
    );
}

/// The periodic RPO check, on real replication: the database heartbeat it writes in Paris and
/// finds replayed in Ireland is the pair's lag; an idle primary's grown ReplicaLag is not.
#[tokio::test(flavor = "multi_thread")]
async fn the_rpo_check_measures_the_database_by_its_heartbeat_not_an_idle_primarys_replica_lag() {
    let (plan, clients, pair) = backed_estate("rpo").await;
    // Nothing written for 40 minutes: RDS PostgreSQL's ReplicaLag (the age of the last replayed
    // transaction) has grown to 2,400 s although the replica misses nothing.
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 2400.0).await.expect("lag published");
    let rds = || pairs_of(&plan).into_iter().filter(|p| p.kind == PairKind::Rds).collect::<Vec<_>>();

    let statuses = check_pairs(&clients, &rds(), Heartbeat::Write, time::now()).await.expect("checked");
    let status = &statuses[0];
    eprintln!("RPO check, replay running: {} ({:?} s)", status.detail, status.lag_seconds);
    assert_eq!((status.verdict, status.error.as_deref()), (LagVerdict::WithinRpo, None), "{status:?}");
    assert!(status.lag_seconds.is_some_and(|lag| lag < 5.0), "the heartbeat's replay, not 2,400 s: {status:?}");
    assert!(status.detail.contains("database heartbeat replayed in Ireland"), "{status:?}");
    let written = pair
        .sql(&pair.primary, &format!("SELECT count(*) FROM {HEARTBEAT_TABLE} WHERE source = '{RPO_CHECK_SOURCE}'"))
        .expect("heartbeat row");
    assert_eq!(written, "1", "the check rewrites one row in Paris");

    // Replay stops; the newest heartbeat Ireland has was written 70 minutes ago: over the RPO, by
    // the heartbeat's age, although Paris took the check's new heartbeat.
    heartbeat_written(&pair, RPO_CHECK_SOURCE, 70);
    pair.pause_replay(true).expect("replay paused");
    let statuses = check_pairs(&clients, &rds(), Heartbeat::Write, time::now()).await.expect("checked");
    let status = &statuses[0];
    eprintln!("RPO check, replay paused: {} ({:?} s)", status.detail, status.lag_seconds);
    assert_eq!(status.verdict, LagVerdict::RpoExceeded, "{status:?}");
    assert!(status.lag_seconds.is_some_and(|lag| (4200.0..4260.0).contains(&lag)), "{status:?}");
    pair.pause_replay(false).expect("replay resumed");
}

/// The application's maintenance switch (crates/dr-emulator/src/bin/application-hooks.rs), as its
/// state object says: (in maintenance, times switched).
async fn maintenance_switch(clients: &AwsClients, plan: &Plan) -> (bool, u64) {
    let object = clients
        .dr
        .s3
        .get_object()
        .bucket("dr-local-application")
        .key(format!("maintenance/{}.json", plan.name))
        .send()
        .await
        .expect("the switch was used");
    let state: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.expect("body").into_bytes()).expect("json");
    (state["maintenance"].as_bool().unwrap_or_default(), state["switched"].as_u64().unwrap_or_default())
}

/// A plan whose fence is only the application's own Lambda, and whose barrier is its own hook.
fn fenced_by_the_application(plan: &mut Plan, barrier_timeout_seconds: u32) {
    let fence = plan.fence.as_mut().expect("the plan has a [fence]");
    fence.auto_scaling_group.clear();
    fence.database_read_only = false;
    fence.lambda = Some("application-hooks".to_string());
    fence.barrier_function = Some("application-hooks".to_string());
    fence.barrier_timeout_seconds = barrier_timeout_seconds;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_applications_fencing_lambda_and_barrier_hook_carry_a_planned_move_and_its_undo() {
    // Moved: the switch on, the hook's marker replayed, the promotion proven lossless.
    let (mut plan, clients, pair) = backed_estate("hooks").await;
    fenced_by_the_application(&mut plan, 60);
    // The stack is deployed again for the changed plan (`drctl deploy params`): its hooks.
    dr_tests::deploy(&clients, &plan).await;
    let run_id = format!("hooks-{}", unique_suffix());
    let execution = run_planned(&plan, &run_id, Duration::from_millis(500)).await;
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(maintenance_switch(&clients, &plan).await, (true, 1), "switched on once; on after the move");
    let barrier = report.steps.iter().find(|s| s.step == "barrier").expect("barrier step");
    assert!(barrier.detail.contains("barrier confirmed by application-hooks"), "{}", barrier.detail);
    let marker = format!("barrier:{run_id}");
    assert_eq!(
        pair.sql(&pair.standby, &format!("SELECT count(*) FROM app_barrier WHERE marker = '{marker}'")).expect("row"),
        "1",
        "the hook's own marker is in the promoted database"
    );
    let loss = report.data_loss.as_ref().expect("data loss");
    assert_eq!(loss.summary, "data lost: none (proven by the barrier)");
    drop(pair);

    // The hook's marker never reaches Ireland: nothing promoted, the switch turned back off.
    let (mut plan, clients, pair) = backed_estate("hooks-paused").await;
    fenced_by_the_application(&mut plan, 5);
    // The stack is deployed again for the changed plan (`drctl deploy params`): its hooks.
    dr_tests::deploy(&clients, &plan).await;
    pair.pause_replay(true).expect("replay paused");
    let execution = run_state_machine_waiting(
        "failover.asl.json",
        &failover_substitutions(),
        &input_of(&plan, &format!("hooks-paused-{}", unique_suffix()), FailoverKind::Planned).await,
        Duration::from_secs(1),
    );
    assert_eq!(execution.error.as_deref(), Some("BarrierNotReached"), "{execution:#?}");
    assert_eq!(maintenance_switch(&clients, &plan).await, (false, 2), "switched on, then off by the undo");
    assert_nothing_promoted(&clients, &plan, &pair).await;
    pair.pause_replay(false).expect("replay resumed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fencing_lambda_that_fails_stops_the_move_before_any_promotion() {
    let (mut plan, clients, pair) = backed_estate("broken-switch").await;
    fenced_by_the_application(&mut plan, 60);
    // The stack is deployed again for the changed plan (`drctl deploy params`): its hooks.
    dr_tests::deploy(&clients, &plan).await;
    let _ = clients
        .dr
        .s3
        .create_bucket()
        .bucket("dr-local-application")
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(plan.dr_region.as_str()))
                .build(),
        )
        .send()
        .await;
    clients
        .dr
        .s3
        .put_object()
        .bucket("dr-local-application")
        .key(format!("broken/{}", plan.name))
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"broken"))
        .send()
        .await
        .expect("switch broken");
    let run_id = format!("broken-switch-{}", unique_suffix());
    let execution = run_failover(&input_of(&plan, &run_id, FailoverKind::Planned).await);
    assert_eq!(execution.error.as_deref(), Some("FenceFailed"), "{execution:#?}");
    let cause = execution.cause.as_ref().map(ToString::to_string).unwrap_or_default();
    assert!(cause.contains("application-hooks (fence) failed") && cause.contains("broken"), "{cause}");
    assert_nothing_promoted(&clients, &plan, &pair).await;
}

/// Reprotect on real replication: after a failover, the new Paris replica the emulator creates is
/// a real standby of the promoted Ireland server; rows written in Ireland reach it, and the old
/// primary is kept (renamed) with its rows.
#[tokio::test(flavor = "multi_thread")]
async fn reprotect_makes_the_new_paris_replica_a_real_standby_of_ireland_and_keeps_the_old_primary() {
    let (plan, clients, pair) = backed_estate("reprotect").await;
    pair.sql(&pair.primary, "CREATE TABLE orders (n bigint PRIMARY KEY); INSERT INTO orders VALUES (1)").expect("rows");
    wait_for_replay(&pair, 1);
    let failover = run_failover(&input_of(&plan, &format!("fo-{}", unique_suffix()), FailoverKind::Unplanned).await);
    assert_eq!(failover.status, "SUCCEEDED", "{failover:#?}");
    pair.sql(&pair.standby, "INSERT INTO orders VALUES (2)").expect("Ireland takes writes");

    // RDS publishes the new replica's ReplicaLag; moto does not.
    publish_replica_lag(&clients.primary, &plan.databases[0].primary_instance, 1.0).await.expect("lag published");
    let input = input_of(&plan, &format!("reprotect-{}", unique_suffix()), FailoverKind::Planned).await;
    let state = RunbookState { plan: plan.clone(), ..serde_json::from_value(input.clone()).expect("state") };
    let execution = dr_tests::run_state_machine(
        "reprotect.asl.json",
        &dr_tests::local_substitutions("reprotect.local.json"),
        &input,
    );
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let done: RunbookState = serde_json::from_value(execution.output).expect("state");
    let retire = done.step(dr_core::run::StepKey::RetirePrimary).expect("retire record");
    eprintln!("reprotect: retire-primary {:?} after {} attempt(s): {}", retire.outcome, retire.attempt, retire.detail);

    let paris = describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance)
        .await
        .expect("describe")
        .expect("the new Paris replica");
    let port = paris.endpoint().and_then(|e| e.port()).and_then(|p| u16::try_from(p).ok()).expect("a backed endpoint");
    assert_ne!(port, pair.primary.port, "a new server, not the old primary");
    let psql = |statement: &str| dr_emulator::postgres::psql(port, statement).expect("the new Paris replica answers");
    assert_eq!(psql("SELECT pg_is_in_recovery()"), "t", "a standby");
    pair.sql(&pair.standby, "INSERT INTO orders VALUES (3)").expect("Ireland takes writes");
    let deadline = Instant::now() + Duration::from_secs(30);
    while psql("SELECT count(*) FROM orders") != "3" {
        assert!(Instant::now() < deadline, "Ireland's rows never reached the new Paris replica");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The old primary: renamed, its server kept behind the new name, its rows as it left them.
    let retired = describe_db_instance(
        &clients.primary.rds,
        &dr_core::runbook::reprotect::retired_id(&state, &state.plan.databases[0]),
    )
    .await
    .expect("describe")
    .expect("the retired primary");
    assert_eq!(retired.endpoint().and_then(|e| e.port()), Some(i32::from(pair.primary.port)));
    assert_eq!(pair.sql(&pair.primary, "SELECT count(*) FROM orders").expect("rows"), "1");
}

/// The runbook's SQL sessions verify the server as `sslmode=verify-full` does: a server whose
/// certificate no trusted CA signed is refused by name (`DatabaseNotTrusted`) before any
/// credential is sent; the same server set up by docs/database.sql under the local database CA
/// takes the orchestrator's least-privilege role's heartbeat, fence and unfence.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_with_a_certificate_no_trusted_ca_signed_is_refused_and_a_trusted_one_serves_the_role() {
    let credentials = Credentials { username: "dr_orchestrator".into(), password: "local".into(), dbname: None };
    let untrusted =
        Pair::start_signed_by(&format!("untrusted-{}", unique_suffix()), Signer::Unknown).expect("a PostgreSQL pair");
    let endpoint =
        |pair: &Pair| Endpoint { instance: "paris-db".into(), address: "127.0.0.1".into(), port: pair.primary.port };
    let refused = dr_core::aws::postgres::connect(&endpoint(&untrusted), &credentials).await.err().expect("refused");
    assert_eq!(refused.name(), "DatabaseNotTrusted", "{refused}");
    assert!(!refused.is_retryable(), "a human looks at it: {refused}");
    drop(untrusted);

    let trusted = Pair::start(&format!("trusted-{}", unique_suffix())).expect("a PostgreSQL pair");
    let mut session = dr_core::aws::postgres::connect(&endpoint(&trusted), &credentials).await.expect("connected");
    assert_eq!(
        trusted.sql(&trusted.primary, "SELECT rolsuper FROM pg_roles WHERE rolname = 'dr_orchestrator'").expect("role"),
        "f"
    );
    session.write_heartbeat("rpo-check", true).await.expect("the heartbeat, as the role");
    assert!(!session.is_read_only().await.expect("read"));
    session.make_read_only().await.expect("the fence, as the role");
    assert!(session.is_read_only().await.expect("read"));
    let refused = dr_emulator::postgres::psql(trusted.primary.port, "CREATE TABLE after_the_fence (n int)");
    assert!(refused.is_err_and(|e| e.output.contains("read-only")), "a new session is read-only");
    session.write_through_the_fence().await.expect("the runbook's own session writes");
    session.write_heartbeat("barrier:test", false).await.expect("the barrier's marker through the fence");
    session.make_writable().await.expect("the unfence, as the role");
    assert!(!session.is_read_only().await.expect("read"));
}
