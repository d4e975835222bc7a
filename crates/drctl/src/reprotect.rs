//! `drctl reprotect ...`: the operator's steps after a failover and its reprotect (deleting the
//! retired old primary, once its replacement replicates).

use std::process::ExitCode;

use clap::Subcommand;
use dr_core::DrError;

use crate::common::PlanArg;

#[derive(Subcommand)]
pub enum ReprotectCommand {
    /// Delete the old primary reprotect retired (`<primary>-retired-<run time>`), once the new
    /// replica is available and replicating within the RPO and its final snapshot is
    /// available; refused otherwise, and for any instance reprotect did not retire.
    DeleteRetired {
        #[command(flatten)]
        plan: PlanArg,
        /// The retired instance.
        instance: String,
        /// The instance's name again: deleting is never a slip.
        #[arg(long)]
        confirm: String,
    },
}

impl ReprotectCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let ReprotectCommand::DeleteRetired { plan, instance, confirm } = self;
        if confirm != instance {
            return Err(DrError::InvalidInput {
                message: format!("--confirm must repeat the instance's name, {instance}"),
            });
        }
        let (plan, clients) = plan.load_with_clients().await?;
        println!("{}", dr_core::runbook::reprotect::delete_retired(&clients, &plan, &instance).await?);
        Ok(ExitCode::SUCCESS)
    }
}
