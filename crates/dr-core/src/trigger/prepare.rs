//! Preparing while confirming (`trigger.prepare_while_confirming`): the compute half of a
//! failover (start the standby instances, raise the DR groups and ECS services: cheap and
//! reversible) starts when
//! the alarm arrives, with the runbook's own steps, while the trigger confirms the outage over
//! its window; the promotion and the routing change wait for the confirmation. The runbook then
//! finds the instances started and the group raised (its steps are idempotent: `AlreadyDone`)
//! and only waits for what is left of their boot.
//!
//! A flap or an unconfirmed outage undoes the preparation, and only the preparation: what it
//! starts is marked first with the incident's run id (the instances it is about to start carry
//! [`PREPARED_BY_TAG`]; the DR group, before it is raised, [`PREPARED_CAPACITY_TAG`] with the run
//! id and its capacity then; each ECS service, before it is raised, [`PREPARED_DESIRED_TAG`] with
//! the run id and its desired count then). The undo stops only the instances marked for this run
//! and gives each group and service back the capacity it had, never the plan's standby size: an
//! instance an operator started by hand, or a group or service an operator raised, is theirs and
//! stays as they left it. The marks outlive
//! the invocation, so the schedule's later undo of the same incident finds them.
//!
//! Both are best effort: a preparation that fails delays nothing (the runbook starts the compute
//! itself; an instance that could not be marked is not started), and an undo that cannot finish
//! (an instance still booting when the invocation ends) leaves the compute up, which costs money
//! and is named in the decision and by the scheduled readiness check, but moves no traffic.

use std::time::Duration;

use aws_sdk_autoscaling::types::Tag as AsgTag;
use aws_sdk_ec2::types::{InstanceStateName, Tag};
use aws_sdk_ecs::types::Tag as EcsTag;

use crate::aws::lookup::{
    EcsServiceFound, StandbyInstance, describe_auto_scaling_group, describe_ecs_services, describe_standby_instances,
};
use crate::aws::{AwsClients, once};
use crate::error::DrError;
use crate::plan::Plan;
use crate::run::{RunInfo, RunbookState};
use crate::runbook::capacity::{capacity_tag_text, parse_capacity_tag};
use crate::runbook::compute::{
    self, capacity_text, current_capacity, instances_to_start, raised_capacity, set_capacity,
};
use crate::runbook::services::{CountChange, set_counts};
use crate::store::{PlanStatus, PlanStore};
use crate::time;

/// On each standby instance a preparation started: the incident's run id.
pub const PREPARED_BY_TAG: &str = "dr-prepared-by";
/// On the DR group a preparation raised: `<run id> <min>/<desired>/<max>`, its capacity before.
pub const PREPARED_CAPACITY_TAG: &str = "dr-prepared-capacity";

/// On each ECS service a preparation raised: `<run id> <desired count before>`.
pub const PREPARED_DESIRED_TAG: &str = "dr-prepared-desired";

/// How often the undo asks the stand-down again (an instance still `pending` cannot be stopped).
pub const UNDO_POLL: Duration = Duration::from_secs(5);

/// The longest the undo waits for the standby instances to stop: a boot (EC2 gives no figure;
/// typically under a minute) and their stop. Within the trigger's timeout (template.yaml).
pub const UNDO_WAIT: Duration = Duration::from_secs(120);

fn preparing_state(plan: &Plan, run_id: &str) -> RunbookState {
    let run = RunInfo::new(run_id, time::now(), "alarm-trigger: preparing while confirming");
    RunbookState::new(plan.clone(), run)
}

/// Marks, then starts, the stopped standby instances, and marks, then raises, the DR group; what
/// was done, or why not.
pub async fn prepare(clients: &AwsClients, plan: &Plan, run_id: &str) -> String {
    let state = match preparing_state(plan, run_id).validated() {
        Ok(state) => state,
        Err(err) => return format!("not prepared while confirming ({}: {err})", err.name()),
    };
    let mut done = Vec::new();
    match mark_instances(clients, plan, run_id).await {
        Ok(()) => match compute::start_standby(clients, &state).await {
            Ok(record) => done.push(record.detail),
            Err(err) => done.push(format!("standby instances not started ({}: {err})", err.name())),
        },
        Err(err) => done.push(format!("standby instances not started: not marked ({}: {err})", err.name())),
    }
    // The runbook's raise moves the groups and the ECS services together: each marked first.
    let marked = match mark_group(clients, plan, run_id).await {
        Ok(()) => mark_services(clients, plan, run_id).await,
        Err(err) => Err(err),
    };
    match marked {
        Ok(()) => match compute::scale_asg(clients, &state).await {
            Ok(record) => done.push(record.detail),
            Err(err) => done.push(format!("groups and services not raised ({}: {err})", err.name())),
        },
        Err(err) => done.push(format!("groups and services not raised: not marked ({}: {err})", err.name())),
    }
    tracing::info!(plan = %plan.name, step = "prepare-while-confirming", "{}", done.join("; "));
    format!("prepared while confirming: {}", done.join("; "))
}

/// Tags the stopped standby instances (the ones the start will start) with the run id.
async fn mark_instances(clients: &AwsClients, plan: &Plan, run_id: &str) -> Result<(), DrError> {
    let found = describe_standby_instances(&clients.dr.ec2, plan).await?;
    let to_start = instances_to_start(&found)?;
    if to_start.is_empty() {
        return Ok(());
    }
    // Setting the same tag twice is harmless: the SDK's retries stay on.
    clients
        .dr
        .ec2
        .create_tags()
        .set_resources(Some(to_start))
        .tags(Tag::builder().key(PREPARED_BY_TAG).value(run_id).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "CreateTags", e))?;
    Ok(())
}

/// Tags each DR group with the run id and its capacity now, when the raise will change it. This
/// run's own mark (a preparation asked again) keeps the capacity it recorded; a mark an earlier
/// incident left behind is replaced: the group is not raised now, so its capacity now is the one
/// to give back.
async fn mark_group(clients: &AwsClients, plan: &Plan, run_id: &str) -> Result<(), DrError> {
    for asg in &plan.auto_scaling {
        mark_one_group(clients, asg, run_id).await?;
    }
    Ok(())
}

async fn mark_one_group(clients: &AwsClients, asg: &crate::plan::AutoScaling, run_id: &str) -> Result<(), DrError> {
    let name = &asg.group;
    let Some(found) = describe_auto_scaling_group(&clients.dr.autoscaling, name).await? else {
        return Ok(());
    };
    let current = current_capacity(&found);
    if raised_capacity(current, asg.failover) == current {
        return Ok(());
    }
    let before = prepared_capacity(&found).filter(|(by, _)| by == run_id).map_or(current, |(_, before)| before);
    let tag = AsgTag::builder()
        .resource_id(name)
        .resource_type("auto-scaling-group")
        .key(PREPARED_CAPACITY_TAG)
        .value(format!("{run_id} {}", capacity_tag_text(before)))
        .propagate_at_launch(false)
        .build();
    clients
        .dr
        .autoscaling
        .create_or_update_tags()
        .tags(tag)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "CreateOrUpdateTags", e))?;
    Ok(())
}

/// Tags each ECS service the raise will change with the run id and its desired count now. This
/// run's own mark (a preparation asked again) keeps the count it recorded; another incident's is
/// replaced. A service ECS does not find is left to the raise, which names it.
async fn mark_services(clients: &AwsClients, plan: &Plan, run_id: &str) -> Result<(), DrError> {
    if plan.ecs_services.is_empty() {
        return Ok(());
    }
    let found = describe_ecs_services(&clients.dr.ecs, &plan.ecs_services).await?;
    for (service, found) in plan.ecs_services.iter().zip(found) {
        let EcsServiceFound::Found(status) = found else { continue };
        let Some(arn) = &status.arn else { continue };
        if status.desired >= i32::from(service.failover_count) {
            continue;
        }
        if prepared_desired(clients, arn).await?.is_some_and(|(by, _)| by == run_id) {
            continue;
        }
        // Setting the same tag twice is harmless: the SDK's retries stay on.
        let tag = EcsTag::builder().key(PREPARED_DESIRED_TAG).value(format!("{run_id} {}", status.desired)).build();
        clients
            .dr
            .ecs
            .tag_resource()
            .resource_arn(arn)
            .tags(tag)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ecs", "TagResource", e))?;
    }
    Ok(())
}

/// A service's preparation mark: (run id, desired count before), when it has a well-formed one.
async fn prepared_desired(clients: &AwsClients, arn: &str) -> Result<Option<(String, i32)>, DrError> {
    let tags = clients
        .dr
        .ecs
        .list_tags_for_resource()
        .resource_arn(arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ecs", "ListTagsForResource", e))?;
    let mark = tags.tags().iter().find(|tag| tag.key() == Some(PREPARED_DESIRED_TAG)).and_then(|tag| tag.value());
    Ok(mark.and_then(|value| {
        let (run_id, desired) = value.split_once(' ')?;
        Some((run_id.to_string(), desired.parse().ok()?))
    }))
}

/// Gives each ECS service this run's preparation raised the desired count its mark recorded, and
/// drops the mark. ECS stops the tasks over the surplus by itself: nothing to wait for.
async fn undo_services(
    clients: &AwsClients,
    plan: &Plan,
    run_id: &str,
    changed: &mut bool,
    detail: &mut Vec<String>,
) -> Result<(), DrError> {
    if plan.ecs_services.is_empty() {
        return Ok(());
    }
    let found = describe_ecs_services(&clients.dr.ecs, &plan.ecs_services).await?;
    for (service, found) in plan.ecs_services.iter().zip(found) {
        let EcsServiceFound::Found(status) = found else { continue };
        let Some(arn) = &status.arn else { continue };
        let Some((_, before)) = prepared_desired(clients, arn).await?.filter(|(by, _)| by == run_id) else {
            continue;
        };
        if status.desired != before {
            let back = CountChange { service, from: status.desired, to: before };
            set_counts(&clients.dr, std::slice::from_ref(&back)).await?;
            *changed = true;
            detail.push(format!("{} back to desired {before}", service.label()));
        }
        clients
            .dr
            .ecs
            .untag_resource()
            .resource_arn(arn)
            .tag_keys(PREPARED_DESIRED_TAG)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ecs", "UntagResource", e))?;
    }
    Ok(())
}

/// The group's preparation mark: (run id, capacity before), when it has a well-formed one.
fn prepared_capacity(group: &aws_sdk_autoscaling::types::AutoScalingGroup) -> Option<(String, (i32, i32, i32))> {
    let value = group.tags().iter().find(|tag| tag.key() == Some(PREPARED_CAPACITY_TAG))?.value()?;
    let (run_id, capacity) = value.split_once(' ')?;
    Some((run_id.to_string(), parse_capacity_tag(capacity)?))
}

/// Puts back what this run's preparation started, unless the plan was taken meanwhile (an
/// operator's run, another delivery's: the compute is theirs now); asks until done, [`UNDO_WAIT`]
/// at most.
pub async fn undo(clients: &AwsClients, store: &PlanStore, plan: &Plan, run_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + UNDO_WAIT;
    let mut undone = Vec::new();
    loop {
        // Asked on every pass: a run that takes the plan meanwhile (another delivery, an operator)
        // owns the compute from then on, marks included, and its steps must not see it stopped.
        match store.read_state(&plan.name).await {
            Ok(read) if read.state.status != PlanStatus::Armed => {
                return format!("preparation kept: the plan is {} now", read.state.status.name());
            }
            Ok(_) => {}
            Err(err) => return format!("preparation NOT undone: the plan state could not be read ({err})"),
        }
        let answer = undo_once(clients, plan, run_id).await;
        if let Ok(pass) = &answer
            && pass.changed
        {
            // What each pass changed, for the decision's detail: the last pass may only find it done.
            undone.push(pass.detail.clone());
        }
        match answer {
            Ok(pass) if pass.done && undone.is_empty() => return format!("compute on standby: {}", pass.detail),
            Ok(pass) if pass.done => {
                let detail = undone.join("; ");
                tracing::info!(plan = %plan.name, step = "undo-preparation", "{detail} ({})", pass.detail);
                return format!("preparation undone: {detail}");
            }
            Ok(pass) if tokio::time::Instant::now() + UNDO_POLL >= deadline => {
                tracing::warn!(plan = %plan.name, step = "undo-preparation", "{}", pass.detail);
                return format!("preparation NOT fully undone: {}", pass.detail);
            }
            Ok(_) => tokio::time::sleep(UNDO_POLL).await,
            // Throttled, a 5xx, an instance still changing state: asked again, within the wait.
            Err(err) if err.is_retryable() && tokio::time::Instant::now() + UNDO_POLL < deadline => {
                tracing::info!(plan = %plan.name, step = "undo-preparation", error = err.name(), "{err}: asked again");
                tokio::time::sleep(UNDO_POLL).await;
            }
            Err(err) => {
                tracing::warn!(plan = %plan.name, step = "undo-preparation", error = err.name(), "{err}");
                return format!("preparation NOT undone ({}: {err})", err.name());
            }
        }
    }
}

/// One pass of the undo: what it did, and whether everything this run prepared is back.
struct UndoPass {
    changed: bool,
    done: bool,
    detail: String,
}

async fn undo_once(clients: &AwsClients, plan: &Plan, run_id: &str) -> Result<UndoPass, DrError> {
    let ec2 = &clients.dr.ec2;
    let found = describe_standby_instances(ec2, plan).await?;
    let ours: Vec<&StandbyInstance> = found.iter().filter(|i| i.tag(PREPARED_BY_TAG) == Some(run_id)).collect();
    let ids = |state: &[InstanceStateName]| -> Vec<String> {
        ours.iter().filter(|i| state.contains(&i.state)).map(|i| i.id.clone()).collect()
    };
    let (running, stopped) = (ids(&[InstanceStateName::Running]), ids(&[InstanceStateName::Stopped]));
    // A pending instance cannot be stopped yet (EC2 answers IncorrectInstanceState): it is
    // stopped once running, on a later pass.
    let settling = ours.len() - running.len() - stopped.len() - ours.iter().filter(|i| i.is_gone()).count();
    let mut changed = false;
    let mut detail = Vec::new();
    if !running.is_empty() {
        ec2.stop_instances()
            .set_instance_ids(Some(running.clone()))
            .customize()
            .config_override(once::ec2())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "StopInstances", e))?;
        changed = true;
        detail.push(format!("stopped {}", running.join(", ")));
    }
    if !stopped.is_empty() {
        // Back on standby: the mark goes, so that nothing later takes them for this run's.
        // With this run's value: EC2 then deletes only a mark of this run, not another incident's
        // set since.
        ec2.delete_tags()
            .set_resources(Some(stopped.clone()))
            .tags(Tag::builder().key(PREPARED_BY_TAG).value(run_id).build())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "DeleteTags", e))?;
    }
    let instances_done = running.is_empty() && settling == 0;

    let mut group_done = true;
    for asg in &plan.auto_scaling {
        group_done &= undo_group(clients, &asg.group, run_id, &mut changed, &mut detail).await?;
    }
    undo_services(clients, plan, run_id, &mut changed, &mut detail).await?;
    let done = instances_done && group_done;
    if detail.is_empty() {
        detail.push(if done {
            "nothing this run prepared is left up".to_string()
        } else {
            "waiting for the instances this run prepared to stop".to_string()
        });
    }
    Ok(UndoPass { changed, done, detail: detail.join("; ") })
}

/// Gives one DR group back the capacity this run's preparation mark recorded, and drops the mark
/// once the group is down to it: whether it is.
async fn undo_group(
    clients: &AwsClients,
    name: &str,
    run_id: &str,
    changed: &mut bool,
    detail: &mut Vec<String>,
) -> Result<bool, DrError> {
    let found = describe_auto_scaling_group(&clients.dr.autoscaling, name).await?;
    let group_done = match found {
        Some(group) => match prepared_capacity(&group).filter(|(by, _)| by == run_id) {
            Some((_, before)) => {
                if current_capacity(&group) != before {
                    set_capacity(&clients.dr.autoscaling, name, before).await?;
                    *changed = true;
                    detail.push(format!("{name} back to {}", capacity_text(before)));
                }
                let drained = group.instances().len() <= usize::try_from(before.1).unwrap_or_default();
                if drained {
                    let tag = AsgTag::builder()
                        .resource_id(name)
                        .resource_type("auto-scaling-group")
                        .key(PREPARED_CAPACITY_TAG)
                        .build();
                    clients
                        .dr
                        .autoscaling
                        .delete_tags()
                        .tags(tag)
                        .send()
                        .await
                        .map_err(|e| DrError::from_sdk("autoscaling", "DeleteTags", e))?;
                }
                drained
            }
            None => true,
        },
        None => true,
    };
    Ok(group_done)
}
