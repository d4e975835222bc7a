//! One source for names: the stack parameters (`template.yaml`) that a plan determines, derived
//! from the plan and normalised as IAM and Route 53 need them, so that `sam deploy` gets them from
//! the plan (`drctl deploy params`) instead of a second hand-typed list.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{DnsStrategy, Plan};
use crate::error::DrError;

/// The parameters of `template.yaml` that come from the plan, in the template's order. The
/// others are choices of the deployment (schedules, subnets, keys, the plan store's bucket) or
/// need a lookup (the hosted zone's id, the secret's full ARN).
pub fn stack_parameters(plan: &Plan) -> Result<Vec<(&'static str, String)>, DrError> {
    // The stack scopes StartInstances and StopInstances to the standby tag (one key, a value per
    // group), whatever selector the plan uses to find the instances: a group without one cannot
    // be deployed. No standby instances: no tag, and the stack grants no start or stop.
    let groups: Vec<&super::InstanceSelector> = plan.standby_instances.iter().filter(|g| g.selects_any()).collect();
    let mut tags = Vec::with_capacity(groups.len());
    for group in &groups {
        let Some(tag) = group.tag.as_ref() else {
            return Err(DrError::InvalidInput {
                message: format!(
                    "the stack lets the runbook start and stop only tagged standby instances: give the group {} a tag",
                    group.label()
                ),
            });
        };
        tags.push(tag);
    }
    let tag_key = tags.first().map(|tag| tag.key.clone()).unwrap_or_default();
    let mut tag_values: Vec<&str> = tags.iter().map(|tag| tag.value.as_str()).collect();
    tag_values.dedup();
    let ebs_keys: Vec<&str> = groups.iter().filter_map(|group| group.ebs_kms_key.as_deref()).collect();
    let routing = plan.dns.routing.as_ref();
    let routing_field = |field: fn(&super::Routing) -> &String| routing.map(field).cloned().unwrap_or_default();
    let bucket_arns = |bucket: fn(&super::BucketPair) -> &String| {
        plan.s3_replication.iter().map(|pair| format!("arn:aws:s3:::{}", bucket(pair))).collect::<Vec<_>>().join(",")
    };
    let strategy = match plan.dns.strategy {
        DnsStrategy::RoutingHealthCheck => "routing-health-check",
        DnsStrategy::RecordUpsert => "record-upsert",
    };
    Ok(vec![
        ("PlanName", plan.name.clone()),
        ("PrimaryRegion", plan.primary_region.clone()),
        ("DatabaseArns", database_arns(plan, |id| vec![format!("db:{id}")])),
        (
            "RetiredDatabaseArns",
            database_arns(plan, |id| {
                vec![format!("db:{id}"), format!("db:{id}-retired-*"), format!("snapshot:{id}-final-*")]
            }),
        ),
        ("StandbyTagKey", tag_key),
        ("StandbyTagValue", tag_values.join(",")),
        ("StandbyEbsKmsKeyArn", ebs_keys.join(",")),
        ("AutoScalingGroupArns", group_arns(&plan.dr_region, plan.auto_scaling.iter().map(|asg| &asg.group))),
        // ECS has no resource-based policy, so a role reaches only its own account's services: the
        // account is `*` here (the plan does not know it), which grants nothing beyond it.
        (
            "EcsServiceArns",
            plan.ecs_services
                .iter()
                .map(|s| format!("arn:aws:ecs:{}:*:service/{}/{}", plan.dr_region, s.cluster, s.service))
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("DnsStrategy", strategy.to_string()),
        // Route 53 names records in lower case without the trailing dot in its IAM conditions
        // (route53:ChangeResourceRecordSetsNormalizedRecordNames).
        (
            "FailoverRecordName",
            plan.dns
                .records
                .iter()
                .map(|r| r.record.trim_end_matches('.').to_lowercase())
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("RoutingHealthCheckName", routing_field(|r| &r.health_check)),
        ("RoutingAlarmName", routing_field(|r| &r.alarm)),
        ("RoutingMetricNamespace", routing_field(|r| &r.namespace)),
        ("RoutingMetricName", routing_field(|r| &r.metric)),
        ("DnsAccountRoleArn", plan.accounts.dns.as_ref().map(super::MemberAccount::role_arn).unwrap_or_default()),
        ("SourceBucketArns", bucket_arns(|pair| &pair.source_bucket)),
        ("ReplicaBucketArns", bucket_arns(|pair| &pair.replica_bucket)),
        ("ReportBucketName", plan.reports.bucket.clone()),
        ("ReportPrefix", plan.reports.prefix.clone()),
        ("TriggerAlarmNames", plan.trigger.as_ref().map(|t| t.alarms.join(",")).unwrap_or_default()),
        ("PrepareWhileConfirming", plan.trigger.as_ref().is_some_and(|t| t.prepare_while_confirming).to_string()),
        ("RestoreSubnetGroup", plan.restore_test.as_ref().map(|r| r.subnet_group.clone()).unwrap_or_default()),
        (
            "FenceAutoScalingGroupArns",
            group_arns(&plan.primary_region, plan.fence.iter().flat_map(|fence| &fence.auto_scaling_group)),
        ),
        ("FenceFunctionName", fence_hook(plan, |f| &f.lambda)),
        ("FenceBarrierFunctionName", fence_hook(plan, |f| &f.barrier_function)),
        ("DatabaseSubnetIds", plan.network.as_ref().map(|n| n.database_subnets.join(",")).unwrap_or_default()),
        (
            "DatabaseSecurityGroupIds",
            plan.network.as_ref().map(|n| n.database_security_groups.join(",")).unwrap_or_default(),
        ),
    ])
}

/// Auto Scaling groups in `region` as the ARN patterns a policy names them by (the group's id in
/// its ARN is generated, and the account is `*` as for ECS and RDS: no resource-based policy).
fn group_arns<'p>(region: &str, groups: impl Iterator<Item = &'p String>) -> String {
    groups
        .map(|group| format!("arn:aws:autoscaling:{region}:*:autoScalingGroup:*:autoScalingGroupName/{group}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Every database's instances as RDS ARNs, each primary in the primary region and each replica in
/// the DR region, with `resources` naming what of each instance a statement reaches (`db:NAME`,
/// `snapshot:NAME-final-*`). The account is `*`, as for ECS: RDS has no resource-based policy, so
/// a role reaches only its own account's instances, and the plan does not know the account.
fn database_arns(plan: &Plan, resources: impl Fn(&str) -> Vec<String>) -> String {
    plan.databases
        .iter()
        .flat_map(|db| [(&plan.primary_region, &db.primary_instance), (&plan.dr_region, &db.replica_instance)])
        .flat_map(|(region, id)| {
            resources(id).into_iter().map(move |resource| format!("arn:aws:rds:{region}:*:{resource}"))
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// A plan as Terraform reads it (`drctl plan export --json`, for `jsondecode`): the plan, its
/// version, and the parameters of both stacks it determines, computed here once
/// ([`stack_parameters`], [`detection_stack_parameters`]) so that the Terraform module
/// (`terraform/modules/dr`) derives no name itself. Terraform reads no TOML.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlanExport {
    pub plan: Plan,
    /// The version `drctl plan publish` stores the plan under ([`Plan::version`]).
    pub version: String,
    pub stack_parameters: BTreeMap<String, String>,
    /// `None` when the plan has no `[trigger]` (no detection stack to deploy).
    pub detection_stack_parameters: Option<BTreeMap<String, String>>,
}

impl PlanExport {
    pub fn of(plan: &Plan) -> Result<PlanExport, DrError> {
        let named = |parameters: Vec<(&'static str, String)>| {
            parameters.into_iter().map(|(name, value)| (name.to_string(), value)).collect::<BTreeMap<_, _>>()
        };
        Ok(PlanExport {
            plan: plan.clone(),
            version: plan.version()?,
            stack_parameters: named(stack_parameters(plan)?),
            detection_stack_parameters: plan
                .trigger
                .as_ref()
                .map(|_| detection_stack_parameters(plan))
                .transpose()?
                .map(named),
        })
    }
}

/// A fence hook by its function name, as a policy's `function:<name>` resource needs it.
fn fence_hook(plan: &Plan, hook: fn(&super::Fence) -> &Option<String>) -> String {
    plan.fence
        .as_ref()
        .and_then(|fence| hook(fence).as_deref())
        .map(super::lambda_function_name)
        .unwrap_or_default()
        .to_string()
}

/// The parameters of the detection stack (`template-us-east-1.yaml`: the health check on the
/// Paris endpoint, its alarm, the rule forwarding to the DR region) that come from the plan. Its
/// `HealthPath` and `UnhealthyMinutes` are the deployment's choices.
pub fn detection_stack_parameters(plan: &Plan) -> Result<Vec<(&'static str, String)>, DrError> {
    let trigger = plan.trigger.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: "the detection stack feeds the plan's trigger: the plan has no [trigger]".into(),
    })?;
    let [alarm] = trigger.alarms.as_slice() else {
        return Err(DrError::InvalidInput {
            message: format!(
                "the detection stack creates one alarm; the plan's trigger names {}",
                trigger.alarms.len()
            ),
        });
    };
    // The detection health check probes the primary region's application where the first
    // record's PRIMARY answers.
    let Some(first) = plan.dns.records.first() else {
        return Err(DrError::InvalidInput { message: format!("plan {} names no DNS record", plan.name) });
    };
    Ok(vec![
        ("PlanName", plan.name.clone()),
        ("DetectionHealthCheckName", trigger.detection_health_check.clone()),
        ("PrimaryEndpoint", first.primary.value.trim_end_matches('.').to_string()),
        ("AlarmName", alarm.clone()),
        ("DrRegion", plan.dr_region.clone()),
    ])
}

/// The parameters of the member stack in the plan's DNS account (`member-role.yaml`) that come
/// from the plan. `OrchestratorAccountId`, `OrchestratorRoleNamePrefix` and `OrganizationId` are
/// the deployment's; the hosted zone's id too, as for the orchestrator's stack.
pub fn dns_member_stack_parameters(plan: &Plan) -> Result<Vec<(&'static str, String)>, DrError> {
    let member = plan.accounts.dns.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: format!("plan {} keeps its DNS in the orchestrator's account: it has no [accounts.dns]", plan.name),
    })?;
    let names = ["PlanName", "DnsStrategy", "FailoverRecordName"].into_iter().chain([
        "RoutingHealthCheckName",
        "RoutingAlarmName",
        "RoutingMetricNamespace",
        "RoutingMetricName",
    ]);
    let orchestrator = stack_parameters(plan)?;
    let mut parameters: Vec<(&'static str, String)> =
        names.filter_map(|name| orchestrator.iter().find(|(held, _)| *held == name).cloned()).collect();
    parameters.push(("RoleName", member.role.clone()));
    Ok(parameters)
}

/// Refuses a plan whose parameters a deployed stack holds otherwise (`deployed`: the stack's
/// parameters as DescribeStacks gives them): `PlanStackMismatch`, naming each parameter with the
/// plan's value and the stack's. List values compare item by item (`a, b` is `a,b`); a parameter
/// the stack does not have (a stack deployed from an older template) disagrees.
pub fn check_deployed_stack(plan: &Plan, stack: &str, deployed: &BTreeMap<String, String>) -> Result<(), DrError> {
    let items = |value: &str| value.split(',').map(str::trim).map(str::to_string).collect::<Vec<_>>();
    let disagreements: Vec<String> = stack_parameters(plan)?
        .into_iter()
        .filter_map(|(name, wanted)| match deployed.get(name) {
            Some(held) if items(held) == items(&wanted) => None,
            Some(held) => Some(format!("{name} is {held:?} in the stack, {wanted:?} in the plan")),
            None => Some(format!("{name} is not a parameter of the stack (the plan says {wanted:?})")),
        })
        .collect();
    if disagreements.is_empty() {
        Ok(())
    } else {
        Err(DrError::PlanStackMismatch { plan: plan.name.clone(), stack: stack.to_string(), disagreements })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Plan {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans/paris-ireland.toml");
        Plan::load(std::path::Path::new(path)).unwrap_or_else(|err| panic!("{err}"))
    }

    fn deployed(plan: &Plan) -> BTreeMap<String, String> {
        let mut parameters: BTreeMap<String, String> =
            stack_parameters(plan).unwrap_or_default().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        // What the deployment chose: not the plan's business.
        parameters.insert("RpoCheckSchedule".into(), "rate(5 minutes)".into());
        parameters
    }

    #[test]
    fn a_stack_deployed_from_the_plan_fits_it_lists_spaced_or_not() {
        let plan = example();
        let mut held = deployed(&plan);
        assert!(check_deployed_stack(&plan, "dr", &held).is_ok());
        let spaced = held.get("SourceBucketArns").map(|v| v.replace(',', ", ")).unwrap_or_default();
        held.insert("SourceBucketArns".into(), spaced);
        assert!(check_deployed_stack(&plan, "dr", &held).is_ok());
    }

    #[test]
    fn a_stack_that_holds_other_names_is_refused_naming_each() {
        let plan = example();
        let mut held = deployed(&plan);
        held.insert("StandbyTagKey".into(), "standby".into());
        held.remove("ReportPrefix");
        let err = check_deployed_stack(&plan, "dr", &held).err();
        let Some(DrError::PlanStackMismatch { disagreements, stack, .. }) = err else {
            panic!("refused with PlanStackMismatch: {err:?}")
        };
        assert_eq!(stack, "dr");
        assert_eq!(disagreements.len(), 2, "{disagreements:?}");
        assert!(disagreements[0].contains("StandbyTagKey is \"standby\" in the stack, \"dr-standby\" in the plan"));
        assert!(disagreements[1].contains("ReportPrefix is not a parameter of the stack"));
    }

    #[test]
    fn the_dns_member_stack_takes_the_plans_names_and_its_role_and_each_is_a_parameter_of_its_template() {
        let mut plan = example();
        assert!(dns_member_stack_parameters(&plan).is_err(), "no [accounts.dns]: no member stack");
        plan.accounts.dns =
            Some(super::super::MemberAccount { account: "222233334444".into(), role: "dr-member".into() });
        let parameters = dns_member_stack_parameters(&plan).unwrap_or_default();
        let template = include_str!("../../../../member-role.yaml");
        for (name, _) in &parameters {
            assert!(template.contains(&format!("\n  {name}:\n")), "{name} is a parameter of member-role.yaml");
        }
        let value = |name: &str| parameters.iter().find(|(held, _)| *held == name).map(|(_, v)| v.as_str());
        assert_eq!(value("RoleName"), Some("dr-member"));
        assert_eq!(value("RoutingAlarmName"), Some("platform-route-to-ireland"));
        let orchestrator = deployed(&plan);
        assert_eq!(
            orchestrator.get("DnsAccountRoleArn").map(String::as_str),
            Some("arn:aws:iam::222233334444:role/dr-member")
        );
    }
}
