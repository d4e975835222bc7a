//! The emulated Paris/Ireland estate, built from a plan.
//!
//! [`seed`] converges the emulator to the plan's standby state: whatever is missing is created,
//! what exists is brought back to standby (instances stopped, ASG at standby size, records on
//! Paris), so seeding twice leaves the same estate. It refuses any endpoint but loopback: it
//! creates databases and instances and must never run against a real account.
//!
//! Where the emulator cannot produce what AWS would (RDS publishing ReplicaLag, an IAM role for
//! S3 replication), the estate models it: see the comments at each place.

mod dns;

pub use dns::{create_routing_health_check, put_routing_alarm};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use aws_sdk_ec2::types::{
    Filter, InstanceStateName, InstanceType, RequestLaunchTemplateData, ResourceType, Tag as Ec2Tag, TagSpecification,
};
use aws_sdk_s3::types::{
    BucketLocationConstraint, BucketVersioningStatus, CreateBucketConfiguration, DeleteMarkerReplication,
    DeleteMarkerReplicationStatus, Destination, Metrics, MetricsStatus, ReplicationConfiguration, ReplicationRule,
    ReplicationRuleFilter, ReplicationRuleStatus, VersioningConfiguration,
};
use dr_core::aws::lookup::{describe_auto_scaling_group, describe_db_instance, describe_standby_group};
use dr_core::aws::{AwsClients, RegionClients};
use dr_core::error::{DrError, sdk_error_code};
use dr_core::plan::Plan;
use dr_core::runbook::compute::set_capacity;
use dr_core::time;

use crate::guard::require_emulator;

/// What the seeded estate looks like beyond what the plan says.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    /// The ReplicaLag datapoint published for the replica.
    pub replica_lag_seconds: f64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { replica_lag_seconds: 4.0 }
    }
}

/// Account id the emulator reports for every resource.
pub const EMULATOR_ACCOUNT: &str = "123456789012";

/// Builds (or converges) the plan's standby estate in the emulator.
pub async fn seed(clients: &AwsClients, plan: &Plan, options: SeedOptions) -> Result<(), DrError> {
    require_emulator(clients)?;
    plan.validate()?;
    for db in &plan.databases {
        seed_database(clients, plan, db).await?;
        publish_replica_lag(&clients.dr, &db.replica_instance, options.replica_lag_seconds).await?;
    }
    seed_standby_instances(&clients.dr, plan).await?;
    seed_auto_scaling_group(&clients.dr, plan).await?;
    seed_primary_group(&clients.primary, plan).await?;
    seed_ecs_services(&clients.dr, plan).await?;
    seed_credentials(&clients.dr, plan).await?;
    seed_serving(clients, plan).await?;
    dns::seed_dns(clients, plan).await?;
    dns::seed_health_alarms(clients, plan).await?;
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
    // The stack deployed for this plan: its functions' calls are authorized against its roles.
    crate::iam::register_deployment(clients, plan, None).await?;
    if plan.accounts.dns.is_some() {
        // The member stack in the DNS account, as its StackSet deploys it.
        crate::iam::register_dns_member(clients, plan, crate::iam::LOCAL_ORGANIZATION_ID, &[]).await?;
    }
    publish_to_the_local_deployment(clients, plan).await?;
    Ok(())
}

/// The plan store of the local deployment: the local functions' `PLAN_STATE_BUCKET`
/// (scripts/lib.sh's DEMO_PLAN_STATE_BUCKET, the template's PlanStateBucket for the local stack),
/// where every run's steps load the plan version the run names.
pub const LOCAL_PLAN_STORE: &str = "platform-dr-plans-ireland";

/// Publishes `plan` (as it is now) to the local deployment's plan store, as `drctl plan publish`
/// does: the runs of it that the local functions serve load it from there.
pub async fn publish_to_the_local_deployment(
    clients: &AwsClients,
    plan: &Plan,
) -> Result<dr_core::plan::PlanRef, DrError> {
    ensure_bucket(&clients.dr, LOCAL_PLAN_STORE).await?;
    dr_core::store::PlanStore::new(clients.home.s3.clone(), LOCAL_PLAN_STORE).publish_plan(plan).await
}

async fn seed_database(clients: &AwsClients, plan: &Plan, db: &dr_core::plan::Database) -> Result<(), DrError> {
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
            .kms_key_id(database_key(&clients.primary).await?)
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
            // An encrypted cross-Region replica is encrypted with a key of its own Region, which
            // the request must name (RDS User Guide, "Creating a read replica in a different AWS
            // Region": KmsKeyId "for the destination AWS Region").
            .kms_key_id(database_key(&clients.dr).await?)
            .tags(rds_tag("dr-plan", &plan.name))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBInstanceReadReplica", e))?;
    }
    Ok(())
}

/// The estate's database key in `region` (alias `alias/dr-local-rds`), created once: the key
/// the primary and its cross-Region replica are encrypted with, each in its own Region.
async fn database_key(region: &RegionClients) -> Result<String, DrError> {
    const ALIAS: &str = "alias/dr-local-rds";
    if let Ok(found) = region.kms.describe_key().key_id(ALIAS).send().await
        && let Some(arn) = found.key_metadata().and_then(|m| m.arn())
    {
        return Ok(arn.to_string());
    }
    let created = region
        .kms
        .create_key()
        .description("the local estate's database key")
        .send()
        .await
        .map_err(|e| DrError::from_sdk("kms", "CreateKey", e))?;
    let metadata = created.key_metadata().ok_or_else(|| missing("KMS key", ALIAS, &region.region))?;
    // Two estates seeded at once: the key whose alias lands first is the estate's.
    let _ = region.kms.create_alias().alias_name(ALIAS).target_key_id(metadata.key_id()).send().await;
    let named =
        region.kms.describe_key().key_id(ALIAS).send().await.map_err(|e| DrError::from_sdk("kms", "DescribeKey", e))?;
    named
        .key_metadata()
        .and_then(|m| m.arn())
        .map(str::to_string)
        .ok_or_else(|| missing("KMS key", ALIAS, &region.region))
}

fn rds_tag(key: &str, value: &str) -> aws_sdk_rds::types::Tag {
    aws_sdk_rds::types::Tag::builder().key(key).value(value).build()
}

pub(crate) fn missing(kind: &'static str, id: &str, region: &str) -> DrError {
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
        .timestamp(time::to_smithy(time::now()))
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

/// As many instances as each standby group expects (`count`), stopped; terminated ones are not
/// counted.
async fn seed_standby_instances(dr: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    for group in &plan.standby_instances {
        seed_standby_group(dr, plan, group).await?;
    }
    Ok(())
}

async fn seed_standby_group(
    dr: &RegionClients,
    plan: &Plan,
    group: &dr_core::plan::InstanceSelector,
) -> Result<(), DrError> {
    let count = group.expected();
    let found = describe_standby_group(&dr.ec2, group).await?;
    let ever = found.len();
    let existing: Vec<_> = found.into_iter().filter(|i| !i.is_gone()).collect();
    match (&group.tag, &group.ids) {
        (Some(tag), _) if existing.len() < count => {
            let wanted = i32::try_from(count - existing.len()).unwrap_or(i32::MAX);
            let tags = TagSpecification::builder()
                .resource_type(ResourceType::Instance)
                .tags(Ec2Tag::builder().key(&tag.key).value(&tag.value).build())
                .tags(Ec2Tag::builder().key("dr-plan").value(&plan.name).build())
                .build();
            dr.ec2
                .run_instances()
                // Idempotent: an attempt the SDK retries (timed out on a busy emulator) launches
                // nothing more.
                // The token names what is there now: a later seeding (an instance terminated since)
                // is a new request.
                .client_token(
                    format!("seed-{}-{}-{}-{ever}", plan.name, tag.value, existing.len())
                        .chars()
                        .take(64)
                        .collect::<String>(),
                )
                .image_id(emulator_image(dr).await?)
                .instance_type(InstanceType::M6i2xlarge)
                .min_count(wanted)
                .max_count(wanted)
                .tag_specifications(tags)
                // The plan's customer-managed EBS key: starting the instance then needs a grant.
                .set_block_device_mappings(group.ebs_kms_key.as_ref().map(|key| {
                    vec![
                        aws_sdk_ec2::types::BlockDeviceMapping::builder()
                            .device_name("/dev/xvda")
                            .ebs(
                                aws_sdk_ec2::types::EbsBlockDevice::builder()
                                    .encrypted(true)
                                    .kms_key_id(key)
                                    .volume_size(20)
                                    .build(),
                            )
                            .build(),
                    ]
                }))
                .send()
                .await
                .map_err(|e| DrError::from_sdk("ec2", "RunInstances", e))?;
        }
        (None, Some(ids)) => {
            // Instance ids are chosen by EC2: an id selector can be checked, not created.
            if let Some(absent) = ids.iter().find(|id| !existing.iter().any(|seen| seen.id == **id)) {
                return Err(missing("EC2 instance", absent, &dr.region));
            }
        }
        _ => {}
    }
    let running: Vec<String> = describe_standby_group(&dr.ec2, group)
        .await?
        .into_iter()
        .filter(|i| matches!(i.state, InstanceStateName::Running | InstanceStateName::Pending))
        .map(|i| i.id)
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

/// Any machine image the emulator knows in the region, looked up once per region and process:
/// every seed needs one, and moto's DescribeImages of its whole catalogue was the suite's costliest
/// call.
async fn emulator_image(dr: &RegionClients) -> Result<String, DrError> {
    // Held across the lookup: the suite's tests seed side by side at its start, and each sending
    // its own DescribeImages (every AMI moto knows, serialised) queued the emulator past the
    // clients' 6 s attempt timeout. One asks; the others wait for its answer.
    static FOUND: tokio::sync::Mutex<std::collections::BTreeMap<String, String>> =
        tokio::sync::Mutex::const_new(std::collections::BTreeMap::new());
    let mut found = FOUND.lock().await;
    if let Some(image) = found.get(&dr.region) {
        return Ok(image.clone());
    }
    let images = dr
        .ec2
        .describe_images()
        .owners("amazon")
        .filters(Filter::builder().name("architecture").values("x86_64").build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeImages", e))?;
    let image = images
        .images()
        .iter()
        .find_map(|image| image.image_id().map(str::to_string))
        .ok_or_else(|| missing("machine image", "any x86_64 image", "emulator"))?;
    found.insert(dr.region.clone(), image.clone());
    Ok(image)
}

async fn seed_auto_scaling_group(dr: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    for asg in &plan.auto_scaling {
        let standby = (i32::from(asg.standby.min), i32::from(asg.standby.desired), i32::from(asg.standby.max));
        ensure_group(dr, &asg.group, standby).await?;
    }
    Ok(())
}

/// The plan's ECS services in the DR region, at their standby count: each cluster (CreateCluster
/// answers an existing one as it is), one task definition for all, and each service created or set
/// back to its standby count. Their tasks start and stop on the emulator's model (ecs.py).
async fn seed_ecs_services(dr: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    use aws_sdk_ecs::types::{ContainerDefinition, LaunchType};
    use dr_core::aws::lookup::{EcsServiceFound, describe_ecs_services};
    if plan.ecs_services.is_empty() {
        return Ok(());
    }
    let mut clusters: Vec<&str> = plan.ecs_services.iter().map(|s| s.cluster.as_str()).collect();
    clusters.sort_unstable();
    clusters.dedup();
    for cluster in clusters {
        dr.ecs
            .create_cluster()
            .cluster_name(cluster)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ecs", "CreateCluster", e))?;
    }
    let family = "dr-emulator-service";
    let task = dr
        .ecs
        .register_task_definition()
        .family(family)
        .requires_compatibilities(aws_sdk_ecs::types::Compatibility::Fargate)
        .network_mode(aws_sdk_ecs::types::NetworkMode::Awsvpc)
        .cpu("256")
        .memory("512")
        .container_definitions(
            ContainerDefinition::builder().name("app").image("public.ecr.aws/nginx/nginx:stable").build(),
        )
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ecs", "RegisterTaskDefinition", e))?;
    let task_arn = task
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| missing("task definition", family, &dr.region))?
        .to_string();
    let found = describe_ecs_services(&dr.ecs, &plan.ecs_services).await?;
    for (service, found) in plan.ecs_services.iter().zip(found) {
        let standby = i32::from(service.standby_count);
        match found {
            EcsServiceFound::Found(status) if status.desired == standby => {}
            EcsServiceFound::Found(_) => {
                dr.ecs
                    .update_service()
                    .cluster(&service.cluster)
                    .service(&service.service)
                    .desired_count(standby)
                    .send()
                    .await
                    .map_err(|e| DrError::from_sdk("ecs", "UpdateService", e))?;
            }
            EcsServiceFound::ClusterMissing | EcsServiceFound::ServiceMissing(_) => {
                dr.ecs
                    .create_service()
                    .cluster(&service.cluster)
                    .service_name(&service.service)
                    .task_definition(&task_arn)
                    .desired_count(standby)
                    .launch_type(LaunchType::Fargate)
                    .send()
                    .await
                    .map_err(|e| DrError::from_sdk("ecs", "CreateService", e))?;
            }
        }
    }
    Ok(())
}

/// The application's groups in Paris, which a planned move's fence scales to zero: serving, each
/// at the size the plan gives its DR group on failover.
async fn seed_primary_group(primary: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    let Some(fence) = &plan.fence else { return Ok(()) };
    for (group, asg) in fence.auto_scaling_group.iter().zip(&plan.auto_scaling) {
        let size = asg.failover;
        ensure_group(primary, group, (i32::from(size.min), i32::from(size.desired), i32::from(size.max))).await?;
    }
    Ok(())
}

/// The DR load balancer a plan's `[serving]` names: an Application Load Balancer in the region's
/// default subnets, an HTTPS listener with a certificate valid for a year, forwarding to the target
/// group the DR Auto Scaling group is attached to.
async fn seed_serving(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Certificate, ProtocolEnum};
    let Some(serving) = &plan.serving else { return Ok(()) };
    let dr = &clients.dr;
    let subnets = dr
        .ec2
        .describe_subnets()
        .filters(Filter::builder().name("default-for-az").values("true").build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("ec2", "DescribeSubnets", e))?;
    let subnets: Vec<_> = subnets.subnets().iter().take(2).collect();
    let vpc = subnets
        .first()
        .and_then(|s| s.vpc_id())
        .map(str::to_string)
        .ok_or_else(|| missing("default VPC", "", &dr.region))?;
    let balancer = dr
        .elbv2
        .create_load_balancer()
        .name(&serving.load_balancer)
        .set_subnets(Some(subnets.iter().filter_map(|s| s.subnet_id().map(str::to_string)).collect()))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("elasticloadbalancing", "CreateLoadBalancer", e))?;
    let balancer =
        balancer.load_balancers().first().and_then(|lb| lb.load_balancer_arn()).unwrap_or_default().to_string();
    let group = dr
        .elbv2
        .create_target_group()
        .name(&serving.target_group)
        .protocol(ProtocolEnum::Http)
        .port(80)
        .vpc_id(vpc)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("elasticloadbalancing", "CreateTargetGroup", e))?;
    let group = group.target_groups().first().and_then(|tg| tg.target_group_arn()).unwrap_or_default().to_string();
    let domain = plan.dns.records.first().map(|record| record.record.trim_end_matches('.')).unwrap_or_default();
    let certificate = crate::models::issue_certificate(clients, &dr.region, domain, 365.0).await?;
    dr.elbv2
        .create_listener()
        .load_balancer_arn(&balancer)
        .protocol(ProtocolEnum::Https)
        .port(443)
        .certificates(Certificate::builder().certificate_arn(certificate).build())
        .default_actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&group).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("elasticloadbalancing", "CreateListener", e))?;
    // Behind the first group; without a group (ECS services behind it), the target group stays
    // as it is.
    let Some(asg) = plan.auto_scaling.first() else { return Ok(()) };
    dr.autoscaling
        .attach_load_balancer_target_groups()
        .auto_scaling_group_name(&asg.group)
        .target_group_arns(group)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("autoscaling", "AttachLoadBalancerTargetGroups", e))?;
    Ok(())
}

/// The plan's database credentials (each database's `credentials_secret`), for the local
/// PostgreSQL servers (`crate::postgres`), which trust loopback connections whatever the password.
async fn seed_credentials(dr: &RegionClients, plan: &Plan) -> Result<(), DrError> {
    for secret in plan.databases.iter().filter_map(|db| db.credentials_secret.as_ref()) {
        seed_secret(dr, secret).await?;
    }
    Ok(())
}

async fn seed_secret(dr: &RegionClients, secret: &str) -> Result<(), DrError> {
    if dr.secrets.describe_secret().secret_id(secret).send().await.is_ok() {
        return Ok(());
    }
    // The orchestrator's own least-privilege role (docs/database.sql), as the customer sets it up.
    let value = serde_json::json!({ "username": "dr_orchestrator", "password": "local", "dbname": "postgres" });
    dr.secrets
        .create_secret()
        .name(secret)
        .secret_string(value.to_string())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("secretsmanager", "CreateSecret", e))?;
    Ok(())
}

/// Creates the group (launch template, two zones) at `capacity`, or sets an existing one to it.
async fn ensure_group(dr: &RegionClients, group: &str, (min, desired, max): (i32, i32, i32)) -> Result<(), DrError> {
    if describe_auto_scaling_group(&dr.autoscaling, group).await?.is_some() {
        return set_capacity(&dr.autoscaling, group, (min, desired, max)).await;
    }
    let template_name = format!("{group}-template");
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
            .image_id(emulator_image(dr).await?)
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
        .auto_scaling_group_name(group)
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
    if test.snapshot_source != dr_core::plan::SnapshotSource::CrossRegionCopy {
        return Ok(());
    }
    // Each database is restore-tested in its own run.
    for db in &plan.databases {
        copy_a_snapshot_to_ireland(clients, &db.primary_instance).await?;
    }
    Ok(())
}

/// A snapshot of `primary` in Paris, copied to Ireland as `<primary>-copy` (unless there).
async fn copy_a_snapshot_to_ireland(clients: &AwsClients, primary: &str) -> Result<(), DrError> {
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
    // RDS copies only an available snapshot; a new one is being created for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let found = clients
            .primary
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(&source_id)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "DescribeDBSnapshots", e))?;
        if found.db_snapshots().first().and_then(|s| s.status()) == Some("available") {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(DrError::AwsTransient {
                service: "rds",
                operation: "DescribeDBSnapshots",
                message: format!("{source_id} not available after 60 s"),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
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

/// A creation reference that never repeats (Route53 requires one per create call).
pub(crate) fn unique_suffix() -> i64 {
    time::now().timestamp_nanos_opt().unwrap_or_default()
}

/// Creates `bucket` in the region unless it is already there.
pub async fn ensure_bucket(region: &RegionClients, bucket: &str) -> Result<(), DrError> {
    create_bucket(&region.s3, &region.region, bucket).await?;
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

/// Creates `bucket` in `region`, or finds it there already (BucketAlreadyOwnedByYou: an earlier
/// seeding, or a concurrent caller). us-east-1 takes no location constraint: S3 refuses one naming
/// it (InvalidLocationConstraint; S3 API Reference, CreateBucket: "If you don't specify a Region,
/// the bucket is created in US East (N. Virginia)").
pub async fn create_bucket(s3: &aws_sdk_s3::Client, region: &str, bucket: &str) -> Result<(), DrError> {
    let configuration = (region != "us-east-1").then(|| {
        CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build()
    });
    match s3.create_bucket().bucket(bucket).set_create_bucket_configuration(configuration).send().await {
        Ok(_) => Ok(()),
        Err(err) if sdk_error_code(&err) == Some("BucketAlreadyOwnedByYou") => Ok(()),
        Err(err) => Err(DrError::from_sdk("s3", "CreateBucket", err)),
    }
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
