//! Lookups every layer above shares: "describe this, or tell me it is not there".
//!
//! Each answers `Ok(None)` (or an empty list) when AWS says the resource does not exist, so that
//! callers decide what a missing resource means (a readiness finding, a named error, a step to
//! skip); every other failure is the call's classified [`DrError`].

use aws_sdk_ec2::types::{Filter, InstanceStateName};
use aws_sdk_route53::types::{ResourceRecordSet, RrType};

use crate::error::DrError;
use crate::plan::{Plan, fqdn};

/// RDS states an instance does not leave by itself: waiting is pointless.
pub const RDS_TERMINAL_STATES: &[&str] = &[
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-credentials",
    "storage-full",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-error",
];

/// Whether an RDS status is one the instance leaves by itself (backing-up, modifying, ...).
pub fn is_transient_rds_status(status: &str) -> bool {
    status != "available" && !RDS_TERMINAL_STATES.contains(&status) && status != "deleting" && status != "stopped"
}

/// The instance, or `None` when RDS says it does not exist.
/// The RDS instance `id` in `region`, which must exist (`ResourceNotFound` otherwise).
pub async fn require_db_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
    region: &str,
) -> Result<aws_sdk_rds::types::DbInstance, DrError> {
    describe_db_instance(rds, id).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "RDS instance",
        id: id.to_string(),
        region: region.to_string(),
    })
}

pub async fn describe_db_instance(
    rds: &aws_sdk_rds::Client,
    id: &str,
) -> Result<Option<aws_sdk_rds::types::DbInstance>, DrError> {
    match rds.describe_db_instances().db_instance_identifier(id).send().await {
        Ok(out) => Ok(out.db_instances().first().cloned()),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_db_instance_not_found_fault()) => Ok(None),
        Err(err) => Err(DrError::from_sdk("rds", "DescribeDBInstances", err)),
    }
}

/// Whether `source` (a replica's ReadReplicaSourceDBInstanceIdentifier) names the database's
/// primary in the plan's primary region. Cross-region replicas name their source by ARN:
/// `arn:aws:rds:REGION:ACCOUNT:db:ID`.
pub fn is_plan_primary(plan: &Plan, db: &crate::plan::Database, source: &str) -> bool {
    let parts: Vec<&str> = source.split(':').collect();
    match parts.as_slice() {
        ["arn", _partition, "rds", region, _account, "db", id] => {
            *region == plan.primary_region && *id == db.primary_instance
        }
        _ => false,
    }
}

/// A standby EC2 instance as EC2 describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandbyInstance {
    pub id: String,
    pub state: InstanceStateName,
    /// Why it is in its state, when EC2 says (`Server.InsufficientInstanceCapacity: ...`,
    /// `Client.InternalError: ...` for an EBS key the caller may not use).
    pub reason: Option<String>,
    /// Its instance type (the readiness check counts the vCPUs a failover starts).
    pub instance_type: Option<String>,
    /// Its tags (key, value).
    pub tags: Vec<(String, String)>,
}

impl StandbyInstance {
    /// Terminated or being terminated: it will never start again.
    pub fn is_gone(&self) -> bool {
        matches!(self.state, InstanceStateName::ShuttingDown | InstanceStateName::Terminated)
    }

    /// The value of its tag `key`.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// Whether the terminated instances among `found` have been replaced: the plan selects by tag and
/// as many others carry it as it expects (EC2 lists terminated instances for about an hour). A
/// replaced one is not counted; one that leaves the plan short is named.
pub fn gone_ones_replaced(selector: &crate::plan::InstanceSelector, found: &[StandbyInstance]) -> bool {
    let usable = found.iter().filter(|instance| !instance.is_gone()).count();
    selector.ids.is_none() && usable >= selector.expected()
}

/// Every instance the plan's standby groups name, terminated ones included (a plan check must name
/// them), sorted by id.
pub async fn describe_standby_instances(
    ec2: &aws_sdk_ec2::Client,
    plan: &Plan,
) -> Result<Vec<StandbyInstance>, DrError> {
    let mut found = Vec::new();
    for selector in &plan.standby_instances {
        found.extend(describe_standby_group(ec2, selector).await?);
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    found.dedup_by(|a, b| a.id == b.id);
    Ok(found)
}

/// Every instance one standby group's selector names, terminated ones included, sorted by id.
pub async fn describe_standby_group(
    ec2: &aws_sdk_ec2::Client,
    selector: &crate::plan::InstanceSelector,
) -> Result<Vec<StandbyInstance>, DrError> {
    if !selector.selects_any() {
        // A failback's plan: Paris keeps no standby instances. Without a filter EC2 would list
        // every instance of the region.
        return Ok(Vec::new());
    }
    let mut request = ec2.describe_instances();
    if let Some(ids) = &selector.ids {
        // By filter rather than InstanceIds, so that a missing id is reported, not an error.
        request = request.filters(Filter::builder().name("instance-id").set_values(Some(ids.clone())).build());
    }
    if let Some(tag) = &selector.tag {
        request = request.filters(Filter::builder().name(format!("tag:{}", tag.key)).values(&tag.value).build());
    }
    let mut found = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("ec2", "DescribeInstances", e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            if let (Some(id), Some(state)) = (instance.instance_id(), instance.state().and_then(|s| s.name())) {
                let reason =
                    instance.state_reason().and_then(|r| r.message()).filter(|m| !m.is_empty()).map(str::to_string);
                let instance_type = instance.instance_type().map(|t| t.as_str().to_string());
                let tags = instance
                    .tags()
                    .iter()
                    .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                    .collect();
                found.push(StandbyInstance { id: id.to_string(), state: state.clone(), reason, instance_type, tags });
            }
        }
    }
    found.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(found)
}

/// The Auto Scaling group, or `None` when it does not exist.
pub async fn describe_auto_scaling_group(
    autoscaling: &aws_sdk_autoscaling::Client,
    name: &str,
) -> Result<Option<aws_sdk_autoscaling::types::AutoScalingGroup>, DrError> {
    let out = autoscaling
        .describe_auto_scaling_groups()
        .auto_scaling_group_names(name)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "DescribeAutoScalingGroups", e))?;
    Ok(out.auto_scaling_groups().first().cloned())
}

/// An RDS resource's tags (key -> value), by its ARN.
pub async fn db_instance_tags(
    rds: &aws_sdk_rds::Client,
    arn: &str,
) -> Result<std::collections::BTreeMap<String, String>, DrError> {
    let tags = rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "ListTagsForResource", e))?;
    Ok(tags.tag_list().iter().filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string()))).collect())
}

/// The id of the public hosted zone with this name, if any.
pub async fn find_hosted_zone(route53: &aws_sdk_route53::Client, zone_name: &str) -> Result<Option<String>, DrError> {
    let zone_name = fqdn(zone_name);
    let out = route53
        .list_hosted_zones_by_name()
        .dns_name(&zone_name)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ListHostedZonesByName", e))?;
    let zone = out
        .hosted_zones()
        .iter()
        .find(|zone| fqdn(zone.name()) == zone_name && !zone.config().is_some_and(|config| config.private_zone()));
    Ok(zone.map(|zone| zone.id().trim_start_matches("/hostedzone/").to_string()))
}

/// The id of the health check whose `Name` tag is `name`, if any.
pub async fn find_health_check(route53: &aws_sdk_route53::Client, name: &str) -> Result<Option<String>, DrError> {
    let mut ids = Vec::new();
    let mut pages = route53.list_health_checks().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("route53", "ListHealthChecks", e))?;
        ids.extend(page.health_checks().iter().map(|hc| hc.id().to_string()));
    }
    // ListTagsForResources takes at most 10 ids per call.
    for batch in ids.chunks(10) {
        let tags = route53
            .list_tags_for_resources()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .set_resource_ids(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("route53", "ListTagsForResources", e))?;
        for set in tags.resource_tag_sets() {
            let named = set.tags().iter().any(|tag| tag.key() == Some("Name") && tag.value() == Some(name));
            if named && let Some(id) = set.resource_id() {
                return Ok(Some(id.to_string()));
            }
        }
    }
    Ok(None)
}

/// The failover record sets of one of the plan's record names and types.
pub async fn failover_records(
    route53: &aws_sdk_route53::Client,
    zone_id: &str,
    dns_record: &crate::plan::DnsRecord,
) -> Result<Vec<ResourceRecordSet>, DrError> {
    let record = fqdn(&dns_record.record);
    let record_type = RrType::from(dns_record.record_type.as_str());
    let out = route53
        .list_resource_record_sets()
        .hosted_zone_id(zone_id)
        .start_record_name(&record)
        .start_record_type(record_type.clone())
        .max_items(10)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ListResourceRecordSets", e))?;
    Ok(out
        .resource_record_sets()
        .iter()
        .filter(|set| fqdn(set.name()) == record && *set.r#type() == record_type && set.failover().is_some())
        .cloned()
        .collect())
}

/// Whether a bucket exists (HeadBucket in the bucket's own region).
pub async fn bucket_exists(s3: &aws_sdk_s3::Client, bucket: &str) -> Result<bool, DrError> {
    match s3.head_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(true),
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(false),
        Err(err) => Err(DrError::from_sdk("s3", "HeadBucket", err)),
    }
}

/// The metric alarm with this name, or `None`.
pub async fn describe_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    name: &str,
) -> Result<Option<aws_sdk_cloudwatch::types::MetricAlarm>, DrError> {
    let out = cloudwatch
        .describe_alarms()
        .alarm_names(name)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "DescribeAlarms", e))?;
    Ok(out.metric_alarms().iter().find(|alarm| alarm.alarm_name() == Some(name)).cloned())
}

/// How many services one DescribeServices call may name (ECS API Reference, DescribeServices:
/// "You may specify up to 10 services to describe").
const DESCRIBE_SERVICES_BATCH: usize = 10;

/// A plan's ECS service as ECS describes it, or why it is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EcsServiceFound {
    /// The cluster does not exist (ClusterNotFoundException).
    ClusterMissing,
    /// The cluster has no such service (ECS's failure `MISSING`), or it is being deleted
    /// (`DRAINING`, `INACTIVE`): the reason, as ECS gives it.
    ServiceMissing(String),
    Found(EcsServiceStatus),
}

/// What the compute branch and readiness read of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EcsServiceStatus {
    /// The service's ARN, when ECS gives it (a preparation marks the service by it).
    pub arn: Option<String>,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    /// How many deployments the service has: more than one while a deployment replaces tasks.
    pub deployments: usize,
    /// The primary deployment's `rolloutState` (IN_PROGRESS, COMPLETED, FAILED), when ECS gives it.
    pub rollout: Option<String>,
}

impl EcsServiceStatus {
    /// Steady as ECS's own waiter (`services-stable`) means it: one deployment, not rolling out
    /// and not failed.
    pub fn is_steady(&self) -> bool {
        self.deployments == 1 && self.rollout.as_deref().is_none_or(|rollout| rollout == "COMPLETED")
    }

    /// "desired 12, running 3, pending 9".
    pub fn text(&self) -> String {
        let mut text = format!("desired {}, running {}, pending {}", self.desired, self.running, self.pending);
        if self.deployments > 1 {
            text.push_str(&format!(", {} deployments", self.deployments));
        }
        if let Some(rollout) = self.rollout.as_deref().filter(|rollout| *rollout != "COMPLETED") {
            text.push_str(&format!(", rollout {rollout}"));
        }
        text
    }
}

/// Each of `services` (in their order) as ECS describes it in the client's region: one call per
/// cluster and ten services. A missing cluster or service is an answer, not an error.
pub async fn describe_ecs_services(
    ecs: &aws_sdk_ecs::Client,
    services: &[crate::plan::EcsService],
) -> Result<Vec<EcsServiceFound>, DrError> {
    let mut found = vec![EcsServiceFound::ServiceMissing("not described".into()); services.len()];
    let mut clusters: Vec<&str> = services.iter().map(|service| service.cluster.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    for cluster in clusters {
        let indexes: Vec<usize> = (0..services.len()).filter(|&i| services[i].cluster == cluster).collect();
        for batch in indexes.chunks(DESCRIBE_SERVICES_BATCH) {
            let names = batch.iter().map(|&i| services[i].service.clone()).collect();
            let described = match ecs.describe_services().cluster(cluster).set_services(Some(names)).send().await {
                Ok(described) => described,
                Err(err) if err.as_service_error().is_some_and(|e| e.is_cluster_not_found_exception()) => {
                    for &i in batch {
                        found[i] = EcsServiceFound::ClusterMissing;
                    }
                    continue;
                }
                Err(err) => return Err(DrError::from_sdk("ecs", "DescribeServices", err)),
            };
            for &i in batch {
                let name = &services[i].service;
                let arn_names = |arn: &str| arn.rsplit('/').next() == Some(name.as_str());
                found[i] = match described.services().iter().find(|s| s.service_name() == Some(name.as_str())) {
                    Some(service) if service.status() != Some("ACTIVE") => {
                        EcsServiceFound::ServiceMissing(format!("status {}", service.status().unwrap_or("unknown")))
                    }
                    Some(service) => EcsServiceFound::Found(EcsServiceStatus {
                        arn: service.service_arn().map(str::to_string),
                        desired: service.desired_count(),
                        running: service.running_count(),
                        pending: service.pending_count(),
                        deployments: service.deployments().len(),
                        rollout: service
                            .deployments()
                            .iter()
                            .find(|d| d.status() == Some("PRIMARY"))
                            .and_then(|d| d.rollout_state())
                            .map(|state| state.as_str().to_string()),
                    }),
                    None => {
                        let reason = described
                            .failures()
                            .iter()
                            .find(|f| f.arn().is_some_and(arn_names))
                            .and_then(|f| f.reason())
                            .unwrap_or("MISSING");
                        EcsServiceFound::ServiceMissing(reason.to_string())
                    }
                };
            }
        }
    }
    Ok(found)
}
