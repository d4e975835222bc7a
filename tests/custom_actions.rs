//! The plan's custom actions (issue 32, in part): the plan's own Lambdas at four points of a run,
//! standing for what the plan does not know (a Redis global datastore, EFS replication). The
//! local stand-in is `dr-custom-action-application` (crates/dr-emulator/src/bin/application-hooks.rs),
//! which keeps a journal of every ask and starts its work once per idempotency key.
//!
//! - A dry run tells every action `dry_run: true` once; nothing starts. A failover asks each at its
//!   point, in order, told the run; an action that is not done at once is asked again until it
//!   is; under throttling and lost answers each action still starts once; the report names each.
//! - A drill whose action after the data tier fails rolls back: Paris serves again, DNS never
//!   moved.
//! - The readiness check lists every action in both regions, and names one not deployed.
//! - A failback tells its actions the way back, and invokes them in Paris.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::plan::Direction;
use dr_core::plan::{ActionPoint, CustomAction};
use dr_core::readiness::{Check, CheckRow, Finding, Scope, check_plan};
use dr_core::run::{FailoverKind, RunMode, RunbookState, StepRecord};
use dr_core::runbook::report::RunReport;
use dr_emulator::estate::ensure_bucket;
use serde_json::{Value, json};

use crate::database::start_writer;
use dr_tests::{backed_estate, failover_input, failover_under_faults, read_report, seeded_estate, unique_suffix};

const APPLICATION: &str = "dr-local-application";
const FUNCTION: &str = "dr-custom-action-application";

/// One action at each point; `redis` (after the data tier) is done at its third ask.
fn with_actions(plan: &mut Plan) {
    let action =
        |name: &str, point| CustomAction { name: name.into(), function: FUNCTION.into(), point, timeout_seconds: 600 };
    plan.custom_actions = vec![
        action("drain-queues", ActionPoint::BeforeDataTier),
        action("redis", ActionPoint::AfterDataTier),
        action("efs", ActionPoint::AfterCompute),
        action("cache-flush", ActionPoint::AfterTraffic),
    ];
    plan.validate().expect("the plan with its actions is valid");
}

/// Sets what the stand-in action does for this plan (`asks_before_ready`, `fails`).
async fn configure_action(clients: &AwsClients, plan: &Plan, action: &str, config: Value) {
    ensure_bucket(&clients.dr, APPLICATION).await.expect("application bucket");
    let put = clients.dr.s3.put_object().bucket(APPLICATION).key(format!("action-config/{}/{action}", plan.name));
    put.body(ByteStream::from(config.to_string().into_bytes())).send().await.expect("action configured");
}

/// The stand-in's journal of `action` in run `run_id`: every ask, and how often it started.
async fn journal(clients: &AwsClients, plan: &Plan, run_id: &str, action: &str) -> Value {
    let key = format!("custom-actions/{}/{run_id}/{action}.json", plan.name);
    let found = clients.dr.s3.get_object().bucket(APPLICATION).key(&key).send().await;
    let found = found.unwrap_or_else(|e| panic!("{action} was never asked in {run_id}: {e:?}"));
    serde_json::from_slice(&found.body.collect().await.expect("journal").into_bytes()).expect("JSON")
}

fn asks(journal: &Value) -> Vec<Value> {
    journal["asks"].as_array().cloned().unwrap_or_default()
}

fn first_ask_at(journal: &Value) -> String {
    asks(journal).first().and_then(|ask| ask["at"].as_str().map(str::to_string)).expect("an ask")
}

/// Every action of `record` was invoked in `region` (where the run moved to), and at least one.
fn assert_invoked_in(record: &StepRecord, region: &str) {
    let invokes: Vec<&str> =
        record.calls.iter().filter(|c| c.operation == "Invoke").map(|c| c.region.as_str()).collect();
    assert!(!invokes.is_empty() && invokes.iter().all(|r| *r == region), "{} invoked in {invokes:?}", record.step);
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_actions_are_told_the_run_at_their_points_and_start_once_under_throttling_and_lost_answers() {
    let (mut plan, clients) = seeded_estate().await;
    with_actions(&mut plan);
    configure_action(&clients, &plan, "redis", json!({ "asks_before_ready": 3 })).await;

    // A dry run: every action told once, that it is a dry run; none starts.
    let dry_id = format!("actions-dry-{}", unique_suffix());
    let mut dry: RunbookState = serde_json::from_value(failover_input(&plan, &dry_id).await).expect("state");
    dry.run.mode = RunMode::DryRun;
    let execution = dr_tests::run_failover_polling(&serde_json::to_value(&dry).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    for action in &plan.custom_actions {
        let journal = journal(&clients, &plan, &dry_id, &action.name).await;
        assert_eq!(asks(&journal).len(), 1, "{}: {journal:#}", action.name);
        assert_eq!(asks(&journal)[0]["dry_run"], true);
        assert_eq!(journal["started"], 0, "a dry run starts nothing: {journal:#}");
    }
    let mutating: Vec<String> =
        report.steps.iter().flat_map(|s| &s.calls).filter(|c| c.is_mutating()).map(|c| c.operation.clone()).collect();
    assert!(mutating.iter().all(|op| op == "Invoke"), "a dry run only tells the actions: {mutating:?}");

    // The failover, under throttling and lost answers, run again from where it stopped.
    let run_id = format!("actions-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 32, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    eprintln!("custom actions under {:?}: re-runs after {stopped:?}", injected.injected);
    let invokes: u32 = injected.applied.iter().filter(|c| c.operation == "Invoke").map(|c| c.times).sum();
    assert!(invokes > 4, "actions were asked again (not ready, or an answer lost): {injected:#?}");

    let mut first = std::collections::BTreeMap::new();
    for action in &plan.custom_actions {
        let journal = journal(&clients, &plan, &run_id, &action.name).await;
        // One key on every ask (an action told a new key per ask would start again each time).
        assert_eq!(journal["started"], 1, "{} started once however often asked: {journal:#}", action.name);
        assert_eq!(journal["started_keys"], json!([format!("{run_id}/{}", action.name)]), "{journal:#}");
        for ask in asks(&journal) {
            assert_eq!(ask["point"], action.point.as_str());
            assert_eq!(ask["kind"], "unplanned");
            assert_eq!(ask["direction"], "to-dr");
            assert_eq!(
                (ask["from_region"].as_str(), ask["to_region"].as_str()),
                (Some("eu-west-3"), Some("eu-west-1"))
            );
            assert_eq!(ask["dry_run"], false);
            assert_eq!(ask["idempotency_key"], format!("{run_id}/{}", action.name));
        }
        first.insert(action.name.clone(), first_ask_at(&journal));
    }
    let redis = journal(&clients, &plan, &run_id, "redis").await;
    assert!(asks(&redis).len() >= 3, "asked until done: {redis:#}");
    // Before the data tier comes first; after traffic, last; the two tiers' run side by side.
    assert!(first["drain-queues"] < first["redis"] && first["drain-queues"] < first["efs"], "{first:?}");
    assert!(first["cache-flush"] > first["redis"] && first["cache-flush"] > first["efs"], "{first:?}");

    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let markdown = String::from_utf8(read_report(&clients, &plan, &run_id, "report.md").await).expect("markdown");
    for action in &plan.custom_actions {
        let named = format!("custom action {} ({FUNCTION})", action.name);
        assert!(markdown.contains(&named), "the report names {named}: {markdown}");
        let record =
            report.steps.iter().find(|s| s.step == format!("custom-actions-{}", action.point)).expect("record");
        assert!(record.resources.iter().any(|r| r.resource == named && r.state.starts_with("ready")), "{record:#?}");
        assert_invoked_in(record, "eu-west-1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_whose_action_after_the_data_tier_fails_rolls_back_and_paris_serves_again() {
    let (mut plan, clients, pair) = backed_estate("action-fails").await;
    with_actions(&mut plan);
    configure_action(&clients, &plan, "redis", json!({ "fails": "the global datastore refused the failover" })).await;
    pair.sql(&pair.primary, "CREATE TABLE writes (n bigint PRIMARY KEY)").expect("table");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&pair, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));

    let run_id = format!("action-fails-{}", unique_suffix());
    let mut state: RunbookState = serde_json::from_value(failover_input(&plan, &run_id).await).expect("state");
    state.run.kind = FailoverKind::Planned;
    let execution = dr_tests::run_failover_polling(&serde_json::to_value(&state).expect("input"));
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, _) = writer.join().expect("writer");

    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("CustomActionFailed"), "{execution:#?}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(cause.contains("redis") && cause.contains("refused the failover"), "{cause}");
    assert!(failure.rolled_back.first().is_some_and(|l| l.starts_with("rolled back: fence undone")), "{failure:#?}");
    assert!(failure.steps.iter().all(|s| !s.step.starts_with("flip-dns")), "DNS never moved: {:#?}", failure.steps);
    // Traffic never moved, so the action after it was never asked.
    let key = format!("custom-actions/{}/{run_id}/cache-flush.json", plan.name);
    assert!(clients.dr.s3.head_object().bucket(APPLICATION).key(key).send().await.is_err(), "never asked");
    let in_paris: Vec<u64> = pair
        .sql(&pair.primary, "SELECT n FROM writes ORDER BY n")
        .expect("rows")
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect();
    let lost: Vec<&u64> = acknowledged.iter().filter(|n| !in_paris.contains(n)).collect();
    assert!(lost.is_empty(), "acknowledged in Paris, missing there: {lost:?}");
    pair.sql(&pair.primary, "INSERT INTO writes (n) VALUES (-1)").expect("Paris writable after the roll-back");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readiness_check_lists_each_action_where_runs_invoke_it_and_names_a_missing_one() {
    let (mut plan, clients) = seeded_estate().await;
    with_actions(&mut plan);
    plan.custom_actions[3].function = "dr-custom-action-not-deployed".into();
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let rows: Vec<&CheckRow> = readiness.rows.iter().filter(|row| row.check == Check::CustomAction).collect();
    assert_eq!(rows.len(), 8, "each action in Ireland and Paris: {rows:#?}");
    for action in &plan.custom_actions[..3] {
        for region in ["eu-west-1", "eu-west-3"] {
            let row = rows
                .iter()
                .find(|r| r.resource.starts_with(&format!("{} (", action.name)) && r.resource.contains(region));
            assert!(row.is_some_and(|r| r.finding.is_none()), "{} in {region}: {rows:#?}", action.name);
        }
    }
    let missing: Vec<&&CheckRow> = rows.iter().filter(|r| r.finding == Some(Finding::CustomActionMissing)).collect();
    assert_eq!(missing.len(), 2, "{rows:#?}");
    assert!(
        missing.iter().all(|r| r.resource.starts_with("cache-flush (dr-custom-action-not-deployed")),
        "{missing:#?}"
    );
    assert!(readiness.findings().contains(&Finding::CustomActionMissing));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failback_tells_its_actions_the_way_back_and_invokes_them_in_paris() {
    // The pair must outlive the failback: it is the estate's database.
    let crate::failback::Reprotected { mut plan, store, pair: _pair, .. } =
        crate::failback::failed_over_and_reprotected("actions-back").await;
    with_actions(&mut plan);
    let failback = crate::failback::planned_move(&store, &plan, Direction::ToPrimary, "actions-back").await;
    let execution = crate::failback::run_move(&failback);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let clients = dr_tests::emulator_clients(&plan).await;
    for action in &plan.custom_actions {
        let record =
            report.steps.iter().find(|s| s.step == format!("custom-actions-{}", action.point)).expect("record");
        assert_invoked_in(record, "eu-west-3");
        let journal = journal(&clients, &plan, &failback.run.id, &action.name).await;
        for ask in asks(&journal) {
            assert_eq!((ask["kind"].as_str(), ask["direction"].as_str()), (Some("planned"), Some("to-primary")));
            assert_eq!(
                (ask["from_region"].as_str(), ask["to_region"].as_str()),
                (Some("eu-west-1"), Some("eu-west-3"))
            );
        }
    }
}
