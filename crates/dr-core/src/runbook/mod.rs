//! The failover runbook's steps: the logic behind every Task state of
//! `statemachines/failover.asl.json`, and of `statemachines/reprotect.asl.json` ([`reprotect`]).
//!
//! Every step receives the whole execution state ([`RunbookState`]: the plan, the run, an
//! optional approval and the records of the steps so far) and returns a [`StepRecord`]. Steps
//! are idempotent: run again after success, they observe the finished state and make no
//! mutating call. Bad input (an invalid plan, an empty run id) is refused with a named error
//! before any AWS call. Polling is not done here: a step answers `ready` or not (`Waiting` while a
//! transient state clears, `NotReady` until a change has taken effect), and the state machine's
//! Wait/Choice loop asks again, within the phase's time budget (`run::budget`).

pub mod capacity;
pub mod compute;
pub mod database;
pub mod decision;
pub mod dns;
pub mod fence;
pub mod preflight;
pub mod report;
pub mod reprotect;
pub mod round_trip;

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::Direction;
pub use crate::run::budget::{settle, status_record};
use crate::run::{Outcome, RunbookState, StepAction, StepKey, StepRecord, StepTimer};
use crate::store::Question;
use crate::time;

/// The Lambdas of the failover runbook, one per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverStep {
    Preflight,
    /// A planned move's fence (act), barrier (status) and the fence's undo.
    Fence,
    /// Promote (act, status); a roll-back's undo: the promoted instance marked diverged.
    PromoteReplica,
    StartStandby,
    /// Raise the group (act, status); a failback's undo: the DR region's compute back to standby.
    ScaleAsg,
    FlipDns,
    Report,
    /// Reprotect: the old Paris primary retired (act, asked again until done).
    RetirePrimary,
    /// Reprotect: a Paris replica of the Ireland primary (act) replicating within the RPO (status).
    CreateReplica,
}

impl FailoverStep {
    /// Where the step's answer goes (`$.steps.<key>`) and the name it records; the report is not
    /// a step record.
    pub fn key(self, action: StepAction) -> Option<(StepKey, &'static str)> {
        let key = match (self, action) {
            (FailoverStep::Preflight, StepAction::Status) => (StepKey::Decision, "decision"),
            (FailoverStep::Preflight, StepAction::Decide) => (StepKey::CapacityDecision, "capacity-decision"),
            (_, StepAction::Decide) => return None,
            (FailoverStep::Preflight, _) => (StepKey::Preflight, "preflight"),
            (FailoverStep::Fence, StepAction::Act) => (StepKey::Fence, "fence"),
            (FailoverStep::Fence, StepAction::Status) => (StepKey::Barrier, "barrier"),
            (FailoverStep::Fence, StepAction::Undo) => (StepKey::Unfence, "unfence"),
            (FailoverStep::ScaleAsg, StepAction::Undo) => (StepKey::StandDown, "stand-down"),
            (FailoverStep::PromoteReplica, StepAction::Undo) => (StepKey::Diverged, "mark-diverged"),
            (_, StepAction::Undo | StepAction::GiveBack) => return None,
            (FailoverStep::PromoteReplica, StepAction::Act) => (StepKey::Promote, "promote-replica"),
            (FailoverStep::PromoteReplica, StepAction::Status) => (StepKey::PromoteStatus, "promote-replica-status"),
            (FailoverStep::StartStandby, StepAction::Act) => (StepKey::Standby, "start-standby"),
            (FailoverStep::StartStandby, StepAction::Status) => (StepKey::StandbyStatus, "start-standby-status"),
            (FailoverStep::ScaleAsg, StepAction::Act) => (StepKey::Asg, "scale-asg"),
            (FailoverStep::ScaleAsg, StepAction::Status) => (StepKey::AsgStatus, "scale-asg-status"),
            (FailoverStep::FlipDns, StepAction::Act) => (StepKey::FlipDns, "flip-dns"),
            (FailoverStep::FlipDns, StepAction::Status) => (StepKey::DnsStatus, "flip-dns-status"),
            (FailoverStep::Report, _) => return None,
            (FailoverStep::RetirePrimary, _) => (StepKey::RetirePrimary, "retire-primary"),
            (FailoverStep::CreateReplica, StepAction::Act) => (StepKey::Replica, "create-replica"),
            (FailoverStep::CreateReplica, StepAction::Status) => (StepKey::ReplicaStatus, "create-replica-status"),
        };
        Some(key)
    }
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
    if action == StepAction::Undo
        && !matches!(step, FailoverStep::Fence | FailoverStep::ScaleAsg | FailoverStep::PromoteReplica)
    {
        return Err(DrError::InvalidInput { message: format!("{step:?} has nothing to undo") });
    }
    if action == StepAction::Decide && step != FailoverStep::Preflight {
        return Err(DrError::InvalidInput { message: format!("{step:?} asks nothing: the decision step does") });
    }
    if action == StepAction::GiveBack && step != FailoverStep::Report {
        return Err(DrError::InvalidInput { message: format!("{step:?} gives nothing back: the report does") });
    }
    let keyed = step.key(action);
    // A failback's steps and report see the plan reversed (Ireland primary, Paris the target) and
    // the clients to match, except the stand-down, which puts the DR region as written back on
    // standby.
    let (oriented_clients, oriented_state);
    let (clients, state) = if matches!(keyed, Some((StepKey::StandDown, _))) {
        if state.run.direction != Direction::ToPrimary {
            return Err(DrError::InvalidInput { message: "the stand-down follows a failback only".into() });
        }
        (clients, state)
    } else if state.plan.reversed {
        (clients, state)
    } else {
        oriented_state = state.facing()?;
        oriented_clients = clients.facing(state.run.direction);
        (&oriented_clients, &oriented_state)
    };
    let Some((key, name)) = keyed else {
        let changed_nothing = action == StepAction::GiveBack;
        let report = Box::pin(report::write_report(clients, state, changed_nothing)).await?;
        return Ok(FailoverOutput::Report(Box::new(report)));
    };
    if action == StepAction::Status && step != FailoverStep::Preflight && state.is_dry_run() {
        // Nothing was changed, so there is nothing to wait for: the dry run goes straight on.
        state.validate()?;
        let timer = StepTimer::start(name, clients);
        let record = timer.finish(Outcome::Ready, true, "dry run: no change was made, nothing to wait for", Vec::new());
        return Ok(FailoverOutput::Step(Box::new(record)));
    }
    let (mark, started) = (clients.calls.mark(), time::now());
    // Boxed: the steps' futures are large and deeply nested.
    let result = match (step, action) {
        (FailoverStep::Preflight, StepAction::Status) => {
            Box::pin(decision::decision(clients, state, Question::RpoGate)).await
        }
        (FailoverStep::Preflight, StepAction::Decide) => {
            Box::pin(decision::decision(clients, state, Question::Capacity)).await
        }
        (FailoverStep::Preflight, _) => Box::pin(preflight::preflight(clients, state)).await,
        (FailoverStep::Fence, StepAction::Act) => Box::pin(fence::fence(clients, state)).await,
        (FailoverStep::Fence, StepAction::Status) => Box::pin(fence::barrier(clients, state)).await,
        (FailoverStep::Fence, StepAction::Undo) => Box::pin(fence::unfence(clients, state)).await,
        (FailoverStep::PromoteReplica, StepAction::Act) => Box::pin(database::promote_replica(clients, state)).await,
        (FailoverStep::PromoteReplica, StepAction::Status) => Box::pin(database::replica_status(clients, state)).await,
        (FailoverStep::PromoteReplica, StepAction::Undo) => Box::pin(database::mark_diverged(clients, state)).await,
        (FailoverStep::StartStandby, StepAction::Act) => Box::pin(compute::start_standby(clients, state)).await,
        (FailoverStep::StartStandby, StepAction::Status) => Box::pin(compute::standby_status(clients, state)).await,
        (FailoverStep::ScaleAsg, StepAction::Act) => Box::pin(compute::scale_asg(clients, state)).await,
        (FailoverStep::ScaleAsg, StepAction::Status) => Box::pin(compute::asg_status(clients, state)).await,
        (FailoverStep::ScaleAsg, StepAction::Undo) => Box::pin(compute::stand_down(clients, state)).await,
        (FailoverStep::FlipDns, StepAction::Act) => Box::pin(dns::flip_dns(clients, state)).await,
        (FailoverStep::FlipDns, StepAction::Status) => Box::pin(dns::dns_status(clients, state)).await,
        (FailoverStep::RetirePrimary, _) => Box::pin(reprotect::retire_primary(clients, state)).await,
        (FailoverStep::CreateReplica, StepAction::Act) => Box::pin(reprotect::create_replica(clients, state)).await,
        (FailoverStep::CreateReplica, StepAction::Status) => Box::pin(reprotect::replica_status(clients, state)).await,
        (_, StepAction::Undo | StepAction::GiveBack | StepAction::Decide) | (FailoverStep::Report, _) => {
            return Err(DrError::InvalidInput { message: "the report is not a step".into() });
        }
    };
    let record = settle(result, state, key, name, clients, mark, started)?;
    Ok(FailoverOutput::Step(Box::new(record)))
}
