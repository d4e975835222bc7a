//! `drctl failover ...` and `drctl failback ...`: starting a move by hand (taking the published
//! plan, then the failover state machine), and a failover's execution input for the local runner.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use dr_core::manual::{MoveRequest, published_as_in, start_move};
use dr_core::plan::Direction;
use dr_core::run::{FailoverKind, RunInfo, RunbookState};
use dr_core::{DrError, time};

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

/// The run's kind and direction: a failback is always planned.
fn move_of(planned: bool, failback: bool) -> (FailoverKind, Direction) {
    match (planned, failback) {
        (_, true) => (FailoverKind::Planned, Direction::ToPrimary),
        (true, false) => (FailoverKind::Planned, Direction::ToDr),
        (false, false) => (FailoverKind::Unplanned, Direction::ToDr),
    }
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
        let (file, clients) = plan.load_with_clients().await?;
        let store = store.open(&clients);
        let published = published_as_in(&store, &file, &plan.plan).await?;
        let (kind, direction) = move_of(planned, failback);
        let request =
            MoveRequest { kind, direction, by, reason, run_id, dry_run, label: "manual", via: "drctl".into() };
        output::print_json(&start_move(&clients, &store, &state_machine, published, &request).await?)
    }
}

impl FailbackCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let FailbackCommand::Start(start) = self;
        start.start(false, true).await
    }
}
