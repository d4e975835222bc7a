//! `plan check`'s Route 53 rows: the hosted zone, the health check, the failover records and, for
//! the health-check-metric strategy, the alarm behind the PRIMARY's health check.

use aws_sdk_route53::types::ResourceRecordSetFailover;

use super::{Check, CheckRow, Finding, at};
use crate::aws::lookup::{failover_records, find_health_check, find_hosted_zone};
use crate::aws::{AwsClients, RegionClients};
use crate::error::DrError;
use crate::plan::{DnsStrategy, Plan, fqdn};

pub(super) async fn check_dns(clients: &AwsClients, plan: &Plan) -> Vec<CheckRow> {
    let dns = &plan.dns;
    let (zone, health_check) = tokio::join!(
        find_hosted_zone(&clients.route53, &dns.hosted_zone),
        find_health_check(&clients.route53, &dns.health_check)
    );
    let mut rows = Vec::new();
    let health_check_id = match health_check {
        Err(err) => {
            rows.push(CheckRow::failed(Check::HealthCheck, dns.health_check.clone(), &err));
            None
        }
        Ok(None) => {
            rows.push(CheckRow::not_ready(
                Check::HealthCheck,
                dns.health_check.clone(),
                Finding::HealthCheckMissing,
                "no Route53 health check has this Name tag",
            ));
            None
        }
        Ok(Some(id)) => {
            rows.push(CheckRow::ready(Check::HealthCheck, dns.health_check.clone(), format!("id {id}")));
            Some(id)
        }
    };
    let zone_id = match zone {
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
    let records = match failover_records(&clients.route53, &zone_id, plan).await {
        Err(err) => {
            rows.push(CheckRow::failed(Check::DnsRecord, dns.record.clone(), &err));
            return rows;
        }
        Ok(records) => records,
    };
    for (role, target) in
        [(ResourceRecordSetFailover::Primary, &dns.primary), (ResourceRecordSetFailover::Secondary, &dns.secondary)]
    {
        let resource = format!("{} {} {}", fqdn(&dns.record), role, target.set_identifier);
        let check = if role == ResourceRecordSetFailover::Primary {
            Check::DnsPrimaryRecord
        } else {
            Check::DnsSecondaryRecord
        };
        let Some(set) = records.iter().find(|set| set.failover() == Some(&role)) else {
            rows.push(CheckRow::not_ready(
                check,
                resource,
                Finding::RecordMissing,
                format!("no {role} failover record"),
            ));
            continue;
        };
        let values: Vec<&str> = set.resource_records().iter().map(|r| r.value()).collect();
        let expects_health_check = role == ResourceRecordSetFailover::Primary;
        if set.alias_target().is_some() {
            rows.push(CheckRow::not_ready(
                check,
                resource,
                Finding::RecordMisconfigured,
                "an alias record: the runbook moves plain records only (use a CNAME to the load balancer)",
            ));
        } else if values != [target.value.as_str()] {
            let finding = if expects_health_check { Finding::DnsNotOnPrimary } else { Finding::RecordMisconfigured };
            rows.push(CheckRow::not_ready(
                check,
                resource,
                finding,
                format!("answers {} instead of {}", values.join(", "), target.value),
            ));
        } else if set.set_identifier() != Some(target.set_identifier.as_str()) {
            rows.push(CheckRow::not_ready(
                check,
                resource,
                Finding::RecordMisconfigured,
                format!("set identifier is {}", set.set_identifier().unwrap_or("none")),
            ));
        } else if set.ttl() != Some(i64::from(dns.ttl_seconds)) {
            rows.push(CheckRow::not_ready(
                check,
                resource,
                Finding::RecordMisconfigured,
                format!("TTL is {:?} s, the plan says {} s", set.ttl(), dns.ttl_seconds),
            ));
        } else if expects_health_check
            && health_check_id.is_some()
            && set.health_check_id() != health_check_id.as_deref()
        {
            rows.push(CheckRow::not_ready(
                check,
                resource,
                Finding::RecordMisconfigured,
                format!("health check is {}, not {}", set.health_check_id().unwrap_or("none"), dns.health_check),
            ));
        } else {
            rows.push(CheckRow::ready(check, resource, format!("answers {}", target.value)));
        }
    }
    if let (DnsStrategy::HealthCheckMetric, Some(metric)) = (dns.strategy, &dns.failover_metric) {
        rows.push(check_failover_alarm(&clients.dr, &metric.alarm).await);
    }
    rows
}

/// For the health-check-metric strategy: the alarm behind the PRIMARY health check exists and
/// is not in ALARM (an ALARM means DNS already answers Ireland).
async fn check_failover_alarm(dr: &RegionClients, alarm: &str) -> CheckRow {
    const CHECK: Check = Check::FailoverAlarm;
    let resource = at(alarm, &dr.region);
    match dr.cloudwatch.describe_alarms().alarm_names(alarm).send().await {
        Err(err) => CheckRow::failed(CHECK, resource, &DrError::from_sdk("cloudwatch", "DescribeAlarms", err)),
        Ok(out) => match out.metric_alarms().first().and_then(|a| a.state_value()) {
            None => CheckRow::not_ready(CHECK, resource, Finding::FailoverAlarmMissing, "no such CloudWatch alarm"),
            Some(aws_sdk_cloudwatch::types::StateValue::Alarm) => CheckRow::not_ready(
                CHECK,
                resource,
                Finding::DnsNotOnPrimary,
                "in ALARM: the PRIMARY health check fails, DNS answers Ireland",
            ),
            Some(state) => CheckRow::ready(CHECK, resource, format!("{state}")),
        },
    }
}
