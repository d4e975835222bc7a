//! `drctl doctor`: a deployed stack checked against what the real account answers, before the
//! incident. Read-only, safe to run in production.
//!
//! - **IAM, decided by IAM.** For each function of the stack, the calls it makes ([`calls`]: the
//!   actions and resources the local stack's IAM enforcement authorizes them on,
//!   `crates/dr-emulator/moto/iam_requests.py`) on the plan's real resource ARNs, with the context
//!   keys its policies test, are simulated with `iam:SimulatePrincipalPolicy` on the function's
//!   deployed role. IAM's simulator applies the role's policies, its permissions boundary and the
//!   organization's service control policies, and says which decided: what no local model of the
//!   account can see.
//! - **Readiness**, the full check ([`crate::readiness::Scope::Full`]): the plan's resources and
//!   the DR region's dependencies (launch template and AMI, certificates, target group, vCPU
//!   quota, keys, secret, the customer's probes).

pub mod calls;
pub mod staging;
pub mod terraform;

use std::collections::BTreeMap;

use aws_sdk_iam::types::{ContextEntry, ContextKeyTypeEnum, PolicyEvaluationDecisionType};
use serde::Serialize;

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::Plan;
use crate::readiness::{Readiness, Scope, check_plan};
pub use calls::{ExpectedCall, expected_calls};

/// Condition keys IAM gives a list of values (the Service Authorization Reference's
/// ArrayOfString): a simulation passes them as `stringList`, as AWS evaluates them.
/// `events:source` is every entry's source of one PutEvents.
const MULTIVALUED_KEYS: &[&str] = &["events:source", "events:detail-type"];

/// What a deployed stack holds, as CloudFormation and IAM describe it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeployedStack {
    pub name: String,
    pub region: String,
    /// The account the stack lives in (from its stack id).
    pub account: String,
    pub parameters: BTreeMap<String, String>,
    /// The stack's outputs (the state machines' ARNs, the topic, the plan store).
    pub outputs: BTreeMap<String, String>,
    /// Logical id -> physical id of every resource (a function's name, a state machine's ARN).
    pub resources: BTreeMap<String, String>,
    /// Function logical id -> the ARN of its role.
    pub roles: BTreeMap<String, String>,
}

impl DeployedStack {
    /// A physical id by logical id.
    pub fn resource(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id).map(String::as_str)
    }

    /// An output's value.
    pub fn output(&self, name: &str) -> Option<&str> {
        self.outputs.get(name).map(String::as_str)
    }

    /// A parameter's value; empty when the stack does not have it.
    pub fn parameter(&self, name: &str) -> &str {
        self.parameters.get(name).map_or("", String::as_str)
    }
}

/// A deployed stack's account (from its stack id), parameters and outputs, by name
/// (DescribeStacks).
pub async fn describe_stack(
    cloudformation: &aws_sdk_cloudformation::Client,
    name: &str,
    region: &str,
) -> Result<(String, BTreeMap<String, String>, BTreeMap<String, String>), DrError> {
    let described = cloudformation
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .map_err(|err| DrError::from_sdk("cloudformation", "DescribeStacks", err))?;
    let stack = described.stacks().first().ok_or_else(|| DrError::ResourceNotFound {
        kind: "stack",
        id: name.to_string(),
        region: region.to_string(),
    })?;
    // arn:aws:cloudformation:<region>:<account>:stack/<name>/<id>
    let account = stack.stack_id().and_then(|id| id.split(':').nth(4)).unwrap_or_default().to_string();
    let parameters = stack
        .parameters()
        .iter()
        .filter_map(|p| Some((p.parameter_key()?.to_string(), p.parameter_value().unwrap_or_default().to_string())))
        .collect();
    let outputs = stack
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value().unwrap_or_default().to_string())))
        .collect();
    Ok((account, parameters, outputs))
}

/// Reads the stack `name` in `region`: its parameters, its resources and each function's role
/// (SAM names a function's role `<Function>Role`).
pub async fn read_stack(
    cloudformation: &aws_sdk_cloudformation::Client,
    iam: &aws_sdk_iam::Client,
    name: &str,
    region: &str,
) -> Result<DeployedStack, DrError> {
    let (account, parameters, outputs) = describe_stack(cloudformation, name, region).await?;
    let mut resources = BTreeMap::new();
    let mut role_names = Vec::new();
    let mut pages = cloudformation.list_stack_resources().stack_name(name).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| DrError::from_sdk("cloudformation", "ListStackResources", err))?;
        for summary in page.stack_resource_summaries() {
            let (Some(logical), Some(physical)) = (summary.logical_resource_id(), summary.physical_resource_id())
            else {
                continue;
            };
            resources.insert(logical.to_string(), physical.to_string());
            if summary.resource_type() == Some("AWS::IAM::Role")
                && let Some(function) = logical.strip_suffix("Role")
            {
                role_names.push((function.to_string(), physical.to_string()));
            }
        }
    }
    let mut roles = BTreeMap::new();
    for (function, role_name) in role_names {
        let role = iam
            .get_role()
            .role_name(&role_name)
            .send()
            .await
            .map_err(|err| DrError::from_sdk("iam", "GetRole", err))?;
        if let Some(arn) = role.role().map(|r| r.arn()) {
            roles.insert(function, arn.to_string());
        }
    }
    Ok(DeployedStack {
        name: name.to_string(),
        region: region.to_string(),
        account,
        parameters,
        outputs,
        resources,
        roles,
    })
}

/// IAM's decision on one expected call.
#[derive(Debug, Clone, Serialize)]
pub struct CallDecision {
    #[serde(flatten)]
    pub call: ExpectedCall,
    /// `allowed`, `implicitDeny` or `explicitDeny`, as the simulator says; `no-role` when the
    /// stack has no role for the function.
    pub decision: String,
    /// `false` when the organization's service control policies deny it.
    pub allowed_by_organizations: bool,
    /// `false` when the role's permissions boundary denies it.
    pub allowed_by_boundary: bool,
    /// The statements that decided, as the simulator names them.
    pub statements: Vec<String>,
    /// Context keys the policies test that the simulation was not given.
    pub missing_context: Vec<String>,
}

impl CallDecision {
    pub fn is_allowed(&self) -> bool {
        self.decision == "allowed"
    }

    /// Who denied it, in the report's words.
    pub fn denied_by(&self) -> &'static str {
        if self.is_allowed() {
            ""
        } else if !self.allowed_by_organizations {
            "the organization's SCPs"
        } else if !self.allowed_by_boundary {
            "the permissions boundary"
        } else if self.decision == "explicitDeny" {
            "an explicit deny"
        } else if self.decision == "no-role" {
            "no role in the stack"
        } else {
            "no statement of the role"
        }
    }
}

/// Each expected call decided by `iam:SimulatePrincipalPolicy` on its function's deployed role.
pub async fn simulate_calls(
    iam: &aws_sdk_iam::Client,
    stack: &DeployedStack,
    calls: Vec<ExpectedCall>,
) -> Result<Vec<CallDecision>, DrError> {
    let mut decisions = Vec::with_capacity(calls.len());
    for call in calls {
        let Some(role) = stack.roles.get(&call.function) else {
            decisions.push(CallDecision {
                call,
                decision: "no-role".into(),
                allowed_by_organizations: true,
                allowed_by_boundary: true,
                statements: Vec::new(),
                missing_context: Vec::new(),
            });
            continue;
        };
        let context = call
            .context
            .iter()
            .map(|(key, value)| {
                let kind = if MULTIVALUED_KEYS.contains(&key.as_str()) {
                    ContextKeyTypeEnum::StringList
                } else if value == "true" || value == "false" {
                    ContextKeyTypeEnum::Boolean
                } else {
                    ContextKeyTypeEnum::String
                };
                ContextEntry::builder().context_key_name(key).context_key_values(value).context_key_type(kind).build()
            })
            .collect();
        let simulated = iam
            .simulate_principal_policy()
            .policy_source_arn(role)
            .action_names(&call.action)
            .resource_arns(&call.resource)
            .set_context_entries(Some(context))
            .send()
            .await
            .map_err(|err| DrError::from_sdk("iam", "SimulatePrincipalPolicy", err))?;
        let result = simulated.evaluation_results().first();
        let decision = result.map_or("implicitDeny", |r| match r.eval_decision() {
            PolicyEvaluationDecisionType::Allowed => "allowed",
            PolicyEvaluationDecisionType::ExplicitDeny => "explicitDeny",
            _ => "implicitDeny",
        });
        decisions.push(CallDecision {
            decision: decision.to_string(),
            allowed_by_organizations: result
                .and_then(|r| r.organizations_decision_detail())
                .is_none_or(|d| d.allowed_by_organizations()),
            allowed_by_boundary: result
                .and_then(|r| r.permissions_boundary_decision_detail())
                .is_none_or(|d| d.allowed_by_permissions_boundary()),
            statements: result
                .map(|r| {
                    r.matched_statements().iter().filter_map(|s| s.source_policy_id().map(str::to_string)).collect()
                })
                .unwrap_or_default(),
            missing_context: result.map(|r| r.missing_context_values().to_vec()).unwrap_or_default(),
            call,
        });
    }
    Ok(decisions)
}

/// The whole examination.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub plan: String,
    pub stack: String,
    pub account: String,
    pub calls: Vec<CallDecision>,
    pub readiness: Readiness,
}

impl DoctorReport {
    pub fn denied(&self) -> impl Iterator<Item = &CallDecision> {
        self.calls.iter().filter(|c| !c.is_allowed())
    }

    /// Every call allowed and every readiness row ready.
    pub fn is_clean(&self) -> bool {
        self.denied().next().is_none() && self.readiness.is_ready()
    }
}

/// Examines the stack `stack` deployed for `plan`: IAM's decisions on every call its functions
/// make, and the full readiness check.
pub async fn examine(
    clients: &AwsClients,
    cloudformation: &aws_sdk_cloudformation::Client,
    iam: &aws_sdk_iam::Client,
    plan: &Plan,
    stack: &str,
) -> Result<DoctorReport, DrError> {
    let deployed = read_stack(cloudformation, iam, stack, &plan.dr_region).await?;
    let found = calls::Found::look_up(clients, plan).await;
    let expected = expected_calls(plan, &deployed, &found);
    let (decisions, readiness) =
        tokio::join!(simulate_calls(iam, &deployed, expected), check_plan(clients, plan, Scope::Full));
    Ok(DoctorReport {
        plan: plan.name.clone(),
        stack: deployed.name.clone(),
        account: deployed.account.clone(),
        calls: decisions?,
        readiness,
    })
}
