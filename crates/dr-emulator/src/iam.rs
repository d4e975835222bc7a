//! The local stack's IAM (crates/dr-emulator/moto/iam.py): a deployment of the stack registered
//! for a plan, so that every call the local functions make for it is authorized against the
//! policies `template.yaml` gives their roles in that deployment, and what the suite's calls were.

use std::collections::BTreeMap;

use dr_core::aws::AwsClients;
use dr_core::error::DrError;
use dr_core::plan::Plan;
use dr_core::plan::stack::stack_parameters;
use serde::Deserialize;

use crate::control::{control_json, post};

/// Registers the deployment of the stack for `plan` with its plan store in `plan_state_bucket`
/// (none: the local stack's default store): the template's parameters as `drctl deploy params`
/// gives them, and the deployment's choices a lookup gives (the credentials secret's ARN, the
/// hosted zone's id). Registering the same plan and store again replaces it.
pub async fn register_deployment(
    clients: &AwsClients,
    plan: &Plan,
    plan_state_bucket: Option<&str>,
) -> Result<(), DrError> {
    register_deployment_with(clients, plan, plan_state_bucket, &[]).await
}

/// [`register_deployment`] with more of the deployment's own choices (`DatabaseSubnetIds`, ...),
/// under its own id (`<plan>@<bucket>+<choices>`).
pub async fn register_deployment_with(
    clients: &AwsClients,
    plan: &Plan,
    plan_state_bucket: Option<&str>,
    choices: &[(&str, &str)],
) -> Result<(), DrError> {
    let mut parameters: BTreeMap<String, String> =
        stack_parameters(plan)?.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
    if let Some(bucket) = plan_state_bucket {
        parameters.insert("PlanStateBucketName".into(), bucket.to_string());
    }
    if let Some(secret) = &plan.database.credentials_secret
        && let Ok(found) = clients.dr.secrets.describe_secret().secret_id(secret).send().await
        && let Some(arn) = found.arn()
    {
        parameters.insert("DatabaseCredentialsSecretArn".into(), arn.to_string());
    }
    if let Ok(zones) = clients.route53.list_hosted_zones_by_name().dns_name(&plan.dns.hosted_zone).send().await
        && let Some(zone) = zones.hosted_zones().iter().find(|zone| zone.name() == plan.dns.hosted_zone)
    {
        parameters.insert("HostedZoneId".into(), zone.id().trim_start_matches("/hostedzone/").to_string());
    }
    let mut id = deployment_id(plan, plan_state_bucket);
    for (name, value) in choices {
        parameters.insert((*name).to_string(), (*value).to_string());
        id.push_str(&format!("+{name}={value}"));
    }
    post(
        clients,
        "/dr-local/iam/deployments",
        serde_json::json!({ "id": id, "parameters": parameters, "region": plan.dr_region }),
    )
    .await
}

/// The id under which [`register_deployment`] registers a plan's deployment.
pub fn deployment_id(plan: &Plan, plan_state_bucket: Option<&str>) -> String {
    format!("{}@{}", plan.name, plan_state_bucket.unwrap_or("default"))
}

/// IAM's decision on one call by a function's role in a registered deployment, as
/// `iam:SimulatePrincipalPolicy` gives it: `Allowed`, `ImplicitlyDenied` or `ExplicitlyDenied`.
pub async fn simulate(
    clients: &AwsClients,
    deployment: &str,
    function: &str,
    action: &str,
    resource: &str,
    context: serde_json::Value,
) -> Result<String, DrError> {
    #[derive(Deserialize)]
    struct Decision {
        decision: String,
    }
    let body = serde_json::json!({
        "deployment": deployment, "function": function, "action": action, "resource": resource, "context": context,
    });
    let decision: Decision = crate::control::control_post_json(clients, "/dr-local/iam/simulate", body).await?;
    Ok(decision.decision)
}

/// One function's calls in the suite, as the local IAM saw them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FunctionCalls {
    pub calls: u64,
    pub denied: Vec<DeniedCall>,
    /// `<policy>#<Sid>` -> how many calls it allowed.
    #[serde(default)]
    pub allowed_by: BTreeMap<String, u64>,
    /// action -> how many calls.
    #[serde(default)]
    pub actions: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DeniedCall {
    pub operation: String,
    pub action: Option<String>,
    pub resource: Option<String>,
    pub why: String,
}

/// What the local IAM decided so far: per function (template logical id) its calls, and every
/// statement its role has (`<policy>#<Sid>` -> its actions).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct IamReport {
    pub functions: BTreeMap<String, FunctionCalls>,
    pub statements: BTreeMap<String, BTreeMap<String, Statement>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Statement {
    pub effect: Option<String>,
    pub actions: Vec<String>,
}

/// The local IAM's report.
pub async fn report(clients: &AwsClients) -> Result<IamReport, DrError> {
    control_json(clients, "/dr-local/iam").await
}
