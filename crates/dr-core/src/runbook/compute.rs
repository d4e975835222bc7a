//! The compute branch: start the standby EC2 instances, raise the DR Auto Scaling group.

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{InstanceStateName, SummaryStatus};

use super::status_record;
use crate::aws::AwsClients;
use crate::aws::lookup::{describe_auto_scaling_group, describe_standby_instances};
use crate::error::DrError;
use crate::plan::Capacity;
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer};

/// Share of the RTO the compute branch may take before `StepTimedOut`.
pub const COMPUTE_SHARE_OF_RTO: f64 = 0.5;

fn instance_states(found: &[(String, InstanceStateName)]) -> Vec<ResourceState> {
    found.iter().map(|(id, state)| ResourceState { resource: id.clone(), state: state.to_string() }).collect()
}

async fn standby_instances(
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<Vec<(String, InstanceStateName)>, DrError> {
    let found = describe_standby_instances(&clients.dr.ec2, &state.plan).await?;
    if found.is_empty() {
        return Err(DrError::ResourceNotFound {
            kind: "standby EC2 instances",
            id: format!("{:?}", state.plan.standby_instances),
            region: state.plan.dr_region.clone(),
        });
    }
    Ok(found)
}

/// The stopped instances, to start; `InstanceBusy` (retryable) while one is stopping or
/// shutting down, since it cannot be started until it has stopped.
pub fn instances_to_start(found: &[(String, InstanceStateName)]) -> Result<Vec<String>, DrError> {
    if let Some((id, busy)) =
        found.iter().find(|(_, s)| matches!(s, InstanceStateName::Stopping | InstanceStateName::ShuttingDown))
    {
        return Err(DrError::InstanceBusy { instance: id.clone(), state: busy.to_string() });
    }
    Ok(found.iter().filter(|(_, s)| *s == InstanceStateName::Stopped).map(|(id, _)| id.clone()).collect())
}

/// Starts the stopped standby instances; running or pending ones are left alone.
pub async fn start_standby(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("start-standby", clients);
    let found = standby_instances(clients, state).await?;
    let stopped = instances_to_start(&found)?;
    if stopped.is_empty() {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            "every standby instance is already started",
            instance_states(&found),
        ));
    }
    if state.is_dry_run() {
        return Ok(timer.would(format!("start {}", stopped.join(", ")), instance_states(&found)));
    }
    clients
        .dr
        .ec2
        .start_instances()
        .set_instance_ids(Some(stopped.clone()))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "StartInstances", e))?;
    tracing::info!(plan = %state.plan.name, step = "start-standby", resource = ?stopped, "instances started");
    Ok(timer.finish(Outcome::Changed, true, format!("started {}", stopped.join(", ")), instance_states(&found)))
}

/// Ready when every standby instance is running with instance and system status checks ok.
pub async fn standby_status(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("start-standby-status", clients);
    let found = standby_instances(clients, state).await?;
    let ids: Vec<String> = found.iter().map(|(id, _)| id.clone()).collect();
    let statuses = clients
        .dr
        .ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids))
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeInstanceStatus", e))?;
    let mut resources = Vec::new();
    let mut ready = true;
    for (id, instance_state) in &found {
        let status = statuses.instance_statuses().iter().find(|s| s.instance_id() == Some(id.as_str()));
        let checks_ok = status.is_some_and(|s| {
            s.instance_status().and_then(|c| c.status()) == Some(&SummaryStatus::Ok)
                && s.system_status().and_then(|c| c.status()) == Some(&SummaryStatus::Ok)
        });
        let instance_ready = *instance_state == InstanceStateName::Running && checks_ok;
        ready &= instance_ready;
        resources.push(ResourceState {
            resource: id.clone(),
            state: format!("{instance_state}, status checks {}", if checks_ok { "ok" } else { "not ok yet" }),
        });
    }
    let detail = format!(
        "{} of {} instances running with checks ok",
        resources.iter().filter(|r| r.state.ends_with("checks ok")).count(),
        resources.len()
    );
    status_record(timer, state, StepKey::StandbyStatus, COMPUTE_SHARE_OF_RTO, ready, detail, resources)
}

async fn group(clients: &AwsClients, state: &RunbookState) -> Result<AutoScalingGroup, DrError> {
    let name = &state.plan.auto_scaling.group;
    describe_auto_scaling_group(&clients.dr.autoscaling, name).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "Auto Scaling group",
        id: name.clone(),
        region: state.plan.dr_region.clone(),
    })
}

/// The size to set: the plan's failover capacity, never lowering a higher current value.
pub fn raised_capacity(current: (i32, i32, i32), failover: Capacity) -> (i32, i32, i32) {
    let (min, desired, max) = current;
    let max = max.max(i32::from(failover.max));
    let min = min.max(i32::from(failover.min)).min(max);
    let desired = desired.max(i32::from(failover.desired)).clamp(min, max);
    (min, desired, max)
}

fn current_capacity(group: &AutoScalingGroup) -> (i32, i32, i32) {
    (group.min_size().unwrap_or(0), group.desired_capacity().unwrap_or(0), group.max_size().unwrap_or(0))
}

fn capacity_text((min, desired, max): (i32, i32, i32)) -> String {
    format!("min {min} / desired {desired} / max {max}")
}

/// Sets a group's (min, desired, max).
pub async fn set_capacity(
    autoscaling: &aws_sdk_autoscaling::Client,
    group: &str,
    (min, desired, max): (i32, i32, i32),
) -> Result<(), DrError> {
    autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(group)
        .min_size(min)
        .desired_capacity(desired)
        .max_size(max)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "UpdateAutoScalingGroup", e))?;
    Ok(())
}

/// Raises min/desired/max to the failover capacity; already there or above: no call.
pub async fn scale_asg(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("scale-asg", clients);
    let name = state.plan.auto_scaling.group.clone();
    let current = current_capacity(&group(clients, state).await?);
    let target = raised_capacity(current, state.plan.auto_scaling.failover);
    if target == current {
        let resources = vec![ResourceState { resource: name.clone(), state: capacity_text(current) }];
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("{name} already at {}", capacity_text(current)),
            resources,
        ));
    }
    if state.is_dry_run() {
        let resources = vec![ResourceState { resource: name.clone(), state: capacity_text(current) }];
        return Ok(
            timer.would(format!("raise {name}: {} -> {}", capacity_text(current), capacity_text(target)), resources)
        );
    }
    set_capacity(&clients.dr.autoscaling, &name, target).await?;
    let (min, desired, max) = target;
    tracing::info!(plan = %state.plan.name, step = "scale-asg", resource = %name, min, desired, max, "group raised");
    let resources = vec![ResourceState { resource: name.clone(), state: capacity_text(target) }];
    Ok(timer.finish(
        Outcome::Changed,
        true,
        format!("{name}: {} -> {}", capacity_text(current), capacity_text(target)),
        resources,
    ))
}

/// Ready when at least the failover `desired` instances are InService and Healthy.
pub async fn asg_status(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("scale-asg-status", clients);
    let group = group(clients, state).await?;
    let in_service = group
        .instances()
        .iter()
        .filter(|i| {
            i.lifecycle_state() == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
                && i.health_status() == Some("Healthy")
        })
        .count();
    let wanted = usize::from(state.plan.auto_scaling.failover.desired);
    let detail = format!("{in_service} of {wanted} instances InService and Healthy");
    let resources = vec![ResourceState { resource: state.plan.auto_scaling.group.clone(), state: detail.clone() }];
    status_record(timer, state, StepKey::AsgStatus, COMPUTE_SHARE_OF_RTO, in_service >= wanted, detail, resources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stopped_instances_are_started_and_a_stopping_one_waits() {
        let found = |states: &[InstanceStateName]| -> Vec<(String, InstanceStateName)> {
            states.iter().enumerate().map(|(i, s)| (format!("i-{i}"), s.clone())).collect()
        };
        let mixed = found(&[InstanceStateName::Stopped, InstanceStateName::Running, InstanceStateName::Pending]);
        assert_eq!(instances_to_start(&mixed).ok(), Some(vec!["i-0".to_string()]));
        assert_eq!(instances_to_start(&found(&[InstanceStateName::Running])).ok(), Some(vec![]));
        // moto stops instances at once; AWS passes through `stopping`, which must wait.
        let err =
            instances_to_start(&found(&[InstanceStateName::Stopped, InstanceStateName::Stopping])).expect_err("busy");
        assert_eq!((err.name(), err.is_retryable()), ("InstanceBusy", true));
    }

    #[test]
    fn raising_never_lowers_a_higher_current_value() {
        let failover = Capacity { min: 2, desired: 2, max: 6 };
        assert_eq!(raised_capacity((0, 0, 0), failover), (2, 2, 6));
        assert_eq!(raised_capacity((3, 5, 10), failover), (3, 5, 10));
        assert_eq!(raised_capacity((1, 4, 4), failover), (2, 4, 6));
        assert_eq!(raised_capacity((2, 2, 6), failover), (2, 2, 6));
    }
}
