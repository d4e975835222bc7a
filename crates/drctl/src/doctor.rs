//! `drctl doctor`: a deployed stack against the real account (IAM's policy simulator on every
//! call its functions make, and the full readiness check), or the actions it simulates.

use std::process::ExitCode;

use clap::Args;
use dr_core::DrError;

use crate::common::{JsonArg, PlanArg, stack_clients};
use crate::output;

/// `drctl doctor`.
#[derive(Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    plan: PlanArg,
    /// The deployed stack (template.yaml, in the plan's DR region).
    #[arg(long, required_unless_present = "actions")]
    stack: Option<String>,
    /// Print, as JSON, every action doctor simulates for each function (whatever options a plan
    /// takes) and exit: what a security reviewer reads against the template.
    #[arg(long)]
    actions: bool,
    #[command(flatten)]
    format: JsonArg,
}

impl DoctorArgs {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        if self.actions {
            return output::print_json(&dr_core::doctor::calls::actions_by_function(&self.plan.load()?));
        }
        let stack = self.stack.unwrap_or_default();
        let (plan, clients) = self.plan.load_with_clients().await?;
        let (cloudformation, iam) = stack_clients(&plan.dr_region).await;
        let report = dr_core::doctor::examine(&clients, &cloudformation, &iam, &plan, &stack).await?;
        if self.format.json {
            output::print_json(&report)?;
        } else {
            output::print_doctor(&plan, &report);
        }
        Ok(output::ready_or_not(report.is_clean()))
    }
}
