//! `drctl failover ...` and `drctl failback ...`: starting a move by hand (taking the published
//! plan, then the failover state machine), and a failover's execution input for the local runner.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use dr_core::plan::Direction;
use dr_core::run::{Approval, FailoverKind, RunInfo, RunMode, RunbookState, Starter};
use dr_core::store::PlanStore;
use dr_core::{DrError, Plan, time};

use crate::common::{PlanArg, Runbook};
use crate::output;

#[derive(Subcommand)]
pub enum FailoverCommand {
    /// Fail PLAN over now: take the plan in the plan store (as an alarm would: an alarm meanwhile
    /// starts nothing, and the plan stays failed-over until re-armed), then start the failover
    /// state machine. Prints the run id and the execution ARN (follow it with `drctl run watch`).
    /// Re-run with the same --run-id if the start failed: the plan it holds is not taken twice.
    Start {
        #[command(flatten)]
        start: StartMove,
        /// A planned move (the primary region answers): fence the writer there and prove by a
        /// barrier that the DR region holds every acknowledged write before promoting. Without
        /// it: unplanned (an incident; the data loss is measured at its start and the primary
        /// region is not fenced).
        #[arg(long, conflicts_with = "unplanned")]
        planned: bool,
        /// An unplanned move (the default, said explicitly).
        #[arg(long)]
        unplanned: bool,
        /// Fail back to the primary region (DR -> primary, always planned): as `drctl failback
        /// start`.
        #[arg(long)]
        failback: bool,
    },
    /// Print the execution input of a failover of PLAN (it names the plan's published version; an
    /// approval is never part of an input: `drctl run approve` records one). It does not take the
    /// plan: for the local runner; on AWS use `start`.
    Input {
        #[command(flatten)]
        plan: PlanArg,
        /// Run id (default: manual-<time>).
        #[arg(long)]
        run_id: Option<String>,
        /// A planned move (see `start --planned`).
        #[arg(long)]
        planned: bool,
        /// A failback (see `start --failback`).
        #[arg(long)]
        failback: bool,
    },
}

/// Starting a move by hand: `failover start`, `failback start`.
#[derive(Args)]
pub struct StartMove {
    #[command(flatten)]
    runbook: Runbook,
    /// Who starts the move (recorded in the plan state and the report).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// Run id (default: <plan>-manual-<time to the millisecond>).
    #[arg(long)]
    run_id: Option<String>,
    /// Check everything and report what would change; change nothing, take nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
pub enum FailbackCommand {
    /// Fail PLAN back to its primary region (DR -> primary, always planned: the writer fenced
    /// in the DR region, a barrier, then the move): the DR region must be primary, with a
    /// replica in the primary region (reprotect).
    /// Takes the plan like `failover start`; prints the execution ARN.
    Start(StartMove),
}

/// The plan a run started by hand acts on: the one published in the store, which must be the
/// operator's file (a run acts on the published plan only, so a file that differs would be a
/// different plan from the one the operator reads): `UntrustedInput` otherwise, before anything.
async fn published_as_in(store: &PlanStore, file: &Plan, path: &std::path::Path) -> Result<Plan, DrError> {
    let published = store.load_plan(&file.name).await?;
    if published.version()? != file.version()? {
        return Err(DrError::UntrustedInput {
            what: format!("plan file {}", path.display()),
            field: "plan".into(),
            message: format!(
                "it differs from plan {} as published in s3://{}: publish it first (drctl plan publish), or run the published plan",
                file.name,
                store.reference().bucket
            ),
        });
    }
    Ok(published)
}

/// The run's kind and direction: a failback is always planned.
fn move_of(planned: bool, failback: bool) -> (FailoverKind, Direction) {
    match (planned, failback) {
        (_, true) => (FailoverKind::Planned, Direction::ToPrimary),
        (true, false) => (FailoverKind::Planned, Direction::ToDr),
        (false, false) => (FailoverKind::Unplanned, Direction::ToDr),
    }
}

/// What `drctl failover start` started.
#[derive(serde::Serialize)]
struct Started {
    plan: String,
    run_id: String,
    mode: RunMode,
    execution_arn: String,
}

impl FailoverCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            FailoverCommand::Input { plan, run_id, planned, failback } => {
                let plan = plan.load()?;
                let now = time::now();
                let run_id = run_id.unwrap_or_else(|| format!("manual-{}", time::compact(now)));
                let mut state = RunbookState::new(plan, RunInfo::new(run_id, now, "manual: drctl"));
                (state.run.kind, state.run.direction) = move_of(planned, failback);
                state.validate()?;
                output::print_json(&state)
            }
            FailoverCommand::Start { start, planned, unplanned: _, failback } => start.start(planned, failback).await,
        }
    }
}

impl StartMove {
    /// Takes the plan (unless a dry run) and starts the failover state machine for the move.
    async fn start(self, planned: bool, failback: bool) -> Result<ExitCode, DrError> {
        let StartMove { runbook: Runbook { plan, store, state_machine }, by, reason, run_id, dry_run } = self;
        if by.trim().is_empty() || reason.trim().is_empty() {
            return Err(DrError::InvalidInput { message: "a failover needs who (--by) and why (--reason)".into() });
        }
        let (file, clients) = plan.load_with_clients().await?;
        let plan = published_as_in(&store.open(&clients), &file, &plan.plan).await?;
        let now = time::now();
        let label = if dry_run { "dryrun" } else { "manual" };
        // To the millisecond: two operators starting in the same second get two run ids (and
        // the second one is refused: the plan is taken).
        let run_id = run_id.unwrap_or_else(|| {
            format!("{}-{label}-{}{:03}", plan.name, time::compact(now), now.timestamp_subsec_millis())
        });
        let mut run = RunInfo::new(&run_id, now, format!("manual ({label}) by {by}: drctl"));
        run.mode = if dry_run { RunMode::DryRun } else { RunMode::Live };
        (run.kind, run.direction) = move_of(planned, failback);
        run.requested_by = Some(Approval { by: by.clone(), reason: reason.clone() });
        let mut state = RunbookState::new(plan, run);
        state.validate()?;
        if !dry_run {
            let store = store.open(&clients);
            // Re-run with the same --run-id after a start that failed: the plan is already
            // this run's.
            // Who starts it, as STS verifies them, on record under their own id before the plan is
            // taken: a two-person plan's approvals are checked against it.
            let caller = dr_core::aws::identity::caller(&clients.dr.sts).await?;
            let starter = dr_core::run::Principal { arn: caller.arn, user_id: caller.user_id };
            store.record_start(&state.plan.name, &run_id, &starter, &reason).await?;
            state.run.started_by = Some(starter);
            let held = store.read_state(&state.plan.name).await?.state;
            if !held.is_held_by(&run_id) {
                let by = format!("operator: {by}");
                store.take_for_run(&state.plan, state.run.direction, &run_id, &by, &reason).await?;
            }
            state.run.plan_state = Some(store.reference());
        }
        let starter = Starter::new(clients.dr.sfn.clone(), state_machine);
        let execution_arn = match state.run.plan_state {
            Some(_) => store.open(&clients).start_holding(&starter, &state, &format!("operator: {by}")).await?,
            None => starter.start(&state).await?,
        };
        output::print_json(&Started { plan: state.plan.name.clone(), run_id, mode: state.run.mode, execution_arn })
    }
}

impl FailbackCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let FailbackCommand::Start(start) = self;
        start.start(false, true).await
    }
}
