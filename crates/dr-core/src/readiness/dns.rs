//! `plan check`'s traffic rows: where DNS sends users, and whether only the runbook can move it.
//!
//! Always (data plane, also on the failover path): the routing alarm in the DR region (exists,
//! `TreatMissingData = ignore`, not in ALARM) and the DNS answer for the record (a real query).
//! With [`Scope::Full`] (Route 53's control plane, us-east-1): the hosted zone, the failover
//! records (the PRIMARY carries the routing health check and nothing else, the SECONDARY none),
//! the routing health check (CLOUDWATCH_METRIC on the routing alarm, `InsufficientDataHealthStatus
//! = LastKnownStatus`) and the detection health check (exists, on no record). The record-upsert
//! strategy moves the record itself, so its record rows are read in both scopes.

use aws_sdk_cloudwatch::types::{MetricAlarm, StateValue};
use aws_sdk_route53::types::{
    HealthCheckType, InsufficientDataHealthStatus, ResourceRecordSet, ResourceRecordSetFailover,
};

use super::{Check, CheckRow, Finding, Scope, at};
use crate::aws::AwsClients;
use crate::aws::lookup::{describe_alarm, failover_records, find_health_check, find_hosted_zone};
use crate::error::DrError;
use crate::plan::{DnsRecord, DnsStrategy, Plan, Routing, fqdn};

pub(super) async fn check_dns(clients: &AwsClients, plan: &Plan, scope: Scope) -> Vec<CheckRow> {
    let mut rows = Vec::new();
    let routing = plan.dns.routing.as_ref().filter(|_| plan.dns.strategy == DnsStrategy::RoutingHealthCheck);
    if let Some(routing) = routing {
        rows.push(check_routing_alarm(&clients.routing, &clients.home.region, plan, routing).await);
    }
    if scope == Scope::Full || plan.dns.strategy == DnsStrategy::RecordUpsert {
        rows.extend(check_records(clients, plan, routing, scope).await);
    }
    for record in &plan.dns.records {
        rows.push(check_answer(clients, plan, record).await);
    }
    rows
}

/// The routing alarm: exists, watches the routing metric of this plan, keeps its state when data
/// stops (`TreatMissingData = ignore`), and is not in ALARM (which sends traffic to the DR region).
async fn check_routing_alarm(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    home: &str,
    plan: &Plan,
    routing: &Routing,
) -> CheckRow {
    const CHECK: Check = Check::RoutingAlarm;
    let resource = at(&routing.alarm, home);
    let alarm = match describe_alarm(cloudwatch, &routing.alarm).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(None) => {
            return CheckRow::not_ready(CHECK, resource, Finding::RoutingAlarmMissing, "no such CloudWatch alarm");
        }
        Ok(Some(alarm)) => alarm,
    };
    if let Some(problem) = routing_alarm_problem(&alarm, plan, routing) {
        return CheckRow::not_ready(CHECK, resource, Finding::RoutingAlarmMisconfigured, problem);
    }
    // In ALARM the routing health check fails and DNS answers Ireland: where a reversed plan
    // (Ireland primary, `Plan::facing`) must keep it, and a plan as written must not.
    let on_ireland = alarm.state_value() == Some(&StateValue::Alarm);
    let state = alarm.state_value().map_or("unknown", |s| s.as_str());
    if on_ireland == plan.reversed {
        CheckRow::ready(CHECK, resource, format!("{state}: traffic stays on the primary ({})", plan.primary_region))
    } else {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::DnsNotOnPrimary,
            format!("{state}: DNS sends traffic to {}, not the primary {}", plan.dr_region, plan.primary_region),
        )
    }
}

/// What is wrong with the routing alarm's definition, if anything.
pub fn routing_alarm_problem(alarm: &MetricAlarm, plan: &Plan, routing: &Routing) -> Option<String> {
    let dimension_ok = alarm.dimensions().iter().any(|d| d.name() == Some("Plan") && d.value() == Some(&plan.name));
    if alarm.namespace() != Some(routing.namespace.as_str())
        || alarm.metric_name() != Some(routing.metric.as_str())
        || !dimension_ok
    {
        return Some(format!(
            "watches {}/{} {:?}, not {}/{} Plan={}",
            alarm.namespace().unwrap_or("?"),
            alarm.metric_name().unwrap_or("?"),
            alarm
                .dimensions()
                .iter()
                .map(|d| format!("{}={}", d.name().unwrap_or("?"), d.value().unwrap_or("?")))
                .collect::<Vec<_>>(),
            routing.namespace,
            routing.metric,
            plan.name
        ));
    }
    match alarm.treat_missing_data() {
        Some("ignore") => None,
        other => Some(format!(
            "TreatMissingData is {}: when the runbook's datapoint ages out the alarm leaves ALARM and traffic \
             can go back to the primary by itself; set it to ignore",
            other.unwrap_or("missing (the default)")
        )),
    }
}

async fn check_answer(clients: &AwsClients, plan: &Plan, dns: &DnsRecord) -> CheckRow {
    const CHECK: Check = Check::DnsAnswer;
    let resource = format!("{} {}", fqdn(&dns.record), dns.record_type);
    let values = match clients.dns.answer(&dns.record, &dns.record_type).await {
        Err(err) => return CheckRow::failed(CHECK, resource, &err),
        Ok(values) => values,
    };
    let answers = |target: &str| values.iter().any(|v| fqdn(v) == fqdn(target));
    let (serving, moved) = (plan.serving_target(dns), plan.target_after_move(dns));
    if answers(&serving.value) {
        CheckRow::ready(CHECK, resource, format!("answers {} (the primary)", serving.value))
    } else if answers(&moved.value) {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::DnsNotOnPrimary,
            format!("answers {} (the DR region)", moved.value),
        )
    } else if values.is_empty() {
        CheckRow::not_ready(CHECK, resource, Finding::RecordMissing, "DNS has no answer")
    } else {
        CheckRow::not_ready(
            CHECK,
            resource,
            Finding::RecordMisconfigured,
            format!("answers {}, neither the primary nor the DR value", values.join(", ")),
        )
    }
}

/// A health check found by its `Name` tag: its id, or the row saying why there is none.
async fn health_check_id(
    route53: &aws_sdk_route53::Client,
    check: Check,
    name: &str,
    missing: Finding,
) -> Result<String, CheckRow> {
    match find_health_check(route53, name).await {
        Err(err) => Err(CheckRow::failed(check, name, &err)),
        Ok(None) => Err(CheckRow::not_ready(check, name, missing, "no Route 53 health check has this Name tag")),
        Ok(Some(id)) => Ok(id),
    }
}

/// The control-plane rows: zone, health checks, records.
async fn check_records(clients: &AwsClients, plan: &Plan, routing: Option<&Routing>, scope: Scope) -> Vec<CheckRow> {
    let dns = &plan.dns;
    let mut rows = Vec::new();
    let mut routing_id = None;
    if let Some(routing) = routing {
        match health_check_id(
            &clients.route53,
            Check::RoutingHealthCheck,
            &routing.health_check,
            Finding::RoutingHealthCheckMissing,
        )
        .await
        {
            Err(row) => rows.push(row),
            Ok(id) => {
                rows.push(check_routing_health_check(clients, routing, &id).await);
                routing_id = Some(id);
            }
        }
    }
    let mut detection_id = None;
    if let (Scope::Full, Some(trigger)) = (scope, &plan.trigger) {
        let name = &trigger.detection_health_check;
        // The detection health check is the orchestrator's (its alarm starts the trigger), whatever
        // account the DNS section is in.
        let found = health_check_id(
            &clients.detection_route53,
            Check::DetectionHealthCheck,
            name,
            Finding::DetectionHealthCheckMissing,
        );
        match found.await {
            Err(row) => rows.push(row),
            Ok(id) => detection_id = Some(id),
        }
    }
    let zone_id = match find_hosted_zone(&clients.route53, &dns.hosted_zone).await {
        Err(err) => {
            rows.push(CheckRow::failed(Check::HostedZone, dns.hosted_zone.clone(), &err));
            return rows;
        }
        Ok(None) => {
            rows.push(CheckRow::not_ready(
                Check::HostedZone,
                dns.hosted_zone.clone(),
                Finding::HostedZoneMissing,
                "no public hosted zone with this name",
            ));
            return rows;
        }
        Ok(Some(id)) => id,
    };
    let mut records = Vec::with_capacity(dns.records.len());
    for record in &dns.records {
        match failover_records(&clients.route53, &zone_id, record).await {
            Err(err) => rows.push(CheckRow::failed(Check::DnsRecord, record.record.clone(), &err)),
            Ok(sets) => records.push((record, sets)),
        }
    }
    if let Some(detection_id) = &detection_id {
        let carried_by: Vec<String> = records
            .iter()
            .flat_map(|(_, sets)| sets)
            .filter(|set| set.health_check_id() == Some(detection_id.as_str()))
            .map(|set| {
                let role = set.failover().map_or("", |f| f.as_str());
                format!("{} {role} {}", fqdn(set.name()), set.set_identifier().unwrap_or(""))
            })
            .collect();
        let name = plan.trigger.as_ref().map(|t| t.detection_health_check.clone()).unwrap_or_default();
        rows.push(if carried_by.is_empty() {
            CheckRow::ready(Check::DetectionHealthCheck, name, format!("id {detection_id}, on no record"))
        } else {
            CheckRow::not_ready(
                Check::DetectionHealthCheck,
                name,
                Finding::DetectionCheckOnRecord,
                format!(
                    "id {detection_id} is on the {} record: Route 53 moves traffic as soon as it fails, before the \
                     runbook, and back when it recovers",
                    carried_by.join(", ")
                ),
            )
        });
    }
    for (record, sets) in &records {
        for role in [ResourceRecordSetFailover::Primary, ResourceRecordSetFailover::Secondary] {
            let expected_check = if role == ResourceRecordSetFailover::Primary { routing_id.as_deref() } else { None };
            rows.push(check_record(plan, record, sets, role, expected_check, detection_id.as_deref()));
        }
    }
    rows
}

fn check_record(
    plan: &Plan,
    dns: &DnsRecord,
    records: &[ResourceRecordSet],
    role: ResourceRecordSetFailover,
    expected_check: Option<&str>,
    detection_id: Option<&str>,
) -> CheckRow {
    let (check, target) = match role {
        ResourceRecordSetFailover::Primary => (Check::DnsPrimaryRecord, &dns.primary),
        _ => (Check::DnsSecondaryRecord, &dns.secondary),
    };
    let resource = format!("{} {} {}", fqdn(&dns.record), role, target.set_identifier);
    let Some(set) = records.iter().find(|set| set.failover() == Some(&role)) else {
        return CheckRow::not_ready(check, resource, Finding::RecordMissing, format!("no {role} failover record"));
    };
    let values: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
    let misconfigured =
        |detail: String| CheckRow::not_ready(check, resource.clone(), Finding::RecordMisconfigured, detail);
    if set.alias_target().is_some() {
        return misconfigured(
            "an alias record: the runbook works with plain records (a CNAME to the load balancer)".into(),
        );
    }
    // With record-upsert the PRIMARY record answers the serving region: Paris's value as
    // written, Ireland's while Ireland is primary (a failover moved it). The routing strategy
    // never changes the record.
    let upserted = role == ResourceRecordSetFailover::Primary && plan.dns.strategy == DnsStrategy::RecordUpsert;
    let expected = if upserted { plan.serving_target(dns) } else { target };
    if values != [expected.value.as_str()] {
        // The PRIMARY with the other region's value: an earlier record-upsert move moved it.
        let other = if expected.value == dns.primary.value { &dns.secondary } else { &dns.primary };
        let finding = if role == ResourceRecordSetFailover::Primary && values == [other.value.as_str()] {
            Finding::DnsNotOnPrimary
        } else {
            Finding::RecordMisconfigured
        };
        return CheckRow::not_ready(
            check,
            resource,
            finding,
            format!("answers {} instead of {}", values.join(", "), expected.value),
        );
    }
    if set.set_identifier() != Some(target.set_identifier.as_str()) {
        return misconfigured(format!("set identifier is {}", set.set_identifier().unwrap_or("none")));
    }
    if set.ttl() != Some(i64::from(dns.ttl_seconds)) {
        return misconfigured(format!("TTL is {:?} s, the plan says {} s", set.ttl(), dns.ttl_seconds));
    }
    let carried = set.health_check_id();
    if detection_id.is_some() && carried == detection_id {
        return CheckRow::not_ready(
            check,
            resource,
            Finding::DetectionCheckOnRecord,
            "carries the detection health check: Route 53 would move traffic before the runbook",
        );
    }
    if carried != expected_check {
        let wanted =
            expected_check.map_or("no health check".to_string(), |id| format!("the routing health check {id}"));
        return misconfigured(format!("health check is {}, it must carry {wanted}", carried.unwrap_or("none")));
    }
    CheckRow::ready(check, resource, format!("answers {}", target.value))
}

/// The routing health check: CLOUDWATCH_METRIC on the routing alarm in the home region, keeping its
/// last known status when the alarm has no data.
async fn check_routing_health_check(clients: &AwsClients, routing: &Routing, id: &str) -> CheckRow {
    const CHECK: Check = Check::RoutingHealthCheck;
    let resource = format!("{} ({id})", routing.health_check);
    let found = clients.route53.get_health_check().health_check_id(id).send().await;
    let config = match found {
        Err(err) => return CheckRow::failed(CHECK, resource, &DrError::from_sdk("route53", "GetHealthCheck", err)),
        Ok(out) => out.health_check().and_then(|hc| hc.health_check_config()).cloned(),
    };
    let Some(config) = config else {
        return CheckRow::not_ready(CHECK, resource, Finding::RoutingHealthCheckMissing, "no configuration");
    };
    let misconfigured =
        |detail: String| CheckRow::not_ready(CHECK, resource.clone(), Finding::RoutingHealthCheckMisconfigured, detail);
    if config.r#type() != &HealthCheckType::CloudwatchMetric {
        return misconfigured(format!("type {}: a routing health check is CLOUDWATCH_METRIC", config.r#type()));
    }
    let alarm = config.alarm_identifier();
    // The routing alarm lives in the deployment's region whichever region is primary now.
    let home = clients.home.region.as_str();
    if alarm.map(|a| (a.region().as_str(), a.name())) != Some((home, routing.alarm.as_str())) {
        return misconfigured(format!(
            "follows {}, not the routing alarm {} in {home}",
            alarm.map_or("no alarm".to_string(), |a| format!("{} in {}", a.name(), a.region())),
            routing.alarm,
        ));
    }
    match config.insufficient_data_health_status() {
        Some(InsufficientDataHealthStatus::LastKnownStatus) => {
            CheckRow::ready(CHECK, resource, format!("CLOUDWATCH_METRIC on {}, LastKnownStatus", routing.alarm))
        }
        other => misconfigured(format!(
            "InsufficientDataHealthStatus is {}: when the alarm has no data Route 53 would decide the record's health \
             by itself; set LastKnownStatus",
            other.map_or("not set", |s| s.as_str())
        )),
    }
}
