//! `drctl trigger ...`: the plan's automatic-failover state in the plan store, read, armed (on a
//! green plan check) or disarmed by an operator.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use dr_core::DrError;
use dr_core::readiness::scheduled::check_as_it_stands;

use crate::common::{PlanArg, StoreArg};
use crate::output;

#[derive(Args)]
struct OperatorArg {
    /// Who makes the change (recorded in the plan state).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// Change a plan a run still holds (failing-over): only when that run is known to be over;
    /// arm although `plan check` is not green.
    #[arg(long)]
    force: bool,
}

/// A change of the plan's state by an operator.
#[derive(Args)]
pub struct StateChange {
    #[command(flatten)]
    plan: PlanArg,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    operator: OperatorArg,
}

#[derive(Subcommand)]
pub enum TriggerCommand {
    /// Print the plan's state as JSON.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Let an alarm fail the plan over (after a failover: once the primary region serves again).
    Arm(StateChange),
    /// Switch automatic failover off (maintenance, a planned outage of the primary region).
    Disarm(StateChange),
}

impl TriggerCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        let (plan, store, change) = match self {
            TriggerCommand::Status { plan, store } => (plan, store, None),
            TriggerCommand::Arm(StateChange { plan, store, operator }) => (plan, store, Some((true, operator))),
            TriggerCommand::Disarm(StateChange { plan, store, operator }) => (plan, store, Some((false, operator))),
        };
        let (plan, clients) = plan.load_with_clients().await?;
        let store = store.open(&clients);
        let state = match change {
            None => store.read_state(&plan.name).await?.state,
            Some((true, op)) => {
                // Armed only on a green plan check, in the direction the estate stands: after a
                // failback, once Ireland replicates Paris again.
                let (_, readiness) = check_as_it_stands(&clients, Some(&store), &plan).await?;
                if !readiness.is_ready() && !op.force {
                    let findings = readiness
                        .rows
                        .iter()
                        .filter(|row| !row.is_ready())
                        .map(|row| format!("{} {}: {}", row.check.label(), row.resource, row.detail))
                        .collect();
                    return Err(DrError::PreflightFailed { findings });
                }
                store.set_armed(&plan.name, true, &op.by, &op.reason, op.force).await?
            }
            Some((false, op)) => store.set_armed(&plan.name, false, &op.by, &op.reason, op.force).await?,
        };
        output::print_json(&state)
    }
}
