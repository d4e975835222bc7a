//! Several databases, one decision (issue 32): an estate with two RDS pairs moves its data tier
//! whole or not at all.
//!
//! - One database over the RPO: readiness names it, the unplanned run asks one question for the
//!   data tier and promotes nothing before the answer; approved, every replica is promoted.
//! - A planned drill whose second promotion fails after the first (the emulator's RDS model:
//!   `moto/rds.py`, a promotion that ends in `incompatible-parameters`): the run rolls back, with
//!   both Paris databases writable again, no acknowledged row lost, DNS never moved, and each
//!   instance the run promoted marked diverged.
//! - An unplanned run whose second promotion fails after the first: the data tier is split, and
//!   the run asks a human before traffic moves (approved with `drctl run approve`, traffic moves
//!   on the database promoted and the report says the tier is split; rejected, the run stops with
//!   DNS where it was). Both promotions failing leave the tier whole: nothing is asked.
//! - A dry run names each promotion and makes none; under 20 % throttling and half the answers
//!   lost, each replica is promoted exactly once.
//! - A plan with two databases written badly is refused by name, before any call.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::database::start_writer;
use crate::half_way::{missing, rows_on, run_drill};
use crate::operator::{drctl, start_failover, wait_for_decision, wait_for_question, watch};
use dr_core::aws::lookup::describe_db_instance;
use dr_core::plan::Plan;
use dr_core::readiness::{Scope, check_plan};
use dr_core::run::{GateVerdict, RunMode, RunbookState};
use dr_core::runbook::report::RunReport;
use dr_core::store::{PlanStore, Question};
use dr_emulator::control::promotion_fails;
use dr_emulator::estate::publish_replica_lag;
use dr_tests::{
    back_database_with_real_pair, failover_input, failover_under_faults, plan_file, read_report, register_runbook,
    seeded_estate_with, unique_suffix, with_second_database,
};

/// Whether the instance (in Ireland) still replicates.
async fn is_replica(clients: &dr_core::aws::AwsClients, instance: &str) -> bool {
    let db = describe_db_instance(&clients.dr.rds, instance).await.expect("describe").expect("the instance");
    !db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty()
}

#[tokio::test(flavor = "multi_thread")]
async fn one_database_over_the_rpo_asks_one_decision_for_the_data_tier_and_nothing_is_promoted_before_it() {
    let (plan, clients) = seeded_estate_with(with_second_database).await;
    let (first, second) = (&plan.databases[0], &plan.databases[1]);
    dr_tests::publish(&plan).await;
    let over = 2.0 * plan.targets.rpo().as_secs_f64();
    publish_replica_lag(&clients.dr, &second.replica_instance, over).await.expect("lag published");

    // Readiness lists each database's three rows, and names the one over the RPO.
    let readiness = check_plan(&clients, &plan, Scope::DataPlane).await;
    let row = |check: &str, instance: &str| {
        readiness
            .rows
            .iter()
            .find(|row| row.check.label() == check && row.resource.starts_with(instance))
            .unwrap_or_else(|| panic!("no {check} row for {instance}: {:#?}", readiness.rows))
    };
    for db in [first, second] {
        assert!(row("primary database", &db.primary_instance).is_ready(), "{:#?}", readiness.rows);
        assert!(row("read replica", &db.replica_instance).is_ready(), "{:#?}", readiness.rows);
    }
    assert!(row("replica lag", &first.replica_instance).is_ready());
    let lagging = row("replica lag", &second.replica_instance);
    assert_eq!(lagging.finding.map(|f| f.name()), Some("RpoExceeded"), "{lagging:?}");

    let bucket = format!("plans-{}", plan.name);
    let runbook = register_runbook(&clients, &plan, &bucket).await;
    let store = PlanStore::new(clients.dr.s3.clone(), &bucket);
    store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let (arn, run_id) = start_failover(&plan_file(&plan), &store, &runbook);
    let watcher = watch(&arn);
    wait_for_question(&store, &plan, &run_id).await;

    // One question, about the lagging database, and no promotion while it waits: not even the
    // database within the RPO.
    let (asked, _) = store.read_decision(&plan.name, &run_id, Question::RpoGate).await.expect("read").expect("asked");
    assert!(asked.question.contains(&second.replica_instance), "{}", asked.question);
    tokio::time::sleep(Duration::from_secs(2)).await;
    for db in [first, second] {
        assert!(
            is_replica(&clients, &db.replica_instance).await,
            "{} promoted before the decision",
            db.replica_instance
        );
    }

    let approved = drctl(&["run", "approve", &arn, "--reason", "Paris down; the orders database's loss accepted"]);
    assert!(approved.status.success(), "{approved:?}");
    let watched = watcher.wait_with_output().expect("the watch ends");
    let shown = String::from_utf8_lossy(&watched.stdout);
    assert_eq!(watched.status.code(), Some(0), "{shown}\n{}", String::from_utf8_lossy(&watched.stderr));
    for db in [first, second] {
        assert!(!is_replica(&clients, &db.replica_instance).await, "{} not promoted", db.replica_instance);
        // The watch gives each database its own line under the step that changed it.
        let line = format!("            {}: ", db.replica_instance);
        assert!(shown.contains(&line), "no line for {} in the watch:\n{shown}", db.replica_instance);
    }
    let report: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("report");
    let gate = report.gate.as_ref().expect("gate");
    assert_eq!(gate.verdict, GateVerdict::Approved);
    // The data tier's achieved RPO is its worst database's.
    assert!(gate.lag_seconds.is_some_and(|lag| lag >= over), "{gate:?}");
    assert!(gate.reason.contains(&first.replica_instance) && gate.reason.contains(&second.replica_instance));
    let promote = report.steps.iter().find(|s| s.step == "promote-replica").expect("the promotion");
    let promoted: Vec<&str> = promote.resources.iter().map(|r| r.resource.as_str()).collect();
    assert_eq!(promoted, [first.replica_instance.as_str(), second.replica_instance.as_str()], "{promote:#?}");
    eprintln!("the gate: {}\nthe promotion: {}", gate.reason, promote.detail);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_promotion_failing_after_the_first_rolls_the_drill_back_with_no_row_lost() {
    let (plan, clients) = seeded_estate_with(with_second_database).await;
    let (first, second) = (&plan.databases[0], &plan.databases[1]);
    let pairs = [
        back_database_with_real_pair(&clients, &plan, first, "split-a").await,
        back_database_with_real_pair(&clients, &plan, second, "split-b").await,
    ];
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = pairs
        .iter()
        .map(|pair| {
            pair.sql(&pair.primary, "CREATE TABLE writes (n bigint PRIMARY KEY)").expect("table");
            start_writer(pair, Arc::clone(&stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    // RDS accepts the orders replica's promotion, which then cannot finish.
    promotion_fails(&clients, &plan.dr_region, &second.replica_instance, "incompatible-parameters")
        .await
        .expect("the failure set");

    let run_id = format!("split-{}", unique_suffix());
    let execution = run_drill(&plan, &run_id, Duration::from_millis(300)).await;
    // The application writes on a moment after the roll-back: Paris takes it again.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let acknowledged: Vec<Vec<u64>> = writers.into_iter().map(|w| w.join().expect("writer").0).collect();

    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("ReplicaFailed"), "{execution:#?}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(cause.contains(&second.replica_instance) && cause.contains("incompatible-parameters"), "{cause}");
    assert!(failure.steps.iter().all(|s| !s.step.starts_with("flip-dns")), "DNS never moved: {:#?}", failure.steps);
    // Both instances the run asked to promote are marked: neither follows Paris any more.
    let marked = failure.steps.iter().find(|s| s.step == "mark-diverged").expect("the mark is reported");
    let diverged = marked.facts.get("diverged").cloned().unwrap_or_default();
    assert!(diverged.contains(&first.replica_instance) && diverged.contains(&second.replica_instance), "{marked:#?}");
    assert!(failure.rolled_back.first().is_some_and(|l| l.starts_with("rolled back: fence undone")), "{failure:#?}");

    // Paris serves again: each database has every acknowledged row and takes writes.
    for (pair, acknowledged) in pairs.iter().zip(&acknowledged) {
        let in_paris = rows_on(pair, &pair.primary);
        let lost = missing(acknowledged, &in_paris);
        eprintln!("split data tier rolled back: {} rows acknowledged, {} lost", acknowledged.len(), lost.len());
        assert!(!acknowledged.is_empty() && lost.is_empty(), "acknowledged in Paris, missing there: {lost:?}");
        pair.sql(&pair.primary, "INSERT INTO writes (n) VALUES (-1)").expect("Paris writable after the roll-back");
    }
}

/// An estate with two databases whose second promotion RDS accepts and cannot finish (and, with
/// `both`, the first's too), published and armed, and an unplanned failover started with drctl:
/// the plan, its clients, its store, the execution's ARN and the run id.
async fn unplanned_run_whose_promotions_fail(
    both: bool,
) -> (Plan, dr_core::aws::AwsClients, PlanStore, String, String) {
    let (plan, clients) = seeded_estate_with(with_second_database).await;
    dr_tests::publish(&plan).await;
    let failing = if both { &plan.databases[..] } else { &plan.databases[1..] };
    for db in failing {
        promotion_fails(&clients, &plan.dr_region, &db.replica_instance, "incompatible-parameters")
            .await
            .expect("the failure set");
    }
    let bucket = format!("plans-{}", plan.name);
    let runbook = register_runbook(&clients, &plan, &bucket).await;
    let store = PlanStore::new(clients.dr.s3.clone(), &bucket);
    store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let (arn, run_id) = start_failover(&plan_file(&plan), &store, &runbook);
    (plan, clients, store, arn, run_id)
}

/// The run's report (or failure report).
async fn report_of(clients: &dr_core::aws::AwsClients, plan: &Plan, run_id: &str) -> RunReport {
    serde_json::from_slice(&read_report(clients, plan, run_id, "report.json").await).expect("report")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unplanned_run_whose_second_promotion_fails_asks_before_traffic_moves_on_a_split_data_tier() {
    let (plan, clients, store, arn, run_id) = unplanned_run_whose_promotions_fail(false).await;
    let (first, second) = (&plan.databases[0], &plan.databases[1]);
    let watcher = watch(&arn);
    let asked = wait_for_decision(&store, &plan, &run_id, Question::DataTier).await;
    // The question says what is split: the first promoted, the second not.
    assert!(asked.question.contains("ReplicaFailed") && asked.question.contains("data tier is split"), "{asked:#?}");
    let split = asked.question.split("the data tier is split: ").nth(1).unwrap_or_default();
    let promoted = split.split("not promoted").next().unwrap_or_default();
    assert!(promoted.contains(&first.replica_instance) && !promoted.contains(&second.replica_instance), "{asked:#?}");
    let approved = drctl(&["run", "approve", &arn, "--reason", "orders read-only for now; the rest must serve"]);
    assert!(approved.status.success(), "{approved:?}");
    let watched = watcher.wait_with_output().expect("the watch ends");
    let shown = String::from_utf8_lossy(&watched.stdout);
    assert_eq!(watched.status.code(), Some(0), "{shown}\n{}", String::from_utf8_lossy(&watched.stderr));
    assert!(shown.contains("the data tier failed"), "the watch names the wait: {shown}");
    let report = report_of(&clients, &plan, &run_id).await;
    assert!(report.steps.iter().any(|s| s.step == "flip-dns-status" && s.ready), "traffic moved: {:#?}", report.steps);
    let split = report.split_data_tier.as_deref().unwrap_or_default();
    assert!(split.contains("approved by") && split.contains(&second.replica_instance), "{report:#?}");
    assert!(!is_replica(&clients, &first.replica_instance).await, "the first database serves in Ireland");
    // Traffic moved only after the human's answer.
    let (decided, _) =
        store.read_decision(&plan.name, &run_id, Question::DataTier).await.expect("read").expect("asked");
    let flip = report.steps.iter().find(|s| s.step == "flip-dns").expect("the DNS step");
    assert!(decided.decided_at.is_some_and(|at| flip.started_at >= at), "{decided:#?} {flip:#?}");
    eprintln!("the report: {split}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_split_data_tier_rejected_stops_the_run_with_traffic_where_it_was_and_a_whole_one_asks_nothing() {
    // Split, rejected: the run stops, DNS never moved, the first database stays promoted.
    let (plan, clients, store, arn, run_id) = unplanned_run_whose_promotions_fail(false).await;
    wait_for_decision(&store, &plan, &run_id, Question::DataTier).await;
    let rejected = drctl(&["run", "reject", &arn, "--reason", "not without the orders database"]);
    assert!(rejected.status.success(), "{rejected:?}");
    let report = wait_for_report(&clients, &plan, &run_id).await;
    let error = report.head.error.as_ref().map(|e| e.error.clone());
    assert_eq!(error.as_deref(), Some("DecisionRejected"), "{report:#?}");
    assert!(report.steps.iter().all(|s| !s.step.starts_with("flip-dns")), "DNS never moved: {:#?}", report.steps);
    assert!(report.split_data_tier.is_none(), "{report:#?}");

    // Both promotions failing: nothing promoted, the tier is whole, nothing is asked.
    let (plan, clients, store, _, run_id) = unplanned_run_whose_promotions_fail(true).await;
    let report = wait_for_report(&clients, &plan, &run_id).await;
    let error = report.head.error.as_ref().map(|e| e.error.clone());
    assert_eq!(error.as_deref(), Some("ReplicaFailed"), "{report:#?}");
    let asked = store.read_decision(&plan.name, &run_id, Question::DataTier).await.expect("read");
    assert!(asked.is_none(), "a whole data tier asks nothing: {asked:?}");
    let decision = report.steps.iter().find(|s| s.step == "data-tier-decision").expect("the check is reported");
    assert!(decision.detail.contains("the data tier is whole"), "{decision:#?}");
}

/// Waits for the run's report.
async fn wait_for_report(clients: &dr_core::aws::AwsClients, plan: &Plan, run_id: &str) -> RunReport {
    let key = format!("{}{}/{run_id}/report.json", plan.reports.prefix, plan.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while clients.dr.s3.head_object().bucket(&plan.reports.bucket).key(&key).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "no report for run {run_id}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    report_of(clients, plan, run_id).await
}

#[tokio::test(flavor = "multi_thread")]
async fn each_database_is_promoted_once_under_throttling_and_lost_answers_and_a_dry_run_promotes_none() {
    let (plan, clients) = seeded_estate_with(with_second_database).await;
    let replicas: Vec<&str> = plan.databases.iter().map(|db| db.replica_instance.as_str()).collect();

    // A dry run names each promotion, and makes none.
    let mut dry: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("dbs-dry-{}", unique_suffix())).await).expect("state");
    dry.run.mode = RunMode::DryRun;
    let execution = dr_tests::run_failover_polling(&serde_json::to_value(&dry).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let rehearsed: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(rehearsed.mutating_calls, 0, "{rehearsed:#?}");
    let promote = rehearsed.steps.iter().find(|s| s.step == "promote-replica").expect("the promotion");
    for replica in &replicas {
        assert!(promote.detail.contains(&format!("promote {replica} to a standalone primary")), "{promote:#?}");
        assert!(is_replica(&clients, replica).await, "a dry run promoted {replica}");
    }

    let run_id = format!("dbs-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 43, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    eprintln!("two databases under {:?}: re-runs after {stopped:?}", injected.injected);
    let mut promotions: Vec<(&str, u32)> = injected
        .applied
        .iter()
        .filter(|call| call.operation == "PromoteReadReplica")
        .map(|call| (call.target.trim_start_matches("DBInstanceIdentifier="), call.times))
        .collect();
    promotions.sort_unstable();
    let mut once: Vec<(&str, u32)> = replicas.iter().map(|replica| (*replica, 1)).collect();
    once.sort_unstable();
    assert_eq!(promotions, once, "each replica promoted exactly once: {injected:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let status = report.steps.iter().find(|s| s.step == "promote-replica-status").expect("the status step");
    for replica in &replicas {
        assert!(!is_replica(&clients, replica).await, "{replica} not promoted");
        assert!(status.resources.iter().any(|r| r.resource == *replica), "{status:#?}");
    }
}

#[test]
fn a_plan_with_its_databases_written_badly_is_refused_by_name() {
    let text = std::fs::read_to_string(dr_tests::example_plan_path()).expect("the example plan");
    let estate = text.replacen("[database]", "[[databases]]", 1);
    let plan = Plan::parse(&estate, "estate").expect("[[databases]] reads");
    assert_eq!(plan.databases.len(), 1);
    assert_eq!(plan.version().expect("version"), Plan::parse(&text, "single").expect("single").version().expect("v"));

    let mut two = plan.clone();
    with_second_database(&mut two);
    two.validate().expect("two databases");
    assert!(two.published_text().expect("text").matches("[[databases]]").count() == 2);
    let again = Plan::parse(&two.published_text().expect("text"), "again").expect("read back");
    assert_eq!(again, two);

    let codes = |plan: &Plan| match plan.validate() {
        Err(dr_core::error::DrError::InvalidPlan { problems, .. }) => {
            problems.into_iter().map(|p| (p.code.name().to_string(), p.field)).collect::<Vec<_>>()
        }
        other => panic!("refused expected: {other:?}"),
    };
    let mut same = two.clone();
    same.databases[1].replica_instance = same.databases[0].replica_instance.clone();
    assert_eq!(codes(&same), [("InvalidDatabase".to_string(), "databases[1].replica_instance".to_string())]);
    let mut none = two.clone();
    none.databases.clear();
    assert!(codes(&none).contains(&("InvalidDatabase".to_string(), "databases".to_string())));
    let mut short = two.clone();
    short.databases[1].backup_retention_days = 0;
    assert_eq!(
        codes(&short),
        [("BackupRetentionOutOfRange".to_string(), "databases[1].backup_retention_days".to_string())]
    );

    // Both forms at once is a parse error that names the field.
    let both = format!("{text}\n[[databases]]\nprimary_instance = \"a\"\nreplica_instance = \"b\"\n");
    let refused = Plan::parse(&both, "both").expect_err("both forms");
    assert!(refused.to_string().contains("databases"), "{refused}");
}
