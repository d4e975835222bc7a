//! The emulated Paris/Ireland estate, built from a plan (feature `emulator`).
//!
//! [`seed`] converges the emulator to the plan's standby state: whatever is missing is created,
//! what exists is brought back to standby (instances stopped, ASG at standby size, records on
//! Paris), so seeding twice leaves the same estate. It refuses any endpoint but loopback: it
//! creates databases and instances and must never run against a real account.
//!
//! Where the emulator cannot produce what AWS would (RDS publishing ReplicaLag, an IAM role for
//! S3 replication), the estate models it: see the comments at each place.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, MetricDatum, StandardUnit, Statistic};
use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, RequestLaunchTemplateData, ResourceType, Tag as Ec2Tag, TagSpecification,
};
use aws_sdk_route53::types::{
    AlarmIdentifier, Change, ChangeAction, ChangeBatch, CloudWatchRegion, HealthCheckConfig, HealthCheckType,
    InsufficientDataHealthStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType, Tag as R53Tag,
    TagResourceType,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, Metrics, MetricsStatus, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};
use aws_smithy_types::DateTime;

use crate::aws::{AwsClients, RegionClients};
use crate::error::{DrError, sdk_error_code};
use crate::plan::{DnsStrategy, Plan, fqdn};
use crate::readiness::{
    describe_auto_scaling_group, describe_db_instance, describe_standby_instances, find_health_check, find_hosted_zone,
};
use crate::runbook::compute::set_capacity;
use crate::runbook::format_time;
use crate::trigger::PlanStore;
use crate::trigger::confirm::window_minutes;

/// What the seeded estate looks like beyond what the plan says.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    /// The ReplicaLag datapoint published for the replica.
    pub replica_lag_seconds: f64,
    /// How many standby instances a tag selector gets.
    pub standby_instance_count: usize,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { replica_lag_seconds: 4.0, standby_instance_count: 2 }
    }
}

/// Account id the emulator reports for every resource.
const EMULATOR_ACCOUNT: &str = "123456789012";

/// Refuses anything but an emulator on the loopback interface.
pub fn require_emulator(clients: &AwsClients) -> Result<(), DrError> {
    let endpoint = clients.endpoint_url().unwrap_or("(none: real AWS)");
    let host = endpoint.strip_prefix("http://").unwrap_or_default();
    let loopback = ["127.", "localhost:", "localhost/", "[::1]"].iter().any(|prefix| host.starts_with(prefix))
        || host == "localhost";
    if loopback { Ok(()) } else { Err(DrError::EmulatorOnly { endpoint: endpoint.to_string() }) }
}

/// Builds (or converges) the plan's standby estate in the emulator.
pub async fn seed(clients: &AwsClients, plan: &Plan, options: SeedOptions) -> Result<(), DrError> {
    require_emulator(clients)?;
    plan.validate()?;
    seed_database(clients, plan).await?;
    publish_replica_lag(&clients.dr, &plan.database.replica_instance, options.replica_lag_seconds).await?;
    seed_standby_instances(&clients.dr, plan, options.standby_instance_count).await?;
    seed_auto_scaling_group(&clients.dr, plan).await?;
    seed_dns(clients, plan).await?;
    seed_health_alarms(clients, plan).await?;
    seed_restore_test(clients, plan).await?;
    for pair in &plan.s3_replication {
        ensure_bucket(&clients.primary, &pair.source_bucket).await?;
        ensure_bucket(&clients.dr, &pair.replica_bucket).await?;
        ensure_replication(
            &clients.primary.s3,
            plan,
            &pair.source_bucket,
            &pair.replica_bucket,
            pair.replication_metrics,
            pair.replication_rule.as_deref(),
        )
        .await?;
    }
    ensure_bucket(&clients.dr, &plan.reports.bucket).await?;
    Ok(())
}

async fn seed_database(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    let db = &plan.database;
    let primary = match describe_db_instance(&clients.primary.rds, &db.primary_instance).await? {
        Some(primary) => primary,
        None => clients
            .primary
            .rds
            .create_db_instance()
            .db_instance_identifier(&db.primary_instance)
            .engine("postgres")
            .engine_version("15.7")
            .db_instance_class("db.m6i.large")
            .allocated_storage(100)
            .multi_az(true)
            .storage_encrypted(true)
            .backup_retention_period(35)
            .master_username("platform")
            .master_user_password("emulated-only-password")
            .tags(rds_tag("dr-plan", &plan.name))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBInstance", e))?
            .db_instance
            .ok_or_else(|| missing("RDS instance", &db.primary_instance, &clients.primary.region))?,
    };
    if describe_db_instance(&clients.dr.rds, &db.replica_instance).await?.is_none() {
        let source_arn = primary
            .db_instance_arn()
            .ok_or_else(|| missing("RDS instance ARN", &db.primary_instance, &clients.primary.region))?;
        clients
            .dr
            .rds
            .create_db_instance_read_replica()
            .db_instance_identifier(&db.replica_instance)
            .source_db_instance_identifier(source_arn)
            .db_instance_class("db.m6i.large")
            .tags(rds_tag("dr-plan", &plan.name))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBInstanceReadReplica", e))?;
    }
    Ok(())
}

fn rds_tag(key: &str, value: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder().key(key).value(value).build()
}

fn missing(kind: &'static str, id: &str, region: &str) -> DrError {
    DrError::ResourceNotFound { kind, id: id.to_string(), region: region.to_string() }
}

/// Publishes a ReplicaLag datapoint for `replica`, stamped now.
///
/// Models AWS: RDS publishes `AWS/RDS ReplicaLag` every minute for a replica; the emulator
/// publishes nothing, so the estate (and tests that need another lag) put the datapoint.
pub async fn publish_replica_lag(dr: &RegionClients, replica: &str, lag_seconds: f64) -> Result<(), DrError> {
    let datum = MetricDatum::builder()
        .metric_name("ReplicaLag")
        .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(replica).build())
        .timestamp(DateTime::from(SystemTime::now()))
        .value(lag_seconds)
        .unit(StandardUnit::Seconds)
        .build();
    dr.cloudwatch
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    Ok(())
}

async fn seed_standby_instances(dr: &RegionClients, plan: &Plan, count: usize) -> Result<(), DrError> {
    let existing = describe_standby_instances(&dr.ec2, plan).await?;
    match (&plan.standby_instances.tag, &plan.standby_instances.ids) {
        (Some(tag), _) if existing.len() < count => {
            let wanted = i32::try_from(count - existing.len()).unwrap_or(i32::MAX);
            let tags = TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Ec2Tag::builder().key(&tag.key).value(&tag.value).build())
                .tags(Ec2Tag::builder().key("dr-plan").value(&plan.name).build())
                .build();
            dr.ec2
                .run_instances()
                .image_id(emulator_image(&dr.ec2).await?)
                .instance_type(InstanceType::M6i2xlarge)
                .min_count(wanted)
                .max_count(wanted)
                .tag_specifications(tags)
                .send()
                .await
                .map_err(|e| DrError::from_sdk("ec2", "RunInstances", e))?;
        }
        (None, Some(ids)) => {
            // Instance ids are chosen by EC2: an id selector can be checked, not created.
            if let Some(absent) = ids.iter().find(|id| !existing.iter().any(|(seen, _)| seen == *id)) {
                return Err(missing("EC2 instance", absent, &dr.region));
            }
        }
        _ => {}
    }
    let running: Vec<String> = describe_standby_instances(&dr.ec2, plan)
        .await?
        .into_iter()
        .filter(|(_, state)| matches!(state, InstanceStateName::Running | InstanceStateName::Pending))
        .map(|(id, _)| id)
        .collect();
    if !running.is_empty() {
        dr.ec2
            .stop_instances()
            .set_instance_ids(Some(running))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "StopInstances", e))?;
    }
    Ok(())
}

/// Any machine image the emulator knows in this region.
async fn emulator_image(ec2: &aws_sdk_ec2::Client) -> Result<String, DrError> {
    let images = ec2
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("architecture").values("x86_64").build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeImages", e))?;
    images
        .images()
        .iter()
        .find_map(|image| image.image_id().map(str::to_string))
        .ok_or_else(|| missing("machine image", "any x86_64 image", "emulator"))
}

async fn seed_auto_scaling_group(dr: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    let asg = &plan.auto_scaling;
    let (min, desired, max) = (i32::from(asg.standby.min), i32::from(asg.standby.desired), i32::from(asg.standby.max));
    if describe_auto_scaling_group(&dr.autoscaling, &asg.group).await?.is_some() {
        return set_capacity(&dr.autoscaling, &asg.group, (min, desired, max)).await;
    }
    let template_name = format!("{}-template", asg.group);
    let template_exists = dr
        .ec2
        .describe_launch_templates()
        .filters(Filter::builder().name("launch-template-name").values(&template_name).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeLaunchTemplates", e))?
        .launch_templates()
        .iter()
        .any(|t| t.launch_template_name() == Some(template_name.as_str()));
    if !template_exists {
        let data = RequestLaunchTemplateData::builder()
            .image_id(emulator_image(&dr.ec2).await?)
            .instance_type(InstanceType::M6i2xlarge)
            .build();
        dr.ec2
            .create_launch_template()
            .launch_template_name(&template_name)
            .launch_template_data(data)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "CreateLaunchTemplate", e))?;
    }
    dr.autoscaling
        .create_auto_scaling_group()
        .auto_scaling_group_name(&asg.group)
        .launch_template(
            aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder()
                .launch_template_name(&template_name)
                .version("$Latest")
                .build(),
        )
        .min_size(min)
        .desired_capacity(desired)
        .max_size(max)
        .availability_zones(format!("{}a", dr.region))
        .availability_zones(format!("{}b", dr.region))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "CreateAutoScalingGroup", e))?;
    Ok(())
}

async fn seed_dns(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    let dns = &plan.dns;
    let route53 = &clients.route53;
    let zone_id = match find_hosted_zone(route53, &dns.hosted_zone).await? {
        Some(id) => id,
        None => {
            let created = route53
                .create_hosted_zone()
                .name(fqdn(&dns.hosted_zone))
                .caller_reference(format!("{}-{}", plan.name, unique_suffix()))
                .send()
                .await
                .map_err(|e| DrError::from_sdk("route53", "CreateHostedZone", e))?;
            let zone = created.hosted_zone().map(|zone| zone.id().trim_start_matches("/hostedzone/").to_string());
            zone.ok_or_else(|| missing("hosted zone", &dns.hosted_zone, "global"))?
        }
    };
    let health_check_id = match find_health_check(route53, &dns.health_check).await? {
        Some(id) => id,
        None => create_health_check(clients, plan).await?,
    };
    let record = |role: ResourceRecordSetFailover, target: &crate::plan::RecordTarget, health_check: Option<&str>| {
        ResourceRecordSet::builder()
            .name(fqdn(&dns.record))
            .r#type(RrType::from(dns.record_type.as_str()))
            .set_identifier(&target.set_identifier)
            .failover(role)
            .ttl(i64::from(dns.ttl_seconds))
            .resource_records(ResourceRecord::builder().value(&target.value).build().ok()?)
            .set_health_check_id(health_check.map(str::to_string))
            .build()
            .ok()
    };
    let primary = record(ResourceRecordSetFailover::Primary, &dns.primary, Some(&health_check_id));
    let secondary = record(ResourceRecordSetFailover::Secondary, &dns.secondary, None);
    let changes: Option<Vec<Change>> = [primary, secondary]
        .into_iter()
        .map(|set| Change::builder().action(ChangeAction::Upsert).resource_record_set(set?).build().ok())
        .collect();
    let batch = ChangeBatch::builder()
        .set_changes(changes)
        .comment("dr-orchestrator emulated estate")
        .build()
        .map_err(|e| DrError::request_build("route53", "ChangeResourceRecordSets", e))?;
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeResourceRecordSets", e))?;
    Ok(())
}

/// The PRIMARY record's health check: an HTTPS check on Paris, or for the health-check-metric
/// strategy a CLOUDWATCH_METRIC check that follows the failover alarm in the DR region.
async fn create_health_check(clients: &AwsClients, plan: &Plan) -> Result<String, DrError> {
    let dns = &plan.dns;
    let config = match (&dns.strategy, &dns.failover_metric) {
        (DnsStrategy::HealthCheckMetric, Some(metric)) => {
            clients
                .dr
                .cloudwatch
                .put_metric_alarm()
                .alarm_name(&metric.alarm)
                .namespace(&metric.namespace)
                .metric_name(&metric.metric)
                .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
                .statistic(Statistic::Maximum)
                .period(60)
                .evaluation_periods(1)
                .threshold(1.0)
                .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
                .send()
                .await
                .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricAlarm", e))?;
            HealthCheckConfig::builder()
                .r#type(HealthCheckType::CloudwatchMetric)
                .alarm_identifier(
                    AlarmIdentifier::builder()
                        .region(CloudWatchRegion::from(plan.dr_region.as_str()))
                        .name(&metric.alarm)
                        .build()
                        .map_err(|e| DrError::request_build("route53", "CreateHealthCheck", e))?,
                )
                .insufficient_data_health_status(InsufficientDataHealthStatus::LastKnownStatus)
                .build()
                .map_err(|e| DrError::request_build("route53", "CreateHealthCheck", e))?
        }
        _ => HealthCheckConfig::builder()
            .r#type(HealthCheckType::Https)
            .fully_qualified_domain_name(&dns.primary.value)
            .port(443)
            .resource_path("/health")
            .request_interval(10)
            .failure_threshold(3)
            .build()
            .map_err(|e| DrError::request_build("route53", "CreateHealthCheck", e))?,
    };
    let created = clients
        .route53
        .create_health_check()
        .caller_reference(format!("{}-{}", dns.health_check, unique_suffix()))
        .health_check_config(config)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "CreateHealthCheck", e))?;
    let id = created
        .health_check()
        .map(|hc| hc.id().to_string())
        .ok_or_else(|| missing("health check", &dns.health_check, "global"))?;
    clients
        .route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(&id)
        .add_tags(R53Tag::builder().key("Name").value(&dns.health_check).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeTagsForResource", e))?;
    Ok(id)
}

/// The trigger's alarms, in us-east-1 on the PRIMARY health check's `HealthCheckStatus`, as the
/// production account has them: unhealthy (Minimum < 1) in 3 consecutive minutes.
async fn seed_health_alarms(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    let Some(trigger) = &plan.trigger else { return Ok(()) };
    let health_check_id = find_health_check(&clients.route53, &plan.dns.health_check)
        .await?
        .ok_or_else(|| missing("health check", &plan.dns.health_check, "global"))?;
    for alarm in &trigger.alarms {
        clients
            .route53_metrics
            .put_metric_alarm()
            .alarm_name(alarm)
            .alarm_description(format!("Paris primary of {} unhealthy: starts the DR trigger", plan.name))
            .namespace("AWS/Route53")
            .metric_name("HealthCheckStatus")
            .dimensions(Dimension::builder().name("HealthCheckId").value(&health_check_id).build())
            .statistic(Statistic::Minimum)
            .period(60)
            .evaluation_periods(3)
            .threshold(1.0)
            .comparison_operator(ComparisonOperator::LessThanThreshold)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricAlarm", e))?;
    }
    Ok(())
}

/// What the restore test needs in Ireland: the plan's DB subnet group, and for the
/// `cross-region-copy` source a snapshot of the Paris primary copied to Ireland (AWS Backup or
/// a copy job does that in production). moto makes no automated snapshot of a replica, so a plan
/// with the `automated` source finds none here.
async fn seed_restore_test(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    let Some(test) = &plan.restore_test else { return Ok(()) };
    let groups = clients.dr.rds.describe_db_subnet_groups().db_subnet_group_name(&test.subnet_group).send().await;
    if groups.is_err() {
        let subnets = clients
            .dr
            .ec2
            .describe_subnets()
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ec2", "DescribeSubnets", e))?;
        let ids: Vec<String> =
            subnets.subnets().iter().filter_map(|s| s.subnet_id().map(str::to_string)).take(2).collect();
        clients
            .dr
            .rds
            .create_db_subnet_group()
            .db_subnet_group_name(&test.subnet_group)
            .db_subnet_group_description(format!("{} restore tests", plan.name))
            .set_subnet_ids(Some(ids))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBSubnetGroup", e))?;
    }
    if test.snapshot_source != crate::plan::SnapshotSource::CrossRegionCopy {
        return Ok(());
    }
    let primary = &plan.database.primary_instance;
    let copy_id = format!("{primary}-copy");
    let copies = clients.dr.rds.describe_db_snapshots().db_snapshot_identifier(&copy_id).send().await;
    if copies.is_ok_and(|c| !c.db_snapshots().is_empty()) {
        return Ok(());
    }
    let source_id = format!("{primary}-for-ireland");
    let existing = clients.primary.rds.describe_db_snapshots().db_snapshot_identifier(&source_id).send().await;
    let source = match existing.ok().and_then(|out| out.db_snapshots().first().cloned()) {
        Some(snapshot) => snapshot,
        None => clients
            .primary
            .rds
            .create_db_snapshot()
            .db_instance_identifier(primary)
            .db_snapshot_identifier(&source_id)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBSnapshot", e))?
            .db_snapshot
            .ok_or_else(|| missing("DB snapshot", &source_id, &clients.primary.region))?,
    };
    let source_arn =
        source.db_snapshot_arn().ok_or_else(|| missing("DB snapshot ARN", &source_id, &clients.primary.region))?;
    clients
        .dr
        .rds
        .copy_db_snapshot()
        .source_db_snapshot_identifier(source_arn)
        .target_db_snapshot_identifier(&copy_id)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "CopyDBSnapshot", e))?;
    Ok(())
}

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

/// Does what S3 replication would: copies each pair's RPO heartbeat from the Paris bucket to the
/// Ireland bucket (moto keeps replication rules but copies nothing). Returns how many it copied.
pub async fn replicate_heartbeats(clients: &AwsClients, plan: &Plan) -> Result<usize, DrError> {
    require_emulator(clients)?;
    let key = crate::rpo::check::heartbeat_key(&plan.name);
    let mut copied = 0;
    for pair in &plan.s3_replication {
        let object = match clients.primary.s3.get_object().bucket(&pair.source_bucket).key(&key).send().await {
            Ok(object) => object,
            Err(err) if sdk_error_code(&err) == Some("NoSuchKey") => continue,
            Err(err) => return Err(DrError::from_sdk("s3", "GetObject", err)),
        };
        let body = object.body.collect().await.map_err(|e| DrError::AwsTransient {
            service: "s3",
            operation: "GetObject",
            message: e.to_string(),
        })?;
        clients
            .dr
            .s3
            .put_object()
            .bucket(&pair.replica_bucket)
            .key(&key)
            .body(aws_sdk_s3::primitives::ByteStream::from(body.into_bytes()))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("s3", "PutObject", e))?;
        copied += 1;
    }
    Ok(copied)
}

/// How the simulated outage ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Paris stays unhealthy.
    Sustained,
    /// Paris answers again inside the confirmation window.
    Flap,
}

/// Simulates a Paris outage that began `confirmation window + 3 min` ago: publishes the
/// `HealthCheckStatus` minutes Route53 would have (0 = unhealthy; one 1 in the window for a
/// flap), moves the trigger's first alarm to ALARM, and returns the EventBridge event CloudWatch
/// sends for that move. Modelled: moto neither runs health checkers nor evaluates alarms nor
/// emits alarm events, so the estate does what they would, back-dated so that the window has
/// already elapsed.
pub async fn simulate_outage(clients: &AwsClients, plan: &Plan, outage: Outage) -> Result<serde_json::Value, DrError> {
    require_emulator(clients)?;
    let trigger = plan.trigger.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: format!("plan {} has no [trigger]: nothing to simulate", plan.name),
    })?;
    let alarm = trigger.alarms.first().cloned().unwrap_or_default();
    let health_check_id = find_health_check(&clients.route53, &plan.dns.health_check)
        .await?
        .ok_or_else(|| missing("health check", &plan.dns.health_check, "global"))?;
    let now = SystemTime::now();
    let alarm_at = now - trigger.confirmation_window() - Duration::from_secs(180);
    let minutes = window_minutes(alarm_at, trigger.confirmation_window());
    let first = minutes.first().copied().unwrap_or_default();
    // From three minutes before the alarm (what made it fire) to now.
    let datapoints: Vec<MetricDatum> = (0..)
        .map(|i| first.saturating_sub(180) + i * 60)
        .take_while(|minute| UNIX_EPOCH + Duration::from_secs(*minute) <= now)
        .map(|minute| {
            let healthy = outage == Outage::Flap && minutes.get(1) == Some(&minute);
            MetricDatum::builder()
                .metric_name("HealthCheckStatus")
                .dimensions(Dimension::builder().name("HealthCheckId").value(&health_check_id).build())
                .timestamp(DateTime::from(UNIX_EPOCH + Duration::from_secs(minute)))
                .value(if healthy { 1.0 } else { 0.0 })
                .build()
        })
        .collect();
    clients
        .route53_metrics
        .put_metric_data()
        .namespace("AWS/Route53")
        .set_metric_data(Some(datapoints))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    let reason = "Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (1.0)";
    clients
        .route53_metrics
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason(reason)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "SetAlarmState", e))?;
    Ok(alarm_state_change_event(&alarm, &health_check_id, "ALARM", "OK", alarm_at, reason))
}

/// The EventBridge event CloudWatch sends when `alarm` moves from `previous` to `value` at `at`.
pub fn alarm_state_change_event(
    alarm: &str,
    health_check_id: &str,
    value: &str,
    previous: &str,
    at: SystemTime,
    reason: &str,
) -> serde_json::Value {
    // CloudWatch writes alarm times as 2026-11-23T15:04:05.123+0000.
    let cloudwatch_time = format_time(at).trim_end_matches('Z').to_string() + "+0000";
    let region = crate::aws::ROUTE53_CONTROL_REGION;
    serde_json::json!({
        "version": "0",
        "id": format!("{:x}", at.duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()),
        "detail-type": crate::trigger::ALARM_DETAIL_TYPE,
        "source": crate::trigger::ALARM_SOURCE,
        "account": EMULATOR_ACCOUNT,
        "time": format_time(at),
        "region": region,
        "resources": [format!("arn:aws:cloudwatch:{region}:{EMULATOR_ACCOUNT}:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "state": { "value": value, "reason": reason, "timestamp": cloudwatch_time },
            "previousState": { "value": previous, "reason": "Threshold Crossed", "timestamp": cloudwatch_time },
            "configuration": {
                "description": "Paris primary unhealthy",
                "metrics": [{
                    "id": "health",
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/Route53",
                            "name": "HealthCheckStatus",
                            "dimensions": { "HealthCheckId": health_check_id }
                        },
                        "period": 60,
                        "stat": "Minimum"
                    },
                    "returnData": true
                }]
            }
        }
    })
}

/// A creation reference that never repeats (Route53 requires one per create call).
fn unique_suffix() -> u128 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

async fn ensure_bucket(region: &RegionClients, bucket: &str) -> Result<(), DrError> {
    let created = region
        .s3
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.region.as_str()))
                .build(),
        )
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(err) if sdk_error_code(&err) == Some("BucketAlreadyOwnedByYou") => {}
        Err(err) => return Err(DrError::from_sdk("s3", "CreateBucket", err)),
    }
    region
        .s3
        .put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(BucketVersioningStatus::Enabled).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("s3", "PutBucketVersioning", e))?;
    Ok(())
}

async fn ensure_replication(
    s3: &aws_sdk_s3::Client,
    plan: &Plan,
    source: &str,
    replica: &str,
    with_metrics: bool,
    rule_id: Option<&str>,
) -> Result<(), DrError> {
    let build_error = |e| DrError::request_build("s3", "PutBucketReplication", e);
    let mut destination = Destination::builder().bucket(format!("arn:aws:s3:::{replica}"));
    if with_metrics {
        destination =
            destination.metrics(Metrics::builder().status(MetricsStatus::Enabled).build().map_err(build_error)?);
    }
    let rule = ReplicationRule::builder()
        .id(rule_id.unwrap_or(&format!("{}-to-{}", plan.name, plan.dr_region)))
        .priority(1)
        .status(ReplicationRuleStatus::Enabled)
        .filter(ReplicationRuleFilter::builder().prefix("").build())
        .delete_marker_replication(
            DeleteMarkerReplication::builder().status(DeleteMarkerReplicationStatus::Disabled).build(),
        )
        .destination(destination.build().map_err(build_error)?)
        .build()
        .map_err(build_error)?;
    // The emulator does not check the role; in AWS it is the replication role of the stack.
    let config = ReplicationConfiguration::builder()
        .role(format!("arn:aws:iam::{EMULATOR_ACCOUNT}:role/{}-s3-replication", plan.name))
        .rules(rule)
        .build()
        .map_err(build_error)?;
    s3.put_bucket_replication()
        .bucket(source)
        .replication_configuration(config)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("s3", "PutBucketReplication", e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clients_at(endpoint: Option<&str>) -> AwsClients {
        let mut shared = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            shared = shared.endpoint_url(endpoint);
        }
        AwsClients::from_config(&shared.build(), "eu-west-3", "eu-west-1")
    }

    #[test]
    fn only_a_loopback_emulator_may_be_seeded() {
        for allowed in ["http://127.0.0.1:5000", "http://localhost:5000", "http://[::1]:5000"] {
            assert!(require_emulator(&clients_at(Some(allowed))).is_ok(), "{allowed}");
        }
        for refused in [None, Some("https://rds.eu-west-1.amazonaws.com"), Some("http://10.0.0.5:5000")] {
            let err = require_emulator(&clients_at(refused)).expect_err("refused");
            assert_eq!(err.name(), "EmulatorOnly");
        }
    }
}
