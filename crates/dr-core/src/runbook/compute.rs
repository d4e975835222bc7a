//! The compute branch: start the standby EC2 instances, raise the DR Auto Scaling group.

use std::collections::BTreeMap;

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_ec2::types::{InstanceStateName, SummaryStatus};

// The trigger's preparation and the local stack set and read capacities through this module.
pub use super::capacity::set_capacity;
pub(crate) use super::capacity::{capacity_text, current_capacity};
use super::capacity::{drop_fence_tag, fenced_capacity};
use super::{services, status_record};
use crate::aws::lookup::{
    StandbyInstance, describe_auto_scaling_group, describe_standby_group, describe_standby_instances,
    gone_ones_replaced,
};
use crate::aws::{AwsClients, once};
use crate::error::DrError;
use crate::plan::{AutoScaling, Capacity, Direction, InstanceSelector};
use crate::run::budget::Budget;
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};

/// How many times the start step starts one instance before it counts it lost: an instance that
/// falls back to stopped once (capacity) usually starts on the next try; three fallbacks mean a
/// cause a human must fix (an EBS key the role may not use). Lost instances leaving fewer than the
/// plan's minimum: `BelowMinimumCapacity`, naming each and EC2's reason.
pub const MAX_STARTS: u32 = 3;

fn instance_states(found: &[StandbyInstance]) -> Vec<ResourceState> {
    found
        .iter()
        .map(|i| {
            let reason = i.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
            ResourceState::new(&i.id, format!("{}{reason}", i.state))
        })
        .collect()
}

/// Each standby group with the instances it selects, terminated ones included (they are counted
/// as lost, by name), unless the group selects by tag and enough others carry the tag (a
/// terminated one was replaced: EC2 lists it for about an hour). A group that selects none is
/// `ResourceNotFound`.
async fn standby_groups<'a>(
    clients: &AwsClients,
    state: &'a RunbookState,
) -> Result<Vec<(&'a InstanceSelector, Vec<StandbyInstance>)>, DrError> {
    let mut groups = Vec::with_capacity(state.plan.standby_instances.len());
    for selector in state.plan.standby_instances.iter().filter(|s| s.selects_any()) {
        let mut found = describe_standby_group(&clients.dr.ec2, selector).await?;
        if gone_ones_replaced(selector, &found) {
            found.retain(|i| !i.is_gone());
        }
        if found.is_empty() {
            return Err(DrError::ResourceNotFound {
                kind: "standby EC2 instances",
                id: selector.label(),
                region: state.plan.dr_region.clone(),
            });
        }
        groups.push((selector, found));
    }
    Ok(groups)
}

/// The standby instances as this run can count on them: the plan's target, the lost ones (by
/// name and why: terminated, or not starting after [`MAX_STARTS`] starts), and the others.
struct StandbyCount {
    /// The group, as its selector names it.
    group: String,
    target: usize,
    minimum: u16,
    /// "i-0abc terminated (User initiated)", "i-0def did not start after 3 starts (...)".
    lost: Vec<String>,
    /// The instances that can still serve (not lost).
    usable: Vec<StandbyInstance>,
}

impl StandbyCount {
    fn of(state: &RunbookState, selector: &InstanceSelector, found: Vec<StandbyInstance>) -> StandbyCount {
        let mut lost = Vec::new();
        let mut usable = Vec::new();
        for instance in found {
            let reason = instance.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
            let starts = starts_of(state, &instance.id);
            if instance.is_gone() {
                lost.push(format!("{} {}{reason}", instance.id, instance.state));
            } else if instance.state == InstanceStateName::Stopped && starts >= MAX_STARTS {
                lost.push(format!("{} did not start after {starts} starts{reason}", instance.id));
            } else {
                usable.push(instance);
            }
        }
        let listed = usable.len() + lost.len();
        let target = selector.expected().max(listed);
        if listed < target {
            lost.push(format!("{} of the {target} instances the plan counts are not listed", target - listed));
        }
        StandbyCount { group: selector.label(), target, minimum: selector.minimum_healthy, lost, usable }
    }

    /// `BelowMinimumCapacity` when the instances not lost cannot reach the plan's minimum.
    fn require_minimum(&self, state: &RunbookState) -> Result<(), DrError> {
        if self.usable.len() < usize::from(self.minimum) {
            return Err(self.below_minimum(state, self.usable.len(), self.lost.join("; ")));
        }
        Ok(())
    }

    fn below_minimum(&self, state: &RunbookState, serving: usize, why: String) -> DrError {
        DrError::BelowMinimumCapacity {
            group: format!("standby instances {} in {}", self.group, state.plan.dr_region),
            serving,
            minimum: self.minimum,
            why,
        }
    }
}

/// The shortfall a degraded compute branch names, in the step's facts (the report and the notice
/// read them from there).
pub const SHORTFALL_FACT: &str = "shortfall";

/// When a compute status step is not ready: within the phase's budget, wait; out of it, serve on
/// what is healthy when that reaches the plan's minimum (`Ok(true)`: ready with a shortfall),
/// else `BelowMinimumCapacity`.
fn out_of_budget_verdict(
    state: &RunbookState,
    key: StepKey,
    now: crate::time::Timestamp,
    serving: usize,
    minimum: u16,
    group: String,
    detail: &str,
) -> Result<bool, DrError> {
    let budget = Budget::of(state, key, now);
    if budget.elapsed(now) <= budget.allowed {
        return Ok(false);
    }
    if serving >= usize::from(minimum) {
        return Ok(true);
    }
    Err(DrError::BelowMinimumCapacity {
        group,
        serving,
        minimum,
        why: format!("not reached within the compute budget ({} s): {detail}", budget.allowed.as_secs()),
    })
}

/// A failback: the primary region keeps no standby instances, so there is nothing to start or wait
/// for (its application group is given back by the scale step).
fn nothing_on_standby(timer: StepTimer<'_>, state: &RunbookState) -> StepRecord {
    let detail = format!("no standby instances in {}: nothing to start", state.plan.dr_region);
    timer.finish(Outcome::AlreadyDone, true, detail, Vec::new())
}

/// How many times this run started the instance (the start step's facts: `starts.<id>`).
fn starts_of(state: &RunbookState, id: &str) -> u32 {
    state
        .step(StepKey::Standby)
        .and_then(|record| record.facts.get(&format!("starts.{id}")))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The stopped instances, to start; `InstanceBusy` (retryable) while one is stopping, since it
/// cannot be started until it has stopped.
pub fn instances_to_start(found: &[StandbyInstance]) -> Result<Vec<String>, DrError> {
    if let Some(busy) = found.iter().find(|i| i.state == InstanceStateName::Stopping) {
        return Err(DrError::InstanceBusy { instance: busy.id.clone(), state: busy.state.to_string() });
    }
    Ok(found.iter().filter(|i| i.state == InstanceStateName::Stopped).map(|i| i.id.clone()).collect())
}

/// Starts the stopped standby instances; running or pending ones are left alone. An instance this
/// run started that fell back to stopped (EC2 gives the reason) is started again, at most
/// [`MAX_STARTS`] times in all; then it is counted lost, as a terminated one is, by name. Lost
/// ones leaving fewer than the plan's `minimum_healthy`: `BelowMinimumCapacity`.
pub async fn start_standby(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("start-standby", clients);
    if !state.plan.has_standby_instances() {
        return Ok(nothing_on_standby(timer, state));
    }
    let mut resources = Vec::new();
    let mut usable = Vec::new();
    let mut lost_ones = Vec::new();
    // Every group is counted before any start: one below its minimum starts nothing.
    for (selector, found) in standby_groups(clients, state).await? {
        resources.extend(instance_states(&found));
        let count = StandbyCount::of(state, selector, found);
        count.require_minimum(state)?;
        usable.extend(count.usable);
        lost_ones.extend(count.lost);
    }
    let stopped = instances_to_start(&usable)?;
    let lost = if lost_ones.is_empty() { String::new() } else { format!("; lost: {}", lost_ones.join("; ")) };
    if stopped.is_empty() {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("every standby instance that can serve is already started{lost}"),
            resources,
        ));
    }
    let restarts: Vec<String> = stopped
        .iter()
        .filter_map(|id| {
            let starts = starts_of(state, id);
            let reason = usable.iter().find(|i| i.id == *id).and_then(|i| i.reason.clone());
            (starts > 0).then(|| {
                format!(
                    "{id} fell back to stopped ({}): start {} of {MAX_STARTS}",
                    reason.as_deref().unwrap_or("no reason given"),
                    starts + 1
                )
            })
        })
        .collect();
    if state.is_dry_run() {
        return Ok(timer.would(format!("start {}{lost}", stopped.join(", ")), resources));
    }
    clients
        .dr
        .ec2
        .start_instances()
        .set_instance_ids(Some(stopped.clone()))
        .customize()
        .config_override(once::ec2())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "StartInstances", e))?;
    // The earlier attempts' facts are carried over by `settle` (`StepRecord::carry_over`).
    let mut facts = BTreeMap::new();
    for id in &stopped {
        facts.insert(format!("starts.{id}"), (starts_of(state, id) + 1).to_string());
    }
    tracing::info!(plan = %state.plan.name, step = "start-standby", resource = ?stopped, restarts = ?restarts, lost = ?lost_ones, "instances started");
    let mut detail = format!("started {}", stopped.join(", "));
    if !restarts.is_empty() {
        detail = format!("{detail}; {}", restarts.join("; "));
    }
    let mut record = timer.finish(Outcome::Changed, true, format!("{detail}{lost}"), resources);
    record.facts = facts;
    Ok(record)
}

/// Ready when every standby instance is running with instance and system status checks ok. An
/// instance that this run started and that is stopped again fell back (capacity, an EBS key):
/// `redo` asks the state machine to run the start step again. Degraded, not failed: when lost
/// instances (terminated, or not starting) make the target unreachable and every other one
/// serves, or when the compute budget is spent, the branch is ready on what serves if that
/// reaches the plan's `minimum_healthy`, and names the shortfall (fact [`SHORTFALL_FACT`]); below
/// it, `BelowMinimumCapacity`.
pub async fn standby_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("start-standby-status", clients);
    if !state.plan.has_standby_instances() {
        return Ok(nothing_on_standby(timer, state));
    }
    let groups = standby_groups(clients, state).await?;
    let ids: Vec<String> = groups.iter().flat_map(|(_, found)| found.iter().map(|i| i.id.clone())).collect();
    let statuses = clients
        .dr
        .ec2
        .describe_instance_status()
        .set_instance_ids(Some(ids))
        .include_all_instances(true)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeInstanceStatus", e))?;
    let several = groups.len() > 1;
    let mut resources = Vec::new();
    let mut details = Vec::new();
    let mut shortfalls = Vec::new();
    let mut ready = true;
    let mut redo = false;
    // Each group serves on its own, judged by its own minimum.
    for (selector, found) in groups {
        let count = StandbyCount::of(state, selector, found.clone());
        count.require_minimum(state)?;
        let mut serving = Vec::new();
        let mut fell_back = Vec::new();
        for instance in &found {
            let status = statuses.instance_statuses().iter().find(|s| s.instance_id() == Some(instance.id.as_str()));
            let checks_ok = status.is_some_and(|s| {
                s.instance_status().and_then(|c| c.status()) == Some(&SummaryStatus::Ok)
                    && s.system_status().and_then(|c| c.status()) == Some(&SummaryStatus::Ok)
            });
            let usable = count.usable.iter().any(|u| u.id == instance.id);
            if usable && instance.state == InstanceStateName::Running && checks_ok {
                serving.push(instance.id.clone());
            }
            if usable && instance.state == InstanceStateName::Stopped && starts_of(state, &instance.id) > 0 {
                fell_back.push(format!(
                    "{} fell back to stopped ({})",
                    instance.id,
                    instance.reason.as_deref().unwrap_or("no reason given")
                ));
            }
            resources.push(ResourceState::new(
                &instance.id,
                format!("{}, status checks {}", instance.state, if checks_ok { "ok" } else { "not ok yet" }),
            ));
        }
        let named = if several { format!("{}: ", count.group) } else { String::new() };
        let mut detail = format!("{named}{} of {} instances running with checks ok", serving.len(), count.target);
        if !count.lost.is_empty() {
            detail = format!("{detail}; lost: {}", count.lost.join("; "));
        }
        if !fell_back.is_empty() {
            detail = format!("{detail}; {}: starting again", fell_back.join("; "));
        }
        let every_usable_serves = serving.len() == count.usable.len();
        let group = format!("standby instances {} in {}", count.group, state.plan.dr_region);
        let shortfall = if every_usable_serves && count.lost.is_empty() {
            None
        } else if every_usable_serves {
            // The lost ones never come back: waiting out the budget would only delay the users.
            Some(format!(
                "{named}{} of {} standby instances serve (minimum {}): {}",
                serving.len(),
                count.target,
                count.minimum,
                count.lost.join("; ")
            ))
        } else if out_of_budget_verdict(
            state,
            StepKey::StandbyStatus,
            timer.started(),
            serving.len(),
            count.minimum,
            group,
            &detail,
        )? {
            Some(format!(
                "{named}{} of {} standby instances serve (minimum {}) when the compute budget ran out: {detail}",
                serving.len(),
                count.target,
                count.minimum
            ))
        } else {
            None
        };
        ready &= every_usable_serves || shortfall.is_some();
        redo |= !fell_back.is_empty() && shortfall.is_none();
        shortfalls.extend(shortfall);
        details.push(detail);
    }
    let mut record = status_record(timer, state, StepKey::StandbyStatus, ready, details.join("; "), resources)?;
    record.redo = redo;
    if !shortfalls.is_empty() {
        let shortfall = shortfalls.join("; ");
        tracing::warn!(plan = %state.plan.name, step = "start-standby-status", "degraded: {shortfall}");
        record.facts.insert(SHORTFALL_FACT.into(), shortfall);
    }
    Ok(record)
}

/// The plan's groups in the DR region, as Auto Scaling describes them, each before any change
/// (`ResourceNotFound` when one is not there); none when the plan has no group.
async fn groups<'a>(
    clients: &AwsClients,
    state: &'a RunbookState,
) -> Result<Vec<(&'a AutoScaling, AutoScalingGroup)>, DrError> {
    let mut described = Vec::with_capacity(state.plan.auto_scaling.len());
    for asg in &state.plan.auto_scaling {
        let found = describe_auto_scaling_group(&clients.dr.autoscaling, &asg.group).await?;
        let found = found.ok_or_else(|| DrError::ResourceNotFound {
            kind: "Auto Scaling group",
            id: asg.group.clone(),
            region: state.plan.dr_region.clone(),
        })?;
        described.push((asg, found));
    }
    Ok(described)
}

/// The DR group as a step sees it: its name, its size now, the size the step sets, whether a
/// fence's capacity tag is on it, and how many instances it still has.
struct GroupSizing {
    name: String,
    current: (i32, i32, i32),
    target: (i32, i32, i32),
    fenced: bool,
    instances: usize,
}

impl GroupSizing {
    /// Whether the step changes the group: another size, or a fence tag to drop.
    fn changes(&self) -> bool {
        self.target != self.current || self.fenced
    }

    /// Sets the target size and drops the fence's tag, each only when needed.
    async fn apply(&self, autoscaling: &aws_sdk_autoscaling::Client) -> Result<(), DrError> {
        if self.target != self.current {
            set_capacity(autoscaling, &self.name, self.target).await?;
        }
        if self.fenced {
            drop_fence_tag(autoscaling, &self.name).await?;
        }
        Ok(())
    }
}

/// The size to set: the plan's failover capacity, never lowering a higher current value.
pub fn raised_capacity(current: (i32, i32, i32), failover: Capacity) -> (i32, i32, i32) {
    let (min, desired, max) = current;
    let max = max.max(i32::from(failover.max));
    let min = min.max(i32::from(failover.min)).min(max);
    let desired = desired.max(i32::from(failover.desired)).clamp(min, max);
    (min, desired, max)
}

/// Raises min/desired/max to the failover capacity, and each ECS service of the plan to its
/// failover count; what is already there or above: no call. A group a planned move fenced
/// (Paris's, given back by a failback) gets the capacity in the fence's tag back, raised to at
/// least the failover capacity, and loses the tag. Every service is described before anything
/// changes: a missing one is `ResourceNotFound` with no change made.
pub async fn scale_asg(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("scale-asg", clients);
    let groups = groups(clients, state).await?;
    let services = services::describe_required(&clients.dr, &state.plan.ecs_services).await?;
    let raises = services::raises(&services);
    let region = &clients.dr.region;
    let mut sizing = Vec::with_capacity(groups.len());
    for (asg, found) in &groups {
        let current = current_capacity(found);
        let fenced = fenced_capacity(found, region)?;
        let target = raised_capacity(fenced.unwrap_or(current), asg.failover);
        let instances = found.instances().len();
        sizing.push(GroupSizing { name: asg.group.clone(), current, target, fenced: fenced.is_some(), instances });
    }
    let mut resources: Vec<ResourceState> =
        sizing.iter().map(|g| ResourceState::new(&g.name, capacity_text(g.current))).collect();
    resources.extend(services::resources(region, &services, &[]));
    let group_changes = sizing.iter().any(GroupSizing::changes);
    let mut already: Vec<String> = sizing
        .iter()
        .filter(|g| !g.changes())
        .map(|g| format!("{} already at {}", g.name, capacity_text(g.current)))
        .collect();
    if !group_changes && raises.is_empty() {
        if !services.is_empty() {
            already.push(format!("{} ECS service(s) at their failover count", services.len()));
        }
        let detail =
            if already.is_empty() { "no group and no ECS service to raise".to_string() } else { already.join("; ") };
        return Ok(timer.finish(Outcome::AlreadyDone, true, detail, resources));
    }
    let mut changes = Vec::new();
    for g in sizing.iter().filter(|g| g.changes()) {
        let given_back = if g.fenced { " (the capacity its fence took)" } else { "" };
        changes.push(format!("{}: {} -> {}{given_back}", g.name, capacity_text(g.current), capacity_text(g.target)));
    }
    changes.extend(raises.iter().map(|raise| raise.text()));
    if state.is_dry_run() {
        return Ok(timer.would(format!("raise {}", changes.join("; ")), resources));
    }
    for g in &sizing {
        g.apply(&clients.dr.autoscaling).await?;
        let (min, desired, max) = g.target;
        tracing::info!(plan = %state.plan.name, step = "scale-asg", resource = %g.name, min, desired, max, "group raised");
    }
    services::set_counts(&clients.dr, &raises).await?;
    let mut resources: Vec<ResourceState> =
        sizing.iter().map(|g| ResourceState::new(&g.name, capacity_text(g.target))).collect();
    resources.extend(services::resources(region, &services, &raises));
    already.extend(changes);
    Ok(timer.finish(Outcome::Changed, true, already.join("; "), resources))
}

/// After a failback (the plan as written, traffic back on Paris): the DR region's compute goes
/// back to standby. The group is set to its standby size (a fence's capacity tag dropped: Paris
/// serves now) and the running standby instances are stopped. Asked again until done: ready when
/// every standby instance is stopped and the group has no instance left above its standby size.
pub async fn stand_down(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    if state.run.direction != Direction::ToPrimary {
        return Err(DrError::InvalidInput { message: "the stand-down follows a failback only".into() });
    }
    let timer = StepTimer::start("stand-down", clients);
    let plan = &state.plan;
    let groups = groups(clients, state).await?;
    let sizing = groups
        .iter()
        .map(|(asg, found)| {
            let standby = asg.standby;
            Ok::<_, DrError>(GroupSizing {
                name: asg.group.clone(),
                current: current_capacity(found),
                target: (i32::from(standby.min), i32::from(standby.desired), i32::from(standby.max)),
                fenced: fenced_capacity(found, &clients.dr.region)?.is_some(),
                instances: found.instances().len(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let services = services::describe_required(&clients.dr, &plan.ecs_services).await?;
    let service_changes = services::to_standby(&services);
    let instances = describe_standby_instances(&clients.dr.ec2, plan).await?;
    // A pending instance cannot be stopped yet (EC2 answers IncorrectInstanceState): it is
    // stopped once running, on a later ask.
    let running: Vec<String> =
        instances.iter().filter(|i| i.state == InstanceStateName::Running).map(|i| i.id.clone()).collect();
    let mut resources = instance_states(&instances);
    resources.extend(sizing.iter().map(|g| ResourceState::new(&g.name, capacity_text(g.current))));
    resources.extend(services::resources(&clients.dr.region, &services, &service_changes));
    let mut changes = Vec::new();
    for g in sizing.iter().filter(|g| g.changes()) {
        changes.push(format!("set {} to its standby size {}", g.name, capacity_text(g.target)));
    }
    if !running.is_empty() {
        changes.push(format!("stop {}", running.join(", ")));
    }
    changes.extend(service_changes.iter().map(|change| format!("set {}", change.text())));
    if state.is_dry_run() {
        let change = if changes.is_empty() { "nothing: already on standby".to_string() } else { changes.join("; ") };
        return Ok(timer.would(change, resources));
    }
    for g in &sizing {
        g.apply(&clients.dr.autoscaling).await?;
    }
    if !running.is_empty() {
        clients
            .dr
            .ec2
            .stop_instances()
            .set_instance_ids(Some(running.clone()))
            .customize()
            .config_override(once::ec2())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "StopInstances", e))?;
    }
    services::set_counts(&clients.dr, &service_changes).await?;
    let stopped = instances.iter().all(|i| i.state == InstanceStateName::Stopped || i.is_gone());
    // A service whose count was just set is not down yet: its tasks stop on a later ask.
    let services_down: Vec<String> = services
        .iter()
        .filter(|d| !services::on_standby(d) || service_changes.iter().any(|c| c.service.label() == d.service.label()))
        .map(|d| d.service.label())
        .collect();
    let group_down = sizing.iter().all(|g| g.instances <= usize::try_from(g.target.1).unwrap_or(0));
    let done = running.is_empty() && stopped && group_down && services_down.is_empty();
    let detail = if done {
        let mut parts: Vec<String> =
            sizing.iter().map(|g| format!("group {} at {}", g.name, capacity_text(g.target))).collect();
        parts.push("standby instances stopped".to_string());
        if !services.is_empty() {
            parts.push(format!("{} ECS service(s) at their standby count", services.len()));
        }
        format!("{} on standby: {}", plan.dr_region, parts.join(", "))
    } else {
        let in_group: String = sizing.iter().map(|g| format!("{} instance(s) in {}, ", g.instances, g.name)).collect();
        let mut waiting = format!("{in_group}standby instances not all stopped yet");
        if !services_down.is_empty() {
            waiting =
                format!("{waiting}; ECS services not down to their standby count yet: {}", services_down.join(", "));
        }
        if changes.is_empty() { waiting } else { format!("{}; {waiting}", changes.join("; ")) }
    };
    tracing::info!(plan = %plan.name, step = "stand-down", done, "{detail}");
    if changes.is_empty() {
        // Nothing called: waiting for instances to stop, within the budget.
        return status_record(timer, state, StepKey::StandDown, done, detail, resources);
    }
    Ok(timer.finish(Outcome::Changed, done, detail, resources))
}

/// Ready when at least the failover `desired` instances are InService and Healthy and, with a
/// load balancer in the plan (`[serving]`), as many of its targets are healthy: users are served
/// by the load balancer, not by the group (an instance InService can still fail the load
/// balancer's health checks). Until then the routing flip waits, within the phase's budget.
pub async fn asg_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("scale-asg-status", clients);
    let mut resources = Vec::new();
    let mut details = Vec::new();
    let mut ready = true;
    let mut shortfalls = Vec::new();
    // The load balancer (`[serving]`) is in front of the first group.
    for (index, (asg, group)) in groups(clients, state).await?.into_iter().enumerate() {
        let in_service = group
            .instances()
            .iter()
            .filter(|i| {
                i.lifecycle_state() == Some(&aws_sdk_autoscaling::types::LifecycleState::InService)
                    && i.health_status() == Some("Healthy")
            })
            .count();
        let wanted = usize::from(asg.failover.desired);
        let mut detail = format!("{in_service} of {wanted} instances InService and Healthy");
        resources.push(ResourceState { resource: asg.group.clone(), state: detail.clone() });
        let mut group_ready = in_service >= wanted;
        let mut serving_now = in_service;
        if let Some(serving) = state.plan.serving.as_ref().filter(|_| index == 0) {
            let targets = target_health(clients, &serving.target_group).await?;
            let healthy = targets.iter().filter(|(_, health)| health == "healthy").count();
            let others: Vec<String> = targets
                .iter()
                .filter(|(_, health)| health != "healthy")
                .map(|(id, health)| format!("{id} {health}"))
                .collect();
            let targets_text = format!(
                "{healthy} of {wanted} targets healthy in {}{}",
                serving.target_group,
                if others.is_empty() { String::new() } else { format!(" ({})", others.join(", ")) }
            );
            detail = format!("{detail}; {targets_text}");
            resources.push(ResourceState { resource: serving.target_group.clone(), state: targets_text });
            group_ready &= healthy >= wanted;
            serving_now = serving_now.min(healthy);
        }
        let (minimum, name) = (asg.minimum_healthy, asg.group.clone());
        if !group_ready {
            if out_of_budget_verdict(
                state,
                StepKey::AsgStatus,
                timer.started(),
                serving_now,
                minimum,
                name.clone(),
                &detail,
            )? {
                shortfalls.push(format!(
                    "{name}: {serving_now} of {wanted} instances serve (minimum {minimum}) when the compute budget ran out: {detail}"
                ));
            } else {
                ready = false;
            }
        }
        details.push(detail);
    }
    // Each ECS service serves on its own: ready at its failover count with a steady deployment;
    // out of the budget, degraded at its minimum or `BelowMinimumCapacity`.
    let services = services::describe_required(&clients.dr, &state.plan.ecs_services).await?;
    resources.extend(services::resources(&clients.dr.region, &services, &[]));
    let waiting: Vec<&services::Described<'_>> = services.iter().filter(|d| !services::serves(d)).collect();
    if !services.is_empty() {
        details.push(format!("{} of {} ECS services serve", services.len() - waiting.len(), services.len()));
    }
    for service in waiting {
        let (label, status) = (service.service.label(), service.status.text());
        let running = usize::try_from(service.status.running).unwrap_or(0);
        let minimum = service.service.minimum_healthy;
        let wanted = service.service.failover_count;
        if out_of_budget_verdict(
            state,
            StepKey::AsgStatus,
            timer.started(),
            running,
            minimum,
            format!("ECS service {label}"),
            &status,
        )? {
            shortfalls.push(format!(
                "ECS service {label}: {running} of {wanted} tasks run (minimum {minimum}) when the compute budget ran out: {status}"
            ));
        } else {
            ready = false;
        }
    }
    let detail =
        if details.is_empty() { "no group and no ECS service to wait for".to_string() } else { details.join("; ") };
    let mut record = status_record(timer, state, StepKey::AsgStatus, ready, detail, resources)?;
    if !shortfalls.is_empty() {
        let shortfall = shortfalls.join("; ");
        tracing::warn!(plan = %state.plan.name, step = "scale-asg-status", "degraded: {shortfall}");
        record.facts.insert(SHORTFALL_FACT.into(), shortfall);
    }
    Ok(record)
}

/// Each target of the DR target group and its health: `healthy`, or its state and reason
/// (`unhealthy: Target.FailedHealthChecks`).
async fn target_health(clients: &AwsClients, target_group: &str) -> Result<Vec<(String, String)>, DrError> {
    let (arn, _) = crate::readiness::find_target_group(&clients.dr, target_group).await?.ok_or_else(|| {
        DrError::ResourceNotFound {
            kind: "target group",
            id: target_group.to_string(),
            region: clients.dr.region.clone(),
        }
    })?;
    let described = clients
        .dr
        .elbv2
        .describe_target_health()
        .target_group_arn(arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("elasticloadbalancing", "DescribeTargetHealth", e))?;
    Ok(described
        .target_health_descriptions()
        .iter()
        .map(|d| {
            let id = d.target().and_then(|t| t.id()).unwrap_or("?").to_string();
            let health = d.target_health();
            let state = health.and_then(|h| h.state()).map_or("unknown", |s| s.as_str());
            let reason = health.and_then(|h| h.reason()).map(|r| format!(": {}", r.as_str())).unwrap_or_default();
            (id, format!("{state}{reason}"))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stopped_instances_are_started_and_a_stopping_one_waits() {
        let found = |states: &[InstanceStateName]| -> Vec<StandbyInstance> {
            states
                .iter()
                .enumerate()
                .map(|(i, s)| StandbyInstance {
                    id: format!("i-{i}"),
                    state: s.clone(),
                    reason: None,
                    instance_type: None,
                    tags: Vec::new(),
                })
                .collect()
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
