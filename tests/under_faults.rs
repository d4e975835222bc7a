//! The runbooks under the faults of a regional event, injected between the local functions and
//! the emulator (crates/dr-emulator/moto/faults.py): a region whose every call hangs, throttling
//! and 5xx answers, changes that take effect and whose answer is lost. And the transient states
//! AWS shows and moto does not: a replica in its backup window, an instance that falls back to
//! stopped, a terminated standby instance.
//!
//! Each test's faults are scoped to its own estate (the calls about its resources, whose names
//! carry the plan's suffix: `dr_tests::estate_suffix`), so the tests run beside the others. Each
//! counts the changes that reached AWS for its estate (`FaultReport::applied`).
//! Run with `--nocapture` to see the figures of the fault-injection table (docs/testing.md).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::InstanceStateName;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{describe_db_instance, describe_standby_instances};
use dr_core::restore::RestoreReport;
use dr_core::rpo::check::{DEFAULT_NAMESPACE, run_check};
use dr_core::run::RunStatus;
use dr_core::runbook::report::RunReport;
use dr_emulator::control::{
    FaultReport, Faults, clear_faults, fault_report, hold_rds_status, inject_faults, start_falls_back,
};
use dr_emulator::estate::{SeedOptions, seed};
use dr_tests::{
    Execution, clients_as_the_lambdas, emulator_clients, estate_suffix, failover_input, failover_substitutions,
    isolated_plan, published_failover_input, published_restore_input, read_report, run_failover, run_restore_test,
    run_state_machine_waiting, seeded_estate, unique_suffix,
};

/// The template's `Timeout` of every step function.
const FUNCTION_TIMEOUT_MS: f64 = 60_000.0;

/// Starts counting the functions' changes, with `faults` injected.
async fn faults_on(clients: &AwsClients, faults: Faults) {
    inject_faults(clients, &faults).await.expect("faults injected");
}

/// Stops the faults on `plan`'s estate: what was injected and which changes took effect.
async fn faults_off(clients: &AwsClients, plan: &Plan) -> FaultReport {
    let report = fault_report(clients, estate_suffix(plan)).await.expect("fault report");
    clear_faults(clients, estate_suffix(plan)).await.expect("faults cleared");
    report
}

/// No fault yet on the functions' calls about `plan`'s estate: its changes are counted.
fn counting(plan: &Plan) -> Faults {
    Faults::for_the_lambdas(estate_suffix(plan))
}

fn report_of(execution: &Execution) -> RunReport {
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    serde_json::from_value(execution.output.clone()).expect("the execution output is the run report")
}

/// The changes to the estate (not reports, snapshots or metrics of the checks): operation ->
/// (target, times it took effect).
fn estate_changes(report: &FaultReport) -> BTreeMap<String, Vec<(String, u32)>> {
    const ESTATE: [&str; 9] = [
        "PromoteReadReplica",
        "StartInstances",
        "UpdateAutoScalingGroup",
        "ChangeResourceRecordSets",
        "RestoreDBInstanceToPointInTime",
        "RestoreDBInstanceFromDBSnapshot",
        "DeleteDBInstance",
        "AddTagsToResource",
        "RemoveTagsFromResource",
    ];
    let mut changes: BTreeMap<String, Vec<(String, u32)>> = BTreeMap::new();
    for call in &report.applied {
        let routing = call.operation == "PutMetricData" && call.target.contains("DrOrchestrator/Routing");
        if ESTATE.contains(&call.operation.as_str()) || routing {
            changes.entry(call.operation.clone()).or_default().push((call.target.clone(), call.times));
        }
    }
    changes
}

/// Every change reached AWS once, and each of `expected` did. The routing metric is the one
/// change repeated by design: the same value, published on every poll until DNS answers Ireland
/// (Route 53's checkers may miss a datapoint; `runbook::dns`).
fn assert_each_change_once(report: &FaultReport, expected: &[&str]) {
    let changes = estate_changes(report);
    for (operation, targets) in &changes {
        if operation == "PutMetricData" {
            continue;
        }
        for (target, times) in targets {
            assert_eq!(*times, 1, "{operation} on {target} took effect {times} times: {report:#?}");
        }
    }
    for operation in expected {
        assert!(changes.contains_key(*operation), "{operation} never took effect: {report:#?}");
    }
}

/// Each Task state's runs: (state, milliseconds from entered to exited or failed).
fn task_durations(execution: &Execution) -> Vec<(String, f64)> {
    let mut entered: BTreeMap<String, f64> = BTreeMap::new();
    let mut durations = Vec::new();
    for event in &execution.events {
        let Some(state) = event.state.clone() else { continue };
        match event.kind.as_str() {
            "StateEntered" => {
                entered.insert(state, event.timestamp);
            }
            "StateExited" | "StateFailed" => {
                if let Some(start) = entered.remove(&state) {
                    durations.push((state, event.timestamp - start));
                }
            }
            _ => {}
        }
    }
    durations
}

/// The plan with `count` replicated bucket pairs, each named for this test.
fn plan_with_bucket_pairs(count: usize) -> Plan {
    let mut plan = isolated_plan();
    let template = plan.s3_replication.first().cloned().expect("the example plan replicates a bucket");
    plan.s3_replication = (0..count)
        .map(|index| {
            let mut pair = template.clone();
            pair.source_bucket = format!("{}-{index}", template.source_bucket);
            pair.replica_bucket = format!("{}-{index}", template.replica_bucket);
            pair
        })
        .collect();
    plan.validate().expect("still a valid plan");
    plan
}

#[tokio::test(flavor = "multi_thread")]
async fn paris_unreachable_with_four_bucket_pairs_fails_over_and_no_step_outlasts_its_timeout() {
    let plan = plan_with_bucket_pairs(4);
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding");
    let faults = Faults { hang_regions: vec![plan.primary_region.clone()], ..counting(&plan) };
    faults_on(&clients, faults).await;

    let run_id = format!("paris-hangs-{}", unique_suffix());
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    let faults = faults_off(&clients, &plan).await;
    let report = report_of(&execution);

    assert_eq!(report.head.status, RunStatus::Succeeded);
    assert!(faults.injected.get("hung").copied().unwrap_or(0) > 0, "Paris was called and hung: {faults:#?}");
    let durations = task_durations(&execution);
    let longest = durations.iter().map(|(_, ms)| *ms).fold(0.0, f64::max);
    eprintln!("Paris hangs, 4 bucket pairs: {} Task runs, the longest {:.1} s", durations.len(), longest / 1000.0);
    for (state, ms) in &durations {
        assert!(*ms < FUNCTION_TIMEOUT_MS, "{state} ran {ms} ms, past its function's timeout");
    }
    let retried: Vec<_> = execution.events.iter().filter(|e| e.kind == "StateRetried").collect();
    assert!(retried.is_empty(), "no step had to be retried: {retried:#?}");
    // Paris did not answer: the report says so rather than failing.
    let primary = report.final_state.iter().find(|row| row.check.label() == "primary database").expect("primary row");
    assert!(primary.detail.contains("did not answer"), "{primary:?}");
    assert_each_change_once(
        &faults,
        &["PromoteReadReplica", "StartInstances", "UpdateAutoScalingGroup", "PutMetricData"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_in_its_backup_window_past_every_retry_is_waited_out_then_promoted() {
    let (plan, clients) = seeded_estate().await;
    faults_on(&clients, counting(&plan)).await;
    // RDS refuses PromoteReadReplica while the replica is `backing-up`, for minutes on AWS. The
    // local engine plays every Retry interval as 0 ms, so a window of 30 s already outlasts the
    // promote step's every retry: what is tested is that the runbook then waits it out with its
    // Wait loop and its budget, not the window's length, so the window and the Waits are short.
    let backup = Duration::from_secs(30);
    let held = std::time::Instant::now();
    hold_rds_status(&clients, &plan.dr_region, &plan.databases[0].replica_instance, "backing-up", backup.as_secs())
        .await
        .expect("replica held in backing-up");

    let run_id = format!("backing-up-{}", unique_suffix());
    let input = failover_input(&plan, &run_id).await;
    // Each Wait lasts 1 s (the plan's 4 h RTO polls every few minutes on AWS).
    let execution =
        run_state_machine_waiting("failover.asl.json", &failover_substitutions(), &input, Duration::from_secs(1));
    let faults = faults_off(&clients, &plan).await;
    let report = report_of(&execution);

    // The window began a little before the run: the run ends after it, its promotion having
    // waited most of it.
    assert!(held.elapsed() >= backup, "the run waited out the backup window");
    let promote = report.timeline.iter().find(|e| e.phase == "promote replica").expect("promote phase");
    assert!(promote.seconds >= 20.0, "promotion waited for the backup: {promote:?}");
    let replica = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("replica");
    assert_eq!(replica.read_replica_source_db_instance_identifier(), None, "promoted");
    eprintln!("replica backing-up for {} s: promoted after {:.0} s", backup.as_secs(), promote.seconds);
    assert_each_change_once(&faults, &["PromoteReadReplica"]);
}

pub(crate) async fn first_standby_instance(clients: &AwsClients, plan: &Plan) -> String {
    let instances = describe_standby_instances(&clients.dr.ec2, plan).await.expect("standby instances");
    instances.first().map(|i| i.id.clone()).expect("a standby instance")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_instance_that_falls_back_to_stopped_is_started_again() {
    let (plan, clients) = seeded_estate().await;
    faults_on(&clients, counting(&plan)).await;
    let instance = first_standby_instance(&clients, &plan).await;
    start_falls_back(&clients, &instance, 1, "Server.InsufficientInstanceCapacity", "Insufficient capacity.")
        .await
        .expect("fallback set");

    let report = report_of(&run_failover(&failover_input(&plan, &format!("fallback-{}", unique_suffix())).await));
    let faults = faults_off(&clients, &plan).await;

    let instances = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances");
    assert!(instances.iter().all(|i| i.state == InstanceStateName::Running), "{instances:?}");
    let details: Vec<&str> = report.steps.iter().map(|s| s.detail.as_str()).collect();
    assert!(
        details.iter().any(|d| d.contains(&instance) && d.contains("fell back")),
        "the report gives the reason of the restart: {details:#?}"
    );
    let starts: Vec<_> = faults.applied.iter().filter(|c| c.operation == "StartInstances").collect();
    assert_eq!(starts.iter().map(|c| c.times).sum::<u32>(), 2, "one start, one restart: {starts:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_standby_instance_that_keeps_falling_back_stops_the_run_by_name() {
    let (mut plan, clients) = seeded_estate().await;
    // Both instances needed: one that never starts leaves the run below the plan's minimum.
    plan.standby_instances[0].minimum_healthy = 2;
    faults_on(&clients, counting(&plan)).await;
    let instance = first_standby_instance(&clients, &plan).await;
    // What EC2 says when the instance's EBS key is one the caller may not use.
    start_falls_back(&clients, &instance, 3, "Client.InternalError", "Client.InternalError: Client error on launch")
        .await
        .expect("fallback set");

    let run_id = format!("wont-start-{}", unique_suffix());
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    faults_off(&clients, &plan).await;

    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("BelowMinimumCapacity"), "{execution:#?}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(cause.contains(&format!("{instance} did not start after 3 starts")), "{cause}");
    assert!(cause.contains("Client error on launch"), "{cause}");
    // The failure report keeps what the branches did: the promotion that happened beside the
    // compute branch that failed (its records, not only the error).
    let promoted = failure.steps.iter().find(|s| s.step == "promote-replica").expect("the promotion is reported");
    assert_eq!(promoted.outcome, dr_core::run::Outcome::Changed, "{promoted:#?}");
    assert!(failure.steps.iter().any(|s| s.step.starts_with("start-standby")), "{:#?}", failure.steps);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_terminated_standby_instance_is_named_in_preflight_and_nothing_changes() {
    let (plan, clients) = seeded_estate().await;
    let instance = first_standby_instance(&clients, &plan).await;
    clients.dr.ec2.terminate_instances().instance_ids(&instance).send().await.expect("terminated");
    faults_on(&clients, counting(&plan)).await;

    let run_id = format!("terminated-{}", unique_suffix());
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    let faults = faults_off(&clients, &plan).await;

    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("PreflightFailed"), "{execution:#?}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let cause = failure.head.error.as_ref().map(|e| e.cause.clone()).unwrap_or_default();
    assert!(cause.contains("StandbyInstanceTerminated") && cause.contains(&instance), "{cause}");
    assert_eq!(estate_changes(&faults), BTreeMap::new(), "nothing changed: {faults:#?}");
}

/// Throttling, 5xx and lost answers, as while a whole region evacuates.
fn stormy(plan: &Plan) -> Faults {
    Faults { throttle_share: 0.2, server_error_share: 0.1, lose_share: 0.5, seed: 13, ..counting(plan) }
}

/// Runs `run` until it completes, at most `attempts` times: a run may stop in a named state,
/// from which a re-run completes. The errors it stopped with.
fn until_complete(attempts: usize, mut run: impl FnMut() -> Execution) -> (Execution, Vec<String>) {
    let mut stopped = Vec::new();
    for _ in 1..attempts {
        let execution = run();
        if execution.status == "SUCCEEDED" {
            return (execution, stopped);
        }
        stopped.push(execution.error.clone().unwrap_or_else(|| "unnamed".into()));
    }
    (run(), stopped)
}

#[tokio::test(flavor = "multi_thread")]
async fn under_throttling_5xx_and_lost_answers_the_failover_completes_and_each_change_reaches_aws_once() {
    let (plan, clients) = seeded_estate().await;
    faults_on(&clients, stormy(&plan)).await;
    let (execution, stopped) =
        until_complete(3, || run_failover(&published_failover_input(&plan, &format!("storm-{}", unique_suffix()))));
    let faults = faults_off(&clients, &plan).await;
    let report = report_of(&execution);

    eprintln!("failover under {:?}: completed, re-runs after {stopped:?}", faults.injected);
    assert!(stopped.iter().all(|e| e != "unnamed"), "every stop is named: {stopped:?}");
    assert_eq!(report.head.status, RunStatus::Succeeded);
    assert!(faults.injected.get("lost").copied().unwrap_or(0) > 0, "answers were lost: {faults:#?}");
    assert_each_change_once(
        &faults,
        &["PromoteReadReplica", "StartInstances", "UpdateAutoScalingGroup", "PutMetricData"],
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn under_throttling_5xx_and_lost_answers_the_restore_test_completes_and_each_change_reaches_aws_once() {
    let (plan, clients) = seeded_estate().await;
    faults_on(&clients, stormy(&plan)).await;
    let (execution, stopped) = until_complete(3, || run_restore_test(&published_restore_input(&plan)));
    let faults = faults_off(&clients, &plan).await;

    eprintln!("restore test under {:?}: completed, re-runs after {stopped:?}", faults.injected);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RestoreReport = serde_json::from_value(execution.output).expect("the output is the report");
    assert_eq!(report.head.status, RunStatus::Succeeded);
    assert!(faults.injected.values().sum::<u64>() > 0, "faults were injected: {faults:#?}");
    assert_each_change_once(&faults, &["DeleteDBInstance"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn under_throttling_5xx_and_lost_answers_the_rpo_check_completes() {
    let plan = plan_with_bucket_pairs(3);
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding");
    let as_the_lambda = clients_as_the_lambdas(&plan).await;
    faults_on(&clients, stormy(&plan)).await;

    // The scheduled check runs again at its next schedule: a stopped one is retried here.
    let mut stopped = Vec::new();
    let mut run = None;
    for _ in 0..3 {
        match run_check(&as_the_lambda, std::slice::from_ref(&plan), DEFAULT_NAMESPACE).await {
            Ok(done) => {
                run = Some(done);
                break;
            }
            Err(err) => stopped.push(err.name().to_string()),
        }
    }
    let faults = faults_off(&clients, &plan).await;

    eprintln!("RPO check under {:?}: completed, re-runs after {stopped:?}", faults.injected);
    let run = run.unwrap_or_else(|| panic!("the RPO check never completed: {stopped:?}"));
    assert_eq!(run.pairs, 4, "the database and 3 bucket pairs: {run:?}");
    assert_eq!(run.snapshots.len(), 1);
    assert_each_change_once(&faults, &[]);
}
