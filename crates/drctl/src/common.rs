//! What several command groups share: the plan file, plan store and `--json` arguments, the
//! runbook a start names, and the clients that read a deployed stack.

use std::path::PathBuf;

use clap::Args;
use dr_core::aws::AwsClients;
use dr_core::store::PlanStore;
use dr_core::{DrError, Plan};

/// A plan file, given as the first argument.
#[derive(Args)]
pub struct PlanArg {
    /// Path of the plan file (TOML), e.g. plans/paris-ireland.toml.
    pub plan: PathBuf,
}

impl PlanArg {
    /// The plan, read and validated.
    pub fn load(&self) -> Result<Plan, DrError> {
        Plan::load(&self.plan)
    }

    /// The plan and the clients of its regions (standard credential chain; `AWS_ENDPOINT_URL`).
    pub async fn load_with_clients(&self) -> Result<(Plan, AwsClients), DrError> {
        let plan = self.load()?;
        let clients = AwsClients::for_plan(&plan, "drctl").await;
        Ok((plan, clients))
    }
}

#[derive(Args)]
pub struct StoreArg {
    /// The plan store bucket (plans and their states), in the plan's DR region.
    #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
    pub bucket: String,
}

impl StoreArg {
    pub fn open(&self, clients: &AwsClients) -> PlanStore {
        PlanStore::new(clients.home.s3.clone(), &self.bucket)
    }
}

#[derive(Args)]
pub struct JsonArg {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What every start names: the plan, its store and the failover state machine.
#[derive(Args)]
pub struct Runbook {
    #[command(flatten)]
    pub plan: PlanArg,
    #[command(flatten)]
    pub store: StoreArg,
    /// ARN of the failover state machine (the stack's FailoverStateMachine).
    #[arg(long, env = "DR_FAILOVER_STATE_MACHINE")]
    pub state_machine: String,
}

/// CloudFormation in the stack's region, and IAM (global).
pub async fn stack_clients(region: &str) -> (aws_sdk_cloudformation::Client, aws_sdk_iam::Client) {
    let config =
        dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(region.to_string())).load().await;
    (aws_sdk_cloudformation::Client::new(&config), aws_sdk_iam::Client::new(&config))
}
