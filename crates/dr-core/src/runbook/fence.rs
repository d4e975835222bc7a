//! A planned move's fence and barrier (`[fence]`), and the fence's undo.
//!
//! 1. **Fence** (act): stop the writer in Paris, by every method the plan names: the Paris
//!    Auto Scaling group to zero (its capacity kept in a tag on the group, so that an attempt
//!    whose answer was lost, and the undo, know it), the plan's fencing Lambda, and the primary
//!    database made read-only. The fence holds when the group has no instance left.
//! 2. **Barrier** (status): a marker row (`barrier:<run id>` in the heartbeat table) written on the
//!    Paris primary after the fence, read back on the Ireland replica. Replayed there, the replica
//!    holds every write Paris acknowledged before it: the move loses nothing. Not replayed within
//!    `fence.barrier_timeout_seconds` of its writing: `BarrierNotReached`. A plan's
//!    `fence.barrier_function` replaces the SQL with the application's own proof.
//! 3. **Unfence** (undo, from the Catch of either): Paris serves again, as before the run.
//!
//! Nothing here runs for an unplanned failover: Paris may be gone, and its report says it was
//! not fenced.

use serde::{Deserialize, Serialize};

// The fence's own tag, named where the fence is.
pub use super::capacity::FENCE_CAPACITY_TAG;
use super::capacity::{current_capacity, drop_fence_tag, fenced_capacity, keep_fenced_capacity, set_capacity};
use crate::aws::AwsClients;
use crate::aws::hooks::{HookEffect, invoke_hook};
use crate::aws::lookup::{describe_auto_scaling_group, require_db_instance};
use crate::aws::postgres::{self, Credentials, Endpoint, Session};
use crate::error::DrError;
use crate::plan::{Database, Fence, Plan, hook_timeout};
use crate::run::budget::{Budget, status_record};
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};
use crate::time;

/// Facts of the barrier record.
pub const BARRIER_WRITTEN_FACT: &str = "barrier_written_at";
pub const BARRIER_CONFIRMED_FACT: &str = "barrier_confirmed_at";
/// Fact of the fence record: when the fence held.
pub const FENCED_FACT: &str = "fenced_at";

/// What the fence would do, in words.
fn methods(plan: &Plan, fence: &Fence) -> Vec<String> {
    let mut methods = Vec::new();
    for group in &fence.auto_scaling_group {
        methods.push(format!("scale {group} ({}) to zero", plan.primary_region));
    }
    if let Some(function) = &fence.lambda {
        methods.push(format!("invoke {function}"));
    }
    if fence.database_read_only {
        let primaries = plan.databases.iter().map(|db| db.primary_instance.as_str()).collect::<Vec<_>>();
        methods.push(format!("make {} read-only", primaries.join(", ")));
    }
    methods
}

/// Fences the writer in Paris. Idempotent: a fence that holds is `AlreadyDone`.
pub async fn fence(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let fence = plan.fence_for_planned_move()?;
    let timer = StepTimer::start("fence", clients);
    if state.is_dry_run() {
        return Ok(timer.would(format!("fence the writer: {}", methods(plan, fence).join(", ")), Vec::new()));
    }
    let mut resources = Vec::new();
    let mut changed = false;
    let mut held = true;
    let mut emptying = Vec::new();
    for group in &fence.auto_scaling_group {
        let (resource, group_changed, instances) = fence_group(clients, group).await?;
        resources.push(resource);
        changed |= group_changed;
        // Just scaled: its instances are still terminating; the next attempt looks again.
        if group_changed || instances > 0 {
            held = false;
            emptying.push(group.as_str());
        }
    }
    if let Some(function) = &fence.lambda {
        invoke_fence_lambda(clients, state, function, "fence").await?;
        resources.push(ResourceState::new(function, "fence: answered without error"));
        changed = true;
    }
    // Every database, before any barrier: one fence for the data tier.
    for db in plan.databases.iter().filter(|_| fence.database_read_only) {
        let credentials = postgres::credentials(clients, plan, db).await?;
        let session = primary_session(clients, plan, db, &credentials).await?;
        // Fence on return after reprotect: the primary's name is the new replica's, which takes
        // no writes (and could not take the setting).
        if session.is_in_recovery().await? {
            resources.push(ResourceState::new(
                &db.primary_instance,
                format!("database {} is a replica (in recovery): it takes no writes", session.dbname()),
            ));
        } else {
            let was = session.is_read_only().await?;
            let ended = session.make_read_only().await?;
            changed |= !was;
            resources.push(ResourceState::new(
                &db.primary_instance,
                format!("database {} read-only; {ended} other session(s) ended", session.dbname()),
            ));
        }
    }
    let outcome = if changed { Outcome::Changed } else { Outcome::AlreadyDone };
    let detail = if held {
        format!("writer fenced: {}", methods(plan, fence).join(", "))
    } else {
        format!("fencing: the {} group(s) {} still have instances", plan.primary_name(), emptying.join(", "))
    };
    if !held {
        // A group whose instances never go (scale-in protection, a stuck lifecycle hook) stops the
        // move within the fence's share of the RTO, rather than polling for ever.
        let now = time::now();
        Budget::of(state, StepKey::Fence, now).check(StepKey::Fence, now, &detail)?;
    }
    tracing::info!(plan = %plan.name, step = "fence", held, "{detail}");
    let mut record = timer.finish(outcome, held, detail, resources);
    if held {
        record.facts.insert(FENCED_FACT.into(), time::rfc3339(record.finished_at));
    }
    Ok(record)
}

/// Scales the Paris group to zero, its capacity kept in [`FENCE_CAPACITY_TAG`] first. Returns
/// the resource's state, whether a call changed it, and how many instances it still has.
async fn fence_group(clients: &AwsClients, group: &str) -> Result<(ResourceState, bool, usize), DrError> {
    let autoscaling = &clients.primary.autoscaling;
    let found = describe_auto_scaling_group(autoscaling, group).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "Auto Scaling group",
        id: group.to_string(),
        region: clients.primary.region.clone(),
    })?;
    let capacity = current_capacity(&found);
    let tagged = found.tags().iter().any(|tag| tag.key() == Some(FENCE_CAPACITY_TAG));
    let mut changed = false;
    if !tagged {
        keep_fenced_capacity(autoscaling, group, capacity).await?;
        changed = true;
    }
    if capacity != (0, 0, 0) {
        set_capacity(autoscaling, group, (0, 0, 0)).await?;
        changed = true;
    }
    let instances = found.instances().len();
    let state = if !changed && instances == 0 {
        "min 0 / desired 0 / max 0, no instance left".to_string()
    } else {
        format!("scaled to zero from min {} / desired {} / max {}", capacity.0, capacity.1, capacity.2)
    };
    Ok((ResourceState::new(group, state), changed, instances))
}

/// Invokes the plan's fencing Lambda; a function error is `FenceFailed`.
async fn invoke_fence_lambda(
    clients: &AwsClients,
    state: &RunbookState,
    function: &str,
    action: &str,
) -> Result<(), DrError> {
    let request = serde_json::json!({ "action": action, "plan": state.plan.name, "run_id": state.run.id });
    let timeout = hook_timeout(state.plan.fence_for_planned_move()?.hook_timeout_seconds);
    invoke_hook(&clients.home, function, &request, HookEffect::Changes, timeout).await?.map(drop).map_err(|failure| {
        DrError::FenceFailed {
            region: state.plan.primary_region.clone(),
            reason: format!("{function} ({action}) failed ({failure})"),
        }
    })
}

/// A session on a Paris primary that writes through the read-only fence.
async fn primary_session(
    clients: &AwsClients,
    plan: &Plan,
    db: &Database,
    credentials: &Credentials,
) -> Result<Session, DrError> {
    let primary = &db.primary_instance;
    let session = postgres::connect_to(&clients.primary.rds, primary, &plan.primary_region, credentials).await?;
    session.write_through_the_fence().await?;
    Ok(session)
}

/// A session on an Ireland replica.
async fn replica_session(
    clients: &AwsClients,
    plan: &Plan,
    db: &Database,
    credentials: &Credentials,
) -> Result<Session, DrError> {
    postgres::connect_to(&clients.dr.rds, &db.replica_instance, &plan.dr_region, credentials).await
}

/// What the plan's barrier hook (`fence.barrier_function`) receives, on every attempt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BarrierHookRequest {
    /// Always `"barrier"`.
    pub action: String,
    pub plan: String,
    pub run_id: String,
    /// The run's marker: the hook writes it in Paris once, and looks for it in Ireland.
    pub marker: String,
    pub primary: HookEndpoint,
    pub replica: HookEndpoint,
}

/// An instance of the pair, for a hook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HookEndpoint {
    pub instance: String,
    pub region: String,
    pub address: String,
    pub port: u16,
}

impl HookEndpoint {
    fn of(endpoint: Endpoint, region: &str) -> HookEndpoint {
        HookEndpoint {
            instance: endpoint.instance,
            region: region.to_string(),
            address: endpoint.address,
            port: endpoint.port,
        }
    }
}

/// What the barrier hook answers: when Paris took the marker (the same on every attempt), and
/// whether Ireland has it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct BarrierHookAnswer {
    pub written_at: time::Timestamp,
    pub replayed: bool,
    #[serde(default)]
    pub detail: Option<String>,
}

/// One look at the barrier: when Paris took the marker, whether Ireland has it, and what was seen.
struct BarrierLook {
    written_at: time::Timestamp,
    replayed: bool,
    resources: Vec<ResourceState>,
    by: String,
}

impl BarrierLook {
    /// The data tier's barrier: replayed when every database's is, written when the first was.
    fn of_all(looks: Vec<BarrierLook>) -> BarrierLook {
        let written_at = looks.iter().map(|look| look.written_at).min().unwrap_or_else(time::now);
        let replayed = looks.iter().all(|look| look.replayed);
        let by = looks.first().map(|look| look.by.clone()).unwrap_or_default();
        let resources = looks.into_iter().flat_map(|look| look.resources).collect();
        BarrierLook { written_at, replayed, resources, by }
    }
}

/// Writes the run's marker in each Paris primary (once: a later attempt finds it) and looks for it
/// in each Ireland replica: in SQL, or by the plan's barrier hook (asked once per database).
pub async fn barrier(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let fence = plan.fence_for_planned_move()?;
    let timer = StepTimer::start("barrier", clients);
    let marker = postgres::barrier_source(&state.run.id);
    // Proved on every database before any promotion: the marker is written in each primary and
    // looked for in each replica. The barrier holds when every replica has replayed its own.
    let mut looks = Vec::with_capacity(plan.databases.len());
    for db in &plan.databases {
        let look = match &fence.barrier_function {
            Some(function) => barrier_by_hook(clients, state, db, function, &marker).await?,
            None => barrier_in_sql(clients, plan, db, &marker).await?,
        };
        looks.push((db, look));
    }
    let now = time::now();
    for (db, look) in &looks {
        let waited = time::elapsed(look.written_at, now);
        if !look.replayed && waited > fence.barrier_timeout() {
            return Err(DrError::BarrierNotReached {
                replica: db.replica_instance.clone(),
                marker,
                waited_seconds: waited.as_secs(),
                timeout_seconds: fence.barrier_timeout().as_secs(),
            });
        }
    }
    let look = BarrierLook::of_all(looks.into_iter().map(|(_, look)| look).collect());
    let detail = barrier_detail(plan, &marker, &look, now);
    let mut record = status_record(timer, state, StepKey::Barrier, look.replayed, detail, look.resources)?;
    record.facts.insert(BARRIER_WRITTEN_FACT.into(), time::rfc3339(look.written_at));
    if look.replayed {
        record.facts.insert(BARRIER_CONFIRMED_FACT.into(), time::rfc3339(now));
    }
    Ok(record)
}

/// What a look at the barrier saw, in the direction of the move: the marker is written in the
/// region the move leaves (the faced plan's primary) and replayed in the one it goes to.
fn barrier_detail(plan: &Plan, marker: &str, look: &BarrierLook, now: time::Timestamp) -> String {
    let (from, to, by) = (plan.primary_name(), plan.dr_name(), &look.by);
    if look.replayed {
        format!(
            "barrier confirmed{by}: {marker} written in {from} at {}, replayed in {to} by {}",
            time::rfc3339(look.written_at),
            time::rfc3339(now)
        )
    } else {
        let waited = time::elapsed(look.written_at, now);
        format!("waiting for {marker} to be replayed in {to}{by} ({:.0} s so far)", waited.as_secs_f64())
    }
}

/// The built-in barrier: the marker row in the heartbeat table, through the fence in Paris.
async fn barrier_in_sql(
    clients: &AwsClients,
    plan: &Plan,
    db: &Database,
    marker: &str,
) -> Result<BarrierLook, DrError> {
    let credentials = postgres::credentials(clients, plan, db).await?;
    let mut primary = primary_session(clients, plan, db, &credentials).await?;
    let written_at = primary.write_heartbeat(marker, false).await?;
    let replica = replica_session(clients, plan, db, &credentials).await?;
    let replayed = replica.heartbeat(marker).await?.is_some();
    let waited = time::elapsed(written_at, time::now());
    let resources = vec![
        ResourceState::new(&db.primary_instance, format!("marker {marker} written at {}", time::rfc3339(written_at))),
        ResourceState::new(
            &db.replica_instance,
            if replayed {
                format!("marker replayed ({:.1} s after it was written)", waited.as_secs_f64())
            } else {
                format!("marker not replayed yet ({:.0} s)", waited.as_secs_f64())
            },
        ),
    ];
    Ok(BarrierLook { written_at, replayed, resources, by: String::new() })
}

/// The plan's barrier hook, given both endpoints; a function error or an answer that is not a
/// [`BarrierHookAnswer`] is `FenceFailed` (nothing proves the move loses nothing).
async fn barrier_by_hook(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
    function: &str,
    marker: &str,
) -> Result<BarrierLook, DrError> {
    let plan = &state.plan;
    let primary = require_db_instance(&clients.primary.rds, &db.primary_instance, &plan.primary_region);
    let primary = HookEndpoint::of(Endpoint::require(&primary.await?)?, &plan.primary_region);
    let replica = require_db_instance(&clients.dr.rds, &db.replica_instance, &plan.dr_region).await?;
    let replica = HookEndpoint::of(Endpoint::require(&replica)?, &plan.dr_region);
    let request = BarrierHookRequest {
        action: "barrier".into(),
        plan: plan.name.clone(),
        run_id: state.run.id.clone(),
        marker: marker.to_string(),
        primary,
        replica,
    };
    let refused = |reason: String| DrError::FenceFailed { region: plan.primary_region.clone(), reason };
    let timeout = hook_timeout(plan.fence_for_planned_move()?.hook_timeout_seconds);
    let body = invoke_hook(&clients.home, function, &request, HookEffect::Changes, timeout)
        .await?
        .map_err(|failure| refused(format!("barrier hook {function} failed ({failure})")))?;
    let answer: BarrierHookAnswer = serde_json::from_slice(&body).map_err(|e| {
        refused(format!("barrier hook {function} answered something other than {{written_at, replayed}}: {e}"))
    })?;
    let seen =
        answer.detail.unwrap_or_else(|| if answer.replayed { "replayed".into() } else { "not replayed yet".into() });
    Ok(BarrierLook {
        written_at: answer.written_at,
        replayed: answer.replayed,
        resources: vec![ResourceState::new(
            &db.replica_instance,
            format!("barrier hook {function}: marker {marker}: {seen}"),
        )],
        by: format!(" by {function}"),
    })
}

/// Undoes the fence, in reverse order: Paris serves again. Idempotent: what is not fenced is left.
pub async fn unfence(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let fence = plan.fence_for_planned_move()?;
    let timer = StepTimer::start("unfence", clients);
    if state.is_dry_run() {
        return Ok(timer.finish(Outcome::AlreadyDone, true, "dry run: nothing was fenced", Vec::new()));
    }
    let mut resources = Vec::new();
    for db in plan.databases.iter().filter(|_| fence.database_read_only) {
        let credentials = postgres::credentials(clients, plan, db).await?;
        let session = primary_session(clients, plan, db, &credentials).await?;
        session.make_writable().await?;
        resources.push(ResourceState::new(&db.primary_instance, format!("database {} writable", session.dbname())));
    }
    if let Some(function) = &fence.lambda {
        invoke_fence_lambda(clients, state, function, "unfence").await?;
        resources.push(ResourceState::new(function, "unfence: answered without error"));
    }
    for group in &fence.auto_scaling_group {
        resources.push(unfence_group(clients, group).await?);
    }
    let detail = format!("fence undone: {} serves again ({})", plan.primary_name(), resources.len());
    tracing::info!(plan = %plan.name, step = "unfence", "{detail}");
    Ok(timer.finish(Outcome::Changed, true, detail, resources))
}

/// Gives the Paris group back the capacity in its tag, then removes the tag.
async fn unfence_group(clients: &AwsClients, group: &str) -> Result<ResourceState, DrError> {
    let autoscaling = &clients.primary.autoscaling;
    let Some(found) = describe_auto_scaling_group(autoscaling, group).await? else {
        return Ok(ResourceState::new(group, "not found: nothing to restore"));
    };
    let Some((min, desired, max)) = fenced_capacity(&found, &clients.primary.region)? else {
        return Ok(ResourceState::new(group, "not fenced by a run: left as it is"));
    };
    // An attempt whose answer was lost already gave it back: only the tag is left to drop.
    if current_capacity(&found) != (min, desired, max) {
        set_capacity(autoscaling, group, (min, desired, max)).await?;
    }
    drop_fence_tag(autoscaling, group).await?;
    Ok(ResourceState::new(group, format!("back to min {min} / desired {desired} / max {max}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Direction;

    fn example() -> Plan {
        Plan::parse(include_str!("../../../../plans/paris-ireland.toml"), "example").expect("example plan")
    }

    fn look(replayed: bool) -> BarrierLook {
        let written_at = time::parse("2026-11-23T10:00:00Z").expect("time");
        BarrierLook { written_at, replayed, resources: Vec::new(), by: String::new() }
    }

    #[test]
    fn the_barrier_names_the_region_the_data_left_and_the_one_it_reached() {
        let now = time::parse("2026-11-23T10:00:02Z").expect("time");
        let plan = example();
        assert_eq!(
            barrier_detail(&plan, "barrier:r1", &look(true), now),
            "barrier confirmed: barrier:r1 written in Paris at 2026-11-23T10:00:00Z, replayed in Ireland by 2026-11-23T10:00:02Z"
        );
        // A failback moves the data from Ireland back to Paris.
        let failback = plan.facing(Direction::ToPrimary).expect("a failback of the example");
        assert_eq!(
            barrier_detail(&failback, "barrier:r2", &look(true), now),
            "barrier confirmed: barrier:r2 written in Ireland at 2026-11-23T10:00:00Z, replayed in Paris by 2026-11-23T10:00:02Z"
        );
        assert_eq!(
            barrier_detail(&failback, "barrier:r2", &look(false), now),
            "waiting for barrier:r2 to be replayed in Paris (2 s so far)"
        );
        // A plan that names no region is told in region codes.
        let mut us = example();
        (us.primary_region, us.dr_region) = ("us-east-1".into(), "us-west-2".into());
        us.region_names.clear();
        let back = us.facing(Direction::ToPrimary).expect("a failback");
        assert_eq!(
            barrier_detail(&back, "barrier:r3", &look(true), now),
            "barrier confirmed: barrier:r3 written in us-west-2 at 2026-11-23T10:00:00Z, replayed in us-east-1 by 2026-11-23T10:00:02Z"
        );
    }
}
