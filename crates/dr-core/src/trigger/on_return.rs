//! Fence on return: no second writer after a failover.
//!
//! After an unplanned failover Ireland is primary, and Paris, once it answers again, may scale its
//! group back up and take writes Ireland never sees. On every run of the alarm trigger's schedule,
//! for a plan that fences on return (`fence.on_return`, on by default for production), while
//! Ireland is primary, no run holds the plan and Paris was not fenced since the failover: when
//! every trigger alarm is back to OK (Paris answers), the runbook's own fence step runs (the fence
//! Lambda, `FENCE_FUNCTION`: the Paris group to zero with its capacity kept in the fence's tag, the
//! plan's fencing hook, the Paris database read-only), the plan state records it, and the on-call
//! is told. A failback gives the group its capacity back (`runbook::compute::scale_asg`), as after
//! a planned move. A fence that fails is counted (`Decision::Failed`, the invocation fails) and
//! tried again on the next schedule.

use std::time::Duration;

use super::{Decision, TriggerContext, TriggerOutcome};
use crate::aws::AwsClients;
use crate::aws::hooks::{HookEffect, invoke_hook};
use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind};
use crate::plan::{HOOK_CALLER_TIMEOUT_SECONDS, Plan};
use crate::run::{FailoverKind, Outcome, RunInfo, RunbookState, StepAction, StepRecord, StepRequest};
use crate::store::{PlanStatus, WriteOutcome};
use crate::time;

/// Who the plan state names as having fenced on return.
const FENCED_ON_RETURN_BY: &str = "alarm-trigger: fence on return";

/// Fences the old primary region of `plan` when it answers again after a failover (see the
/// module): `every_alarm_ok`, as the schedule's run just described the trigger's alarms. `None`
/// when there is nothing to do.
pub async fn fence_on_return(
    ctx: &TriggerContext,
    plan: &Plan,
    clients: &AwsClients,
    every_alarm_ok: bool,
) -> Result<Option<TriggerOutcome>, DrError> {
    let (Some(function), Some(trigger)) = (&ctx.fence_function, &plan.trigger) else { return Ok(None) };
    if !every_alarm_ok || !plan.fences_on_return() {
        return Ok(None);
    }
    let read = ctx.store.read_state(&plan.name).await?;
    let state = &read.state;
    if !state.dr_is_primary(plan) || state.status == PlanStatus::FailingOver || state.fenced_on_return.is_some() {
        return Ok(None);
    }
    // The runbook's fence, as a planned move's first step (the plan as written: Paris fenced).
    let now = time::now();
    let mut run = RunInfo::new(
        format!("fence-on-return-{}", time::compact(now).to_lowercase()),
        now,
        format!("schedule: {} answers again after the failover", plan.primary_region),
    );
    run.kind = FailoverKind::Planned;
    let request = StepRequest { action: StepAction::Act, state: RunbookState::new(plan.clone(), run) };
    let timeout = Duration::from_secs(u64::from(HOOK_CALLER_TIMEOUT_SECONDS));
    let answer =
        invoke_hook(&clients.home, function, &request, HookEffect::Changes, timeout).await?.map_err(|failure| {
            DrError::FenceFailed { region: plan.primary_region.clone(), reason: format!("fence on return: {failure}") }
        })?;
    let record: StepRecord = serde_json::from_slice(&answer).map_err(|e| DrError::serialisation("fence record", e))?;
    // What each method did (the group scaled, the database read-only), not only whether the
    // group has emptied yet: its instances terminate on their own.
    let done = record.resources.iter().map(|r| format!("{}: {}", r.resource, r.state)).collect::<Vec<_>>().join("; ");
    let mut fenced = state.clone();
    fenced.fenced_on_return = Some(time::now());
    fenced.changed_at = Some(time::now());
    fenced.changed_by = FENCED_ON_RETURN_BY.into();
    fenced.reason = format!("{} answered again after the failover: fenced ({done})", plan.primary_region);
    if ctx.store.write_state(&read, &fenced).await? == WriteOutcome::Lost {
        // Another writer (a run taking the plan) came first: judged again on the next schedule.
        return Ok(None);
    }
    let detail = format!("{} answers again: fenced: {done}", plan.primary_region);
    tracing::warn!(plan = %plan.name, step = "fence-on-return", outcome = ?record.outcome, "{detail}");
    // A planned move already fenced it: nothing new for the on-call.
    if record.outcome == Outcome::Changed {
        notify::send(clients, &fenced_notice(plan, &done)).await;
    }
    let alarm = trigger.alarms.first().cloned().unwrap_or_default();
    Ok(Some(TriggerOutcome::new(Decision::FencedOnReturn, &alarm, Some(plan), detail)))
}

fn fenced_notice(plan: &Plan, done: &str) -> Notice {
    let text = [
        format!(
            "{} answers again after the failover to {}: fenced, so that it takes no writes {} would never see.",
            plan.primary_region, plan.dr_region, plan.dr_region
        ),
        done.to_string(),
        format!(
            "{} stays primary. Next: reprotect, then fail back (drctl failback start), which unfences.",
            plan.dr_region
        ),
    ]
    .join("\n");
    Notice::new(
        NoticeKind::FencedOnReturn,
        &plan.name,
        None,
        format!("{}: {} answers again and was fenced", plan.name, plan.primary_region),
        text,
    )
}
