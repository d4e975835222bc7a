//! A runbook as a table: one row per Task of its state machine, from which the Lambdas'
//! dispatch is derived (`functions/`), and which `tests/contract.rs` checks against the
//! definition and `template.yaml`. The tables are `runbook::FAILOVER`, `runbook::REPROTECT` and
//! `restore::RESTORE_TEST`; `docs/architecture.md` walks through adding a step.
//!
//! A row says: the Lambda that serves the step (its `Handler` in template.yaml, which names the
//! function), the action the Task sends (`act`, `status`, ...), what kind of step it is, the
//! Task state(s) that ask it, where its record goes (`$.steps.<key>`), the name the record
//! carries, and the function of dr-core that does the work.

use std::pin::Pin;

use super::budget::Budget;
use super::{Outcome, RunbookState, StepAction, StepKey, StepRecord, StepTimer, ValidState};
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::time::{self, Timestamp};

/// What a step's logic returns: the record of one attempt, before [`settle`] keeps it.
pub type StepFuture<'a> = Pin<Box<dyn Future<Output = Result<StepRecord, DrError>> + 'a>>;

/// A step's logic: a function of dr-core, boxed (the steps' futures are large and nested).
pub type StepFn = for<'a> fn(&'a AwsClients, &'a ValidState) -> StepFuture<'a>;

/// What a step does, which decides how a dry run and a repeated ask treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Reads and decides; changes nothing (preflight, finding the snapshot).
    Checks,
    /// Makes a change, idempotently; a dry run says what it would change. Asked again after an
    /// answer `Waiting`, it is another attempt of the same change (its first start and its
    /// changes carry over).
    Changes,
    /// Asks whether an earlier change has taken effect, until it has (within its phase's budget).
    /// A dry run changed nothing: there is nothing to wait for, and it is ready at once.
    Waits,
    /// Asks a human, again until answered (the decision of an unplanned run).
    Asks,
}

/// Which way a step sees the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Facing {
    /// The plan faced to the run's direction (`RunbookState::facing`): in a failback, the DR
    /// region as written is the primary, and the clients are swapped to match.
    TheRun,
    /// The plan as written, whatever the run's direction (a failback's stand-down puts the DR
    /// region as written back on standby).
    AsWritten,
}

/// One Task of a runbook and the code behind it.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// The Lambda that serves it: the `Handler` of one function in template.yaml.
    pub handler: &'static str,
    /// What the Task sends as `action`.
    pub action: StepAction,
    pub kind: Kind,
    /// The Task states of the definition that ask it (a cleanup after a failure asks the same
    /// step as the cleanup).
    pub states: &'static [&'static str],
    /// Where its record goes: the Tasks' `ResultPath` is `$.steps.<key>`.
    pub key: StepKey,
    /// The name its record carries (`StepRecord::step`), in reports and logs.
    pub name: &'static str,
    pub facing: Facing,
    pub run: StepFn,
}

/// A row; the table's columns in their order. A row that sees the plan as written says so with
/// [`Step::as_written`].
pub const fn step(
    handler: &'static str,
    action: StepAction,
    kind: Kind,
    states: &'static [&'static str],
    key: StepKey,
    name: &'static str,
    run: StepFn,
) -> Step {
    Step { handler, action, kind, states, key, name, facing: Facing::TheRun, run }
}

impl Step {
    pub const fn as_written(self) -> Step {
        Step { facing: Facing::AsWritten, ..self }
    }

    /// Whether the step is asked again for the same change (a status, a question): each ask
    /// has its own record, counted by `attempt`; an act step's attempts carry over instead.
    pub fn is_asked_again(&self) -> bool {
        matches!(self.kind, Kind::Waits | Kind::Asks)
    }

    /// The Tasks' `ResultPath`.
    pub fn result_path(&self) -> String {
        format!("$.steps.{}", self.key)
    }
}

/// A state machine and its steps. Its report (the report Tasks: not a step record) is served by
/// a handler of its own.
#[derive(Debug, Clone, Copy)]
pub struct Runbook {
    /// The definition, under `statemachines/`.
    pub definition: &'static str,
    pub steps: &'static [Step],
}

impl Runbook {
    /// The handlers that serve its steps, each once, in the table's order.
    pub fn handlers(&self) -> Vec<&'static str> {
        let mut handlers: Vec<&'static str> = Vec::new();
        for step in self.steps {
            if !handlers.contains(&step.handler) {
                handlers.push(step.handler);
            }
        }
        handlers
    }

    /// The step `handler` serves for `action`.
    pub fn step(&self, handler: &str, action: StepAction) -> Result<&Step, DrError> {
        self.steps.iter().find(|step| step.handler == handler && step.action == action).ok_or_else(|| {
            DrError::InvalidInput { message: format!("{handler} has no {action:?} step in {}", self.definition) }
        })
    }

    /// Runs the step `handler` serves for `action` and returns its record.
    pub async fn run(
        &self,
        handler: &str,
        action: StepAction,
        clients: &AwsClients,
        state: &RunbookState,
    ) -> Result<StepRecord, DrError> {
        run_step(self.step(handler, action)?, clients, state).await
    }
}

/// Runs one step: the plan and the clients faced as the step sees them (which validates the run
/// first: bad input is refused before any call), a dry run's wait skipped, then the answer
/// settled (a transient error becomes `Waiting` within the phase's budget; another attempt of a
/// change carries the earlier ones over).
pub async fn run_step(step: &Step, clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    let (state, clients) = match step.facing {
        Facing::AsWritten => (state.clone().validated()?, clients.clone()),
        Facing::TheRun => state.facing_with(clients)?,
    };
    let (state, clients) = (&state, &clients);
    if step.kind == Kind::Waits && state.is_dry_run() {
        let timer = StepTimer::start(step.name, clients);
        return Ok(timer.finish(Outcome::Ready, true, "dry run: no change was made, nothing to wait for", Vec::new()));
    }
    let (mark, started) = (clients.calls.mark(), time::now());
    let result = (step.run)(clients, state).await;
    settle(result, state, step, clients, mark, started)
}

/// What every step's answer goes through: a transient failure (a retryable error: throttling,
/// a replica backing up, an instance stopping) becomes `Waiting` within the phase's budget, and
/// an act step that waited keeps the start of its first attempt and counts its attempts.
fn settle(
    result: Result<StepRecord, DrError>,
    state: &RunbookState,
    step: &Step,
    clients: &AwsClients,
    mark: usize,
    started: Timestamp,
) -> Result<StepRecord, DrError> {
    let (key, name) = (step.key, step.name);
    // Any earlier record of this act step (waiting, or a start whose instance fell back): this is
    // another attempt of it.
    let earlier = state.step(key).filter(|_| !step.is_asked_again());
    let previous = earlier.filter(|record| record.outcome == Outcome::Waiting);
    let mut record = match result {
        Ok(record) => record,
        Err(err) if err.is_retryable() => {
            let now = time::now();
            let detail = format!("waiting: {} ({err})", err.name());
            Budget::of(state, key, now).check(key, now, &detail)?;
            let mut waiting = StepTimer::start(name, clients).finish(Outcome::Waiting, false, detail, Vec::new());
            waiting.started_at = started;
            waiting.calls = clients.calls.since(mark);
            tracing::info!(plan = %state.plan.name, step = name, error = err.name(), "waiting: {err}");
            waiting
        }
        Err(err) => return Err(err),
    };
    if let Some(earlier) = earlier {
        record.carry_over(earlier);
    }
    if let Some(previous) = previous {
        // Status steps count their own checks; an act step counts its attempts here.
        if record.attempt == 0 || record.outcome == Outcome::Waiting {
            record.attempt = previous.attempt.max(1) + 1;
        }
    } else if record.outcome == Outcome::Waiting {
        record.attempt = 1;
    }
    Ok(record)
}
