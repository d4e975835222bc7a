//! The emulated Paris/Ireland estate and `plan check` against it (moto server).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType,
};
use dr_core::aws::lookup::{bucket_exists, describe_auto_scaling_group, describe_standby_instances, find_hosted_zone};
use dr_core::plan::{BucketPair, fqdn};
use dr_core::readiness::{Finding, Readiness, Scope, check_plan};
use dr_emulator::estate::{SeedOptions, publish_replica_lag, seed};
use dr_tests::{emulator_clients, isolated_plan, seeded_estate};
use serde_json::json;

/// The findings of the rows of one check, in table order (`None` = ready).
fn findings_of(readiness: &Readiness, check: &str) -> Vec<Option<Finding>> {
    readiness.rows.iter().filter(|row| row.check.label() == check).map(|row| row.finding).collect()
}

fn assert_only_finding(readiness: &Readiness, check: &str, finding: Finding) {
    assert_only_findings(readiness, &[(check, finding)]);
}

/// Exactly these rows are not ready, with these findings.
fn assert_only_findings(readiness: &Readiness, expected: &[(&str, Finding)]) {
    let not_ready: Vec<(&str, Finding)> =
        readiness.rows.iter().filter_map(|row| row.finding.map(|f| (row.check.label(), f))).collect();
    for wanted in expected {
        assert!(not_ready.contains(wanted), "{wanted:?} expected; table: {readiness:#?}");
    }
    assert!(
        not_ready.iter().all(|row| expected.contains(row)),
        "only {expected:?} should be not ready, got {not_ready:?}"
    );
}

#[tokio::test]
async fn clients_honour_the_endpoint_override_with_path_style_s3() {
    let plan = isolated_plan();
    let clients = emulator_clients(&plan).await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("set by scripts/test");
    assert_eq!(clients.endpoint_url(), Some(endpoint.as_str()));
    // A bucket created and found through the emulator: a virtual-hosted request
    // (`bucket.127.0.0.1`) would not even resolve.
    let bucket = &plan.reports.bucket;
    clients
        .dr
        .s3
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket on the emulator");
    assert!(bucket_exists(&clients.dr.s3, bucket).await.expect("HeadBucket"));
}

#[tokio::test]
async fn the_seeded_estate_is_ready() {
    let (plan, clients) = seeded_estate().await;
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert!(readiness.is_ready(), "{readiness:#?}");
    let checks: Vec<&str> = readiness.rows.iter().map(|row| row.check.label()).collect();
    for expected in [
        "primary database",
        "read replica",
        "replica lag",
        "standby instance",
        "auto scaling group",
        "routing alarm",
        "routing health check",
        "detection health check",
        "dns primary record",
        "dns secondary record",
        "dns answer",
        "s3 replication",
        "report bucket",
    ] {
        assert!(checks.contains(&expected), "no {expected} row in {checks:?}");
    }
    assert_eq!(findings_of(&readiness, "standby instance"), vec![None, None], "two stopped standby instances");
}

/// Everything the seeding creates, as comparable data.
async fn estate_snapshot(plan: &dr_core::Plan, clients: &dr_core::aws::AwsClients) -> serde_json::Value {
    let db = |region: &dr_core::aws::RegionClients, id: String| {
        let rds = region.rds.clone();
        async move {
            let out = rds.describe_db_instances().send().await.expect("DescribeDBInstances");
            out.db_instances()
                .iter()
                .filter(|d| d.db_instance_identifier() == Some(id.as_str()))
                .map(|d| json!([d.db_instance_identifier(), d.read_replica_source_db_instance_identifier()]))
                .collect::<Vec<_>>()
        }
    };
    let primary = db(&clients.primary, plan.databases[0].primary_instance.clone()).await;
    let replica = db(&clients.dr, plan.databases[0].replica_instance.clone()).await;
    let instances: Vec<_> = describe_standby_instances(&clients.dr.ec2, plan)
        .await
        .expect("DescribeInstances")
        .into_iter()
        .map(|i| json!([i.id, i.state.as_str()]))
        .collect();
    let groups: Vec<_> = describe_auto_scaling_group(&clients.dr.autoscaling, &dr_tests::dr_group(plan).group)
        .await
        .expect("DescribeAutoScalingGroups")
        .iter()
        .map(|g| json!([g.min_size(), g.desired_capacity(), g.max_size(), g.instances().len()]))
        .collect();
    let zones = clients
        .route53
        .list_hosted_zones_by_name()
        .dns_name(fqdn(&plan.dns.hosted_zone))
        .send()
        .await
        .expect("ListHostedZonesByName")
        .hosted_zones()
        .iter()
        .filter(|z| fqdn(z.name()) == fqdn(&plan.dns.hosted_zone))
        .count();
    let zone_id = find_hosted_zone(&clients.route53, &plan.dns.hosted_zone).await.expect("zone").expect("zone");
    let records: Vec<_> = clients
        .route53
        .list_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .send()
        .await
        .expect("ListResourceRecordSets")
        .resource_record_sets()
        .iter()
        .map(|r| {
            let values: Vec<&str> = r.resource_records().iter().map(|v| v.value()).collect();
            json!([r.name(), r.r#type().as_str(), r.set_identifier(), values, r.ttl(), r.health_check_id()])
        })
        .collect();
    let health_check_ids: Vec<String> = clients
        .route53
        .list_health_checks()
        .send()
        .await
        .expect("ListHealthChecks")
        .health_checks()
        .iter()
        .map(|hc| hc.id().to_string())
        .collect();
    let routing = plan.dns.routing.as_ref().map(|r| r.health_check.as_str());
    let detection = plan.trigger.as_ref().map(|t| t.detection_health_check.as_str());
    let names: Vec<&str> = [routing, detection].into_iter().flatten().collect();
    let mut named_health_checks = 0;
    for batch in health_check_ids.chunks(10) {
        let tags = clients
            .route53
            .list_tags_for_resources()
            .resource_type(aws_sdk_route53::types::TagResourceType::Healthcheck)
            .set_resource_ids(Some(batch.to_vec()))
            .send()
            .await
            .expect("ListTagsForResources");
        named_health_checks += tags
            .resource_tag_sets()
            .iter()
            .filter(|set| set.tags().iter().any(|t| t.value().is_some_and(|name| names.contains(&name))))
            .count();
    }
    let buckets: Vec<String> = clients
        .dr
        .s3
        .list_buckets()
        .send()
        .await
        .expect("ListBuckets")
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_string))
        .filter(|name| {
            plan.s3_replication.iter().any(|p| *name == p.source_bucket || *name == p.replica_bucket)
                || *name == plan.reports.bucket
        })
        .collect();
    let replication_rules = clients
        .primary
        .s3
        .get_bucket_replication()
        .bucket(&plan.s3_replication[0].source_bucket)
        .send()
        .await
        .expect("GetBucketReplication")
        .replication_configuration()
        .map(|c| c.rules().len());
    json!({
        "primary": primary, "replica": replica, "instances": instances, "groups": groups,
        "zones": zones, "records": records, "named_health_checks": named_health_checks,
        "buckets": buckets, "replication_rules": replication_rules,
    })
}

#[tokio::test]
async fn seeding_twice_leaves_the_same_estate() {
    let (plan, clients) = seeded_estate().await;
    let first = estate_snapshot(&plan, &clients).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("second seeding");
    let second = estate_snapshot(&plan, &clients).await;
    assert_eq!(first, second);
    assert_eq!(first["instances"].as_array().map(Vec::len), Some(2));
    assert_eq!(first["named_health_checks"], json!(2), "the routing and the detection health checks");
    assert_eq!(first["zones"], json!(1));
    assert!(check_plan(&clients, &plan, Scope::Full).await.is_ready());
}

#[tokio::test]
async fn seeding_brings_a_disturbed_estate_back_to_standby() {
    let (plan, clients) = seeded_estate().await;
    let first_id = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances")[0].id.clone();
    clients.dr.ec2.start_instances().instance_ids(&first_id).send().await.expect("StartInstances");
    assert!(!check_plan(&clients, &plan, Scope::Full).await.is_ready());
    seed(&clients, &plan, SeedOptions::default()).await.expect("re-seeding");
    assert!(check_plan(&clients, &plan, Scope::Full).await.is_ready());
}

#[tokio::test]
async fn a_missing_replica_is_reported() {
    let (plan, clients) = seeded_estate().await;
    let deleted = clients
        .dr
        .rds
        .delete_db_instance()
        .db_instance_identifier(&plan.databases[0].replica_instance)
        .skip_final_snapshot(true)
        .send()
        .await;
    // moto 5.2 removes a cross-region replica and then answers DBInstanceNotFound, because it
    // looks the source ARN up in the replica's region. AWS deletes it and answers 200.
    if let Err(err) = deleted {
        assert_eq!(dr_core::error::sdk_error_code(&err), Some("DBInstanceNotFound"), "{err:?}");
    }
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(findings_of(&readiness, "read replica"), vec![Some(Finding::ReplicaMissing)]);
}

#[tokio::test]
async fn a_running_standby_instance_is_reported() {
    let (plan, clients) = seeded_estate().await;
    let instances = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances");
    clients.dr.ec2.start_instances().instance_ids(&instances[1].id).send().await.expect("StartInstances");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(findings_of(&readiness, "standby instance"), vec![None, Some(Finding::StandbyInstanceRunning)]);
    assert_only_finding(&readiness, "standby instance", Finding::StandbyInstanceRunning);
}

#[tokio::test]
async fn a_terminated_standby_instance_is_named_until_it_is_replaced() {
    let (plan, clients) = seeded_estate().await;
    let instances = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances");
    let gone = instances[0].id.clone();
    clients.dr.ec2.terminate_instances().instance_ids(&gone).send().await.expect("TerminateInstances");
    let short = check_plan(&clients, &plan, Scope::Full).await;
    assert_only_findings(
        &short,
        &[
            ("standby instance", Finding::StandbyInstanceTerminated),
            ("standby instance", Finding::StandbyInstanceMissing),
        ],
    );

    // A replacement carries the tag; EC2 still lists the terminated one for about an hour.
    seed(&clients, &plan, SeedOptions::default()).await.expect("replacement launched");
    let replaced = check_plan(&clients, &plan, Scope::Full).await;
    assert!(replaced.is_ready(), "{replaced:#?}");
    let row = replaced.rows.iter().find(|r| r.resource.starts_with(&gone)).expect("the terminated instance's row");
    assert!(row.detail.contains("replaced, not counted"), "{row:?}");
}

#[tokio::test]
async fn lag_over_the_rpo_is_reported() {
    let (plan, clients) = seeded_estate().await;
    let two_hours = 2.0 * plan.targets.rpo().as_secs_f64();
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, two_hours).await.expect("PutMetricData");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_only_finding(&readiness, "replica lag", Finding::RpoExceeded);
}

#[tokio::test]
async fn a_replica_reporting_minus_one_is_not_replicating() {
    let plan = isolated_plan();
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions { replica_lag_seconds: -1.0 }).await.expect("seeding");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_only_finding(&readiness, "replica lag", Finding::ReplicaNotReplicating);
}

#[tokio::test]
async fn an_asg_not_at_standby_size_is_reported() {
    let (plan, clients) = seeded_estate().await;
    clients
        .dr
        .autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&dr_tests::dr_group(&plan).group)
        .max_size(6)
        .min_size(2)
        .desired_capacity(2)
        .send()
        .await
        .expect("UpdateAutoScalingGroup");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_only_finding(&readiness, "auto scaling group", Finding::AsgNotAtStandbySize);
}

#[tokio::test]
async fn dns_answering_ireland_is_reported() {
    let (plan, clients) = seeded_estate().await;
    let zone_id = find_hosted_zone(&clients.route53, &plan.dns.hosted_zone).await.expect("zone").expect("zone");
    let primary_on_ireland = ResourceRecordSet::builder()
        .name(fqdn(&plan.dns.records[0].record))
        .r#type(RrType::Cname)
        .set_identifier(&plan.dns.records[0].primary.set_identifier)
        .failover(ResourceRecordSetFailover::Primary)
        .ttl(60)
        .resource_records(
            ResourceRecord::builder().value(&plan.dns.records[0].secondary.value).build().expect("record"),
        )
        .build()
        .expect("record set");
    let batch = ChangeBatch::builder()
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(primary_on_ireland)
                .build()
                .expect("change"),
        )
        .build()
        .expect("batch");
    clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone_id)
        .change_batch(batch)
        .send()
        .await
        .expect("ChangeResourceRecordSets");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    // Moved by hand: the record answers Ireland, and it lost its routing health check.
    assert_only_findings(
        &readiness,
        &[("dns primary record", Finding::DnsNotOnPrimary), ("dns answer", Finding::DnsNotOnPrimary)],
    );
}

#[tokio::test]
async fn a_missing_bucket_is_reported() {
    let (mut plan, clients) = seeded_estate().await;
    plan.s3_replication.push(BucketPair {
        source_bucket: format!("{}-nowhere", plan.s3_replication[0].source_bucket),
        replica_bucket: format!("{}-nowhere", plan.s3_replication[0].replica_bucket),
        replication_metrics: false,
        replication_rule: None,
    });
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(findings_of(&readiness, "s3 replication"), vec![None, Some(Finding::BucketMissing)]);
}

#[tokio::test]
async fn an_unseeded_estate_reports_every_missing_resource() {
    let plan = isolated_plan();
    let clients = emulator_clients(&plan).await;
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    let findings = readiness.findings();
    for expected in [
        Finding::PrimaryMissing,
        Finding::ReplicaMissing,
        Finding::ReplicaNotReplicating,
        Finding::StandbyInstanceMissing,
        Finding::AsgMissing,
        Finding::RoutingAlarmMissing,
        Finding::RoutingHealthCheckMissing,
        Finding::DetectionHealthCheckMissing,
        Finding::HostedZoneMissing,
        Finding::BucketMissing,
        Finding::ReportBucketMissing,
    ] {
        assert!(findings.contains(&expected), "{expected:?} missing from {findings:?}");
    }
}

#[tokio::test]
async fn seeding_is_refused_outside_the_emulator() {
    let plan = isolated_plan();
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .endpoint_url("https://rds.eu-west-1.amazonaws.com")
        .build();
    let real = dr_core::aws::AwsClients::from_config(&shared, &plan.primary_region, &plan.dr_region);
    let err = seed(&real, &plan, SeedOptions::default()).await.expect_err("refused");
    assert_eq!(err.name(), "EmulatorOnly");
}
