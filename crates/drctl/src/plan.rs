//! `drctl plan ...`: validating a plan file, publishing it to the plan store (checked against
//! the deployed stack), and the readiness check of its estate.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::Subcommand;
use dr_core::DrError;
use dr_core::readiness::scheduled::check_as_it_stands;
use dr_core::store::PlanStore;

use crate::common::{JsonArg, PlanArg, StoreArg, stack_clients};
use crate::output;

#[derive(Subcommand)]
pub enum PlanCommand {
    /// Parse and validate a plan file; lists every problem.
    Validate(PlanArg),
    /// Validate a plan and publish it to the plan store, where the trigger Lambdas read it.
    Publish {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
        /// The deployed stack (template.yaml, in the plan's DR region) the plan is published for:
        /// a plan whose parameters (`drctl deploy params`) the stack holds otherwise is refused
        /// (PlanStackMismatch) and nothing is published.
        #[arg(long, env = "DR_STACK")]
        stack: Option<String>,
    },
    /// The plan as Terraform reads it (`--json`: the plan, its version, and the parameters of both
    /// stacks it determines, for `jsondecode` in terraform/modules/dr); without `--json`, the text
    /// `drctl plan publish` stores.
    Export {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        format: JsonArg,
    },
    /// After a failover, what the estate's own Terraform must change: the inputs of the modules
    /// that created it (which region is primary, which instance is the writer and which the
    /// replica, the PRIMARY record's value) as the estate stands, against the plan as written.
    /// Read-only (the plan store's state, RDS, Route 53). docs/deploy.md says how to apply them.
    TerraformInputs {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Readiness: every resource exists and sits in its standby state. Read-only. With the plan
    /// store, in the direction the estate stands: after a failover (the DR region primary, the
    /// primary region its replica) the plan is checked reversed.
    Check {
        #[command(flatten)]
        plan: PlanArg,
        /// The plan store bucket, whose plan state says which region is primary now (absent:
        /// the plan as written).
        #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
        bucket: Option<String>,
        #[command(flatten)]
        format: JsonArg,
    },
}

impl PlanCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            PlanCommand::Validate(arg) => {
                let plan = arg.load()?;
                println!(
                    "plan {} is valid ({} -> {}, tier {})",
                    plan.name, plan.primary_region, plan.dr_region, plan.tier
                );
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::Publish { plan, store, stack } => {
                let (plan, clients) = plan.load_with_clients().await?;
                if let Some(stack) = stack {
                    let deployed = deployed_parameters(&plan.dr_region, &stack).await?;
                    dr_core::plan::stack::check_deployed_stack(&plan, &stack, &deployed)?;
                    println!("stack {stack} holds the parameters plan {} determines", plan.name);
                }
                store.open(&clients).publish_plan(&plan).await?;
                println!("published plan {} to s3://{}/plans/{}.toml", plan.name, store.bucket, plan.name);
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::Export { plan, format } => {
                let plan = plan.load()?;
                if format.json {
                    output::print_json(&dr_core::plan::stack::PlanExport::of(&plan)?)?;
                } else {
                    print!("{}", plan.published_text()?);
                }
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::TerraformInputs { plan, store, format } => {
                let (plan, clients) = plan.load_with_clients().await?;
                let inputs =
                    dr_core::doctor::terraform::terraform_inputs(&clients, &store.open(&clients), &plan).await?;
                if format.json {
                    output::print_json(&inputs)?;
                } else {
                    print!("{}", dr_core::doctor::terraform::render(&plan, &inputs));
                }
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::Check { plan, bucket, format } => {
                let (plan, clients) = plan.load_with_clients().await?;
                let store = bucket.map(|bucket| PlanStore::new(clients.home.s3.clone(), bucket));
                let (plan, readiness) = check_as_it_stands(&clients, store.as_ref(), &plan).await?;
                if format.json {
                    output::print_json(&readiness)?;
                } else {
                    output::print_readiness(&plan, &readiness);
                }
                Ok(output::ready_or_not(readiness.is_ready()))
            }
        }
    }
}

/// A deployed stack's parameters (DescribeStacks in `region`), by name.
async fn deployed_parameters(region: &str, stack: &str) -> Result<BTreeMap<String, String>, DrError> {
    let (cloudformation, _) = stack_clients(region).await;
    Ok(dr_core::doctor::describe_stack(&cloudformation, stack, region).await?.1)
}
