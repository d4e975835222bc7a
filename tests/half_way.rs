//! Never half-way (issue 30): a failover that loses compute after preflight either finishes
//! moving on what serves, or puts the source region back serving, and never leaves nothing
//! serving without a human asked.
//!
//! One standby instance is terminated as the run starts it (the emulator's EC2 model: `moto/ec2.py`,
//! `start_terminates`), after preflight found it stopped and ready. The example plan fails over to
//! 2 standby instances and a group of 2, and may serve on 1 of the 2 (`minimum_healthy`).
//! - Above the minimum, a live drill completes on reduced capacity, with no acknowledged row
//!   lost, and its report and notice name the shortfall.
//! - Below it (the plan asks for 2 of 2), the drill rolls back: Paris unfenced (group restored,
//!   database writable), DNS never moved, Ireland's promoted instance marked diverged, the plan
//!   disarmed (no DR until reprotect); also under throttling, 5xx and lost answers.
//! - Below it in an alarm-triggered (unplanned) failover, the run asks a human; approved, traffic
//!   moves on what serves.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::database::start_writer;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{
    db_instance_tags, describe_auto_scaling_group, describe_db_instance, describe_standby_instances,
};
use dr_core::error::parse_input;
use dr_core::notify::NoticeKind;
use dr_core::run::{FailoverKind, Principal, RunbookState};
use dr_core::runbook::database::DIVERGED_BY_RUN_TAG;
use dr_core::runbook::fence::FENCE_CAPACITY_TAG;
use dr_core::runbook::report::RunReport;
use dr_core::store::{DecisionStatus, PlanStatus, PlanStore, Question};
use dr_core::trigger::{Decision, handle_alarm_event};
use dr_emulator::control::{Faults, clear_faults, fault_report, inject_faults, start_terminates};
use dr_emulator::estate::publish_replica_lag;
use dr_emulator::executions::{TriggerSeed, seed_triggers, substitute};
use dr_emulator::outage::{Outage, simulate_outage};
use dr_emulator::postgres::Pair;
use dr_tests::{
    backed_estate, estate_suffix, failover_input, failover_substitutions, local_substitutions, notices, of_kind,
    read_report, recorded_executions, run_state_machine_waiting, seeded_estate, subscribe, trigger_context,
    unique_suffix,
};

/// What EC2 says of an instance shut down by someone else while the run started it.
const TERMINATED: (&str, &str) =
    ("Client.UserInitiatedShutdown", "Client.UserInitiatedShutdown: User initiated shutdown");

/// The first standby instance: terminated as the run starts it (preflight saw it stopped).
async fn lose_a_standby_instance_at_its_start(clients: &AwsClients, plan: &Plan) -> String {
    let instances = describe_standby_instances(&clients.dr.ec2, plan).await.expect("standby instances");
    let lost = instances.first().map(|i| i.id.clone()).expect("a standby instance");
    start_terminates(clients, &lost, TERMINATED.0, TERMINATED.1).await.expect("termination set");
    lost
}

/// A planned move (a live drill) of `plan`, its Wait states lasting `wait`.
pub(crate) async fn run_drill(plan: &Plan, run_id: &str, wait: Duration) -> dr_tests::Execution {
    let mut state: RunbookState = serde_json::from_value(failover_input(plan, run_id).await).expect("state");
    state.run.kind = FailoverKind::Planned;
    let input = serde_json::to_value(&state).expect("input");
    run_state_machine_waiting("failover.asl.json", &failover_substitutions(), &input, wait)
}

/// The rows of `writes` on `server`.
pub(crate) fn rows_on(pair: &Pair, server: &dr_emulator::postgres::Server) -> Vec<u64> {
    pair.sql(server, "SELECT n FROM writes ORDER BY n")
        .expect("rows")
        .lines()
        .filter_map(|line| line.parse().ok())
        .collect()
}

pub(crate) fn missing(acknowledged: &[u64], found: &[u64]) -> Vec<u64> {
    acknowledged.iter().filter(|n| !found.contains(n)).copied().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_that_loses_a_standby_instance_above_the_minimum_completes_on_what_serves() {
    let (plan, mut clients, pair) = backed_estate("degraded").await;
    assert_eq!((plan.standby_instances[0].expected(), plan.standby_instances[0].minimum_healthy), (2, 1));
    let (sqs, queue) = subscribe(&mut clients).await;
    pair.sql(&pair.primary, "CREATE TABLE writes (n bigint PRIMARY KEY)").expect("table");
    let lost = lose_a_standby_instance_at_its_start(&clients, &plan).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&pair, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));

    let run_id = format!("degraded-{}", unique_suffix());
    let execution = run_drill(&plan, &run_id, Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, _) = writer.join().expect("writer");

    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let lost_rows = missing(&acknowledged, &rows_on(&pair, &pair.standby));
    eprintln!("degraded drill: {} rows acknowledged in Paris, {} lost", acknowledged.len(), lost_rows.len());
    assert!(lost_rows.is_empty(), "acknowledged in Paris, missing in Ireland: {lost_rows:?}");
    assert_eq!(report.shortfall.len(), 1, "{report:#?}");
    let shortfall = &report.shortfall[0];
    assert!(shortfall.contains("1 of 2 standby instances serve (minimum 1)"), "{shortfall}");
    assert!(shortfall.contains(&format!("{lost} terminated ({})", TERMINATED.1)), "named as terminated: {shortfall}");
    assert!(!shortfall.contains("fell back"), "{shortfall}");
    assert!(report.steps.iter().any(|s| s.step == "flip-dns-status" && s.ready), "traffic moved: {:#?}", report.steps);
    let markdown = String::from_utf8(read_report(&clients, &plan, &run_id, "report.md").await).expect("markdown");
    assert!(markdown.contains("**Serving on reduced capacity:**"), "{markdown}");

    let mut seen = Vec::new();
    let seen = notices(&sqs, &queue, &plan.name, &mut seen).await;
    let finished = of_kind(&seen, NoticeKind::RunFinished);
    assert_eq!(finished.len(), 1, "{seen:#?}");
    assert!(finished[0].text.contains(&format!("Reduced capacity: {shortfall}")), "{}", finished[0].text);
    eprintln!("what the phone shows:\n{}\n{}", finished[0].subject, finished[0].text);
}

/// After a roll-back: the Paris group at its size before the run with no fence tag, DNS never
/// moved, the promotion and the mark of Ireland's instance as diverged in the failure report.
async fn assert_rolled_back(
    clients: &AwsClients,
    plan: &Plan,
    run_id: &str,
    before: (Option<i32>, Option<i32>, Option<i32>),
) -> RunReport {
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let after = describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    assert_eq!((after.min_size(), after.desired_capacity(), after.max_size()), before, "the Paris group is back");
    assert!(after.tags().iter().all(|t| t.key() != Some(FENCE_CAPACITY_TAG)), "{:?}", after.tags());
    let failure: RunReport =
        serde_json::from_slice(&read_report(clients, plan, run_id, "report.json").await).expect("failure report");
    assert_eq!(failure.head.error.as_ref().map(|e| e.error.as_str()), Some("BelowMinimumCapacity"));
    assert!(failure.steps.iter().all(|s| !s.step.starts_with("flip-dns")), "DNS never moved: {:#?}", failure.steps);
    assert!(failure.steps.iter().any(|s| s.step == "promote-replica"), "the promotion is reported");
    let marked = failure.steps.iter().find(|s| s.step == "mark-diverged").expect("the mark is reported");
    assert_eq!(marked.facts.get("diverged"), Some(&plan.databases[0].replica_instance), "{marked:#?}");
    assert_eq!(failure.rolled_back.len(), 3, "{failure:#?}");
    assert!(failure.rolled_back[0].starts_with("rolled back: fence undone"), "{:?}", failure.rolled_back);
    assert!(failure.rolled_back[1].starts_with("NO DR:"), "{:?}", failure.rolled_back);
    failure
}

/// The run that marked `instance` (in Ireland) diverged, if one did.
async fn diverged_by(clients: &AwsClients, instance: &str) -> Option<String> {
    let db = describe_db_instance(&clients.dr.rds, instance).await.expect("describe").expect("the instance");
    let tags = db_instance_tags(&clients.dr.rds, db.db_instance_arn().expect("ARN")).await.expect("tags");
    tags.get(DIVERGED_BY_RUN_TAG).cloned()
}

/// The reprotect machine of the local deployment (`DEMO_REPROTECT_STATE_MACHINE_ARN`, which the
/// failure report starts after a roll-back), registered once in the local Step Functions.
static REPROTECT_MACHINE: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();

async fn reprotect_machine_registered(clients: &AwsClients, plan: &Plan) -> String {
    let arn = REPROTECT_MACHINE
        .get_or_init(|| async {
            let definition = std::fs::read_to_string(dr_tests::repo_root().join("statemachines/reprotect.asl.json"))
                .expect("reprotect definition");
            let values = local_substitutions("reprotect.local.json");
            let definition = substitute(&definition, values.as_object().expect("an object")).expect("substituted");
            let seed = TriggerSeed {
                plan_state_bucket: format!("plans-{}", plan.name),
                state_machine_name: "dr-reprotect".into(),
                state_machine_definition: definition,
            };
            seed_triggers(clients, plan, &seed).await.expect("the reprotect machine registered")
        })
        .await;
    arn.clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_drill_below_the_minimum_after_the_promotion_puts_paris_back_serving() {
    let (mut plan, mut clients, pair) = backed_estate("rollback").await;
    reprotect_machine_registered(&clients, &plan).await;
    plan.standby_instances[0].minimum_healthy = 2;
    let (sqs, queue) = subscribe(&mut clients).await;
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let before =
        describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    let before = (before.min_size(), before.desired_capacity(), before.max_size());
    pair.sql(&pair.primary, "CREATE TABLE writes (n bigint PRIMARY KEY)").expect("table");
    let lost = lose_a_standby_instance_at_its_start(&clients, &plan).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = start_writer(&pair, Arc::clone(&stop));
    std::thread::sleep(Duration::from_secs(1));

    let run_id = format!("rollback-{}", unique_suffix());
    let execution = run_drill(&plan, &run_id, Duration::from_millis(300)).await;
    // The application writes on a moment after the roll-back: Paris takes it again.
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    let (acknowledged, _) = writer.join().expect("writer");

    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("BelowMinimumCapacity"), "{execution:#?}");
    let failure = assert_rolled_back(&clients, &plan, &run_id, before).await;
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(cause.contains(&format!("{lost} terminated")), "{cause}");
    let in_paris = rows_on(&pair, &pair.primary);
    let lost_rows = missing(&acknowledged, &in_paris);
    let written_after = acknowledged.iter().filter(|n| **n > in_paris.len() as u64 / 2).count();
    eprintln!("rolled-back drill: {} rows acknowledged in Paris, {} lost", acknowledged.len(), lost_rows.len());
    assert!(lost_rows.is_empty(), "acknowledged in Paris, missing there: {lost_rows:?}");
    assert!(written_after > 0, "Paris took writes again");
    pair.sql(&pair.primary, "INSERT INTO writes (n) VALUES (-1)").expect("Paris writable after the roll-back");

    let mut seen = Vec::new();
    let seen = notices(&sqs, &queue, &plan.name, &mut seen).await;
    let failed = of_kind(&seen, NoticeKind::RunFailed);
    assert_eq!(failed.len(), 1, "{seen:#?}");
    assert!(failed[0].text.contains("NO DR:"), "the roll-back pages that Paris has no replica: {}", failed[0].text);
    eprintln!("what the phone shows:\n{}\n{}", failed[0].subject, failed[0].text);

    // The failure report started reprotect at once, in the failback's orientation: the diverged
    // instance retired, Ireland a replica of Paris again.
    let started = failure.rolled_back.iter().find(|l| l.starts_with("reprotect started at once: ")).expect("started");
    let execution_arn = started.trim_start_matches("reprotect started at once: ").to_string();
    assert!(execution_arn.ends_with(&format!(":{run_id}-reprotect")), "{execution_arn}");
    // RDS publishes the new replica's ReplicaLag; moto does not (the seed's lag stands in).
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
        let described = clients.dr.sfn.describe_execution().execution_arn(&execution_arn).send().await;
        let status = described.expect("the reprotect execution").status().as_str().to_string();
        if status != "RUNNING" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(status, "SUCCEEDED", "the reprotect started after the roll-back");
    let replica = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("a new Ireland replica");
    let source = replica.read_replica_source_db_instance_identifier().unwrap_or_default();
    assert!(source.contains(&plan.databases[0].primary_instance), "Ireland replicates Paris again: {source}");
    // The diverged instance was retired, not deleted, and keeps its mark.
    let prefix = format!("{}-retired-", plan.databases[0].replica_instance);
    let mut pages = clients.dr.rds.describe_db_instances().into_paginator().send();
    let mut retired = None;
    while let Some(page) = pages.next().await {
        let page = page.expect("instances");
        let found = page.db_instances().iter().filter_map(|db| db.db_instance_identifier());
        retired = retired.or_else(|| found.into_iter().find(|id| id.starts_with(&prefix)).map(str::to_string));
    }
    let retired = retired.expect("the diverged instance, retired");
    assert_eq!(diverged_by(&clients, &retired).await.as_deref(), Some(run_id.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_roll_back_completes_under_throttling_5xx_and_lost_answers_and_each_change_reaches_aws_once_or_as_undone() {
    let (mut plan, clients, _pair) = backed_estate("rollback-storm").await;
    plan.standby_instances[0].minimum_healthy = 2;
    // An operator starts reprotect here: only the roll-back's own changes are counted.
    if let Some(fence) = plan.fence.as_mut() {
        fence.reprotect_after_roll_back = Some(false);
    }
    let group = plan.fence.as_ref().and_then(|f| f.auto_scaling_group.first().cloned()).expect("fenced group");
    let before =
        describe_auto_scaling_group(&clients.primary.autoscaling, &group).await.expect("group").expect("group");
    let before = (before.min_size(), before.desired_capacity(), before.max_size());
    lose_a_standby_instance_at_its_start(&clients, &plan).await;
    let storm = Faults {
        throttle_share: 0.2,
        server_error_share: 0.1,
        lose_share: 0.5,
        seed: 17,
        ..Faults::for_the_lambdas(estate_suffix(&plan))
    };
    inject_faults(&clients, &storm).await.expect("faults injected");

    let run_id = format!("rollback-storm-{}", unique_suffix());
    let execution = run_drill(&plan, &run_id, Duration::from_millis(200)).await;
    let faults = fault_report(&clients, estate_suffix(&plan)).await.expect("fault report");
    clear_faults(&clients, estate_suffix(&plan)).await.expect("faults cleared");

    eprintln!("roll-back under {:?}", faults.injected);
    assert_eq!(execution.error.as_deref(), Some("BelowMinimumCapacity"), "{execution:#?}");
    assert!(faults.injected.get("lost").copied().unwrap_or(0) > 0, "answers were lost: {faults:#?}");
    let failure = assert_rolled_back(&clients, &plan, &run_id, before).await;
    assert!(failure.rolled_back.iter().any(|l| l.starts_with("reprotect waits for an operator")), "{failure:#?}");
    assert_eq!(diverged_by(&clients, &plan.databases[0].replica_instance).await.as_deref(), Some(run_id.as_str()));
    // Each change once: the fence and its undo are one change each on the Paris group; the
    // replica is tagged once for its promotion and once as diverged.
    let mut changes: BTreeMap<(String, String), u32> = BTreeMap::new();
    for call in &faults.applied {
        *changes.entry((call.operation.clone(), call.target.clone())).or_default() += call.times;
    }
    let times = |operation: &str, target: &str| {
        changes.iter().filter(|((o, t), _)| o == operation && t.contains(target)).map(|(_, n)| *n).sum::<u32>()
    };
    assert_eq!(times("PromoteReadReplica", &plan.databases[0].replica_instance), 1, "{changes:#?}");
    assert_eq!(times("UpdateAutoScalingGroup", &group), 2, "fenced once, unfenced once: {changes:#?}");
    assert_eq!(times("AddTagsToResource", &plan.databases[0].replica_instance), 2, "{changes:#?}");
    assert_eq!(times("ChangeResourceRecordSets", ""), 0, "{changes:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alarm_triggered_failover_below_the_minimum_asks_a_human_and_approved_moves_traffic_on_what_serves() {
    let (mut plan, mut clients) = seeded_estate().await;
    plan.standby_instances[0].minimum_healthy = 2;
    // An action after compute: the compute branch ends before it, and the approval runs it.
    plan.custom_actions = vec![dr_core::plan::CustomAction {
        name: "efs".into(),
        function: "dr-custom-action-application".into(),
        point: dr_core::plan::ActionPoint::AfterCompute,
        timeout_seconds: 600,
    }];
    let (sqs, queue) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed for the test", false).await.expect("armed");
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage simulated");
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm event").expect("event")).await.expect("handled");
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    let lost = lose_a_standby_instance_at_its_start(&clients, &plan).await;
    let (run_id, input) = recorded_executions(&clients, &plan).await.into_iter().next().expect("one execution");

    let running = std::thread::spawn(move || {
        run_state_machine_waiting("failover.asl.json", &failover_substitutions(), &input, Duration::from_millis(300))
    });
    let store: &PlanStore = &ctx.store;
    let deadline = Instant::now() + Duration::from_secs(120);
    let asked = loop {
        if let Some((decision, _)) =
            store.read_decision(&plan.name, &run_id, Question::Capacity).await.expect("decision read")
        {
            break decision;
        }
        if running.is_finished() {
            panic!("the run ended without asking: {:#?}", running.join().expect("the run"));
        }
        assert!(Instant::now() < deadline, "run {run_id} never asked about its capacity");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(asked.status, DecisionStatus::Pending);
    assert!(asked.question.contains("BelowMinimumCapacity") && asked.question.contains(&lost), "{}", asked.question);
    let state: RunbookState =
        serde_json::from_value(recorded_executions(&clients, &plan).await.into_iter().next().expect("execution").1)
            .expect("state");
    let me = dr_core::aws::identity::caller(&clients.dr.sts).await.expect("who the tests are");
    let by = Principal { arn: me.arn.clone(), user_id: me.user_id };
    store
        .decide(&plan, &state.run, Question::Capacity, DecisionStatus::Approved, &by, "one instance serves: go")
        .await
        .expect("approved");
    let execution = running.join().expect("the run ends");

    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    assert!(report.steps.iter().any(|s| s.step == "flip-dns-status" && s.ready), "traffic moved: {:#?}", report.steps);
    assert_eq!(report.shortfall.len(), 1, "{report:#?}");
    assert!(report.shortfall[0].contains(&format!("approved by {}", me.arn)), "{:?}", report.shortfall);
    let actions = report.steps.iter().find(|s| s.step == "custom-actions-after-compute").expect("the action ran");
    assert!(actions.ready && actions.detail.contains("custom action efs"), "{actions:#?}");
    assert_eq!(store.read_state(&plan.name).await.expect("state").state.status, PlanStatus::FailedOver);

    let mut seen = Vec::new();
    let seen = notices(&sqs, &queue, &plan.name, &mut seen).await;
    let asked = of_kind(&seen, NoticeKind::DecisionNeeded);
    assert_eq!(asked.len(), 1, "told once, however often the run asks: {seen:#?}");
    assert!(asked[0].subject.contains("below minimum capacity after the promotion"), "{}", asked[0].subject);
    assert!(asked[0].text.contains("drctl run approve") && asked[0].text.contains("drctl run reject"));
    eprintln!("what the phone shows:\n{}\n{}", asked[0].subject, asked[0].text);
}
