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

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde::{Deserialize, Serialize};

use crate::aws::{ApiCall, AwsClients};
use crate::error::DrError;
use crate::plan::Plan;
use crate::trigger::{Incident, PlanStateRef};

/// The execution state every Task receives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunbookState {
    pub plan: Plan,
    pub run: RunInfo,
    /// A human's explicit approval to proceed past a failed RPO gate.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The records of the steps so far, by step key.
    #[serde(default)]
    pub steps: BTreeMap<String, StepRecord>,
    /// Set by the state machine's Catch: the error that stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunInfo {
    /// Unique per run; part of the report's key. Letters, digits, '-' and '_'.
    pub id: String,
    /// When the failure was detected or the operator started the run (RFC 3339): RTO starts here.
    pub triggered_at: String,
    /// Who or what started the run, e.g. "manual: game day" or "alarm: paris-primary-health".
    pub trigger: String,
    /// `dry-run`: every step checks and says what it would do, and changes nothing.
    #[serde(default)]
    pub mode: RunMode,
    /// The confirmed incident an automatic run answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// Who asked for a game-day run, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<Approval>,
    /// The plan's single-flight state this run holds; the report marks it failed-over on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_state: Option<PlanStateRef>,
}

impl RunInfo {
    pub fn new(id: impl Into<String>, triggered_at: SystemTime, trigger: impl Into<String>) -> RunInfo {
        RunInfo {
            id: id.into(),
            triggered_at: format_time(triggered_at),
            trigger: trigger.into(),
            mode: RunMode::Live,
            incident: None,
            requested_by: None,
            plan_state: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunMode {
    #[default]
    Live,
    DryRun,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Approval {
    pub by: String,
    pub reason: String,
}

/// What Step Functions puts at `ResultPath` when a Catch fires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

/// A Task's request: which half of the step (act, or check status) and the execution state.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StepRequest {
    #[serde(default)]
    pub action: StepAction,
    pub state: RunbookState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Make the change (idempotent).
    #[default]
    Act,
    /// Report whether the change has taken effect.
    Status,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The step made its change.
    Changed,
    /// An earlier attempt already made it: nothing was called.
    AlreadyDone,
    /// Checks only (preflight, report).
    Checked,
    /// Status: the change has taken effect.
    Ready,
    /// Status: not yet; the state machine waits and asks again.
    NotReady,
    /// Dry run: the change the step would make; nothing was changed.
    WouldChange,
}

/// One resource as a step saw it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceState {
    pub resource: String,
    pub state: String,
}

/// The output of every Task, kept at `$.steps.<key>`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StepRecord {
    pub step: String,
    pub started_at: String,
    pub finished_at: String,
    pub outcome: Outcome,
    /// Whether the state machine may go on (status steps); always true for act steps.
    pub ready: bool,
    /// Status steps: how many times the status was asked, this one included.
    #[serde(default)]
    pub attempt: u32,
    pub detail: String,
    #[serde(default)]
    pub resources: Vec<ResourceState>,
    /// Every AWS call the step made.
    #[serde(default)]
    pub calls: Vec<ApiCall>,
    /// Values later steps or the report need (a Route53 change id, the lag at promotion, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
    /// Preflight only: the RPO gate's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<preflight::GateDecision>,
}

impl StepRecord {
    pub fn mutating_calls(&self) -> usize {
        self.calls.iter().filter(|call| call.is_mutating()).count()
    }
}

/// How often the state machine asks a status step again (the Wait states' `Seconds`).
pub const POLL_INTERVAL: Duration = Duration::from_secs(15);

impl RunbookState {
    /// Refuses bad input before any AWS call.
    pub fn validate(&self) -> Result<(), DrError> {
        self.plan.validate()?;
        let id_ok = !self.run.id.is_empty()
            && self.run.id.len() <= 64
            && self.run.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(DrError::InvalidInput {
                message: format!("run id {:?}: 1 to 64 letters, digits, '-' or '_'", self.run.id),
            });
        }
        parse_time(&self.run.triggered_at).map_err(|_| DrError::InvalidInput {
            message: format!("run triggered_at {:?} is not RFC 3339", self.run.triggered_at),
        })?;
        if let Some(approval) = &self.approval
            && (approval.by.trim().is_empty() || approval.reason.trim().is_empty())
        {
            return Err(DrError::InvalidInput { message: "an approval needs who (by) and why (reason)".to_string() });
        }
        Ok(())
    }

    /// How many status checks a step may take: its share of the RTO divided by the poll interval.
    pub fn max_attempts(&self, share_of_rto: f64) -> u32 {
        let budget = self.plan.targets.rto().as_secs_f64() * share_of_rto;
        (budget / POLL_INTERVAL.as_secs_f64()).ceil().max(1.0) as u32
    }

    pub fn is_dry_run(&self) -> bool {
        self.run.mode == RunMode::DryRun
    }

    /// The attempt number of the next status check of `key`.
    pub fn next_attempt(&self, key: &str) -> u32 {
        self.steps.get(key).map_or(0, |record| record.attempt) + 1
    }
}

/// Times a step and collects its AWS calls into its record.
pub struct StepTimer<'a> {
    step: &'static str,
    started: SystemTime,
    clients: &'a AwsClients,
    mark: usize,
}

impl<'a> StepTimer<'a> {
    pub fn start(step: &'static str, clients: &'a AwsClients) -> StepTimer<'a> {
        StepTimer { step, started: SystemTime::now(), clients, mark: clients.calls.mark() }
    }

    pub fn finish(
        self,
        outcome: Outcome,
        ready: bool,
        detail: impl Into<String>,
        resources: Vec<ResourceState>,
    ) -> StepRecord {
        StepRecord {
            step: self.step.to_string(),
            started_at: format_time(self.started),
            finished_at: format_time(SystemTime::now()),
            outcome,
            ready,
            attempt: 0,
            detail: detail.into(),
            resources,
            calls: self.clients.calls.since(self.mark),
            facts: BTreeMap::new(),
            gate: None,
        }
    }
}

impl StepTimer<'_> {
    /// Dry run: the record of the change the step would make, having made none.
    pub fn would(self, change: String, resources: Vec<ResourceState>) -> StepRecord {
        self.finish(Outcome::WouldChange, true, format!("dry run: would {change}"), resources)
    }
}

/// Finishes a status check: ready, not ready yet, or out of attempts (`StepTimedOut`).
pub fn status_record(
    timer: StepTimer<'_>,
    state: &RunbookState,
    key: &str,
    share_of_rto: f64,
    ready: bool,
    detail: String,
    resources: Vec<ResourceState>,
) -> Result<StepRecord, DrError> {
    let attempt = state.next_attempt(key);
    let max_attempts = state.max_attempts(share_of_rto);
    if !ready && attempt >= max_attempts {
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

/// Runs one step (its act or its status half) and returns the Task output.
pub async fn run_step(
    step: FailoverStep,
    action: StepAction,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<serde_json::Value, DrError> {
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
        return to_json(&record);
    }
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
            // Boxed: the steps' futures are large and deeply nested.
            let report = Box::pin(report::write_report(clients, state)).await?;
            return to_json(&report);
        }
    };
    to_json(&record)
}

fn to_json<T: Serialize>(output: &T) -> Result<serde_json::Value, DrError> {
    serde_json::to_value(output).map_err(|e| DrError::InvalidInput { message: format!("output not serialisable: {e}") })
}

/// RFC 3339, UTC: how every time in a record or report is written.
pub fn format_time(at: SystemTime) -> String {
    DateTime::from(at).fmt(Format::DateTime).unwrap_or_default()
}

pub fn parse_time(text: &str) -> Result<SystemTime, DrError> {
    DateTime::from_str(text, Format::DateTime)
        .ok()
        .and_then(|at| SystemTime::try_from(at).ok())
        .ok_or_else(|| DrError::InvalidInput { message: format!("{text:?} is not an RFC 3339 time") })
}
