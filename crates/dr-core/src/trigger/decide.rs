//! The decision on a move to ALARM of a plan's alarm: refused (stale, already handled, not armed,
//! too soon), not confirmed (a flap, unconfirmed, pending), or confirmed: then the plan is taken
//! by a conditional write and the incident's run started.

use std::time::Duration;

use super::confirm::{Judged, confirm_outage};
use super::context::TriggerContext;
use super::event::AlarmMove;
use super::incident::{incident_input, incident_run_id};
use super::outcome::{Decision, TriggerOutcome};
use super::prepare;
use crate::error::DrError;
use crate::plan::{Plan, Trigger};
use crate::run::Incident;
use crate::store::{PlanStatus, Versioned, WriteOutcome};
use crate::time::{self, Timestamp};

/// Events older than this are not acted on: EventBridge and the function's asynchronous retries
/// are both capped at an hour (template.yaml); an older alarm is for a human to judge.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(3600);

/// How many times the trigger re-reads and re-decides after losing a conditional write.
const TAKE_ATTEMPTS: u32 = 5;

/// A move to ALARM older than [`MAX_EVENT_AGE`] is not acted on: a human decides (the decision is
/// counted, and the template alarms on it).
pub(super) fn stale(plan: &Plan, change: &AlarmMove, now: Timestamp) -> Option<TriggerOutcome> {
    if time::elapsed(change.at, now) <= MAX_EVENT_AGE {
        return None;
    }
    tracing::error!(plan = %plan.name, alarm = %change.alarm, at = %time::rfc3339(change.at), "alarm moved to ALARM too long ago to act on");
    Some(TriggerOutcome::new(
        Decision::Stale,
        &change.alarm,
        Some(plan),
        format!(
            "moved to ALARM at {}, more than {} s ago: not failing over automatically",
            time::rfc3339(change.at),
            MAX_EVENT_AGE.as_secs()
        ),
    ))
}

/// Decides on a move to ALARM of one of the plan's alarms: refuses, or confirms the outage and
/// takes the plan.
pub(super) async fn decide(
    ctx: &TriggerContext,
    plan: &Plan,
    change: &AlarmMove,
    judged: Judged,
) -> Result<TriggerOutcome, DrError> {
    let Some(trigger) = plan.trigger.clone() else {
        return Ok(TriggerOutcome::new(Decision::UnknownAlarm, &change.alarm, Some(plan), "the plan has no [trigger]"));
    };
    let run_id = incident_run_id(plan, change.at);
    let incident_id = format!("{}@{}", change.alarm, time::rfc3339(change.at));

    // Before the (minutes-long) confirmation: most events stop here.
    let read = ctx.store.read_state(&plan.name).await?;
    if let Some(outcome) = refusal(ctx, plan, &trigger, &read, &incident_id, &change.alarm).await? {
        return Ok(outcome);
    }

    let Some(health_check_id) = change.health_check_id.clone() else {
        return Err(DrError::InvalidInput {
            message: format!(
                "alarm {} watches no AWS/Route53 HealthCheckStatus with a HealthCheckId: the trigger's alarms \
                 must watch the detection health check {}",
                change.alarm, trigger.detection_health_check
            ),
        });
    };
    let clients = (ctx.clients_for)(plan);
    // The cheap, reversible half of the failover starts now if the plan says so; the promotion
    // and the routing change wait for the confirmation. Only on the event: the schedule judges a
    // window that is already over, with nothing to wait for (preparing there would start and
    // stop the compute every few minutes of a brownout).
    let waits = matches!(judged, Judged::OnEvent { .. });
    let prepared = if trigger.prepare_while_confirming && waits {
        Some(prepare::prepare(&clients, plan, &run_id).await)
    } else {
        None
    };
    let evidence = match confirm_outage(ctx, &clients, plan, &trigger, &health_check_id, change.at, judged).await? {
        Ok(evidence) => evidence,
        Err(rejected) => {
            let mut outcome = TriggerOutcome { alarm: change.alarm.clone(), ..rejected };
            // No failover: the preparation is undone. Left to the schedule (Pending), it stays:
            // the schedule judges the same incident again and, on a flap, undoes what the event
            // prepared (the stand-down only reads when there is nothing to undo).
            if trigger.prepare_while_confirming && matches!(outcome.decision, Decision::Flap | Decision::Unconfirmed) {
                let undone = prepare::undo(&clients, &ctx.store, plan, &run_id).await;
                outcome.detail = format!("{}; {undone}", outcome.detail);
            }
            return Ok(outcome);
        }
    };
    let incident = Incident {
        id: incident_id.clone(),
        alarm: change.alarm.clone(),
        alarm_at: change.at,
        alarm_reason: change.reason.clone(),
        confirmed_at: time::now(),
        evidence,
    };

    // Take the plan. The state may have changed while the outage was being confirmed (another
    // delivery, an operator): every attempt reads it again and decides again.
    for _ in 0..TAKE_ATTEMPTS {
        let read = ctx.store.read_state(&plan.name).await?;
        if let Some(outcome) = refusal(ctx, plan, &trigger, &read, &incident_id, &change.alarm).await? {
            return Ok(outcome);
        }
        let mut holding = read.state.taken(&run_id, "alarm-trigger", format!("incident {incident_id}"));
        holding.incident = Some(incident.clone());
        holding.last_automatic_run_at = Some(incident.confirmed_at);
        holding.plan_version = Some(plan.version()?);
        if ctx.store.write_state(&read, &holding).await? == WriteOutcome::Won {
            let input = incident_input(plan, &incident, &run_id, &ctx.store)?;
            let arn = ctx.store.start_holding(&ctx.starter, &input, "alarm-trigger").await?;
            tracing::info!(plan = %plan.name, alarm = %change.alarm, execution = %arn, "failover started");
            let detail = match &prepared {
                Some(prepared) => format!("incident {incident_id}; {prepared}"),
                None => format!("incident {incident_id}"),
            };
            let mut outcome = TriggerOutcome::new(Decision::Started, &change.alarm, Some(plan), detail);
            outcome.execution_arn = Some(arn);
            return Ok(outcome);
        }
    }
    Err(DrError::AwsTransient {
        service: "s3",
        operation: "PutObject",
        message: format!("the plan state of {} kept changing: {TAKE_ATTEMPTS} attempts to take it lost", plan.name),
    })
}

/// Why the plan cannot be taken for this incident, if it cannot: already handled, not armed,
/// or too soon after the last automatic run.
async fn refusal(
    ctx: &TriggerContext,
    plan: &Plan,
    trigger: &Trigger,
    read: &Versioned,
    incident_id: &str,
    alarm: &str,
) -> Result<Option<TriggerOutcome>, DrError> {
    if let Some(outcome) = already_handled(ctx, plan, read, incident_id, alarm).await? {
        return Ok(Some(outcome));
    }
    if read.state.status != PlanStatus::Armed {
        return Ok(Some(TriggerOutcome::new(
            Decision::NotArmed,
            alarm,
            Some(plan),
            format!("plan is {} ({}): automatic failover needs it armed", read.state.status.name(), read.state.reason),
        )));
    }
    if read.state.dr_is_primary(plan) {
        // The plan's alarms watch Paris, and a move Ireland -> Paris is a failback: planned, by
        // an operator. No plan allows an automatic one.
        return Ok(Some(TriggerOutcome::new(
            Decision::NotArmed,
            alarm,
            Some(plan),
            format!(
                "{} is primary: the plan's alarms watch {} and it allows no automatic move to it (fail back by hand)",
                plan.dr_region, plan.primary_region
            ),
        )));
    }
    if let Some(last) = read.state.last_automatic_run_at
        && time::now() < time::after(last, trigger.min_between_runs())
    {
        return Ok(Some(TriggerOutcome::new(
            Decision::TooSoon,
            alarm,
            Some(plan),
            format!(
                "the last automatic failover started at {}; the plan allows one every {} s",
                time::rfc3339(last),
                trigger.min_seconds_between_runs
            ),
        )));
    }
    Ok(None)
}

/// When the plan already holds this incident (a repeated delivery), makes sure its run is
/// started (the first delivery may have stopped between the state write and the start).
async fn already_handled(
    ctx: &TriggerContext,
    plan: &Plan,
    read: &Versioned,
    incident_id: &str,
    alarm: &str,
) -> Result<Option<TriggerOutcome>, DrError> {
    let Some(incident) = read.state.incident.as_ref().filter(|incident| incident.id == incident_id) else {
        return Ok(None);
    };
    if read.state.status == PlanStatus::FailingOver
        && let Some(run_id) = &read.state.run_id
    {
        let arn = ctx.starter.start(&incident_input(plan, incident, run_id, &ctx.store)?).await?;
        let mut outcome = TriggerOutcome::new(
            Decision::AlreadyHandled,
            alarm,
            Some(plan),
            format!("incident {incident_id} is being handled by run {run_id}"),
        );
        outcome.execution_arn = Some(arn);
        return Ok(Some(outcome));
    }
    Ok(Some(TriggerOutcome::new(
        Decision::AlreadyHandled,
        alarm,
        Some(plan),
        format!("incident {incident_id} was handled; the plan is {}", read.state.status.name()),
    )))
}
