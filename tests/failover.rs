//! The failover runbook end to end: the real `statemachines/failover.asl.json` executed by
//! aws-local-stepfunctions, the real Lambda binaries behind its Tasks (the local Lambda service,
//! `scripts/lambdas`), the emulated estate (moto) behind them. Waits and retry intervals are
//! compressed.
//!
//! What DNS answers is asked of DNS: the emulator's DNS server answers as Route 53 would, from the
//! health checks' states (moto evaluates neither; the local stack models both).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use aws_sdk_ec2::types::InstanceStateName;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{describe_auto_scaling_group, describe_db_instance, describe_standby_instances};
use dr_core::readiness::{Readiness, Scope, check_plan};
use dr_core::run::GateVerdict;
use dr_core::run::RunStatus;
use dr_core::runbook::report::RunReport;
use dr_emulator::control::hold_alarm;
use dr_emulator::estate::{SeedOptions, publish_replica_lag, seed};
use dr_tests::{
    Execution, emulator_clients, failover_input, isolated_plan, published_failover_input, read_report, run_failover,
    seeded_estate, unique_suffix,
};

fn report_of(execution: &Execution) -> RunReport {
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    serde_json::from_value(execution.output.clone()).expect("the execution output is the run report")
}

/// The estate as the runbook leaves it, checked resource by resource.
async fn assert_failed_over(plan: &Plan, clients: &AwsClients) {
    let replica = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("replica");
    assert_eq!(replica.read_replica_source_db_instance_identifier().unwrap_or_default(), "", "replica is standalone");
    assert_eq!(replica.db_instance_status(), Some("available"));
    // The promotion request carried the plan's backups (RDS alone would keep 1 day).
    assert_eq!(replica.backup_retention_period(), i32::try_from(plan.databases[0].backup_retention_days).ok());
    assert_eq!(replica.preferred_backup_window(), Some(plan.databases[0].backup_window.as_str()));

    let instances = describe_standby_instances(&clients.dr.ec2, plan).await.expect("instances");
    assert_eq!(instances.len(), 2);
    assert!(instances.iter().all(|i| i.state == InstanceStateName::Running), "{instances:?}");

    let group = describe_auto_scaling_group(&clients.dr.autoscaling, &dr_tests::dr_group(plan).group)
        .await
        .expect("DescribeAutoScalingGroups")
        .expect("the DR group exists");
    assert_eq!((group.min_size(), group.desired_capacity(), group.max_size()), (Some(2), Some(2), Some(6)));
    let in_service = group
        .instances()
        .iter()
        .filter(|i| i.lifecycle_state() == Some(&aws_sdk_autoscaling::types::LifecycleState::InService))
        .count();
    assert!(in_service >= 2, "{in_service} InService");

    let answer =
        clients.dns.answer(&plan.dns.records[0].record, &plan.dns.records[0].record_type).await.expect("DNS answer");
    assert_eq!(answer, std::slice::from_ref(&plan.dns.records[0].secondary.value), "DNS answers Ireland");
}

/// Stable view of the estate for before/after comparisons: each row's finding.
fn findings(readiness: &Readiness) -> Vec<(&'static str, String, Option<&'static str>)> {
    readiness.rows.iter().map(|r| (r.check.label(), r.resource.clone(), r.finding.map(|f| f.name()))).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_run_fails_paris_over_to_ireland_and_reports_every_step() {
    let (plan, clients) = seeded_estate().await;
    let run_id = format!("full-{}", unique_suffix());
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    let report = report_of(&execution);

    assert_failed_over(&plan, &clients).await;
    assert_eq!(report.head.status, RunStatus::Succeeded);
    let phases: Vec<&str> = report.timeline.iter().map(|e| e.phase.as_str()).collect();
    assert_eq!(
        phases,
        ["preflight and RPO gate", "promote replica", "start standby EC2", "scale Auto Scaling group", "flip DNS"]
    );
    let steps: Vec<&str> = report.steps.iter().map(|s| s.step.as_str()).collect();
    for step in [
        "preflight",
        "promote-replica",
        "promote-replica-status",
        "start-standby",
        "start-standby-status",
        "scale-asg",
        "scale-asg-status",
        "flip-dns",
        "flip-dns-status",
    ] {
        assert!(steps.contains(&step), "{step} missing from {steps:?}");
    }
    let gate = report.gate.as_ref().expect("gate decision");
    assert_eq!(gate.verdict, GateVerdict::WithinRpo);
    assert_eq!(report.achieved.rpo_seconds, Some(4.0));
    assert_eq!(report.achieved.rto_met, Some(true));
    assert_eq!(report.achieved.rpo_met, Some(true));
    // promote, start, scale, flip (the routing metric): and the tags recording who promoted and
    // the lag then.
    let mutating: Vec<String> = report
        .steps
        .iter()
        .flat_map(|s| s.calls.iter().filter(|c| c.is_mutating()).map(|c| c.operation.clone()))
        .collect();
    for operation in ["PromoteReadReplica", "StartInstances", "UpdateAutoScalingGroup", "PutMetricData"] {
        assert_eq!(mutating.iter().filter(|m| *m == operation).count(), 1, "{operation} once: {mutating:?}");
    }

    let stored: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("JSON report");
    assert_eq!(stored.timeline, report.timeline);
    let markdown = String::from_utf8(read_report(&clients, &plan, &run_id, "report.md").await).expect("utf-8");
    assert!(
        markdown.contains("# Failover report") && markdown.contains("| flip DNS |") && markdown.contains("met"),
        "{markdown}"
    );
    let svg = String::from_utf8(read_report(&clients, &plan, &run_id, "timeline.svg").await).expect("utf-8");
    assert!(svg.starts_with("<svg") && svg.matches("<rect").count() == 5, "{svg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn running_the_runbook_again_after_success_changes_nothing() {
    let (plan, clients) = seeded_estate().await;
    report_of(&run_failover(&failover_input(&plan, &format!("first-{}", unique_suffix())).await));
    let before = findings(&check_plan(&clients, &plan, Scope::Full).await);

    let again = report_of(&run_failover(&failover_input(&plan, &format!("again-{}", unique_suffix())).await));
    assert_eq!(again.mutating_calls, 0, "{:#?}", again.steps);
    assert!(
        again.timeline[1..].iter().all(|e| e.outcome == dr_core::run::Outcome::AlreadyDone),
        "{:#?}",
        again.timeline
    );
    let gate = again.gate.expect("gate");
    assert_eq!(gate.verdict, GateVerdict::AlreadyPromoted);
    assert_eq!(gate.lag_seconds, Some(4.0), "the lag recorded at promotion stands");
    assert_eq!(findings(&check_plan(&clients, &plan, Scope::Full).await), before);
    assert_failed_over(&plan, &clients).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn lag_over_the_rpo_stops_in_preflight_and_an_approval_or_a_plan_in_the_input_is_refused() {
    let (plan, clients) = seeded_estate().await;
    let two_hours = 2.0 * plan.targets.rpo().as_secs_f64();
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, two_hours).await.expect("lag published");
    let before = findings(&check_plan(&clients, &plan, Scope::Full).await);

    let run_id = format!("gate-{}", unique_suffix());
    let mark = clients.calls.mark();
    let stopped = run_failover(&failover_input(&plan, &run_id).await);
    assert_eq!(stopped.status, "FAILED", "{stopped:#?}");
    assert_eq!(stopped.error.as_deref(), Some("RpoExceeded"), "{stopped:#?}");
    let entered: Vec<&str> =
        stopped.events.iter().filter(|e| e.kind == "StateEntered").filter_map(|e| e.state.as_deref()).collect();
    // A run that holds no plan state (this input) has nowhere to wait for a decision: the gate's
    // refusal is the run's error (tests/operator.rs: a run that holds one waits).
    assert_eq!(entered, ["Preflight", "GateRefused", "GateRefusal", "RefusalReport", "RunFailed"]);
    assert_eq!(findings(&check_plan(&clients, &plan, Scope::Full).await), before, "no resource changed");
    assert!(clients.calls.since(mark).iter().all(|c| !c.is_mutating()));
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    assert_eq!(failure.head.status, RunStatus::Failed);
    assert_eq!(failure.head.error.as_ref().map(|e| e.error.as_str()), Some("RpoExceeded"));
    assert_eq!(failure.mutating_calls, 0);

    // Nothing in the input widens the run: an approval or a plan carried in it is refused by name
    // before any call (the approval that counts is a decision recorded in the plan store:
    // tests/operator.rs).
    let approval = serde_json::json!({"by": "oncall-sre@example.com", "reason": "accepting the data loss"});
    let mut with_approval = failover_input(&plan, &format!("approved-{}", unique_suffix())).await;
    with_approval["approval"] = approval;
    let mut with_plan = failover_input(&plan, &format!("own-plan-{}", unique_suffix())).await;
    let mut laxer = plan.clone();
    laxer.targets.rpo_minutes = 24 * 60;
    with_plan["plan"] = serde_json::to_value(&laxer).expect("a plan");
    for input in [with_approval, with_plan] {
        let mark = clients.calls.mark();
        let refused = run_failover(&input);
        assert_eq!(refused.status, "FAILED", "{refused:#?}");
        assert_eq!(refused.error.as_deref(), Some("UntrustedInput"), "{refused:#?}");
        assert!(clients.calls.since(mark).iter().all(|c| !c.is_mutating()));
    }
    assert_eq!(findings(&check_plan(&clients, &plan, Scope::Full).await), before, "no resource changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_step_ends_in_a_named_failure_and_a_rerun_finishes_without_repeating_mutations() {
    let mut plan = isolated_plan();
    // A short RTO keeps the DNS phase's budget (12.5 % of it: 60 s) short: the run really waits it.
    plan.targets.rto_minutes = 8;
    if let Some(fence) = plan.fence.as_mut() {
        fence.barrier_timeout_seconds = 60;
    }
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding");
    assert!(check_plan(&clients, &plan, Scope::Full).await.is_ready());
    let alarm = plan.dns.routing.as_ref().map(|m| m.alarm.clone()).expect("routing strategy");

    // The fault: CloudWatch does not evaluate the routing alarm (held by the emulator), so the
    // published metric never turns it to ALARM, DNS keeps answering Paris, and the DNS status
    // check keeps answering "not yet" until it runs out of attempts.
    hold_alarm(&clients, &plan.dr_region, &alarm, true).await.expect("alarm held");
    let run_id = format!("fault-{}", unique_suffix());
    let failed = run_failover(&failover_input(&plan, &run_id).await);
    assert_eq!(failed.status, "FAILED", "{failed:#?}");
    assert_eq!(failed.error.as_deref(), Some("StepTimedOut"), "{failed:#?}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    assert_eq!(failure.head.status, RunStatus::Failed);
    assert_eq!(failure.head.error.as_ref().map(|e| e.error.as_str()), Some("StepTimedOut"));
    assert!(failure.head.error.as_ref().is_some_and(|e| e.cause.contains("dns_status")), "{:?}", failure.head.error);
    let moved: Vec<_> = failure.timeline.iter().map(|e| (e.phase.as_str(), e.outcome)).collect();
    use dr_core::run::Outcome::{AlreadyDone, Changed, Checked};
    assert_eq!(
        moved[..4],
        [
            ("preflight and RPO gate", Checked),
            ("promote replica", Changed),
            ("start standby EC2", Changed),
            ("scale Auto Scaling group", Changed)
        ]
    );

    // The fault clears: CloudWatch evaluates the published metric; the alarm moves to ALARM.
    hold_alarm(&clients, &plan.dr_region, &alarm, false).await.expect("alarm released");
    let rerun = report_of(&run_failover(&failover_input(&plan, &format!("rerun-{}", unique_suffix())).await));
    let outcomes: Vec<_> = rerun.timeline.iter().map(|e| (e.phase.as_str(), e.outcome)).collect();
    assert_eq!(
        outcomes,
        [
            ("preflight and RPO gate", Checked),
            ("promote replica", AlreadyDone),
            ("start standby EC2", AlreadyDone),
            ("scale Auto Scaling group", AlreadyDone),
            ("flip DNS", AlreadyDone)
        ]
    );
    assert_eq!(rerun.mutating_calls, 0, "{:#?}", rerun.steps);
    assert_eq!(rerun.gate.map(|g| g.verdict), Some(GateVerdict::AlreadyPromoted));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_of_a_plan_never_published_is_refused_before_any_aws_call() {
    let (mut plan, clients) = seeded_estate().await;
    let before = findings(&check_plan(&clients, &plan, Scope::Full).await);
    // An invalid plan cannot be published (drctl plan publish validates it): a run that names
    // its version finds none.
    plan.dns.records[0].ttl_seconds = 300;
    let mark = clients.calls.mark();
    let execution = run_failover(&published_failover_input(&plan, &format!("invalid-{}", unique_suffix())));
    assert_eq!(execution.status, "FAILED");
    assert_eq!(execution.error.as_deref(), Some("PlanNotFound"), "{execution:#?}");
    assert!(clients.calls.since(mark).iter().all(|c| !c.is_mutating()));
    plan.dns.records[0].ttl_seconds = 60;
    assert_eq!(findings(&check_plan(&clients, &plan, Scope::Full).await), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_window_that_meets_the_maintenance_window_is_named_and_the_promotion_keeps_the_replicas_own() {
    // The replica's maintenance window is moto's default, wed:06:38-wed:07:08: this window meets it.
    let (plan, clients) =
        dr_tests::seeded_estate_with(|plan| plan.databases[0].backup_window = "07:00-07:30".into()).await;
    let replica = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance).await.expect("replica");
    let maintenance = replica.and_then(|db| db.preferred_maintenance_window().map(str::to_string)).expect("window");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let finding = readiness.rows.iter().find(|r| r.resource.starts_with(&plan.databases[0].replica_instance));
    assert_eq!(
        finding.and_then(|r| r.finding),
        Some(dr_core::readiness::Finding::BackupWindowConflictsMaintenance),
        "{maintenance}: {readiness:#?}"
    );

    // RDS would refuse the promotion with that window: the failover goes on with the replica's.
    let report = report_of(&run_failover(&failover_input(&plan, &format!("window-{}", unique_suffix())).await));
    let preflight = report.steps.iter().find(|s| s.step == "preflight").expect("preflight");
    assert!(
        preflight.resources.iter().any(|r| r.state.starts_with("warning: BackupWindowConflictsMaintenance")),
        "{preflight:#?}"
    );
    let promote = report.steps.iter().find(|s| s.step == "promote-replica").expect("promotion");
    let kept = promote.facts.get("backup_window_not_applied").cloned().unwrap_or_default();
    assert!(kept.contains("07:00-07:30") && kept.contains(&maintenance), "{promote:#?}");
    let promoted = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance).await.expect("promoted");
    let window = promoted.and_then(|db| db.preferred_backup_window().map(str::to_string)).unwrap_or_default();
    assert_ne!(window, "07:00-07:30", "RDS's refusal was not provoked");
}
