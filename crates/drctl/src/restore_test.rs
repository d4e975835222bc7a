//! `drctl restore-test ...`: the execution input of the monthly restore test, for starting the
//! restore-test state machine by hand.

use std::process::ExitCode;

use clap::Subcommand;
use dr_core::restore::restore_test_input;
use dr_core::{DrError, time};

use crate::common::PlanArg;
use crate::output;

#[derive(Subcommand)]
pub enum RestoreTestCommand {
    /// Print the execution input of a restore test of PLAN (for `aws stepfunctions
    /// start-execution --input` on the restore-test state machine).
    Input {
        #[command(flatten)]
        plan: PlanArg,
        /// The database to restore, by its primary instance (default: the plan's first; the
        /// monthly schedule restores each in its own run).
        #[arg(long)]
        database: Option<String>,
    },
}

impl RestoreTestCommand {
    pub fn run(self) -> Result<ExitCode, DrError> {
        let RestoreTestCommand::Input { plan, database } = self;
        output::print_json(&restore_test_input(&plan.load()?, database.as_deref(), time::now(), "manual: drctl")?)
    }
}
