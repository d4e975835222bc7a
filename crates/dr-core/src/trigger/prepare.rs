//! Preparing while confirming (`trigger.prepare_while_confirming`): the compute half of a
//! failover (start the standby instances, raise the DR group: cheap and reversible) starts when
//! the alarm arrives, with the runbook's own steps, while the trigger confirms the outage over
//! its window; the promotion and the routing change wait for the confirmation. The runbook then
//! finds the instances started and the group raised (its steps are idempotent: `AlreadyDone`)
//! and only waits for what is left of their boot. A flap or an unconfirmed outage undoes the
//! preparation (the runbook's stand-down: the group back to its standby size, the standby
//! instances stopped).
//!
//! Both are best effort: a preparation that fails delays nothing (the runbook starts the compute
//! itself), and an undo that cannot finish (an instance still booting when the invocation ends)
//! leaves the compute up, which costs money and is named in the decision and by the scheduled
//! readiness check, but moves no traffic.

use std::time::Duration;

use crate::aws::AwsClients;
use crate::plan::Plan;
use crate::run::{Outcome, RunInfo, RunbookState};
use crate::runbook::compute;
use crate::store::{PlanStatus, PlanStore};
use crate::time;

/// How often the undo asks the stand-down again (an instance still `pending` cannot be stopped).
pub const UNDO_POLL: Duration = Duration::from_secs(5);

/// The longest the undo waits for the standby instances to stop: a boot (EC2 gives no figure;
/// typically under a minute) and their stop. Within the trigger's timeout (template.yaml).
pub const UNDO_WAIT: Duration = Duration::from_secs(120);

fn preparing_state(plan: &Plan, run_id: &str) -> RunbookState {
    let run = RunInfo::new(run_id, time::now(), "alarm-trigger: preparing while confirming");
    RunbookState::new(plan.clone(), run)
}

/// Starts the standby instances and raises the DR group; what was done, or why not.
pub async fn prepare(clients: &AwsClients, plan: &Plan, run_id: &str) -> String {
    let state = preparing_state(plan, run_id);
    let mut done = Vec::new();
    match compute::start_standby(clients, &state).await {
        Ok(record) => done.push(record.detail),
        Err(err) => done.push(format!("standby instances not started ({}: {err})", err.name())),
    }
    match compute::scale_asg(clients, &state).await {
        Ok(record) => done.push(record.detail),
        Err(err) => done.push(format!("group not raised ({}: {err})", err.name())),
    }
    tracing::info!(plan = %plan.name, step = "prepare-while-confirming", "{}", done.join("; "));
    format!("prepared while confirming: {}", done.join("; "))
}

/// Puts the prepared compute back on standby, unless the plan was taken meanwhile (an operator's
/// run, another delivery's: the compute is theirs now); asks until done, [`UNDO_WAIT`] at most.
pub async fn undo(clients: &AwsClients, store: &PlanStore, plan: &Plan, run_id: &str) -> String {
    let deadline = tokio::time::Instant::now() + UNDO_WAIT;
    match store.read_state(&plan.name).await {
        Ok(read) if read.state.status != PlanStatus::Armed => {
            return format!("preparation kept: the plan is {} now", read.state.status.name());
        }
        Ok(_) => {}
        Err(err) => return format!("preparation NOT undone: the plan state could not be read ({err})"),
    }
    let state = preparing_state(plan, run_id);
    let mut changed = false;
    loop {
        let answer = compute::stand_down(clients, &state).await;
        if let Ok(record) = &answer {
            changed |= record.outcome == Outcome::Changed;
        }
        match answer {
            Ok(record) if record.ready && !changed => return format!("compute on standby: {}", record.detail),
            Ok(record) if record.ready => {
                tracing::info!(plan = %plan.name, step = "undo-preparation", "{}", record.detail);
                return format!("preparation undone: {}", record.detail);
            }
            Ok(record) if tokio::time::Instant::now() + UNDO_POLL >= deadline => {
                tracing::warn!(plan = %plan.name, step = "undo-preparation", "{}", record.detail);
                return format!("preparation NOT fully undone: {}", record.detail);
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
