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
    let mut parameters = deployment_parameters(clients, plan, plan_state_bucket).await?;
    let mut id = deployment_id(plan, plan_state_bucket);
    for (name, value) in choices {
        parameters.insert((*name).to_string(), (*value).to_string());
        id.push_str(&format!("+{name}={value}"));
    }
    // A plan with a section in another account: the member role there trusts the orchestrator's
    // roles by their names' prefix (the stack's name, as CloudFormation names a stack's roles).
    let mut role_names = serde_json::Map::new();
    if !plan.accounts.is_empty() {
        for role in crate::models::iam_roles(clients).await?.into_values() {
            role_names.insert(role.clone(), format!("{ORCHESTRATOR_ROLE_PREFIX}{role}").into());
        }
    }
    post(
        clients,
        "/dr-local/iam/deployments",
        serde_json::json!({ "id": id, "parameters": parameters, "region": plan.dr_region, "role_names": role_names }),
    )
    .await
}

/// What the local orchestrator stack's role names start with (its stack name), when a member
/// role must trust them.
pub const ORCHESTRATOR_ROLE_PREFIX: &str = "dr-orchestrator-";

/// The organization the local stack's accounts are in (moto/iam.py's `ORGANIZATION_ID`).
pub const LOCAL_ORGANIZATION_ID: &str = "o-drlocal0001";

/// `member-role.yaml` deployed in the plan's DNS account (`[accounts.dns]`), as a StackSet would:
/// the parameters `drctl deploy params --dns-member` gives, the hosted zone's id a lookup gives,
/// and the deployment's own (the orchestrator's account, its roles' prefix, the organization,
/// which a test changes to show a trust that does not hold). `without`: Sids of the member role's
/// statements left out (a test's missing permission).
pub async fn register_dns_member(
    clients: &AwsClients,
    plan: &Plan,
    organization_id: &str,
    without: &[&str],
) -> Result<(), DrError> {
    let mut parameters: BTreeMap<String, String> = dr_core::plan::stack::dns_member_stack_parameters(plan)?
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect();
    if let Ok(zones) = clients.route53.list_hosted_zones_by_name().dns_name(&plan.dns.hosted_zone).send().await
        && let Some(zone) = zones.hosted_zones().iter().find(|zone| zone.name() == plan.dns.hosted_zone)
    {
        parameters.insert("HostedZoneId".into(), zone.id().trim_start_matches("/hostedzone/").to_string());
    }
    parameters.insert("OrchestratorAccountId".into(), "123456789012".into());
    parameters.insert("OrchestratorRoleNamePrefix".into(), ORCHESTRATOR_ROLE_PREFIX.into());
    parameters.insert("OrganizationId".into(), organization_id.into());
    let account = plan.accounts.dns.as_ref().map(|member| member.account.clone()).unwrap_or_default();
    post(
        clients,
        "/dr-local/iam/members",
        serde_json::json!({ "account": account, "parameters": parameters, "region": plan.dr_region, "without": without }),
    )
    .await
}

/// The template's parameters for `plan`: `drctl deploy params`, the plan store, and what a lookup
/// gives (the credentials secret's ARN, the hosted zone's id).
async fn deployment_parameters(
    clients: &AwsClients,
    plan: &Plan,
    plan_state_bucket: Option<&str>,
) -> Result<BTreeMap<String, String>, DrError> {
    let mut parameters: BTreeMap<String, String> =
        stack_parameters(plan)?.into_iter().map(|(name, value)| (name.to_string(), value)).collect();
    if let Some(bucket) = plan_state_bucket {
        parameters.insert("PlanStateBucketName".into(), bucket.to_string());
    }
    let mut secret_arns = Vec::new();
    for secret in plan.databases.iter().filter_map(|db| db.credentials_secret.as_ref()) {
        if let Ok(found) = clients.dr.secrets.describe_secret().secret_id(secret).send().await
            && let Some(arn) = found.arn()
            && !secret_arns.iter().any(|known| known == arn)
        {
            secret_arns.push(arn.to_string());
        }
    }
    if !secret_arns.is_empty() {
        parameters.insert("DatabaseCredentialsSecretArn".into(), secret_arns.join(","));
    }
    if let Ok(zones) = clients.route53.list_hosted_zones_by_name().dns_name(&plan.dns.hosted_zone).send().await
        && let Some(zone) = zones.hosted_zones().iter().find(|zone| zone.name() == plan.dns.hosted_zone)
    {
        parameters.insert("HostedZoneId".into(), zone.id().trim_start_matches("/hostedzone/").to_string());
    }
    Ok(parameters)
}

/// A deployed stack as `drctl doctor` reads it, stood up in the local stack: a CloudFormation
/// stack named `name` with the plan's parameters, one IAM role per function role of the template
/// (named by CloudFormation, as `sam deploy` leaves them) and the template's outputs; and the
/// deployment of those roles registered with the local IAM, so that `iam:SimulatePrincipalPolicy`
/// on a role decides with its template policies. `scps`: the organization's service control
/// policies over the account; `without`: (function, Sid) statements the deployed roles lack.
pub async fn deploy_stand_in_stack(
    clients: &AwsClients,
    plan: &Plan,
    name: &str,
    plan_state_bucket: &str,
    scps: &[serde_json::Value],
    without: &[(&str, &str)],
) -> Result<(), DrError> {
    let parameters = deployment_parameters(clients, plan, Some(plan_state_bucket)).await?;
    let role_ids: std::collections::BTreeSet<String> = crate::models::iam_roles(clients).await?.into_values().collect();
    let (region, account) = (&plan.dr_region, "123456789012");
    let names = serde_json::json!({
        "FailoverStateMachine": format!("arn:aws:states:{region}:{account}:stateMachine:{name}-failover"),
        "RoundTripStateMachine": format!("arn:aws:states:{region}:{account}:stateMachine:{name}-round-trip"),
        "RestoreTestStateMachine": format!("arn:aws:states:{region}:{account}:stateMachine:{name}-restore-test"),
        "ReprotectStateMachine": format!("arn:aws:states:{region}:{account}:stateMachine:{name}-reprotect"),
        "NotificationTopic": format!("arn:aws:sns:{region}:{account}:{name}-notifications"),
    });
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    });
    let template = serde_json::json!({
        "Parameters": parameters.keys().map(|k| (k.clone(), serde_json::json!({"Type": "String"}))).collect::<serde_json::Map<_, _>>(),
        "Resources": role_ids.iter().map(|role| (role.clone(), serde_json::json!({
            "Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": trust},
        }))).collect::<serde_json::Map<_, _>>(),
        "Outputs": {
            "FailoverStateMachineArn": {"Value": names["FailoverStateMachine"]},
            "RoundTripStateMachineArn": {"Value": names["RoundTripStateMachine"]},
            "RestoreTestStateMachineArn": {"Value": names["RestoreTestStateMachine"]},
            "ReprotectStateMachineArn": {"Value": names["ReprotectStateMachine"]},
            "NotificationTopicArn": {"Value": names["NotificationTopic"]},
            "PlanStateBucketName": {"Value": plan_state_bucket},
        },
    });
    let config = dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(region.clone())).load().await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&config);
    let stack_parameters = parameters.iter().map(|(key, value)| {
        aws_sdk_cloudformation::types::Parameter::builder().parameter_key(key).parameter_value(value).build()
    });
    cloudformation
        .create_stack()
        .stack_name(name)
        .template_body(template.to_string())
        .set_parameters(Some(stack_parameters.collect()))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudformation", "CreateStack", e))?;
    let resources = cloudformation
        .list_stack_resources()
        .stack_name(name)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudformation", "ListStackResources", e))?;
    let role_names: serde_json::Map<String, serde_json::Value> = resources
        .stack_resource_summaries()
        .iter()
        .filter_map(|r| Some((r.logical_resource_id()?.to_string(), r.physical_resource_id()?.into())))
        .collect();
    let without: Vec<serde_json::Value> =
        without.iter().map(|(function, sid)| serde_json::json!({"function": function, "sid": sid})).collect();
    post(
        clients,
        "/dr-local/iam/deployments",
        serde_json::json!({
            "id": format!("{}#{name}", deployment_id(plan, Some(plan_state_bucket))), "parameters": parameters,
            "region": region, "names": names, "role_names": role_names, "scps": scps, "without": without,
        }),
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
