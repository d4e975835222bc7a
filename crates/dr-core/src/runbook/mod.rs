//! The failover runbook's steps: the logic behind every Task state of
//! `statemachines/failover.asl.json`.
//!
//! Every step receives the whole execution state ([`RunbookState`]: the plan, the run, an
//! optional approval and the records of the steps so far) and returns a [`StepRecord`]. Steps
//! are idempotent: run again after success, they observe the finished state and make no
//! mutating call. Bad input (an invalid plan, an empty run id) is refused with a named error
//! before any AWS call. Polling is not done here: a status step answers `ready` or not, and
//! the state machine's Wait/Choice loop asks again, within a bounded number of attempts.

pub mod compute;
pub mod database;
pub mod dns;
pub mod preflight;
pub mod report;

use std::time::Duration;

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::run::{Outcome, ResourceState, RunbookState, StepAction, StepKey, StepRecord, StepTimer};

/// How often the state machine asks a status step again (the Wait states' `Seconds`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(15);

/// How many status checks a step may take: its share of the RTO divided by the poll interval.
pub fn max_attempts(state: &RunbookState, share_of_rto: f64) -> u32 {
    let budget = state.plan.targets.rto().as_secs_f64() * share_of_rto;
    (budget / POLL_INTERVAL.as_secs_f64()).ceil().max(1.0) as u32
}

/// Finishes a status check: ready, not ready yet, or out of attempts (`StepTimedOut`).
pub fn status_record(
    timer: StepTimer<'_>,
    state: &RunbookState,
    key: StepKey,
    share_of_rto: f64,
    ready: bool,
    detail: String,
    resources: Vec<ResourceState>,
) -> Result<StepRecord, DrError> {
    let attempt = state.next_attempt(key);
    if !ready && attempt >= max_attempts(state, share_of_rto) {
        return Err(DrError::StepTimedOut { step: key.to_string(), attempts: attempt, last_state: detail });
    }
    let outcome = if ready { Outcome::Ready } else { Outcome::NotReady };
    let mut record = timer.finish(outcome, ready, detail, resources);
    record.attempt = attempt;
    Ok(record)
}

/// The Lambdas of the failover runbook, one per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverStep {
    Preflight,
    PromoteReplica,
    StartStandby,
    ScaleAsg,
    FlipDns,
    Report,
}

/// What a failover Task answers: a step's record, or the run report (the Report task).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum FailoverOutput {
    Step(Box<StepRecord>),
    Report(Box<report::RunReport>),
}

/// Runs one step (its act or its status half) and returns the Task output.
pub async fn run_step(
    step: FailoverStep,
    action: StepAction,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<FailoverOutput, DrError> {
    let status_name = match step {
        FailoverStep::PromoteReplica => Some("promote-replica-status"),
        FailoverStep::StartStandby => Some("start-standby-status"),
        FailoverStep::ScaleAsg => Some("scale-asg-status"),
        FailoverStep::FlipDns => Some("flip-dns-status"),
        FailoverStep::Preflight | FailoverStep::Report => None,
    };
    if let Some(name) = status_name
        && action == StepAction::Status
        && state.is_dry_run()
    {
        // Nothing was changed, so there is nothing to wait for: the dry run goes straight on.
        state.validate()?;
        let timer = StepTimer::start(name, clients);
        let record = timer.finish(Outcome::Ready, true, "dry run: no change was made, nothing to wait for", Vec::new());
        return Ok(FailoverOutput::Step(Box::new(record)));
    }
    // Boxed: the steps' futures are large and deeply nested.
    let record = match (step, action) {
        (FailoverStep::Preflight, _) => Box::pin(preflight::preflight(clients, state)).await?,
        (FailoverStep::PromoteReplica, StepAction::Act) => Box::pin(database::promote_replica(clients, state)).await?,
        (FailoverStep::PromoteReplica, StepAction::Status) => {
            Box::pin(database::replica_status(clients, state)).await?
        }
        (FailoverStep::StartStandby, StepAction::Act) => Box::pin(compute::start_standby(clients, state)).await?,
        (FailoverStep::StartStandby, StepAction::Status) => Box::pin(compute::standby_status(clients, state)).await?,
        (FailoverStep::ScaleAsg, StepAction::Act) => Box::pin(compute::scale_asg(clients, state)).await?,
        (FailoverStep::ScaleAsg, StepAction::Status) => Box::pin(compute::asg_status(clients, state)).await?,
        (FailoverStep::FlipDns, StepAction::Act) => Box::pin(dns::flip_dns(clients, state)).await?,
        (FailoverStep::FlipDns, StepAction::Status) => Box::pin(dns::dns_status(clients, state)).await?,
        (FailoverStep::Report, _) => {
            let report = Box::pin(report::write_report(clients, state)).await?;
            return Ok(FailoverOutput::Report(Box::new(report)));
        }
    };
    Ok(FailoverOutput::Step(Box::new(record)))
}
