//! `drctl drill ...`: a game day (dry run, live drill, round trip) started through the game
//! day's own checks, as the game-day Lambda runs them.

use std::process::ExitCode;

use clap::Subcommand;
use dr_core::DrError;
use dr_core::game_day::{GameDayMode, GameDayRequest, handle_game_day};
use dr_core::plan::Direction;
use dr_core::run::Starter;
use dr_core::trigger::TriggerContext;

use crate::common::Runbook;
use crate::output;

#[derive(Subcommand)]
pub enum DrillCommand {
    /// A game day of PLAN through the game day's own checks (`dr_core::game_day`, as the
    /// game-day Lambda runs them): a dry run, or a live drill (a planned failover; a production
    /// plan needs --confirm with its name), or a round trip (failover, verification window,
    /// reprotect, failback, reprotect, one report). Prints the execution ARN.
    Start {
        #[command(flatten)]
        runbook: Runbook,
        /// ARN of the round-trip state machine (for --round-trip).
        #[arg(long, env = "DR_ROUND_TRIP_STATE_MACHINE")]
        round_trip_state_machine: Option<String>,
        /// Check everything and change nothing.
        #[arg(long, required_unless_present = "live", conflicts_with = "live")]
        dry_run: bool,
        /// Move for real (a planned failover).
        #[arg(long)]
        live: bool,
        /// A live drill that comes back (failover, verification, reprotect, failback, reprotect).
        #[arg(long, requires = "live")]
        round_trip: bool,
        /// The round trip's verification window in minutes (default 15).
        #[arg(long, requires = "round_trip")]
        verification_minutes: Option<u64>,
        /// The plan's name again, for a live drill of a production plan.
        #[arg(long)]
        confirm: Option<String>,
        /// Who runs the game day.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

impl DrillCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let DrillCommand::Start {
            runbook: Runbook { plan, store, state_machine },
            round_trip_state_machine,
            dry_run,
            live: _,
            round_trip,
            verification_minutes,
            confirm,
            by,
            reason,
        } = self;
        let (plan, clients) = plan.load_with_clients().await?;
        let for_plan = clients.clone();
        let ctx = TriggerContext {
            store: store.open(&clients),
            starter: Starter::new(clients.home.sfn.clone(), state_machine),
            round_trip: round_trip_state_machine.map(|arn| Starter::new(clients.home.sfn.clone(), arn)),
            plan_names: vec![plan.name.clone()],
            account_id: dr_core::aws::identity::caller(&clients.home.sts).await?.account,
            clients_for: std::sync::Arc::new(move |_| for_plan.clone()),
            confirmation_poll: std::time::Duration::from_secs(30),
            confirmation_wait: dr_core::trigger::MAX_CONFIRMATION_WAIT,
            fence_function: None,
        };
        let request = GameDayRequest {
            plan: plan.name.clone(),
            mode: if dry_run { GameDayMode::DryRun } else { GameDayMode::Drill },
            requested_by: by,
            reason,
            confirm,
            direction: Direction::ToDr,
            round_trip,
            verification_minutes,
        };
        output::print_json(&handle_game_day(&ctx, request).await?)
    }
}
