//! How the runbook is started: automatically from a health-check alarm, or by hand on a game day.
//!
//! The alarm trigger acts only on a move **to ALARM** of an alarm a published plan names, only
//! when the plan is **armed**, only after the outage is **confirmed** (see [`confirm`]), and only
//! once per incident: the plan's state moves from armed to failing-over by a conditional write
//! (see [`crate::store`]) and the execution name is derived from the alarm's transition time, so
//! that duplicate and concurrent deliveries of the event start exactly one execution. The plan
//! then stays failing-over / failed-over until an operator re-arms it: no ping-pong.
//!
//! A brownout (Paris failing on and off, the alarm staying in ALARM) gives one event, judged a
//! flap; no event follows while the alarm stays in ALARM. So the trigger also runs on a schedule
//! ([`reevaluate`]): every alarm a plan names that is still in ALARM is judged again on the last
//! confirmation window, until the alarm clears or the outage is confirmed. Every decision about a
//! plan is a metric (`DrOrchestrator/Trigger Decisions`, dimensions Plan and Decision) that
//! template.yaml alarms on.
//!
//! An invocation waits for the confirmation window's data at most [`MAX_CONFIRMATION_WAIT`]; what
//! is not decided by then is `pending`, and the schedule decides it. Its longest run is that wait,
//! the probe ([`PROBE_BUDGET`]) and a few plan-store and Step Functions calls (each gives up after
//! 20 s): well within the function's 900 s.

pub mod confirm;
pub mod on_return;
pub mod prepare;

mod context;
mod decide;
mod event;
mod incident;
mod metric;
mod notice;
mod outcome;
mod probe;

pub use self::confirm::schedule_anchor;
pub use self::context::{ClientsForPlan, MAX_CONFIRMATION_WAIT, TriggerContext};
pub use self::decide::MAX_EVENT_AGE;
pub use self::event::{ALARM_DETAIL_TYPE, ALARM_SOURCE, AlarmStateChange, SCHEDULE_DETAIL_TYPE, TriggerInvocation};
pub use self::incident::incident_run_id;
pub use self::metric::{DECISION_METRIC, DECISION_NAMESPACE};
pub use self::outcome::{Decision, TriggerAnswer, TriggerOutcome};
pub use self::probe::PROBE_BUDGET;

use std::time::Duration;

use aws_sdk_cloudwatch::types::StateValue;

use self::confirm::Judged;
use self::decide::{decide, stale};
use self::event::{alarm_in_alarm, alarm_move};
use self::metric::record_decisions;
use self::notice::decision_notice;
use crate::aws::lookup::describe_alarm;
use crate::aws::{AwsClients, ROUTE53_CONTROL_REGION};
use crate::error::DrError;
use crate::notify;
use crate::plan::Plan;
use crate::time;

/// Handles one invocation of the alarm trigger.
pub async fn handle_invocation(ctx: &TriggerContext, invocation: TriggerInvocation) -> Result<TriggerAnswer, DrError> {
    match invocation {
        TriggerInvocation::AlarmStateChange(event) => {
            let outcome = handle_alarm_event(ctx, *event).await?;
            if outcome.plan.is_none() {
                // Decisions about a plan are logged (and counted) with it.
                tracing::info!(alarm = %outcome.alarm, decision = outcome.decision.name(), "{}", outcome.detail);
            }
            Ok(TriggerAnswer::Event(outcome))
        }
        TriggerInvocation::Schedule(_) => {
            reevaluate(ctx).await.map(|reevaluated| TriggerAnswer::Schedule { reevaluated })
        }
    }
}

/// Handles one "CloudWatch Alarm State Change" event.
pub async fn handle_alarm_event(ctx: &TriggerContext, event: AlarmStateChange) -> Result<TriggerOutcome, DrError> {
    let deadline = tokio::time::Instant::now() + ctx.confirmation_wait;
    let change = alarm_move(event, &ctx.account_id)?;
    if !change.to_alarm {
        return Ok(TriggerOutcome::new(
            Decision::Ignored,
            &change.alarm,
            None,
            format!("moved to {}: only a move to ALARM can start a failover", change.new_state),
        ));
    }
    let now = time::now();
    if change.at > time::after(now, Duration::from_secs(60)) {
        return Err(DrError::InvalidInput {
            message: format!("alarm {} moved to ALARM in the future ({})", change.alarm, time::rfc3339(change.at)),
        });
    }
    if change.region.as_deref().is_some_and(|region| region != ROUTE53_CONTROL_REGION) {
        return Ok(TriggerOutcome::new(
            Decision::UnknownAlarm,
            &change.alarm,
            None,
            format!(
                "alarm in {}: health-check alarms live in {}",
                change.region.as_deref().unwrap_or_default(),
                ROUTE53_CONTROL_REGION
            ),
        ));
    }
    let Some(plan) = plan_for_alarm(ctx, &change.alarm).await? else {
        tracing::warn!(alarm = %change.alarm, "no published plan names this alarm; ignored");
        return Ok(TriggerOutcome::new(
            Decision::UnknownAlarm,
            &change.alarm,
            None,
            "no published plan names this alarm",
        ));
    };
    let outcome = match stale(&plan, &change, now) {
        Some(stale) => stale,
        None => decide(ctx, &plan, &change, Judged::OnEvent { deadline }).await?,
    };
    let clients = (ctx.clients_for)(&plan);
    record_decisions(&clients, &plan, std::slice::from_ref(&outcome)).await;
    if let Some(notice) = decision_notice(&plan, &outcome, Some(change.at)) {
        notify::send(&clients, &notice).await;
    }
    Ok(outcome)
}

async fn plan_for_alarm(ctx: &TriggerContext, alarm: &str) -> Result<Option<Plan>, DrError> {
    for name in &ctx.plan_names {
        let plan = ctx.store.load_plan(name).await?;
        if plan.trigger.as_ref().is_some_and(|t| t.alarms.iter().any(|a| a == alarm)) {
            return Ok(Some(plan));
        }
    }
    Ok(None)
}

/// The scheduled re-evaluation: every alarm a published plan names that is still in ALARM is
/// judged again on the last whole confirmation window (a brownout that a flap decision left
/// alone, a decision left pending). An alarm that cleared is left alone. One outcome per alarm
/// in ALARM.
pub async fn reevaluate(ctx: &TriggerContext) -> Result<Vec<TriggerOutcome>, DrError> {
    let mut outcomes = Vec::new();
    let mut first_failure = None;
    for name in &ctx.plan_names {
        let plan = ctx.store.load_plan(name).await?;
        let Some(trigger) = plan.trigger.clone() else { continue };
        let clients = (ctx.clients_for)(&plan);
        let mut decided = Vec::new();
        // Every alarm seen OK (each described once per run): the primary region answers.
        let mut every_alarm_ok = !trigger.alarms.is_empty();
        // One alarm that cannot be judged (us-east-1 slow, a misconfigured alarm) does not keep
        // the others from being judged; it is counted (`failed`, which the template alarms on)
        // and fails the invocation once every alarm was judged. So is a fence on return that
        // fails.
        let mut failed = |alarm: &str, what: &str, err: DrError| {
            tracing::error!(plan = %plan.name, alarm, error = err.name(), "{what}: {err}");
            let detail = format!("{what} ({}: {err})", err.name());
            first_failure.get_or_insert(err);
            TriggerOutcome::new(Decision::Failed, alarm, Some(&plan), detail)
        };
        for alarm in &trigger.alarms {
            match reevaluate_alarm(ctx, &plan, &clients, alarm).await {
                Ok((state, outcome)) => {
                    every_alarm_ok &= state == Some(StateValue::Ok);
                    decided.extend(outcome);
                }
                Err(err) => {
                    every_alarm_ok = false;
                    decided.push(failed(alarm, "not re-evaluated", err));
                }
            }
        }
        match on_return::fence_on_return(ctx, &plan, &clients, every_alarm_ok).await {
            Ok(outcome) => decided.extend(outcome),
            Err(err) => {
                let alarm = trigger.alarms.first().cloned().unwrap_or_default();
                decided.push(failed(&alarm, "not fenced on return", err));
            }
        }
        record_decisions(&clients, &plan, &decided).await;
        // The schedule judges an alarm again every run: only a run it starts is news.
        for outcome in decided.iter().filter(|outcome| outcome.decision == Decision::Started) {
            if let Some(notice) = decision_notice(&plan, outcome, None) {
                notify::send(&clients, &notice).await;
            }
        }
        outcomes.extend(decided);
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(outcomes),
    }
}

/// Judges one of a plan's alarms again if it is still in ALARM; its state (`None`: no such
/// alarm), and the outcome when it was judged.
async fn reevaluate_alarm(
    ctx: &TriggerContext,
    plan: &Plan,
    clients: &AwsClients,
    alarm: &str,
) -> Result<(Option<StateValue>, Option<TriggerOutcome>), DrError> {
    let Some(described) = describe_alarm(&clients.route53_metrics, alarm).await? else {
        tracing::warn!(plan = %plan.name, alarm, "a trigger alarm of the plan does not exist in {ROUTE53_CONTROL_REGION}");
        return Ok((None, None));
    };
    let state = described.state_value().cloned();
    if state != Some(StateValue::Alarm) {
        return Ok((state, None));
    }
    let change = alarm_in_alarm(&described)?;
    if let Some(stale) = stale(plan, &change, time::now()) {
        return Ok((state, Some(stale)));
    }
    let outcome = decide(ctx, plan, &change, Judged::OnSchedule).await?;
    Ok((state, Some(outcome)))
}
