//! A run's own types: the execution state every Task of a state machine receives
//! ([`RunbookState`]), who started the run and why ([`RunInfo`], [`Incident`], [`Approval`]), the
//! record each step returns ([`step`]) and the start of an execution ([`starter`]).
//!
//! These are the contract with `statemachines/*.asl.json`: a step's record lands at
//! `$.steps.<key>` where `<key>` is a [`StepKey`]; a Catch puts the [`CaughtError`] at `$.error`.
//! `tests/contract.rs` checks the definitions against them.

pub mod budget;
pub mod execution;
pub mod starter;
pub mod step;
pub mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use starter::Starter;
pub use step::{
    GateDecision, GateVerdict, Outcome, ResourceState, StepAction, StepKey, StepRecord, StepRequest, StepTimer,
};

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::{Direction, Plan, PlanRef};
use crate::time::Timestamp;

/// The execution state every Task receives.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunbookState {
    /// The plan the run took, loaded from the deployment's plan store by `run.plan` (its name and
    /// version): never part of an input ([`UNTRUSTED_INPUT_FIELDS`]).
    #[serde(skip, default = "Plan::unloaded")]
    pub plan: Plan,
    pub run: RunInfo,
    /// The records of the steps so far.
    #[serde(default)]
    pub steps: BTreeMap<StepKey, StepRecord>,
    /// Set by the state machine's Catch: the error that stopped the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    /// Set by the failover machine's Catch on preflight: the RPO gate's refusal an unplanned run
    /// asks a human to decide on (`runbook::decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_error: Option<CaughtError>,
    /// Set by the failover machine when an unplanned run's compute branch stops below the plan's
    /// minimum after the promotion: what it asks a human to decide on (`runbook::decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_error: Option<CaughtError>,
    /// Set by the failover machine when an unplanned run's data tier branch fails: the error it
    /// asks a human to decide on when some databases were promoted and another was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_tier_error: Option<CaughtError>,
    /// The execution running this state (`$$.Execution.Id`), where the state machine records it
    /// (before asking for a decision: the commands that answer name it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<ExecutionRef>,
}

/// A run's state that [`RunbookState::validate`] accepted: what every step receives, so that a
/// step never validates again. Made only by validating ([`RunbookState::validated`],
/// [`RunbookState::facing`]); read as a [`RunbookState`].
#[derive(Debug, Clone, PartialEq)]
pub struct ValidState(RunbookState);

impl std::ops::Deref for ValidState {
    type Target = RunbookState;

    fn deref(&self) -> &RunbookState {
        &self.0
    }
}

/// An execution, as the state machine records itself.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ExecutionRef {
    pub arn: String,
}

/// What no run's input may carry: a plan (a run acts on the published plan it names, `run.plan`)
/// or an approval (approvals are recorded, authenticated decisions in the plan store). An input
/// with either is refused (`UntrustedInput`) before any call.
pub const UNTRUSTED_INPUT_FIELDS: &[&str] = &["plan", "approval"];

/// Refuses an input that carries a plan or an approval ([`UNTRUSTED_INPUT_FIELDS`]), before
/// anything else reads it. `names_a_plan`: the input may name a plan (`"plan": "<name>"`, a game
/// day's request); a run's state names its plan in `run.plan` only.
pub fn refuse_untrusted(input: &serde_json::Value, what: &str, names_a_plan: bool) -> Result<(), DrError> {
    for field in UNTRUSTED_INPUT_FIELDS {
        let message = match input.get(field) {
            None => continue,
            Some(serde_json::Value::String(_)) if *field == "plan" && names_a_plan => continue,
            Some(_) if *field == "plan" => {
                "a run acts on the plan published in the deployment's plan store (drctl plan publish), by name"
            }
            Some(_) => "an approval is a decision recorded in the plan store by the approver (drctl run approve)",
        };
        return Err(DrError::UntrustedInput {
            what: what.to_string(),
            field: field.to_string(),
            message: message.into(),
        });
    }
    Ok(())
}

/// The top-level paths of the execution state that the state machines write besides
/// `$.steps.<key>`: the caught error, the report outputs and the Parallel state's branches.
pub const STATE_RESULT_PATHS: &[&str] = &[
    "error",
    "gate_error",
    "capacity_error",
    "data_tier_error",
    "execution",
    "report",
    "failure_report",
    "failure_report_error",
    "cleanup_error",
    "unfence_error",
    "diverged_error",
    "branches",
];

/// The longest run id: it names the run's execution, and its tags, keys and sessions carry it.
pub const MAX_RUN_ID_LEN: usize = 64;

/// `<plan>-<tail>`, at most [`MAX_RUN_ID_LEN`] characters: a long plan name gives way to the
/// tail (the kind of run and its time, which tell two runs of the plan apart). A plan's name is
/// ASCII letters, digits and `-` (validated), so characters are bytes.
pub fn run_id(plan_name: &str, tail: &str) -> String {
    run_id_within(plan_name, tail, MAX_RUN_ID_LEN)
}

/// [`run_id`] at most `longest` characters: a round trip's, whose legs add their own suffix.
pub fn run_id_within(plan_name: &str, tail: &str, longest: usize) -> String {
    let room = longest.saturating_sub(tail.len() + 1);
    let head: String = plan_name.chars().take(room).collect();
    format!("{head}-{tail}")
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct RunInfo {
    /// Unique per run; the execution name and part of the report's key. Letters, digits, '-', '_'.
    pub id: String,
    /// When the failure was detected or the operator started the run: the RTO starts here.
    pub triggered_at: Timestamp,
    /// Who or what started the run, e.g. "manual: game day" or "alarm: paris-primary-health".
    pub trigger: String,
    /// `dry-run`: every step checks and says what it would do, and changes nothing.
    #[serde(default)]
    pub mode: RunMode,
    /// `planned` (a drill, a failback: Paris answers, so the writer is fenced and a barrier
    /// proves nothing is lost) or `unplanned` (an incident: the data loss is measured at its
    /// start). Chosen at start; absent in an older input: unplanned.
    #[serde(default)]
    pub kind: FailoverKind,
    /// `to-dr` (a failover, Paris -> Ireland) or `to-primary` (a failback, Ireland -> Paris,
    /// always planned). The steps see the plan as the move faces it ([`RunbookState::facing`]).
    /// Absent in an older input: a failover.
    #[serde(default)]
    pub direction: Direction,
    /// The confirmed incident an automatic run answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// Who asked for a game-day run, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<Approval>,
    /// A game day's run (a drill, its dry run, a round trip and its legs), not an incident's or a
    /// move an operator made: the posture page and the dashboard count drills by it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub game_day: bool,
    /// The round trip a leg belongs to (its run id): the leg's notices are that round trip's
    /// incident, and the posture page shows the leg under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<String>,
    /// Who started a run by hand, as STS verified them (`drctl`), with their own start record in
    /// the plan store: a two-person plan's approvals are checked against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<Principal>,
    /// The database a restore test restores (its primary instance, as the plan names it): each
    /// database of an estate is restore-tested in its own run. Absent: the plan's first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_database: Option<String>,
    /// The published plan the run acts on, by name and version ([`RunbookState::new`] sets it);
    /// each step loads it from the deployment's plan store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanRef>,
    /// The plan's single-flight state this run holds; the report marks it failed-over on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_state: Option<PlanStateRef>,
    /// How long the state machine waits before asking a step again (its Wait states'
    /// `SecondsPath`); set from the plan's RTO by [`RunbookState::new`] ([`budget::poll_seconds`]).
    #[serde(default)]
    pub poll_seconds: u64,
}

impl RunInfo {
    pub fn new(id: impl Into<String>, triggered_at: Timestamp, trigger: impl Into<String>) -> RunInfo {
        RunInfo {
            id: id.into(),
            triggered_at,
            trigger: trigger.into(),
            mode: RunMode::Live,
            kind: FailoverKind::Unplanned,
            direction: Direction::ToDr,
            incident: None,
            requested_by: None,
            game_day: false,
            round_trip: None,
            started_by: None,
            restore_database: None,
            plan: None,
            plan_state: None,
            poll_seconds: 0,
        }
    }
}

impl RunInfo {
    /// When the incident started: the alarm's move to ALARM, or the start of the run without one.
    /// An unplanned run's data loss is measured here, never at the time of the run.
    pub fn incident_start(&self) -> Timestamp {
        self.incident.as_ref().map_or(self.triggered_at, |incident| incident.alarm_at)
    }
}

/// Whether the primary region answers when the move starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailoverKind {
    /// Decided while Paris answers: fence the writer, prove the barrier, lose nothing.
    Planned,
    /// An incident: Paris may be gone and is not fenced.
    #[default]
    Unplanned,
}

impl FailoverKind {
    pub fn name(self) -> &'static str {
        match self {
            FailoverKind::Planned => "planned",
            FailoverKind::Unplanned => "unplanned",
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

/// An IAM principal as STS verified it: its ARN and its `aws:userid`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Principal {
    pub arn: String,
    pub user_id: String,
}

/// A confirmed outage, as the run's input and its report carry it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Incident {
    /// `<alarm>@<time of the move to ALARM>`: the same for every delivery of the same event.
    pub id: String,
    pub alarm: String,
    /// When the alarm moved to ALARM: the detection time, where the RTO clock starts.
    pub alarm_at: Timestamp,
    pub alarm_reason: String,
    /// When the trigger confirmed the outage.
    pub confirmed_at: Timestamp,
    /// What confirmed it (metric minutes, probe answers).
    pub evidence: Vec<String>,
}

/// Where a run's plan state lives; carried in the execution input so that the report can record
/// the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PlanStateRef {
    pub bucket: String,
}

/// What Step Functions puts at `ResultPath` when a Catch fires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CaughtError {
    #[serde(rename = "Error")]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// "<Error>: <message>" once: a Lambda's cause may already start with the error's name.
    pub fn reason(&self) -> String {
        if self.cause.starts_with(&self.error) { self.cause.clone() } else { format!("{}: {}", self.error, self.cause) }
    }
}

/// How a run ended, as its report says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Succeeded,
    Failed,
    DryRunCompleted,
    DryRunFailed,
}

impl RunStatus {
    pub fn of(dry_run: bool, succeeded: bool) -> RunStatus {
        match (dry_run, succeeded) {
            (false, true) => RunStatus::Succeeded,
            (false, false) => RunStatus::Failed,
            (true, true) => RunStatus::DryRunCompleted,
            (true, false) => RunStatus::DryRunFailed,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::DryRunCompleted => "dry run completed",
            RunStatus::DryRunFailed => "dry run failed",
        }
    }

    pub fn is_success(self) -> bool {
        matches!(self, RunStatus::Succeeded | RunStatus::DryRunCompleted)
    }
}

impl RunbookState {
    /// A new run of `plan`: no step yet; the poll interval set from the plan's RTO.
    pub fn new(plan: Plan, mut run: RunInfo) -> RunbookState {
        run.poll_seconds = budget::poll_seconds(plan.targets.rto());
        // A reversed plan has no published version: the run names none, and no step loads it.
        run.plan = plan.reference().ok();
        RunbookState {
            plan,
            run,
            steps: BTreeMap::new(),
            error: None,
            gate_error: None,
            capacity_error: None,
            data_tier_error: None,
            execution: None,
        }
    }

    /// Refuses bad input before any AWS call.
    pub fn validate(&self) -> Result<(), DrError> {
        self.plan.validate()?;
        if self.run.direction == Direction::ToPrimary && self.run.kind != FailoverKind::Planned {
            return Err(DrError::InvalidInput {
                message: format!(
                    "a failback is a planned move (run kind planned): {} and {} both answer",
                    self.plan.primary_name(),
                    self.plan.dr_name()
                ),
            });
        }
        let id_ok = !self.run.id.is_empty()
            && self.run.id.len() <= MAX_RUN_ID_LEN
            && self.run.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(DrError::InvalidInput {
                message: format!("run id {:?}: 1 to {MAX_RUN_ID_LEN} letters, digits, '-' or '_'", self.run.id),
            });
        }
        if !(budget::MIN_POLL_SECONDS..=budget::MAX_POLL_SECONDS).contains(&self.run.poll_seconds) {
            return Err(DrError::InvalidInput {
                message: format!(
                    "run poll_seconds {}: between {} and {} (RunbookState::new sets it from the plan's RTO)",
                    self.run.poll_seconds,
                    budget::MIN_POLL_SECONDS,
                    budget::MAX_POLL_SECONDS
                ),
            });
        }
        if self.run.kind == FailoverKind::Planned {
            self.plan.fence_for_planned_move()?;
        }
        Ok(())
    }

    /// The state as the run's move sees it: the plan faced to `run.direction` ([`Plan::facing`]),
    /// validated first, so that a step written for Paris -> Ireland moves Ireland -> Paris.
    pub fn facing(&self) -> Result<ValidState, DrError> {
        self.validate()?;
        if self.run.direction == Direction::ToDr || self.plan.reversed {
            return Ok(ValidState(self.clone()));
        }
        Ok(ValidState(RunbookState { plan: self.plan.facing(self.run.direction)?, ..self.clone() }))
    }

    /// The state and the plan's clients as the run's move sees them: [`RunbookState::facing`],
    /// and the clients faced the same way (a plan already reversed has its clients faced).
    pub fn facing_with(&self, clients: &AwsClients) -> Result<(ValidState, AwsClients), DrError> {
        let state = self.facing()?;
        let clients = if self.plan.reversed { clients.clone() } else { clients.facing(self.run.direction) };
        Ok((state, clients))
    }

    /// The state, validated ([`RunbookState::validate`]), as written.
    pub fn validated(self) -> Result<ValidState, DrError> {
        self.validate()?;
        Ok(ValidState(self))
    }

    pub fn is_dry_run(&self) -> bool {
        self.run.mode == RunMode::DryRun
    }

    pub fn step(&self, key: StepKey) -> Option<&StepRecord> {
        self.steps.get(&key)
    }

    /// The attempt number of the next status check of `key`.
    pub fn next_attempt(&self, key: StepKey) -> u32 {
        self.step(key).map_or(0, |record| record.attempt) + 1
    }

    /// The RPO gate's decision, once preflight has run.
    pub fn gate(&self) -> Option<&GateDecision> {
        self.step(StepKey::Preflight).and_then(|record| record.gate.as_ref())
    }

    pub fn to_json(&self) -> Result<String, DrError> {
        serde_json::to_string(self).map_err(|e| DrError::serialisation("execution input", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_fits_whatever_the_plan_names_length_and_keeps_its_kind_and_time() {
        assert_eq!(
            run_id("paris-ireland-prod", "roundtrip-20261208T010500Z"),
            "paris-ireland-prod-roundtrip-20261208T010500Z"
        );
        let longest_name = "a".repeat(40);
        for tail in ["failback-20261208T010500Z", "manual-20261208T010500Z123", "evac-20261208T010500Z123"] {
            let id = run_id(&longest_name, tail);
            assert!(id.len() <= MAX_RUN_ID_LEN, "{id}: {} characters", id.len());
            assert!(id.ends_with(&format!("-{tail}")), "{id}");
        }
        // A round trip leaves room for its legs' suffix.
        let longest = MAX_RUN_ID_LEN - "-reprotect-back".len();
        let id = run_id_within(&longest_name, "roundtrip-20261208T010500Z", longest);
        assert_eq!(id.len(), longest, "{id}");
    }
}
