//! The emulator's models of AWS behaviour moto lacks that a test sets (crates/dr-emulator/moto/):
//! a target group's health (elbv2.py), and the template's
//! function roles, to stand a deployed stack's roles up for `iam:SimulatePrincipalPolicy` (iam.py).

use std::collections::BTreeMap;

use dr_core::aws::AwsClients;
use dr_core::error::DrError;
use serde::Deserialize;

use crate::control::{control_json, delete, post};

/// Every running target of `target_group` (a name or an ARN) in `region` answers `state`: the
/// application behind it failing its health checks (`unhealthy`, with `reason`, by default
/// `Target.FailedHealthChecks`), or passing them again (`healthy`).
pub async fn set_target_health(
    clients: &AwsClients,
    region: &str,
    target_group: &str,
    state: &str,
    reason: Option<&str>,
) -> Result<(), DrError> {
    let mut body = serde_json::json!({ "region": region, "target_group": target_group, "state": state });
    if let Some(reason) = reason {
        body["reason"] = reason.into();
    }
    post(clients, "/dr-local/elbv2/target-health", body).await
}

/// Every target group's targets back to ELB's model (registering, healthy, draining, unused).
pub async fn clear_target_health(clients: &AwsClients) -> Result<(), DrError> {
    delete(clients, "/dr-local/elbv2/target-health").await
}

/// Each function of the template (logical id) and its role's logical id: the roles a stand-in
/// for a deployed stack creates.
pub async fn iam_roles(clients: &AwsClients) -> Result<BTreeMap<String, String>, DrError> {
    #[derive(Deserialize)]
    struct Roles {
        roles: BTreeMap<String, String>,
    }
    let roles: Roles = control_json(clients, "/dr-local/iam/roles").await?;
    Ok(roles.roles)
}

/// An ACM certificate for `domain` in `region`, valid for `days` days (self-signed, imported:
/// DescribeCertificate's NotAfter is its own), for a DR load balancer's listener.
pub async fn issue_certificate(clients: &AwsClients, region: &str, domain: &str, days: f64) -> Result<String, DrError> {
    #[derive(Deserialize)]
    struct Issued {
        arn: String,
    }
    let body = serde_json::json!({ "region": region, "domain": domain, "days": days });
    let issued: Issued = crate::control::control_post_json(clients, "/dr-local/acm/certificate", body).await?;
    Ok(issued.arn)
}
