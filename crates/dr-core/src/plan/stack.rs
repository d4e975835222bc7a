//! One source for names: the stack parameters (`template.yaml`) that a plan determines, derived
//! from the plan and normalised as IAM and Route 53 need them, so that `sam deploy` gets them from
//! the plan (`drctl deploy params`) instead of a second hand-typed list.

use super::{DnsStrategy, Plan};
use crate::error::DrError;

/// The tag key the stack scopes StartInstances to (`aws:ResourceTag/dr-standby` in template.yaml).
pub const STANDBY_TAG_KEY: &str = "dr-standby";

/// The parameters of `template.yaml` that come from the plan, in the template's order. The
/// others are choices of the deployment (schedules, subnets, keys, the plan store's bucket) or
/// need a lookup (the hosted zone's id, the secret's full ARN).
pub fn stack_parameters(plan: &Plan) -> Result<Vec<(&'static str, String)>, DrError> {
    let tag = plan.standby_instances.tag.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: format!(
            "the stack lets the start step start only instances tagged {STANDBY_TAG_KEY}: give standby_instances a tag"
        ),
    })?;
    if tag.key != STANDBY_TAG_KEY {
        return Err(DrError::InvalidInput {
            message: format!(
                "standby_instances.tag.key is {}, but the stack lets the start step start only instances tagged {STANDBY_TAG_KEY}",
                tag.key
            ),
        });
    }
    let routing = plan.dns.routing.as_ref();
    let routing_field = |field: fn(&super::Routing) -> &String| routing.map(field).cloned().unwrap_or_default();
    let buckets: Vec<String> = plan
        .s3_replication
        .iter()
        .flat_map(|pair| [&pair.source_bucket, &pair.replica_bucket])
        .map(|bucket| format!("arn:aws:s3:::{bucket}"))
        .collect();
    let strategy = match plan.dns.strategy {
        DnsStrategy::RoutingHealthCheck => "routing-health-check",
        DnsStrategy::RecordUpsert => "record-upsert",
    };
    Ok(vec![
        ("PlanName", plan.name.clone()),
        ("PrimaryRegion", plan.primary_region.clone()),
        ("PrimaryDbInstance", plan.database.primary_instance.clone()),
        ("ReplicaDbInstance", plan.database.replica_instance.clone()),
        ("StandbyTagValue", tag.value.clone()),
        ("StandbyEbsKmsKeyArn", plan.standby_instances.ebs_kms_key.clone().unwrap_or_default()),
        ("AutoScalingGroupName", plan.auto_scaling.group.clone()),
        ("DnsStrategy", strategy.to_string()),
        // Route 53 names records in lower case without the trailing dot in its IAM conditions
        // (route53:ChangeResourceRecordSetsNormalizedRecordNames).
        ("FailoverRecordName", plan.dns.record.trim_end_matches('.').to_lowercase()),
        ("RoutingHealthCheckName", routing_field(|r| &r.health_check)),
        ("RoutingAlarmName", routing_field(|r| &r.alarm)),
        ("RoutingMetricNamespace", routing_field(|r| &r.namespace)),
        ("RoutingMetricName", routing_field(|r| &r.metric)),
        ("ReplicatedBucketArns", buckets.join(",")),
        ("ReportBucketName", plan.reports.bucket.clone()),
        ("TriggerAlarmNames", plan.trigger.as_ref().map(|t| t.alarms.join(",")).unwrap_or_default()),
        ("RestoreSubnetGroup", plan.restore_test.as_ref().map(|r| r.subnet_group.clone()).unwrap_or_default()),
        (
            "FenceAutoScalingGroupName",
            plan.fence.as_ref().and_then(|f| f.auto_scaling_group.clone()).unwrap_or_default(),
        ),
        ("FenceFunctionName", plan.fence.as_ref().and_then(|f| f.lambda.clone()).unwrap_or_default()),
    ])
}
