//! What the DR region needs to serve beyond the plan's own resources: the group's launch template
//! and its AMI, the load balancer's certificates and target group, the account's vCPU quota, the
//! keys the DR side decrypts with, the database secret, and the customer's own probes.
//!
//! Only `plan check`, the scheduled check and `drctl doctor` read these ([`super::Scope::Full`]):
//! a certificate expiring next month is a reason to fix it this week, never to refuse a failover.

use aws_sdk_autoscaling::types::AutoScalingGroup;
use aws_sdk_kms::types::KeyState;
use serde::Deserialize;

use super::{Check, CheckRow, Finding, at};
use crate::aws::RegionClients;
use crate::aws::lookup::{describe_auto_scaling_group, describe_db_instance, describe_standby_instances};
use crate::error::{DrError, sdk_error_code};
use crate::plan::{AutoScaling, CustomAction, Plan, ReadinessProbe, Serving, lambda_function_name};
use crate::time;

/// The quota of "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", in vCPUs.
const STANDARD_VCPU_QUOTA: (&str, &str) = ("ec2", "L-1216C47A");

/// Every dependency row of the plan's DR region; `primary` runs probes placed in Paris.
pub(super) async fn check_dependencies(primary: &RegionClients, dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    // A missing group is the group's own row (AsgMissing).
    let mut groups = Vec::with_capacity(plan.auto_scaling.len());
    for asg in &plan.auto_scaling {
        if let Some(found) = describe_auto_scaling_group(&dr.autoscaling, &asg.group).await.ok().flatten() {
            groups.push((asg, found));
        }
    }
    // The load balancer (`[serving]`) is in front of the first group.
    let first = plan.auto_scaling.first().and_then(|asg| groups.iter().find(|(g, _)| g.group == asg.group));
    let (launch, serving, keys, secret, probes, actions) = tokio::join!(
        check_launch_templates_and_quota(dr, plan, &groups),
        check_serving(dr, plan, first.map(|(_, found)| found)),
        check_kms_keys(dr, plan),
        check_database_secrets(dr, plan),
        check_probes(primary, dr, plan),
        check_custom_actions(primary, dr, plan),
    );
    let mut rows = launch;
    rows.extend(serving);
    rows.extend(keys);
    rows.extend(secret);
    rows.extend(probes);
    rows.extend(actions);
    rows
}

/// The launch template each group launches from and its AMI in the DR region, and whether the
/// account's vCPU quota there holds the failover capacity of them all.
async fn check_launch_templates_and_quota(
    dr: &RegionClients,
    plan: &Plan,
    groups: &[(&AutoScaling, AutoScalingGroup)],
) -> Vec<CheckRow> {
    if groups.is_empty() {
        return Vec::new();
    }
    let mut rows = Vec::with_capacity(groups.len() + 1);
    let mut sized = Vec::with_capacity(groups.len());
    for (asg, found) in groups {
        let (row, instance_type) = check_launch_template(dr, found).await;
        rows.push(row);
        sized.push((instance_type, asg.failover.desired));
    }
    rows.push(check_vcpu_quota(dr, plan, &sized).await);
    rows
}

/// The launch template a group launches from and its AMI in the DR region: the row, and the
/// template's instance type.
async fn check_launch_template(dr: &RegionClients, group: &AutoScalingGroup) -> (CheckRow, Option<String>) {
    const CHECK: Check = Check::LaunchTemplate;
    let spec = group.launch_template().cloned().or_else(|| {
        group
            .mixed_instances_policy()
            .and_then(|policy| policy.launch_template())
            .and_then(|template| template.launch_template_specification())
            .cloned()
    });
    let Some(spec) = spec else {
        let resource = at(group.auto_scaling_group_name().unwrap_or("?"), &dr.region);
        return (
            CheckRow::ready(
                CHECK,
                resource,
                "the group uses a launch configuration, not a launch template: its AMI is not checked",
            ),
            None,
        );
    };
    let named = spec.launch_template_name().or(spec.launch_template_id()).unwrap_or("?").to_string();
    let resource = at(&named, &dr.region);
    let mut request = dr
        .ec2
        .describe_launch_template_versions()
        .versions(spec.version().unwrap_or("$Default"))
        .set_launch_template_id(spec.launch_template_id().map(str::to_string));
    if spec.launch_template_id().is_none() {
        request = request.set_launch_template_name(spec.launch_template_name().map(str::to_string));
    }
    let version = match request.send().await {
        Ok(out) => out.launch_template_versions().first().cloned(),
        Err(err) if sdk_error_code(&err).is_some_and(|code| code.starts_with("InvalidLaunchTemplate")) => None,
        Err(err) => {
            return (
                CheckRow::failed(CHECK, resource, &DrError::from_sdk("ec2", "DescribeLaunchTemplateVersions", err)),
                None,
            );
        }
    };
    let Some(data) = version.as_ref().and_then(|v| v.launch_template_data()) else {
        return (
            CheckRow::not_ready(
                CHECK,
                resource,
                Finding::LaunchTemplateMissing,
                format!("the group launches from {named}, which does not exist in {}", dr.region),
            ),
            None,
        );
    };
    let instance_type = data.instance_type().map(|t| t.as_str().to_string());
    let template_row = match data.image_id() {
        None => CheckRow::not_ready(CHECK, resource, Finding::AmiMissing, "the launch template names no AMI"),
        Some(image) if image.starts_with("resolve:ssm:") => {
            CheckRow::ready(CHECK, resource, format!("AMI from {image}: resolved by EC2 at launch"))
        }
        Some(image) => match dr.ec2.describe_images().image_ids(image).send().await {
            Ok(out) if out.images().iter().any(|i| i.state().is_some_and(|s| s.as_str() == "available")) => {
                CheckRow::ready(CHECK, resource, format!("AMI {image} available in {}", dr.region))
            }
            Ok(_) => CheckRow::not_ready(
                CHECK,
                resource,
                Finding::AmiMissing,
                format!("AMI {image} is not available in {}", dr.region),
            ),
            Err(err) if sdk_error_code(&err).is_some_and(|code| code.starts_with("InvalidAMIID")) => {
                CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::AmiMissing,
                    format!("AMI {image} does not exist in {}: AMIs are regional, copy it there", dr.region),
                )
            }
            Err(err) => CheckRow::failed(CHECK, resource, &DrError::from_sdk("ec2", "DescribeImages", err)),
        },
    };
    (template_row, instance_type)
}

/// Whether the failover's vCPUs (the standby instances and each group at its failover size, by its
/// launch template's type) fit in what the account's quota leaves free in the region. A regional
/// rush makes this binding: every customer of the failed region launches in the same one.
async fn check_vcpu_quota(dr: &RegionClients, plan: &Plan, groups: &[(Option<String>, u16)]) -> CheckRow {
    const CHECK: Check = Check::VcpuQuota;
    let (service, code) = STANDARD_VCPU_QUOTA;
    let resource = at(&format!("{service}/{code}"), &dr.region);
    let measured = async {
        let standby = describe_standby_instances(&dr.ec2, plan).await?;
        let running = running_instance_types(dr).await?;
        let mut types: Vec<&str> = standby.iter().filter_map(|i| i.instance_type.as_deref()).collect();
        types.extend(groups.iter().filter_map(|(group_type, _)| group_type.as_deref()));
        types.extend(running.iter().map(String::as_str));
        types.sort_unstable();
        types.dedup();
        let vcpus = vcpus_of(dr, &types).await?;
        let of = |t: Option<&str>| t.and_then(|t| vcpus.iter().find(|(name, _)| name == t)).map_or(0, |(_, n)| *n);
        let standby_vcpus: i64 = standby.iter().filter(|i| !i.is_gone()).map(|i| of(i.instance_type.as_deref())).sum();
        let group_vcpus: i64 =
            groups.iter().map(|(group_type, desired)| of(group_type.as_deref()) * i64::from(*desired)).sum();
        let in_use: i64 = running.iter().map(|t| of(Some(t))).sum();
        let quota = dr
            .quotas
            .get_service_quota()
            .service_code(service)
            .quota_code(code)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("servicequotas", "GetServiceQuota", e))?
            .quota()
            .and_then(|q| q.value())
            .unwrap_or(0.0);
        Ok::<_, DrError>((standby_vcpus + group_vcpus, in_use, quota))
    };
    match measured.await {
        Err(err) => CheckRow::failed(CHECK, resource, &err),
        Ok((needed, in_use, quota)) => {
            // Quotas are whole vCPUs; the API gives a float.
            let free = quota as i64 - in_use;
            let detail =
                format!("the failover starts {needed} vCPUs; quota {quota:.0}, {in_use} running now, {free} free");
            if needed > free {
                CheckRow::not_ready(CHECK, resource, Finding::VcpuQuotaTooLow, format!("{detail}: ask for an increase"))
            } else {
                CheckRow::ready(CHECK, resource, detail)
            }
        }
    }
}

async fn vcpus_of(dr: &RegionClients, types: &[&str]) -> Result<Vec<(String, i64)>, DrError> {
    if types.is_empty() {
        return Ok(Vec::new());
    }
    let described = dr
        .ec2
        .describe_instance_types()
        .set_instance_types(Some(types.iter().map(|t| aws_sdk_ec2::types::InstanceType::from(*t)).collect()))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeInstanceTypes", e))?;
    Ok(described
        .instance_types()
        .iter()
        .filter_map(|t| {
            let name = t.instance_type()?.as_str().to_string();
            Some((name, i64::from(t.v_cpu_info()?.default_v_cpus()?)))
        })
        .collect())
}

/// The instance type of each instance running in the region now (every family: the standard ones
/// count against the quota, the others are few in the estates this serves).
async fn running_instance_types(dr: &RegionClients) -> Result<Vec<String>, DrError> {
    let running = aws_sdk_ec2::types::Filter::builder().name("instance-state-name").values("running").build();
    let mut pages = dr.ec2.describe_instances().filters(running).into_paginator().send();
    let mut types = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("ec2", "DescribeInstances", e))?;
        types.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter_map(|i| i.instance_type())
                .map(|t| t.as_str().to_string()),
        );
    }
    Ok(types)
}

/// The DR load balancer's listener certificates and the target group the group serves through.
async fn check_serving(dr: &RegionClients, plan: &Plan, group: Option<&AutoScalingGroup>) -> Vec<CheckRow> {
    let Some(serving) = &plan.serving else { return Vec::new() };
    let mut rows = Vec::new();
    let balancer = match find_load_balancer(dr, serving).await {
        Err(err) => {
            rows.push(CheckRow::failed(Check::LoadBalancer, at(&serving.load_balancer, &dr.region), &err));
            None
        }
        Ok(None) => {
            rows.push(CheckRow::not_ready(
                Check::LoadBalancer,
                at(&serving.load_balancer, &dr.region),
                Finding::LoadBalancerMissing,
                "no such load balancer",
            ));
            None
        }
        Ok(Some(arn)) => {
            rows.extend(check_certificates(dr, plan, serving, &arn).await);
            Some(arn)
        }
    };
    rows.push(check_target_group(dr, serving, balancer.as_deref(), group).await);
    rows
}

async fn find_load_balancer(dr: &RegionClients, serving: &Serving) -> Result<Option<String>, DrError> {
    let request = dr.elbv2.describe_load_balancers();
    let request = if serving.load_balancer.starts_with("arn:") {
        request.load_balancer_arns(&serving.load_balancer)
    } else {
        request.names(&serving.load_balancer)
    };
    match request.send().await {
        Ok(out) => Ok(out.load_balancers().first().and_then(|lb| lb.load_balancer_arn()).map(str::to_string)),
        Err(err) if sdk_error_code(&err) == Some("LoadBalancerNotFound") => Ok(None),
        Err(err) => Err(DrError::from_sdk("elasticloadbalancing", "DescribeLoadBalancers", err)),
    }
}

/// Each listener certificate (ACM) must be issued and stay valid for the RTO plus the plan's
/// margin: a failover at the end of that window still serves HTTPS.
async fn check_certificates(dr: &RegionClients, plan: &Plan, serving: &Serving, balancer: &str) -> Vec<CheckRow> {
    const CHECK: Check = Check::Certificate;
    let listeners = match dr.elbv2.describe_listeners().load_balancer_arn(balancer).send().await {
        Ok(out) => out.listeners().to_vec(),
        Err(err) => {
            let err = DrError::from_sdk("elasticloadbalancing", "DescribeListeners", err);
            return vec![CheckRow::failed(CHECK, at(&serving.load_balancer, &dr.region), &err)];
        }
    };
    let mut certificates: Vec<String> = listeners
        .iter()
        .flat_map(|l| l.certificates())
        .filter_map(|c| c.certificate_arn())
        .map(str::to_string)
        .collect();
    certificates.sort();
    certificates.dedup();
    let margin = std::time::Duration::from_secs(u64::from(serving.certificate_margin_days) * 86_400);
    let needed_until = time::after(time::now(), plan.targets.rto() + margin);
    let mut rows = Vec::new();
    for arn in certificates {
        let resource = at(&arn, &dr.region);
        if !arn.contains(":acm:") {
            rows.push(CheckRow::ready(CHECK, resource, "not an ACM certificate: its expiry is not checked"));
            continue;
        }
        let described = match dr.acm.describe_certificate().certificate_arn(&arn).send().await {
            Ok(out) => out.certificate().cloned(),
            Err(err) if sdk_error_code(&err) == Some("ResourceNotFoundException") => None,
            Err(err) => {
                rows.push(CheckRow::failed(CHECK, resource, &DrError::from_sdk("acm", "DescribeCertificate", err)));
                continue;
            }
        };
        let Some(certificate) = described else {
            rows.push(CheckRow::not_ready(CHECK, resource, Finding::CertificateNotIssued, "no such certificate"));
            continue;
        };
        let status = certificate.status().map_or("unknown", |s| s.as_str());
        let not_after = certificate.not_after().and_then(time::from_smithy);
        match not_after {
            _ if status != "ISSUED" => rows.push(CheckRow::not_ready(
                CHECK,
                resource,
                Finding::CertificateNotIssued,
                format!("status {status}"),
            )),
            Some(expiry) if expiry < needed_until => rows.push(CheckRow::not_ready(
                CHECK,
                resource,
                Finding::CertificateExpiring,
                format!(
                    "expires {}: before the RTO plus {} days ({})",
                    time::rfc3339(expiry),
                    serving.certificate_margin_days,
                    time::rfc3339(needed_until)
                ),
            )),
            Some(expiry) => {
                rows.push(CheckRow::ready(CHECK, resource, format!("issued, expires {}", time::rfc3339(expiry))))
            }
            None => rows.push(CheckRow::ready(CHECK, resource, "issued")),
        }
    }
    rows
}

/// The target group exists, sits behind the load balancer, and the group is attached to it (an
/// Auto Scaling group registers its instances only in the target groups it is attached to).
async fn check_target_group(
    dr: &RegionClients,
    serving: &Serving,
    balancer: Option<&str>,
    group: Option<&AutoScalingGroup>,
) -> CheckRow {
    const CHECK: Check = Check::TargetGroup;
    let resource = at(&serving.target_group, &dr.region);
    let found = match find_target_group(dr, &serving.target_group).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(found) => found,
    };
    let Some((arn, balancers)) = found else {
        return CheckRow::not_ready(CHECK, resource, Finding::TargetGroupMissing, "no such target group");
    };
    if let Some(balancer) = balancer
        && !balancers.iter().any(|b| b.as_str() == balancer)
    {
        return CheckRow::not_ready(
            CHECK,
            resource,
            Finding::TargetGroupDetached,
            format!("no listener of {} forwards to it", serving.load_balancer),
        );
    }
    match group {
        Some(group) if !group.target_group_arns().contains(&arn) => CheckRow::not_ready(
            CHECK,
            resource,
            Finding::TargetGroupDetached,
            format!(
                "the group {} is not attached to it: its instances would serve no one",
                group.auto_scaling_group_name().unwrap_or("?")
            ),
        ),
        _ => CheckRow::ready(CHECK, resource, format!("behind {}, the group attached", serving.load_balancer)),
    }
}

/// A target group by name or ARN: its ARN and the load balancers in front of it.
pub(crate) async fn find_target_group(
    dr: &RegionClients,
    named: &str,
) -> Result<Option<(String, Vec<String>)>, DrError> {
    let request = dr.elbv2.describe_target_groups();
    let request = if named.starts_with("arn:") { request.target_group_arns(named) } else { request.names(named) };
    match request.send().await {
        Ok(out) => Ok(out
            .target_groups()
            .first()
            .and_then(|tg| Some((tg.target_group_arn()?.to_string(), tg.load_balancer_arns().to_vec())))),
        Err(err) if sdk_error_code(&err) == Some("TargetGroupNotFound") => Ok(None),
        Err(err) => Err(DrError::from_sdk("elasticloadbalancing", "DescribeTargetGroups", err)),
    }
}

/// Each key the DR side decrypts with, enabled in the DR region: the replica's storage key, the
/// standby instances' EBS key, and those the plan names.
async fn check_kms_keys(dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    const CHECK: Check = Check::KmsKey;
    let mut keys: Vec<String> = plan.readiness.iter().flat_map(|r| r.kms_keys.iter().cloned()).collect();
    keys.extend(plan.standby_instances.iter().filter_map(|group| group.ebs_kms_key.clone()));
    for db in &plan.databases {
        if let Ok(Some(replica)) = describe_db_instance(&dr.rds, &db.replica_instance).await
            && replica.storage_encrypted() == Some(true)
        {
            keys.extend(replica.kms_key_id().map(str::to_string));
        }
    }
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for key in keys {
        let resource = at(&key, &dr.region);
        rows.push(match dr.kms.describe_key().key_id(&key).send().await {
            Ok(out) => match out.key_metadata().map(|m| m.key_state()) {
                Some(Some(KeyState::Enabled)) => CheckRow::ready(CHECK, resource, "enabled"),
                Some(state) => CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::KmsKeyDisabled,
                    format!(
                        "key state {}: nothing encrypted with it can be read",
                        state.map_or("unknown", |s| s.as_str())
                    ),
                ),
                None => CheckRow::not_ready(CHECK, resource, Finding::KmsKeyMissing, "no key metadata"),
            },
            Err(err) if sdk_error_code(&err) == Some("NotFoundException") => CheckRow::not_ready(
                CHECK,
                resource,
                Finding::KmsKeyMissing,
                format!("no such key in {}: keys are regional (a multi-Region replica key is one)", dr.region),
            ),
            Err(err) => CheckRow::failed(CHECK, resource, &DrError::from_sdk("kms", "DescribeKey", err)),
        });
    }
    rows
}

/// Each database secret, present in the DR region (a replica of Paris's, or Ireland's own): the
/// heartbeats, the barrier and the data-loss measure read it there when Paris is gone.
async fn check_database_secrets(dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    let mut secrets: Vec<&String> = plan.databases.iter().filter_map(|db| db.credentials_secret.as_ref()).collect();
    secrets.sort();
    secrets.dedup();
    futures_util::future::join_all(secrets.into_iter().map(|secret| check_database_secret(dr, secret))).await
}

async fn check_database_secret(dr: &RegionClients, secret: &str) -> CheckRow {
    const CHECK: Check = Check::DatabaseSecret;
    let resource = at(secret, &dr.region);
    match dr.secrets.describe_secret().secret_id(secret).send().await {
        Ok(out) if out.deleted_date().is_some() => {
            CheckRow::not_ready(CHECK, resource, Finding::SecretNotReplicated, "scheduled for deletion")
        }
        Ok(out) => CheckRow::ready(
            CHECK,
            resource,
            match out.primary_region() {
                Some(primary) if primary != dr.region => format!("replica of the secret in {primary}"),
                _ => "present".to_string(),
            },
        ),
        Err(err) if sdk_error_code(&err) == Some("ResourceNotFoundException") => CheckRow::not_ready(
            CHECK,
            resource,
            Finding::SecretNotReplicated,
            format!("no such secret in {}: replicate it there", dr.region),
        ),
        Err(err) => CheckRow::failed(CHECK, resource, &DrError::from_sdk("secretsmanager", "DescribeSecret", err)),
    }
}

/// A probe's answer.
#[derive(Debug, Deserialize)]
struct ProbeAnswer {
    ready: bool,
    #[serde(default)]
    detail: String,
}

/// The customer's probes, each invoked in its region; a function error or `ready: false` is a
/// finding, an invocation the role may not make is `CheckFailed` with `AccessDenied`.
async fn check_probes(primary: &RegionClients, dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    let probes = plan.readiness.iter().flat_map(|r| r.probes.iter());
    let runs = probes.map(|probe| {
        let region = if probe.region == primary.region { primary } else { dr };
        check_probe(region, plan, probe)
    });
    futures_util::future::join_all(runs).await
}

async fn check_probe(region: &RegionClients, plan: &Plan, probe: &ReadinessProbe) -> CheckRow {
    const CHECK: Check = Check::CustomProbe;
    let resource = format!("{} ({}, {})", probe.name, lambda_function_name(&probe.function), region.region);
    let payload = serde_json::json!({ "plan": plan.name, "probe": probe.name, "region": region.region });
    let invoked = region
        .lambda
        .invoke()
        .function_name(&probe.function)
        .payload(aws_smithy_types::Blob::new(payload.to_string().into_bytes()))
        .send()
        .await;
    let out = match invoked {
        Ok(out) => out,
        Err(err) => return CheckRow::failed(CHECK, resource, &DrError::from_sdk("lambda", "Invoke", err)),
    };
    let body = out.payload().map(|p| String::from_utf8_lossy(p.as_ref()).to_string()).unwrap_or_default();
    if let Some(kind) = out.function_error() {
        let message = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("errorMessage").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or(body);
        return CheckRow::not_ready(
            CHECK,
            resource,
            Finding::ProbeFailed,
            format!("function error ({kind}): {message}"),
        );
    }
    match serde_json::from_str::<ProbeAnswer>(&body) {
        Ok(answer) if answer.ready => CheckRow::ready(CHECK, resource, answer.detail),
        Ok(answer) => CheckRow::not_ready(CHECK, resource, Finding::ProbeFailed, answer.detail),
        Err(err) => CheckRow::not_ready(
            CHECK,
            resource,
            Finding::ProbeFailed,
            format!("answered {body:?}, not {{\"ready\": bool, \"detail\": string}}: {err}"),
        ),
    }
}

/// Each custom action's function, where a run invokes it: the DR region (failovers) and the
/// primary (failbacks). Read only (GetFunction): the readiness check never runs an action.
async fn check_custom_actions(primary: &RegionClients, dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    let runs = plan
        .custom_actions
        .iter()
        .flat_map(|action| [(dr, action), (primary, action)])
        .map(|(region, action)| check_custom_action(region, action));
    futures_util::future::join_all(runs).await
}

async fn check_custom_action(region: &RegionClients, action: &CustomAction) -> CheckRow {
    const CHECK: Check = Check::CustomAction;
    let resource =
        format!("{} ({}, {}, {})", action.name, lambda_function_name(&action.function), action.point, region.region);
    match region.lambda.get_function().function_name(&action.function).send().await {
        Ok(found) => {
            let state = found.configuration().and_then(|c| c.state()).map_or("unknown", |s| s.as_str()).to_string();
            CheckRow::ready(CHECK, resource, format!("deployed ({state})"))
        }
        Err(err) if sdk_error_code(&err) == Some("ResourceNotFoundException") => CheckRow::not_ready(
            CHECK,
            resource,
            Finding::CustomActionMissing,
            format!(
                "no function {} in {}: a run moving there would stop at {}",
                action.function, region.region, action.point
            ),
        ),
        Err(err) => CheckRow::failed(CHECK, resource, &DrError::from_sdk("lambda", "GetFunction", err)),
    }
}
