//! The plan's ECS services (issue 32, in part): scaled by the compute branch beside the Auto
//! Scaling group, through the local Step Functions and the real functions, with every call
//! authorized against the scale function's role (`EcsServiceArns`). The emulator starts and stops
//! the services' tasks over time, their deployment following (crates/dr-emulator/moto/ecs.py).
//!
//! - The readiness table lists every service at its standby count; a dry run changes none; a
//!   failover under throttling and lost answers raises each once, waits until its tasks run, and
//!   its report lists each.
//! - A missing cluster or service stops the failover in preflight, by name, before any change;
//!   the readiness table names it, and a service not at its standby count.
//! - A service whose tasks do not all start keeps the run waiting (the compute branch is not
//!   ready), and the status record says which; out of the compute budget, it serves degraded at
//!   its minimum (the shortfall named) and stops the run below it (`BelowMinimumCapacity`).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{EcsServiceFound, describe_ecs_services};
use dr_core::readiness::{Check, CheckRow, Finding, Scope, check_plan};
use dr_core::run::table::run_step;
use dr_core::run::{RunInfo, RunMode, RunbookState, StepAction, StepKey, StepRecord};
use dr_core::runbook::FAILOVER;
use dr_core::runbook::compute::SHORTFALL_FACT;
use dr_core::runbook::report::RunReport;
use dr_core::time;
use dr_emulator::control::{Faults, cap_ecs_tasks, clear_faults, inject_faults};
use serde_json::Value;

use dr_tests::{
    deploy, estate_suffix, failover_input, failover_under_faults, publish, published_failover_input, read_report,
    seeded_estate_with, unique_suffix, with_ecs_services,
};

/// Each service's (desired, running), in the plan's order.
pub(crate) async fn counts(clients: &AwsClients, plan: &Plan) -> Vec<(i32, i32)> {
    describe_ecs_services(&clients.dr.ecs, &plan.ecs_services)
        .await
        .expect("services described")
        .into_iter()
        .map(|found| match found {
            EcsServiceFound::Found(status) => (status.desired, status.running),
            other => panic!("a plan's service is missing: {other:?}"),
        })
        .collect()
}

fn ecs_rows(rows: &[CheckRow]) -> Vec<&CheckRow> {
    rows.iter().filter(|row| row.check == Check::EcsService).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn ecs_services_are_raised_once_under_throttling_and_lost_answers_and_each_is_reported() {
    let (plan, clients) = seeded_estate_with(with_ecs_services).await;
    let standby: Vec<(i32, i32)> =
        plan.ecs_services.iter().map(|s| (i32::from(s.standby_count), i32::from(s.standby_count))).collect();
    assert_eq!(counts(&clients, &plan).await, standby, "seeded at their standby count, tasks running");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let rows = ecs_rows(&readiness.rows);
    assert_eq!(rows.len(), 3, "{rows:#?}");
    for service in &plan.ecs_services {
        let row = rows.iter().find(|r| r.resource == format!("{} (eu-west-1)", service.label()));
        assert!(row.is_some_and(|r| r.finding.is_none()), "{}: {rows:#?}", service.label());
    }

    // A dry run says what it would raise, and raises nothing.
    let mut dry: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("ecs-dry-{}", unique_suffix())).await).expect("state");
    dry.run.mode = RunMode::DryRun;
    let execution = dr_tests::run_failover_polling(&serde_json::to_value(&dry).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let rehearsed: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(rehearsed.mutating_calls, 0, "{rehearsed:#?}");
    let scale = rehearsed.steps.iter().find(|s| s.step == "scale-asg").expect("the scale step");
    for service in &plan.ecs_services {
        let raise = format!("{} desired {} -> {}", service.label(), service.standby_count, service.failover_count);
        assert!(scale.detail.contains(&raise), "the dry run names {raise}: {scale:#?}");
    }
    assert_eq!(counts(&clients, &plan).await, standby, "a dry run raises nothing");

    // The failover, under throttling and lost answers, run again from where it stopped.
    let run_id = format!("ecs-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 41, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    eprintln!("ECS services under {:?}: re-runs after {stopped:?}", injected.injected);
    let updates: Vec<(&str, u32)> = injected
        .applied
        .iter()
        .filter(|call| call.operation == "UpdateService")
        .map(|call| (call.target.as_str(), call.times))
        .collect();
    assert_eq!(updates.len(), 3, "each service updated: {injected:#?}");
    assert!(updates.iter().all(|(_, times)| *times == 1), "each update took effect once: {updates:?}");
    let failover: Vec<(i32, i32)> =
        plan.ecs_services.iter().map(|s| (i32::from(s.failover_count), i32::from(s.failover_count))).collect();
    assert_eq!(counts(&clients, &plan).await, failover, "at their failover count, every task running");

    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let status = report.steps.iter().find(|s| s.step == "scale-asg-status").expect("the status step");
    assert!(status.ready && status.detail.contains("3 of 3 ECS services serve"), "{status:#?}");
    let markdown = String::from_utf8(read_report(&clients, &plan, &run_id, "report.md").await).expect("markdown");
    for service in &plan.ecs_services {
        let named = format!("ECS service {} (eu-west-1)", service.label());
        let row = status.resources.iter().find(|r| r.resource == named);
        let running = format!("running {}", service.failover_count);
        assert!(row.is_some_and(|r| r.state.contains(&running)), "{named}: {status:#?}");
        let final_row = format!("| ecs service | {} (eu-west-1) | EcsServiceNotAtStandbyCount |", service.label());
        assert!(markdown.contains(&final_row), "the report's final state has {final_row}: {markdown}");
    }

    // Failed over: readiness says each service is off its standby count.
    let after = check_plan(&clients, &plan, Scope::Full).await;
    let rows = ecs_rows(&after.rows);
    assert!(rows.iter().all(|r| r.finding == Some(Finding::EcsServiceNotAtStandbyCount)), "{rows:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_cluster_or_service_is_named_and_stops_the_failover_before_any_change() {
    let (mut plan, clients) = seeded_estate_with(with_ecs_services).await;
    let suffix = estate_suffix(&plan).to_string();
    // Someone scaled a service by hand; the plan names a service and a cluster that are not there.
    let api = plan.ecs_services[0].clone();
    clients
        .dr
        .ecs
        .update_service()
        .cluster(&api.cluster)
        .service(&api.service)
        .desired_count(6)
        .send()
        .await
        .expect("scaled");
    let mut missing_service = api.clone();
    missing_service.service = "checkout".into();
    let mut missing_cluster = api.clone();
    missing_cluster.cluster = format!("payments-{suffix}");
    plan.ecs_services.extend([missing_service.clone(), missing_cluster.clone()]);
    plan.validate().expect("valid plan");

    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let finding = |label: String| {
        let row = readiness.rows.iter().find(|r| r.check == Check::EcsService && r.resource.starts_with(&label));
        row.and_then(|r| r.finding)
    };
    assert_eq!(finding(api.label()), Some(Finding::EcsServiceNotAtStandbyCount), "{readiness:#?}");
    assert_eq!(finding(missing_service.label()), Some(Finding::EcsServiceMissing), "{readiness:#?}");
    assert_eq!(finding(missing_cluster.label()), Some(Finding::EcsClusterMissing), "{readiness:#?}");

    // The stack deployed for the plan as it is now, which every change counts.
    deploy(&clients, &plan).await;
    publish(&plan).await;
    inject_faults(&clients, &Faults::for_the_lambdas(&suffix)).await.expect("counting");
    let execution =
        dr_tests::run_failover_polling(&published_failover_input(&plan, &format!("ecs-missing-{}", unique_suffix())));
    let counted = clear_faults(&clients, &suffix).await.expect("counted");
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("PreflightFailed"), "{execution:#?}");
    let cause = execution.cause.as_ref().map(Value::to_string).unwrap_or_default();
    for named in [missing_service.label(), missing_cluster.label()] {
        assert!(cause.contains(&named), "the failure names {named}: {cause}");
    }
    let estate_changes: Vec<&str> = counted
        .applied
        .iter()
        .map(|call| call.operation.as_str())
        .filter(|op| !["PutObject", "PutMetricData", "DeleteObject", "Publish", "PutEvents"].contains(op))
        .collect();
    assert!(estate_changes.is_empty(), "nothing changed before the refusal: {estate_changes:?}");
    let only_api = Plan { ecs_services: vec![api], ..plan.clone() };
    assert_eq!(counts(&clients, &only_api).await, vec![(6, 6)], "the service scaled by hand is left as it was");
}

/// The compute branch's status, asked until `done` says so (at most 30 s).
async fn status_until(clients: &AwsClients, state: &RunbookState, done: impl Fn(&StepRecord) -> bool) -> StepRecord {
    let step = FAILOVER.step("scale-asg", StepAction::Status).expect("the status step");
    let mut last = None;
    for _ in 0..60 {
        let record = Box::pin(run_step(step, clients, state)).await.expect("the status step answers");
        if done(&record) {
            return record;
        }
        last = Some(record);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("the status never got there: {last:#?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_service_whose_tasks_do_not_all_start_keeps_the_compute_branch_waiting_and_says_which() {
    let (plan, clients) = seeded_estate_with(with_ecs_services).await;
    let worker = plan.ecs_services[1].clone();
    cap_ecs_tasks(&clients, &plan.dr_region, &worker.cluster, &worker.service, Some(1)).await.expect("capped");
    let state =
        RunbookState::new(plan.clone(), RunInfo::new(format!("ecs-capped-{}", unique_suffix()), time::now(), "test"));
    let scale = FAILOVER.step("scale-asg", StepAction::Act).expect("the scale step");
    let raised = Box::pin(run_step(scale, &clients, &state)).await.expect("raised");
    assert!(raised.detail.contains(&format!("{} desired 0 -> 3", worker.label())), "{raised:#?}");

    // The group serves; the worker runs 1 of its 3 tasks: not ready, and the record says which.
    let waiting = status_until(&clients, &state, |r| r.detail.contains("2 of 3 ECS services serve")).await;
    assert!(!waiting.ready, "{waiting:#?}");
    let row = waiting.resources.iter().find(|r| r.resource.contains(&worker.label())).expect("the worker's row");
    assert!(row.state.contains("running 1, pending 2"), "{row:#?}");

    cap_ecs_tasks(&clients, &plan.dr_region, &worker.cluster, &worker.service, None).await.expect("lifted");
    let serving = status_until(&clients, &state, |r| r.ready).await;
    assert!(serving.detail.contains("3 of 3 ECS services serve"), "{serving:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_the_compute_budget_a_service_serves_degraded_at_its_minimum_and_below_it_stops_the_run() {
    let (plan, clients) = seeded_estate_with(with_ecs_services).await;
    let (api, worker) = (plan.ecs_services[0].clone(), plan.ecs_services[1].clone());
    let mut state =
        RunbookState::new(plan.clone(), RunInfo::new(format!("ecs-budget-{}", unique_suffix()), time::now(), "test"));
    let scale = FAILOVER.step("scale-asg", StepAction::Act).expect("the scale step");
    let mut raised = Box::pin(run_step(scale, &clients, &state)).await.expect("raised");
    // The compute phase started longer ago than its budget (half the RTO).
    let budget = plan.targets.rto().mul_f64(StepKey::AsgStatus.phase().share_of_rto);
    raised.started_at = time::before(time::now(), budget + Duration::from_secs(60));
    state.steps.insert(StepKey::AsgStatus.phase().first, raised);

    // The worker runs 1 of its 3 tasks, its minimum: the branch serves, the shortfall named.
    cap_ecs_tasks(&clients, &plan.dr_region, &worker.cluster, &worker.service, Some(1)).await.expect("capped");
    let degraded = status_until(&clients, &state, |r| r.facts.contains_key(SHORTFALL_FACT)).await;
    assert!(degraded.ready, "{degraded:#?}");
    let shortfall = &degraded.facts[SHORTFALL_FACT];
    assert!(
        shortfall.contains(&format!("ECS service {}: 1 of 3 tasks run (minimum 1)", worker.label())),
        "{shortfall}"
    );

    // The API runs none of its 4 (minimum 1): BelowMinimumCapacity, naming it.
    cap_ecs_tasks(&clients, &plan.dr_region, &api.cluster, &api.service, Some(0)).await.expect("capped");
    let step = FAILOVER.step("scale-asg", StepAction::Status).expect("the status step");
    let refused = Box::pin(run_step(step, &clients, &state)).await.expect_err("below the minimum");
    assert_eq!(refused.name(), "BelowMinimumCapacity", "{refused}");
    assert!(refused.to_string().contains(&api.label()), "{refused}");
    for service in [&api, &worker] {
        cap_ecs_tasks(&clients, &plan.dr_region, &service.cluster, &service.service, None).await.expect("lifted");
    }
}
