//! Several Auto Scaling groups in one plan (issue 32): the example estate with a second DR group
//! (`worker-ireland-<suffix>`) and its Paris application group beside it.
//!
//! - Readiness has a row per group; a dry run names each raise and makes no change; under 20 %
//!   throttling and half the answers lost each group is raised with its update taking effect once,
//!   and the status step waits for every group.
//! - A round trip with an application writing throughout: the failover fences both Paris groups
//!   and raises both Ireland groups, the failback gives each Paris group its capacity back and sets
//!   each Ireland group back to standby; no acknowledged row lost.
//! - A second group of standby instances (its own tag value, its own minimum): both groups' rows
//!   in readiness, every instance started once under faults, the status step naming each group,
//!   and the stack's policies allowing each group's tag value and no other.
//! - A plan whose fence names fewer primary groups than it has DR groups, or whose standby groups
//!   use two tag keys, is refused by name.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use dr_core::aws::AwsClients;
use dr_core::aws::lookup::describe_auto_scaling_group;
use dr_core::plan::{AutoScaling, Capacity, Plan};
use dr_core::readiness::{Check, Scope, check_plan};
use dr_core::run::{RunMode, RunbookState};
use dr_core::runbook::report::RunReport;
use dr_emulator::estate::publish_replica_lag;
use dr_tests::{
    backed_estate_with, estate_suffix, failover_input, failover_under_faults, seeded_estate_with, unique_suffix,
};

use crate::round_trip::{assert_no_row_lost, round_trip_with_writer};

/// A second Ireland group, `worker-ireland-<suffix>` (standby 0, failover 1 to 3, serving at 1),
/// and its Paris application group `worker-paris-<suffix>` in the fence.
fn with_worker_group(plan: &mut Plan) {
    let suffix = estate_suffix(plan).to_string();
    plan.auto_scaling.push(AutoScaling {
        group: format!("worker-ireland-{suffix}"),
        standby: Capacity { min: 0, desired: 0, max: 0 },
        failover: Capacity { min: 1, desired: 3, max: 3 },
        minimum_healthy: 1,
    });
    if let Some(fence) = plan.fence.as_mut() {
        fence.auto_scaling_group.push(format!("worker-paris-{suffix}"));
    }
}

/// Each group's (min, desired, max) as Auto Scaling holds it, in `region` of `clients`.
async fn sizes(autoscaling: &aws_sdk_autoscaling::Client, groups: &[String]) -> Vec<(i32, i32, i32)> {
    let mut found = Vec::new();
    for group in groups {
        let described = describe_auto_scaling_group(autoscaling, group).await.expect("describe").expect("the group");
        let size = (described.min_size(), described.desired_capacity(), described.max_size());
        found.push((size.0.unwrap_or(-1), size.1.unwrap_or(-1), size.2.unwrap_or(-1)));
    }
    found
}

/// A second group of standby instances: two tagged `dr-standby=standby-workers-<suffix>`, one of
/// which must serve.
fn with_worker_standby_group(plan: &mut Plan) {
    let suffix = estate_suffix(plan).to_string();
    let mut workers = plan.standby_instances[0].clone();
    if let Some(tag) = workers.tag.as_mut() {
        tag.value = format!("standby-workers-{suffix}");
    }
    workers.count = Some(2);
    workers.minimum_healthy = 1;
    plan.standby_instances.push(workers);
}

fn dr_groups(plan: &Plan) -> Vec<String> {
    plan.auto_scaling.iter().map(|asg| asg.group.clone()).collect()
}

fn failover_sizes(plan: &Plan) -> Vec<(i32, i32, i32)> {
    let size = |c: Capacity| (i32::from(c.min), i32::from(c.desired), i32::from(c.max));
    plan.auto_scaling.iter().map(|asg| size(asg.failover)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn each_group_is_raised_once_under_throttling_and_lost_answers_and_the_status_waits_for_every_group() {
    let (plan, clients) = seeded_estate_with(with_worker_group).await;
    let groups = dr_groups(&plan);
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let rows: Vec<_> = readiness.rows.iter().filter(|row| row.check == Check::AutoScalingGroup).collect();
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert!(rows.iter().all(|row| row.is_ready()), "{rows:#?}");
    let standby = sizes(&clients.dr.autoscaling, &groups).await;

    // A dry run names each raise, and raises nothing.
    let mut dry: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("groups-dry-{}", unique_suffix())).await).expect("state");
    dry.run.mode = RunMode::DryRun;
    let execution = dr_tests::run_failover_polling(&serde_json::to_value(&dry).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let rehearsed: RunReport = serde_json::from_value(execution.output).expect("report");
    assert_eq!(rehearsed.mutating_calls, 0, "{rehearsed:#?}");
    let scale = rehearsed.steps.iter().find(|s| s.step == "scale-asg").expect("the scale step");
    for group in &groups {
        assert!(scale.detail.contains(&format!("{group}: min 0")), "the dry run names {group}: {scale:#?}");
    }
    assert_eq!(sizes(&clients.dr.autoscaling, &groups).await, standby, "a dry run raises nothing");

    let run_id = format!("groups-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 47, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    eprintln!("two groups under {:?}: re-runs after {stopped:?}", injected.injected);
    let mut updates: Vec<(String, u32)> = injected
        .applied
        .iter()
        .filter(|call| call.operation == "UpdateAutoScalingGroup")
        .map(|call| (call.target.clone(), call.times))
        .collect();
    updates.sort();
    assert_eq!(updates.len(), 2, "each group updated: {injected:#?}");
    assert!(updates.iter().all(|(_, times)| *times == 1), "each update took effect once: {updates:?}");
    assert_eq!(sizes(&clients.dr.autoscaling, &groups).await, failover_sizes(&plan));
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let status = report.steps.iter().find(|s| s.step == "scale-asg-status").expect("the status step");
    for group in &groups {
        assert!(status.resources.iter().any(|r| &r.resource == group && r.state.contains("InService")), "{status:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_round_trip_fences_and_gives_back_every_paris_group_and_stands_down_every_ireland_group() {
    let (plan, clients, pair) = backed_estate_with("groups", with_worker_group).await;
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
    let paris_groups: Vec<String> = plan.fence.as_ref().map(|f| f.auto_scaling_group.clone()).unwrap_or_default();
    assert_eq!(paris_groups.len(), 2);
    let paris_before = sizes(&clients.primary.autoscaling, &paris_groups).await;
    let ireland_before = sizes(&clients.dr.autoscaling, &dr_groups(&plan)).await;

    let (outcome, _, acknowledged) = round_trip_with_writer(&clients, &plan, &pair).await;

    // The failover's fence took both Paris groups to zero; its compute raised both Ireland groups.
    let failover = read_leg(&clients, &plan, &format!("{}-failover", outcome.run_id)).await;
    let fence = failover.steps.iter().find(|s| s.step == "fence").expect("the fence");
    for group in &paris_groups {
        assert!(fence.resources.iter().any(|r| &r.resource == group), "{group} fenced: {fence:#?}");
    }
    let raised = failover.steps.iter().find(|s| s.step == "scale-asg-status").expect("the compute branch");
    for group in dr_groups(&plan) {
        assert!(raised.resources.iter().any(|r| r.resource == group), "{group} waited for: {raised:#?}");
    }
    // The failback gave each Paris group its capacity back, and the stand-down set each Ireland
    // group back to its standby size.
    assert_eq!(sizes(&clients.primary.autoscaling, &paris_groups).await, paris_before);
    assert_eq!(sizes(&clients.dr.autoscaling, &dr_groups(&plan)).await, ireland_before);
    assert_no_row_lost(&clients, &plan, &acknowledged).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_standby_group_is_started_under_faults_and_judged_on_its_own_with_its_own_tag() {
    let (plan, clients) = seeded_estate_with(with_worker_standby_group).await;
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let rows: Vec<_> = readiness.rows.iter().filter(|row| row.check == Check::StandbyInstance).collect();
    assert_eq!(rows.len(), 4, "two instances in each group: {rows:#?}");
    assert!(rows.iter().all(|row| row.is_ready()), "{rows:#?}");

    let run_id = format!("standby-groups-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 53, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    let starts: Vec<u32> =
        injected.applied.iter().filter(|call| call.operation == "StartInstances").map(|call| call.times).collect();
    assert!(!starts.is_empty() && starts.iter().all(|times| *times == 1), "each start took effect once: {injected:#?}");
    let instances = dr_core::aws::lookup::describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances");
    assert_eq!(instances.len(), 4);
    assert!(
        instances.iter().all(|i| i.state == aws_sdk_ec2::types::InstanceStateName::Running),
        "every instance of both groups runs: {instances:?}"
    );
    let report: RunReport = serde_json::from_value(execution.output).expect("report");
    let status = report.steps.iter().find(|s| s.step == "start-standby-status").expect("the status step");
    for group in &plan.standby_instances {
        assert!(status.detail.contains(&format!("{}: 2 of 2 instances", group.label())), "{status:#?}");
    }
}

async fn read_leg(clients: &AwsClients, plan: &Plan, run_id: &str) -> RunReport {
    serde_json::from_slice(&dr_tests::read_report(clients, plan, run_id, "report.json").await).expect("report")
}

#[test]
fn a_fence_naming_fewer_primary_groups_than_dr_groups_is_refused_by_name() {
    let mut plan = dr_tests::isolated_plan();
    with_worker_group(&mut plan);
    plan.validate().expect("two groups, two primary groups");
    let text = plan.published_text().expect("text");
    assert!(text.matches("[[auto_scaling]]").count() == 2, "{text}");
    assert_eq!(Plan::parse(&text, "again").expect("read back"), plan);

    let mut short = plan.clone();
    if let Some(fence) = short.fence.as_mut() {
        fence.auto_scaling_group.truncate(1);
    }
    let refused = short.validate().expect_err("refused");
    let problems = match refused {
        dr_core::error::DrError::InvalidPlan { problems, .. } => problems,
        other => panic!("InvalidPlan expected: {other:?}"),
    };
    let named: Vec<(&str, &str)> = problems.iter().map(|p| (p.code.name(), p.field.as_str())).collect();
    assert_eq!(named, [("FenceWithoutMethod", "fence.auto_scaling_group")]);

    let mut twice = plan.clone();
    twice.auto_scaling[1].group = twice.auto_scaling[0].group.clone();
    let refused = twice.validate().expect_err("refused").to_string();
    assert!(refused.contains("InvalidAutoScalingGroup (auto_scaling[1].group)"), "{refused}");

    // Standby groups: one tag key for all (the stack's condition names it), a value each.
    let mut standby = dr_tests::isolated_plan();
    with_worker_standby_group(&mut standby);
    standby.validate().expect("two standby groups");
    let text = standby.published_text().expect("text");
    assert_eq!(Plan::parse(&text, "again").expect("read back"), standby);
    let values = dr_core::plan::stack::stack_parameters(&standby).expect("parameters");
    let value = values.iter().find(|(name, _)| *name == "StandbyTagValue").map(|(_, v)| v.clone());
    assert_eq!(value.as_deref().map(|v| v.split(',').count()), Some(2), "{value:?}");
    if let Some(tag) = standby.standby_instances[1].tag.as_mut() {
        tag.key = "other-key".into();
    }
    let refused = standby.validate().expect_err("refused").to_string();
    assert!(refused.contains("AmbiguousInstanceSelector (standby_instances)"), "{refused}");
}
