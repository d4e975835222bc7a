//! The estate's Route 53 side: the hosted zone, the failover records, the health check and the
//! trigger's alarms on it.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_route53::types::{
    AlarmIdentifier, Change, ChangeAction, ChangeBatch, CloudWatchRegion, HealthCheckConfig, HealthCheckType,
    InsufficientDataHealthStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType, Tag as R53Tag,
    TagResourceType,
};
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{find_health_check, find_hosted_zone};
use dr_core::error::DrError;
use dr_core::plan::{DnsStrategy, Plan, RecordTarget, fqdn};

use super::{missing, unique_suffix};

pub(crate) async fn seed_dns(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
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
    let record = |role: ResourceRecordSetFailover, target: &RecordTarget, health_check: Option<&str>| {
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
pub(crate) async fn seed_health_alarms(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
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
