//! `plan check`: is every resource of the plan there and in its standby state?
//!
//! Read-only. Each check yields rows (one per resource); a row that is not ready carries a
//! [`Finding`] with a stable name and a reason an SRE can act on. An AWS error inside one check
//! becomes a `CheckFailed` row, with the error's stable name, instead of hiding the other checks.

use aws_sdk_ec2::types::InstanceStateName;
use aws_sdk_s3::types::{MetricsStatus, ReplicationRuleStatus};
use serde::{Deserialize, Serialize};

mod dependencies;
pub(crate) use dependencies::find_target_group;
mod dns;
pub mod scheduled;

use crate::aws::lookup::{
    EcsServiceFound, bucket_exists, describe_auto_scaling_group, describe_db_instance, describe_ecs_services,
    describe_standby_group, gone_ones_replaced, is_plan_primary, is_transient_rds_status,
};
use crate::aws::{AwsClients, PRIMARY_REGION_BUDGET, RegionClients, within_primary_budget};
use crate::error::{DrError, ErrorName, sdk_error_code};
use crate::plan::{BucketPair, Database, Plan};
use crate::rpo::{LagReading, LagVerdict, read_replica_lags};
use crate::time;

/// What a row checks. Preflight tells rows apart by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    PrimaryDatabase,
    ReadReplica,
    ReplicaLag,
    StandbyInstance,
    AutoScalingGroup,
    EcsService,
    RoutingAlarm,
    RoutingHealthCheck,
    DetectionHealthCheck,
    HostedZone,
    DnsRecord,
    DnsPrimaryRecord,
    DnsSecondaryRecord,
    DnsAnswer,
    S3Replication,
    ReportBucket,
    LaunchTemplate,
    VcpuQuota,
    LoadBalancer,
    Certificate,
    TargetGroup,
    KmsKey,
    DatabaseSecret,
    CustomProbe,
    CustomAction,
}

impl Check {
    /// How the table shows it.
    pub fn label(self) -> &'static str {
        match self {
            Check::PrimaryDatabase => "primary database",
            Check::ReadReplica => "read replica",
            Check::ReplicaLag => "replica lag",
            Check::StandbyInstance => "standby instance",
            Check::AutoScalingGroup => "auto scaling group",
            Check::EcsService => "ecs service",
            Check::RoutingAlarm => "routing alarm",
            Check::RoutingHealthCheck => "routing health check",
            Check::DetectionHealthCheck => "detection health check",
            Check::HostedZone => "hosted zone",
            Check::DnsRecord => "dns record",
            Check::DnsPrimaryRecord => "dns primary record",
            Check::DnsSecondaryRecord => "dns secondary record",
            Check::DnsAnswer => "dns answer",
            Check::S3Replication => "s3 replication",
            Check::ReportBucket => "report bucket",
            Check::LaunchTemplate => "launch template",
            Check::VcpuQuota => "vcpu quota",
            Check::LoadBalancer => "load balancer",
            Check::Certificate => "certificate",
            Check::TargetGroup => "target group",
            Check::KmsKey => "kms key",
            Check::DatabaseSecret => "database secret",
            Check::CustomProbe => "custom probe",
            Check::CustomAction => "custom action",
        }
    }

    /// Checks of the primary region, which may well be down during a failover.
    pub fn is_primary_side(self) -> bool {
        matches!(self, Check::PrimaryDatabase | Check::S3Replication)
    }
}

/// Why a resource is not ready. The names are stable: tests, runbooks and dashboards use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, strum::IntoStaticStr)]
pub enum Finding {
    PrimaryMissing,
    PrimaryNotAvailable,
    ReplicaMissing,
    NotAReplica,
    ReplicaOfAnotherSource,
    ReplicaNotAvailable,
    ReplicaBusy,
    ReplicaNotReplicating,
    /// The plan's `database.backup_window` meets the replica's maintenance window: RDS refuses it
    /// in a promotion, which then keeps the replica's own window.
    BackupWindowConflictsMaintenance,
    RpoExceeded,
    StandbyInstanceMissing,
    StandbyInstanceTerminated,
    StandbyInstanceUnexpected,
    StandbyInstanceRunning,
    StandbyInstanceNotStopped,
    AsgMissing,
    AsgNotAtStandbySize,
    EcsClusterMissing,
    EcsServiceMissing,
    /// The service's desired count is not the plan's `standby_count` (a failover raised it, or
    /// someone scaled it by hand).
    EcsServiceNotAtStandbyCount,
    HostedZoneMissing,
    RecordMissing,
    RecordMisconfigured,
    DnsNotOnPrimary,
    RoutingAlarmMissing,
    RoutingAlarmMisconfigured,
    RoutingHealthCheckMissing,
    RoutingHealthCheckMisconfigured,
    DetectionHealthCheckMissing,
    DetectionCheckOnRecord,
    BucketMissing,
    ReplicationNotConfigured,
    ReplicationMetricsDisabled,
    ReportBucketMissing,
    LaunchTemplateMissing,
    AmiMissing,
    VcpuQuotaTooLow,
    LoadBalancerMissing,
    CertificateNotIssued,
    CertificateExpiring,
    TargetGroupMissing,
    TargetGroupDetached,
    KmsKeyMissing,
    KmsKeyDisabled,
    SecretNotReplicated,
    ProbeFailed,
    /// A custom action's function is not in a region a run may invoke it in (the DR region for a
    /// failover, the primary for a failback).
    CustomActionMissing,
    CheckFailed,
}

impl Finding {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One line of the readiness table.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CheckRow {
    pub check: Check,
    /// The resource, as the plan names it, with its region.
    pub resource: String,
    /// `None` when ready.
    pub finding: Option<Finding>,
    /// `CheckFailed` rows: the stable name of the error that kept the check from answering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorName>,
    /// What was observed: the reason when not ready, the evidence when ready.
    pub detail: String,
}

impl CheckRow {
    pub(crate) fn ready(check: Check, resource: impl Into<String>, detail: impl Into<String>) -> CheckRow {
        CheckRow { check, resource: resource.into(), finding: None, error: None, detail: detail.into() }
    }

    pub(crate) fn not_ready(
        check: Check,
        resource: impl Into<String>,
        finding: Finding,
        detail: impl Into<String>,
    ) -> CheckRow {
        CheckRow { check, resource: resource.into(), finding: Some(finding), error: None, detail: detail.into() }
    }

    pub(crate) fn failed(check: Check, resource: impl Into<String>, err: &DrError) -> CheckRow {
        CheckRow {
            error: Some(err.kind()),
            ..CheckRow::not_ready(check, resource, Finding::CheckFailed, format!("{}: {err}", err.name()))
        }
    }

    pub fn is_ready(&self) -> bool {
        self.finding.is_none()
    }
}

/// The whole table for one plan.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Readiness {
    pub plan: String,
    pub rows: Vec<CheckRow>,
}

impl Readiness {
    pub fn is_ready(&self) -> bool {
        self.rows.iter().all(CheckRow::is_ready)
    }

    /// The findings of the rows that are not ready, in table order.
    pub fn findings(&self) -> Vec<Finding> {
        self.rows.iter().filter_map(|row| row.finding).collect()
    }
}

/// How much a readiness check reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Everything, Route 53's control plane (us-east-1) and the DR region's dependencies (launch
    /// template, certificates, quota, keys, secret, the customer's probes) included: `drctl plan
    /// check`, the scheduled check, `drctl doctor`.
    Full,
    /// No Route 53 API call: the failover path (preflight, the report's final state), which must
    /// not depend on us-east-1. DNS is judged by the routing alarm and a DNS answer.
    DataPlane,
}

/// Runs every readiness check of a (valid) plan, concurrently.
pub async fn check_plan(clients: &AwsClients, plan: &Plan, scope: Scope) -> Readiness {
    let now = time::now();
    // Paris may hang: its checks share one short deadline, whatever their number.
    let deadline = tokio::time::Instant::now() + PRIMARY_REGION_BUDGET;
    let databases = plan.databases.iter().map(|db| async move {
        let (primary, replica, lag) = tokio::join!(
            check_primary(&clients.primary, db, deadline),
            check_replica(&clients.dr, plan, db),
            check_replica_lag(&clients.dr, plan, db, now),
        );
        [primary, replica, lag]
    });
    let (databases, instances, asg, services, dns, buckets, reports) = tokio::join!(
        futures_util::future::join_all(databases),
        check_standby_instances(&clients.dr, plan),
        check_auto_scaling(&clients.dr, plan),
        check_ecs_services(&clients.dr, plan),
        dns::check_dns(clients, plan, scope),
        check_bucket_pairs(clients, plan, deadline),
        check_report_bucket(&clients.home, plan),
    );
    let mut rows: Vec<CheckRow> = databases.into_iter().flatten().collect();
    rows.extend(instances);
    rows.extend(asg);
    rows.extend(services);
    rows.extend(dns);
    rows.extend(buckets);
    rows.push(reports);
    // The dependencies are the DR region's as the plan writes it: a reversed plan (after a
    // failover) has Paris as its DR side, which the plan does not describe.
    if scope == Scope::Full && !plan.reversed {
        rows.extend(dependencies::check_dependencies(&clients.primary, &clients.dr, plan).await);
    }
    Readiness { plan: plan.name.clone(), rows }
}

pub(crate) fn at(id: &str, region: &str) -> String {
    format!("{id} ({region})")
}

async fn check_primary(primary: &RegionClients, db: &Database, deadline: tokio::time::Instant) -> CheckRow {
    const CHECK: Check = Check::PrimaryDatabase;
    let resource = at(&db.primary_instance, &primary.region);
    let described = describe_db_instance(&primary.rds, &db.primary_instance);
    match within_primary_budget(deadline, &primary.region, described).await {
        Err(err) => CheckRow::failed(CHECK, resource, &err),
        Ok(None) => CheckRow::not_ready(CHECK, resource, Finding::PrimaryMissing, "no such RDS instance"),
        Ok(Some(db)) => match db.db_instance_status() {
            Some("available") => CheckRow::ready(CHECK, resource, "available"),
            status => CheckRow::not_ready(
                CHECK,
                resource,
                Finding::PrimaryNotAvailable,
                format!("status is {}", status.unwrap_or("unknown")),
            ),
        },
    }
}

async fn check_replica(dr: &RegionClients, plan: &Plan, plan_db: &Database) -> CheckRow {
    const CHECK: Check = Check::ReadReplica;
    let resource = at(&plan_db.replica_instance, &dr.region);
    let db = match describe_db_instance(&dr.rds, &plan_db.replica_instance).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(None) => return CheckRow::not_ready(CHECK, resource, Finding::ReplicaMissing, "no such RDS instance"),
        Ok(Some(db)) => db,
    };
    let source = db.read_replica_source_db_instance_identifier().unwrap_or_default();
    let status = db.db_instance_status().unwrap_or("unknown");
    if source.is_empty() {
        CheckRow::not_ready(CHECK, resource, Finding::NotAReplica, "standalone instance: it has no replication source")
    } else if !is_plan_primary(plan, plan_db, source) {
        CheckRow::not_ready(CHECK, resource, Finding::ReplicaOfAnotherSource, format!("replicates from {source}"))
    } else if is_transient_rds_status(status) {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::ReplicaBusy,
            format!("status is {status}: it becomes available by itself (a failover waits for it)"),
        )
    } else if status != "available" {
        CheckRow::not_ready(CHECK, resource, Finding::ReplicaNotAvailable, format!("status is {status}"))
    } else if let Some(maintenance) = db
        .preferred_maintenance_window()
        .filter(|maintenance| crate::plan::backup_window_conflicts(&plan_db.backup_window, maintenance))
    {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::BackupWindowConflictsMaintenance,
            format!(
                "the plan's backup window {} UTC meets the replica's maintenance window {maintenance}: RDS refuses it, so a promotion keeps the replica's own window; move either",
                plan_db.backup_window
            ),
        )
    } else {
        CheckRow::ready(CHECK, resource, format!("replica of {source}, available"))
    }
}

async fn check_replica_lag(dr: &RegionClients, plan: &Plan, db: &Database, now: time::Timestamp) -> CheckRow {
    const CHECK: Check = Check::ReplicaLag;
    let replica = db.replica_instance.clone();
    let resource = at(&replica, &dr.region);
    let rpo = plan.targets.rpo();
    let reading = match read_replica_lags(&dr.cloudwatch, &[replica], db.lag_freshness(), now).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(readings) => readings.into_iter().next(),
    };
    let Some(reading) = reading else {
        return CheckRow::not_ready(CHECK, resource, Finding::CheckFailed, "no reading returned");
    };
    match (&reading, reading.verdict(rpo)) {
        (LagReading::Lag { seconds, .. }, LagVerdict::WithinRpo) => {
            CheckRow::ready(CHECK, resource, format!("{seconds:.0} s, RPO {} s", rpo.as_secs()))
        }
        (LagReading::Lag { seconds, .. }, _) => CheckRow::not_ready(
            CHECK,
            resource,
            Finding::RpoExceeded,
            format!("{seconds:.0} s behind, over the RPO of {} s", rpo.as_secs()),
        ),
        (LagReading::NotReplicating { reason }, _) => {
            CheckRow::not_ready(CHECK, resource, Finding::ReplicaNotReplicating, reason.clone())
        }
    }
}

async fn check_standby_instances(dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    let groups = plan.standby_instances.iter().filter(|group| group.selects_any());
    futures_util::future::join_all(groups.map(|group| check_standby_group(dr, group)))
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// One row per instance a standby group selects, and one for what its selector misses or finds
/// too many of.
async fn check_standby_group(dr: &RegionClients, selector: &crate::plan::InstanceSelector) -> Vec<CheckRow> {
    const CHECK: Check = Check::StandbyInstance;
    let selector_text = selector.label();
    let found = match describe_standby_group(&dr.ec2, selector).await {
        Ok(found) => found,
        Err(err) => return vec![CheckRow::failed(CHECK, at(&selector_text, &dr.region), &err)],
    };
    let replaced = gone_ones_replaced(selector, &found);
    let mut rows: Vec<CheckRow> = found
        .iter()
        .map(|instance| {
            let resource = at(&instance.id, &dr.region);
            let state = &instance.state;
            let reason = instance.reason.as_deref().map_or(String::new(), |r| format!(" ({r})"));
            match state {
                InstanceStateName::Stopped => CheckRow::ready(CHECK, resource, "stopped"),
                InstanceStateName::Running | InstanceStateName::Pending => CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::StandbyInstanceRunning,
                    format!("{state}: a standby instance must be stopped"),
                ),
                _ if instance.is_gone() && replaced => {
                    CheckRow::ready(CHECK, resource, format!("{state}{reason}: replaced, not counted"))
                }
                _ if instance.is_gone() => CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::StandbyInstanceTerminated,
                    format!("{state}{reason}: it will never start; replace it"),
                ),
                other => CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::StandbyInstanceNotStopped,
                    format!("{other}: a standby instance must be stopped"),
                ),
            }
        })
        .collect();
    if let Some(ids) = &selector.ids {
        for missing in ids.iter().filter(|id| !found.iter().any(|seen| seen.id == **id)) {
            rows.push(CheckRow::not_ready(
                CHECK,
                at(missing, &dr.region),
                Finding::StandbyInstanceMissing,
                "no such instance",
            ));
        }
    } else {
        let usable = found.iter().filter(|instance| !instance.is_gone()).count();
        let expected = selector.expected();
        if usable < expected {
            rows.push(CheckRow::not_ready(
                CHECK,
                at(&selector_text, &dr.region),
                Finding::StandbyInstanceMissing,
                format!("{usable} of the {expected} standby instances the plan expects"),
            ));
        } else if usable > expected {
            rows.push(CheckRow::not_ready(
                CHECK,
                at(&selector_text, &dr.region),
                Finding::StandbyInstanceUnexpected,
                format!("{usable} instances carry the tag, the plan expects {expected}: which ones would be started?"),
            ));
        }
    }
    rows
}

async fn check_auto_scaling(dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    futures_util::future::join_all(plan.auto_scaling.iter().map(|asg| check_group(dr, asg))).await
}

async fn check_group(dr: &RegionClients, asg: &crate::plan::AutoScaling) -> CheckRow {
    const CHECK: Check = Check::AutoScalingGroup;
    let resource = at(&asg.group, &dr.region);
    let group = match describe_auto_scaling_group(&dr.autoscaling, &asg.group).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(group) => group,
    };
    let Some(group) = group else {
        return CheckRow::not_ready(CHECK, resource, Finding::AsgMissing, "no such Auto Scaling group");
    };
    let actual = (group.min_size(), group.desired_capacity(), group.max_size());
    let expected =
        (Some(i32::from(asg.standby.min)), Some(i32::from(asg.standby.desired)), Some(i32::from(asg.standby.max)));
    let shown = |(min, desired, max): (Option<i32>, Option<i32>, Option<i32>)| {
        let n = |v: Option<i32>| v.map_or("?".to_string(), |v| v.to_string());
        format!("min {} / desired {} / max {}", n(min), n(desired), n(max))
    };
    if actual == expected {
        CheckRow::ready(CHECK, resource, shown(actual))
    } else {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::AsgNotAtStandbySize,
            format!("{}, standby size is {}", shown(actual), shown(expected)),
        )
    }
}

/// One row per ECS service of the plan: its cluster and service there, at its standby count.
async fn check_ecs_services(dr: &RegionClients, plan: &Plan) -> Vec<CheckRow> {
    const CHECK: Check = Check::EcsService;
    if plan.ecs_services.is_empty() {
        return Vec::new();
    }
    let resource = |service: &crate::plan::EcsService| at(&service.label(), &dr.region);
    let found = match describe_ecs_services(&dr.ecs, &plan.ecs_services).await {
        Ok(found) => found,
        Err(err) => {
            return plan.ecs_services.iter().map(|service| CheckRow::failed(CHECK, resource(service), &err)).collect();
        }
    };
    plan.ecs_services
        .iter()
        .zip(found)
        .map(|(service, found)| match found {
            EcsServiceFound::ClusterMissing => CheckRow::not_ready(
                CHECK,
                resource(service),
                Finding::EcsClusterMissing,
                format!("no cluster {} in {}", service.cluster, dr.region),
            ),
            EcsServiceFound::ServiceMissing(reason) => CheckRow::not_ready(
                CHECK,
                resource(service),
                Finding::EcsServiceMissing,
                format!("no service {} in cluster {} ({reason})", service.service, service.cluster),
            ),
            EcsServiceFound::Found(status) if status.desired != i32::from(service.standby_count) => {
                CheckRow::not_ready(
                    CHECK,
                    resource(service),
                    Finding::EcsServiceNotAtStandbyCount,
                    format!("{}, standby count is {}", status.text(), service.standby_count),
                )
            }
            EcsServiceFound::Found(status) => CheckRow::ready(
                CHECK,
                resource(service),
                format!("{} (standby count; {} on failover)", status.text(), service.failover_count),
            ),
        })
        .collect()
}

/// Every pair at once: each reads the primary region, within the shared deadline.
async fn check_bucket_pairs(clients: &AwsClients, plan: &Plan, deadline: tokio::time::Instant) -> Vec<CheckRow> {
    let checks = plan.s3_replication.iter().map(|pair| async move {
        let resource = format!("{} -> {}", pair.source_bucket, pair.replica_bucket);
        let checked = within_primary_budget(deadline, &clients.primary.region, async {
            Ok::<_, DrError>(check_bucket_pair(clients, pair).await)
        })
        .await;
        checked.unwrap_or_else(|err| CheckRow::failed(Check::S3Replication, resource, &err))
    });
    futures_util::future::join_all(checks).await
}

/// A pair replicates when both buckets exist and the source has an enabled rule to the replica.
///
/// Versioning is not read: S3 refuses a replication configuration on an unversioned source, and
/// the emulator's GetBucketVersioning answer has an XML root the Rust SDK rejects (moto 5.2).
async fn check_bucket_pair(clients: &AwsClients, pair: &BucketPair) -> CheckRow {
    const CHECK: Check = Check::S3Replication;
    let resource = format!("{} -> {}", pair.source_bucket, pair.replica_bucket);
    for (bucket, region) in [(&pair.source_bucket, &clients.primary), (&pair.replica_bucket, &clients.dr)] {
        match bucket_exists(&region.s3, bucket).await {
            Err(err) => return CheckRow::failed(CHECK, resource, &err),
            Ok(false) => {
                return CheckRow::not_ready(
                    CHECK,
                    resource,
                    Finding::BucketMissing,
                    format!("bucket {bucket} does not exist in {}", region.region),
                );
            }
            Ok(true) => {}
        }
    }
    let config = match clients.primary.s3.get_bucket_replication().bucket(&pair.source_bucket).send().await {
        Ok(out) => out.replication_configuration().cloned(),
        Err(err) if sdk_error_code(&err) == Some("ReplicationConfigurationNotFoundError") => None,
        Err(err) => return CheckRow::failed(CHECK, resource, &DrError::from_sdk("s3", "GetBucketReplication", err)),
    };
    let destination = format!("arn:aws:s3:::{}", pair.replica_bucket);
    let rule = config.as_ref().and_then(|config| {
        config.rules().iter().find(|rule| {
            rule.status() == &ReplicationRuleStatus::Enabled
                && rule.destination().is_some_and(|d| d.bucket() == destination)
        })
    });
    let Some(rule) = rule else {
        return CheckRow::not_ready(
            CHECK,
            resource,
            Finding::ReplicationNotConfigured,
            format!("no enabled replication rule to {destination}"),
        );
    };
    let metrics_on =
        rule.destination().and_then(|d| d.metrics()).is_some_and(|m| m.status() == &MetricsStatus::Enabled);
    if pair.replication_metrics && !metrics_on {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::ReplicationMetricsDisabled,
            "the plan expects replication metrics, the rule has none",
        )
    } else {
        CheckRow::ready(CHECK, resource, format!("rule {} enabled", rule.id().unwrap_or("(unnamed)")))
    }
}

async fn check_report_bucket(dr: &RegionClients, plan: &Plan) -> CheckRow {
    const CHECK: Check = Check::ReportBucket;
    let resource = at(&plan.reports.bucket, &dr.region);
    match bucket_exists(&dr.s3, &plan.reports.bucket).await {
        Ok(true) => CheckRow::ready(CHECK, resource, "exists"),
        Ok(false) => CheckRow::not_ready(CHECK, resource, Finding::ReportBucketMissing, "bucket does not exist"),
        Err(err) => CheckRow::failed(CHECK, resource, &err),
    }
}
