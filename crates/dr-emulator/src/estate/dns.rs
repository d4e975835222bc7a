//! The estate's traffic side, as the templates and the platform's own DNS would build it in AWS:
//!
//! - detection: an HTTPS health check on the Paris endpoint (template-us-east-1.yaml) and the
//!   trigger's alarms on its `HealthCheckStatus`, in us-east-1; the check is on no record;
//! - routing (the routing-health-check strategy): the routing alarm in the DR region over the
//!   runbook's metric, `TreatMissingData = ignore`, and the CLOUDWATCH_METRIC health check that
//!   follows it with `InsufficientDataHealthStatus = LastKnownStatus` (template.yaml);
//! - the hosted zone and the failover records: the PRIMARY (Paris) carries the routing health
//!   check (record-upsert: none), the SECONDARY (Ireland) none.
//!
//! Seeding puts traffic back on Paris: the routing metric is published at 0, as a failback does.

use aws_sdk_cloudwatch::types::{ComparisonOperator, Dimension, Statistic};
use aws_sdk_route53::types::{
    AlarmIdentifier, Change, ChangeAction, ChangeBatch, CloudWatchRegion, HealthCheckConfig, HealthCheckType,
    InsufficientDataHealthStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover, RrType, Tag as R53Tag,
    TagResourceType,
};
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{find_health_check, find_hosted_zone};
use dr_core::error::DrError;
use dr_core::plan::{Direction, DnsRecord, DnsStrategy, Plan, RecordTarget, Routing, fqdn};
use dr_core::runbook::dns::publish_routing;

use super::{missing, unique_suffix};

fn build_error(operation: &'static str) -> impl Fn(aws_sdk_route53::error::BuildError) -> DrError {
    move |e| DrError::request_build("route53", operation, e)
}

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
    let routing_check = match (dns.strategy, &dns.routing) {
        (DnsStrategy::RoutingHealthCheck, Some(routing)) => Some(seed_routing(clients, plan, routing).await?),
        _ => None,
    };
    let set = |record: &DnsRecord, role: ResourceRecordSetFailover, target: &RecordTarget, check: Option<&str>| {
        ResourceRecordSet::builder()
            .name(fqdn(&record.record))
            .r#type(RrType::from(record.record_type.as_str()))
            .set_identifier(&target.set_identifier)
            .failover(role)
            .ttl(i64::from(record.ttl_seconds))
            .resource_records(ResourceRecord::builder().value(&target.value).build().ok()?)
            .set_health_check_id(check.map(str::to_string))
            .build()
            .ok()
    };
    // Every record's PRIMARY carries the one routing health check.
    let changes: Option<Vec<Change>> = dns
        .records
        .iter()
        .flat_map(|record| {
            [
                set(record, ResourceRecordSetFailover::Primary, &record.primary, routing_check.as_deref()),
                set(record, ResourceRecordSetFailover::Secondary, &record.secondary, None),
            ]
        })
        .map(|set| Change::builder().action(ChangeAction::Upsert).resource_record_set(set?).build().ok())
        .collect();
    let batch = ChangeBatch::builder()
        .set_changes(changes)
        .comment("dr-orchestrator emulated estate")
        .build()
        .map_err(build_error("ChangeResourceRecordSets"))?;
    route53
        .change_resource_record_sets()
        .hosted_zone_id(&zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeResourceRecordSets", e))?;
    Ok(())
}

/// The routing alarm and health check (template.yaml creates both in AWS); traffic on Paris.
async fn seed_routing(clients: &AwsClients, plan: &Plan, routing: &Routing) -> Result<String, DrError> {
    put_routing_alarm(clients, plan, routing, "ignore").await?;
    publish_routing(clients, plan, routing, Direction::ToPrimary).await?;
    match find_health_check(&clients.route53, &routing.health_check).await? {
        Some(id) => Ok(id),
        None => {
            let name = &routing.health_check;
            create_routing_health_check(clients, plan, name, InsufficientDataHealthStatus::LastKnownStatus).await
        }
    }
}

/// The routing alarm as template.yaml defines it, with `treat_missing_data` (the template's is
/// `ignore`; a test puts another to show why).
pub async fn put_routing_alarm(
    clients: &AwsClients,
    plan: &Plan,
    routing: &Routing,
    treat_missing_data: &str,
) -> Result<(), DrError> {
    clients
        .routing
        .put_metric_alarm()
        .alarm_name(&routing.alarm)
        .alarm_description(format!("{}: traffic goes to the DR region while in ALARM (set by the runbook)", plan.name))
        .namespace(&routing.namespace)
        .metric_name(&routing.metric)
        .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
        .statistic(Statistic::Maximum)
        .period(60)
        .evaluation_periods(1)
        .threshold(1.0)
        .comparison_operator(ComparisonOperator::GreaterThanOrEqualToThreshold)
        .treat_missing_data(treat_missing_data)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricAlarm", e))?;
    Ok(())
}

/// A routing health check named `name` on the plan's routing alarm, with `insufficient` (the
/// template's is `LastKnownStatus`; a test creates another to show why); returns its id.
pub async fn create_routing_health_check(
    clients: &AwsClients,
    plan: &Plan,
    name: &str,
    insufficient: InsufficientDataHealthStatus,
) -> Result<String, DrError> {
    let alarm = plan.dns.routing.as_ref().map(|r| r.alarm.as_str()).unwrap_or_default();
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::CloudwatchMetric)
        .alarm_identifier(
            AlarmIdentifier::builder()
                .region(CloudWatchRegion::from(plan.dr_region.as_str()))
                .name(alarm)
                .build()
                .map_err(build_error("CreateHealthCheck"))?,
        )
        .insufficient_data_health_status(insufficient)
        .build()
        .map_err(build_error("CreateHealthCheck"))?;
    create_health_check(&clients.route53, name, config).await
}

/// The detection health check: HTTPS on the Paris endpoint (the first record's PRIMARY value, as
/// the detection stack's `PrimaryEndpoint`), attached to no record.
async fn seed_detection(clients: &AwsClients, plan: &Plan, name: &str) -> Result<String, DrError> {
    // The orchestrator's own account, whatever account the DNS section is in (`[accounts.dns]`).
    if let Some(id) = find_health_check(&clients.detection_route53, name).await? {
        return Ok(id);
    }
    let config = HealthCheckConfig::builder()
        .r#type(HealthCheckType::Https)
        .set_fully_qualified_domain_name(plan.dns.records.first().map(|record| record.primary.value.clone()))
        .port(443)
        .resource_path("/health")
        .request_interval(10)
        .failure_threshold(3)
        .build()
        .map_err(build_error("CreateHealthCheck"))?;
    create_health_check(&clients.detection_route53, name, config).await
}

/// Creates a health check and gives it its `Name` tag; returns its id.
async fn create_health_check(
    route53: &aws_sdk_route53::Client,
    name: &str,
    config: HealthCheckConfig,
) -> Result<String, DrError> {
    let created = route53
        .create_health_check()
        .caller_reference(format!("{name}-{}", unique_suffix()))
        .health_check_config(config)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "CreateHealthCheck", e))?;
    let id =
        created.health_check().map(|hc| hc.id().to_string()).ok_or_else(|| missing("health check", name, "global"))?;
    route53
        .change_tags_for_resource()
        .resource_type(TagResourceType::Healthcheck)
        .resource_id(&id)
        .add_tags(R53Tag::builder().key("Name").value(name).build())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeTagsForResource", e))?;
    Ok(id)
}

/// The detection health check and the trigger's alarms on its `HealthCheckStatus`, in us-east-1,
/// as the production account has them: unhealthy (Minimum < 1) in 3 consecutive minutes.
pub(crate) async fn seed_health_alarms(clients: &AwsClients, plan: &Plan) -> Result<(), DrError> {
    let Some(trigger) = &plan.trigger else { return Ok(()) };
    let health_check_id = seed_detection(clients, plan, &trigger.detection_health_check).await?;
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
