//! `drctl rpo ...`: the replication lag of each replicated pair of a plan against its RPO,
//! read-only.

use std::process::ExitCode;

use clap::Subcommand;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{Heartbeat, check_pairs, pairs_of};
use dr_core::{DrError, time};

use crate::common::{JsonArg, PlanArg};
use crate::output;

#[derive(Subcommand)]
pub enum RpoCommand {
    /// Every replicated pair of PLAN (database, buckets): lag, share of the RPO used, verdict.
    /// Read-only: reads the newest replicated heartbeat, writes none. Exit 1 if any pair is
    /// over the RPO or not replicating.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        format: JsonArg,
    },
}

impl RpoCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let RpoCommand::Status { plan, format } = self;
        let (plan, clients) = plan.load_with_clients().await?;
        let statuses = check_pairs(&clients, &pairs_of(&plan), Heartbeat::ReadOnly, time::now()).await?;
        if format.json {
            output::print_json(&statuses)?;
        } else {
            output::print_rpo(&plan, &statuses);
        }
        Ok(output::ready_or_not(statuses.iter().all(|s| s.verdict == LagVerdict::WithinRpo)))
    }
}
