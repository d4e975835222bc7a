//! Step Functions in the emulator: registering the state machines the triggers start, and reading
//! back what an execution was started with (moto records executions and runs none).

use dr_core::aws::AwsClients;
use dr_core::error::DrError;
use dr_core::plan::Plan;
use dr_core::store::PlanStore;

use crate::estate::{EMULATOR_ACCOUNT, ensure_bucket};
use crate::guard::require_emulator;

/// Where the emulated triggers find their plan and start their runs.
#[derive(Debug, Clone)]
pub struct TriggerSeed {
    /// The plan store bucket (DR region): the plan is published there and left disarmed.
    pub plan_state_bucket: String,
    /// The failover state machine registered in the emulator's Step Functions.
    pub state_machine_name: String,
    pub state_machine_definition: String,
}

/// Publishes the plan to the plan store and registers the failover state machine; returns the
/// state machine's ARN. The emulator's Step Functions records executions and does not run them:
/// a started execution is run by the ASL engine (see `scripts/demo` and the tests).
pub async fn seed_triggers(clients: &AwsClients, plan: &Plan, seed: &TriggerSeed) -> Result<String, DrError> {
    require_emulator(clients)?;
    ensure_bucket(&clients.dr, &seed.plan_state_bucket).await?;
    PlanStore::new(clients.dr.s3.clone(), &seed.plan_state_bucket).publish_plan(plan).await?;
    let sfn = &clients.dr.sfn;
    let mut pages = sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("sfn", "ListStateMachines", e))?;
        if let Some(found) = page.state_machines().iter().find(|m| m.name() == seed.state_machine_name) {
            return Ok(found.state_machine_arn().to_string());
        }
    }
    let created = sfn
        .create_state_machine()
        .name(&seed.state_machine_name)
        .definition(&seed.state_machine_definition)
        .role_arn(format!("arn:aws:iam::{EMULATOR_ACCOUNT}:role/{}-failover", plan.name))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sfn", "CreateStateMachine", e))?;
    Ok(created.state_machine_arn().to_string())
}

/// The input an execution recorded by the emulator's Step Functions was started with.
pub async fn execution_input(clients: &AwsClients, execution_arn: &str) -> Result<String, DrError> {
    require_emulator(clients)?;
    let execution = clients
        .dr
        .sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sfn", "DescribeExecution", e))?;
    Ok(execution.input().unwrap_or("{}").to_string())
}
