//! `drctl deploy ...`: what deploying the stacks takes from a plan (their parameters), and the
//! staging drill as a shell script.

use std::process::ExitCode;

use clap::Subcommand;
use dr_core::DrError;

use crate::common::{JsonArg, PlanArg};
use crate::output;

#[derive(Subcommand)]
pub enum DeployCommand {
    /// The stack parameters (template.yaml) the plan determines, normalised as IAM and Route 53
    /// need them (the record in lower case without its trailing dot, bucket ARNs), one
    /// `Name=Value` a line (empty values left out: the template's defaults) for
    /// `sam deploy --parameter-overrides $(drctl deploy params PLAN)`; the other parameters are
    /// the deployment's choices (the plan store bucket, schedules, subnets, keys, the hosted
    /// zone's id and the secret's ARN).
    Params {
        #[command(flatten)]
        plan: PlanArg,
        /// The detection stack's (template-us-east-1.yaml, in us-east-1) instead: its health
        /// check, alarm and forwarding rule.
        #[arg(long)]
        detection: bool,
        /// The member stack's in the plan's DNS account (member-role.yaml, `[accounts.dns]`)
        /// instead: the member role's name, the routing alarm and health check it creates there.
        #[arg(long, conflicts_with = "detection")]
        dns_member: bool,
        #[command(flatten)]
        format: JsonArg,
    },
    /// The staging drill for PLAN as one path (docs/staging-drill.md): deploy to the staging
    /// account, doctor, a dry run, a live drill with a writer, reprotect and failback, a round
    /// trip, the evidence to keep; the exact commands, with the plan's names, as a shell script.
    StagingDrill {
        #[command(flatten)]
        plan: PlanArg,
        /// The stack's name in the staging account.
        #[arg(long)]
        stack: String,
        /// The plan store bucket of that deployment.
        #[arg(long)]
        bucket: String,
    },
}

impl DeployCommand {
    pub fn run(self) -> Result<ExitCode, DrError> {
        let (plan, detection, dns_member, format) = match self {
            DeployCommand::Params { plan, detection, dns_member, format } => (plan, detection, dns_member, format),
            DeployCommand::StagingDrill { plan, stack, bucket } => {
                let path = plan.plan.to_string_lossy().to_string();
                let stages = dr_core::doctor::staging::staging_drill(&plan.load()?, &path, &stack, &bucket);
                print!("{}", dr_core::doctor::staging::render(&stages));
                return Ok(ExitCode::SUCCESS);
            }
        };
        let plan = plan.load()?;
        let parameters = if detection {
            dr_core::plan::stack::detection_stack_parameters(&plan)?
        } else if dns_member {
            dr_core::plan::stack::dns_member_stack_parameters(&plan)?
        } else {
            dr_core::plan::stack::stack_parameters(&plan)?
        };
        if format.json {
            let map: serde_json::Map<String, serde_json::Value> =
                parameters.into_iter().map(|(name, value)| (name.to_string(), value.into())).collect();
            return output::print_json(&map);
        }
        // An empty value is the template's default for the optional ones (no fence, no KMS key):
        // left out, since `--parameter-overrides` takes no empty value.
        for (name, value) in parameters.into_iter().filter(|(_, value)| !value.is_empty()) {
            println!("{name}={value}");
        }
        Ok(ExitCode::SUCCESS)
    }
}
