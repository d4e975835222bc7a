//! Step Functions in the local stack: registering the state machines the triggers start, and
//! reading back what an execution was started with. The local Step Functions service
//! (`tests/sfn/server.mjs`, at `AWS_ENDPOINT_URL_SFN`) runs what is started; a definition is
//! registered with its `${...}` substitutions made, as SAM makes them on deploy.

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
    /// The state machine the triggers start, registered in Step Functions.
    pub state_machine_name: String,
    /// Its definition, substitutions made ([`substitute`]).
    pub state_machine_definition: String,
}

/// Publishes the plan to the plan store and registers the state machine (its definition updated
/// if one of that name exists); returns the state machine's ARN.
pub async fn seed_triggers(clients: &AwsClients, plan: &Plan, seed: &TriggerSeed) -> Result<String, DrError> {
    require_emulator(clients)?;
    ensure_bucket(&clients.dr, &seed.plan_state_bucket).await?;
    PlanStore::new(clients.home.s3.clone(), &seed.plan_state_bucket).publish_plan(plan).await?;
    crate::iam::register_deployment(clients, plan, Some(&seed.plan_state_bucket)).await?;
    let sfn = &clients.home.sfn;
    let mut pages = sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("sfn", "ListStateMachines", e))?;
        if let Some(found) = page.state_machines().iter().find(|m| m.name() == seed.state_machine_name) {
            sfn.update_state_machine()
                .state_machine_arn(found.state_machine_arn())
                .definition(&seed.state_machine_definition)
                .send()
                .await
                .map_err(|e| DrError::from_sdk("sfn", "UpdateStateMachine", e))?;
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

/// A definition with its `${Name}` DefinitionSubstitutions made, as SAM makes them on deploy;
/// a name without a value is `InvalidInput`.
pub fn substitute(
    definition: &str,
    substitutions: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, DrError> {
    let mut out = String::with_capacity(definition.len());
    let mut rest = definition;
    while let Some(start) = rest.find("${") {
        let Some(length) = rest[start..].find('}') else { break };
        let name = &rest[start + 2..start + length];
        let value = substitutions
            .get(name)
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| DrError::InvalidInput { message: format!("no substitution for ${{{name}}}") })?;
        out.push_str(&rest[..start]);
        out.push_str(value);
        rest = &rest[start + length + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The input an execution was started with.
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
