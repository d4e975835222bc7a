//! Flip DNS to Ireland, last, and verify that the record now answers Ireland.
//!
//! Two strategies (the plan's `dns.strategy`, trade-offs in docs/plan.md):
//! - `record-upsert`: UPSERT the PRIMARY failover record to Ireland's value (Route53 control
//!   plane, us-east-1), then wait for the change to be INSYNC;
//! - `health-check-metric`: publish the failover metric in the DR region; its alarm turns the
//!   PRIMARY record's CLOUDWATCH_METRIC health check unhealthy and Route53's data plane answers
//!   the SECONDARY. No Route53 API call.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StateValue};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover,
};

use super::status_record;
use crate::aws::AwsClients;
use crate::aws::lookup::{failover_records, find_hosted_zone};
use crate::error::DrError;
use crate::plan::{DnsStrategy, FailoverMetric, Plan};
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer};
use crate::time;

/// Share of the RTO the DNS change may take to be in sync before `StepTimedOut`.
pub const DNS_SHARE_OF_RTO: f64 = 0.125;

/// Fact key of the Route53 change id in the flip's record.
pub const CHANGE_ID_FACT: &str = "route53_change_id";

/// What Route53 answers for a failover pair: the PRIMARY's value while its health check is
/// healthy, else the SECONDARY's.
pub fn failover_answer<'a>(primary_value: &'a str, secondary_value: &'a str, primary_healthy: bool) -> &'a str {
    if primary_healthy { primary_value } else { secondary_value }
}

struct FailoverPair {
    zone_id: String,
    primary: ResourceRecordSet,
    secondary: ResourceRecordSet,
}

fn value_of(set: &ResourceRecordSet) -> &str {
    set.resource_records().first().map(|r| r.value()).unwrap_or_default()
}

async fn failover_pair(clients: &AwsClients, plan: &Plan) -> Result<FailoverPair, DrError> {
    let dns = &plan.dns;
    let zone_id = find_hosted_zone(&clients.route53, &dns.hosted_zone).await?.ok_or_else(|| {
        DrError::ResourceNotFound { kind: "hosted zone", id: dns.hosted_zone.clone(), region: "global".to_string() }
    })?;
    let records = failover_records(&clients.route53, &zone_id, plan).await?;
    let find = |role: ResourceRecordSetFailover| {
        records.iter().find(|set| set.failover() == Some(&role)).cloned().ok_or_else(|| DrError::ResourceNotFound {
            kind: "failover record",
            id: format!("{} {role}", dns.record),
            region: "global".to_string(),
        })
    };
    Ok(FailoverPair {
        zone_id,
        primary: find(ResourceRecordSetFailover::Primary)?,
        secondary: find(ResourceRecordSetFailover::Secondary)?,
    })
}

fn answers(pair: &FailoverPair, primary_healthy: bool) -> Vec<ResourceState> {
    let answer = failover_answer(value_of(&pair.primary), value_of(&pair.secondary), primary_healthy);
    vec![ResourceState { resource: pair.primary.name().to_string(), state: format!("answers {answer}") }]
}

/// Moves the record to Ireland; already there: no call.
pub async fn flip_dns(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("flip-dns", clients);
    let plan = &state.plan;
    match (plan.dns.strategy, &plan.dns.failover_metric) {
        (DnsStrategy::HealthCheckMetric, Some(metric)) => flip_by_metric(timer, clients, state, metric).await,
        _ => flip_by_upsert(timer, clients, state).await,
    }
}

async fn flip_by_upsert(
    timer: StepTimer<'_>,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let pair = failover_pair(clients, plan).await?;
    let ireland = plan.dns.secondary.value.as_str();
    if value_of(&pair.primary) == ireland {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("PRIMARY record already answers {ireland}"),
            answers(&pair, true),
        ));
    }
    if state.is_dry_run() {
        let now = format!("PRIMARY answers {}", value_of(&pair.primary));
        let resources = vec![ResourceState { resource: pair.primary.name().to_string(), state: now }];
        return Ok(timer.would(format!("UPSERT the PRIMARY record {} to {ireland}", pair.primary.name()), resources));
    }
    let moved = ResourceRecordSet::builder()
        .name(pair.primary.name())
        .r#type(pair.primary.r#type().clone())
        .set_set_identifier(pair.primary.set_identifier().map(str::to_string))
        .failover(ResourceRecordSetFailover::Primary)
        .set_ttl(pair.primary.ttl())
        .set_health_check_id(pair.primary.health_check_id().map(str::to_string))
        .resource_records(
            ResourceRecord::builder()
                .value(ireland)
                .build()
                .map_err(|e| DrError::request_build("route53", "ChangeResourceRecordSets", e))?,
        )
        .build()
        .map_err(|e| DrError::request_build("route53", "ChangeResourceRecordSets", e))?;
    let batch = ChangeBatch::builder()
        .comment(format!("dr-orchestrator failover {} run {}", plan.name, state.run.id))
        .changes(
            Change::builder()
                .action(ChangeAction::Upsert)
                .resource_record_set(moved)
                .build()
                .map_err(|e| DrError::request_build("route53", "ChangeResourceRecordSets", e))?,
        )
        .build()
        .map_err(|e| DrError::request_build("route53", "ChangeResourceRecordSets", e))?;
    let change = clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&pair.zone_id)
        .change_batch(batch)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeResourceRecordSets", e))?;
    let change_id = change.change_info().map(|c| c.id().to_string()).unwrap_or_default();
    tracing::info!(plan = %plan.name, step = "flip-dns", resource = %plan.dns.record, change_id = %change_id, "PRIMARY record moved to Ireland");
    let resources =
        vec![ResourceState { resource: pair.primary.name().to_string(), state: format!("PRIMARY set to {ireland}") }];
    let mut record = timer.finish(
        Outcome::Changed,
        true,
        format!("PRIMARY record UPSERT to {ireland}, change {change_id}"),
        resources,
    );
    record.facts.insert(CHANGE_ID_FACT.to_string(), change_id);
    Ok(record)
}

async fn alarm_state(clients: &AwsClients, metric: &FailoverMetric) -> Result<Option<StateValue>, DrError> {
    let out = clients
        .dr
        .cloudwatch
        .describe_alarms()
        .alarm_names(&metric.alarm)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "DescribeAlarms", e))?;
    Ok(out.metric_alarms().first().and_then(|a| a.state_value()).cloned())
}

async fn flip_by_metric(
    timer: StepTimer<'_>,
    clients: &AwsClients,
    state: &RunbookState,
    metric: &FailoverMetric,
) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    match alarm_state(clients, metric).await? {
        None => {
            return Err(DrError::ResourceNotFound {
                kind: "CloudWatch alarm",
                id: metric.alarm.clone(),
                region: plan.dr_region.clone(),
            });
        }
        Some(StateValue::Alarm) => {
            let resources = vec![ResourceState { resource: metric.alarm.clone(), state: "ALARM".to_string() }];
            return Ok(timer.finish(
                Outcome::AlreadyDone,
                true,
                format!("{} already in ALARM: DNS answers Ireland", metric.alarm),
                resources,
            ));
        }
        Some(current) => {
            if state.is_dry_run() {
                let resources =
                    vec![ResourceState { resource: metric.alarm.clone(), state: current.as_str().to_string() }];
                let change = format!(
                    "publish {}/{} = 1 in {} to move {} to ALARM",
                    metric.namespace, metric.metric, plan.dr_region, metric.alarm
                );
                return Ok(timer.would(change, resources));
            }
        }
    }
    let datum = MetricDatum::builder()
        .metric_name(&metric.metric)
        .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
        .timestamp(time::to_smithy(time::now()))
        .value(1.0)
        .build();
    clients
        .dr
        .cloudwatch
        .put_metric_data()
        .namespace(&metric.namespace)
        .metric_data(datum)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    tracing::info!(plan = %plan.name, step = "flip-dns", resource = %metric.alarm, "failover metric published");
    let resources = vec![ResourceState {
        resource: format!("{}/{}", metric.namespace, metric.metric),
        state: "1 (fail over)".to_string(),
    }];
    Ok(timer.finish(
        Outcome::Changed,
        true,
        format!("published {}/{} = 1 in {}", metric.namespace, metric.metric, plan.dr_region),
        resources,
    ))
}

/// Ready when the change is INSYNC (record-upsert) or the alarm is in ALARM
/// (health-check-metric), and the failover pair now answers Ireland.
pub async fn dns_status(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("flip-dns-status", clients);
    let plan = &state.plan;
    let pair = failover_pair(clients, plan).await?;
    let (in_sync, primary_healthy, how) = match (plan.dns.strategy, &plan.dns.failover_metric) {
        (DnsStrategy::HealthCheckMetric, Some(metric)) => {
            let alarm = alarm_state(clients, metric).await?;
            let failing = alarm == Some(StateValue::Alarm);
            (
                true,
                !failing,
                format!("alarm {} is {}", metric.alarm, alarm.map_or("missing".to_string(), |s| s.to_string())),
            )
        }
        _ => {
            let change_id =
                state.step(StepKey::FlipDns).and_then(|r| r.facts.get(CHANGE_ID_FACT)).filter(|id| !id.is_empty());
            let in_sync = match change_id {
                None => true,
                Some(id) => {
                    let change = clients
                        .route53
                        .get_change()
                        .id(id.trim_start_matches("/change/"))
                        .send()
                        .await
                        .map_err(|e| DrError::from_sdk("route53", "GetChange", e))?;
                    change.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync)
                }
            };
            // Once the PRIMARY carries Ireland's value the pair answers Ireland whether or not its
            // health check passes (an unhealthy PRIMARY falls to the SECONDARY, Ireland too), so the
            // healthy case is the one to verify.
            (in_sync, true, format!("change {}", if in_sync { "INSYNC" } else { "PENDING" }))
        }
    };
    let answer = failover_answer(value_of(&pair.primary), value_of(&pair.secondary), primary_healthy).to_string();
    let on_ireland = answer == plan.dns.secondary.value;
    let detail = format!("{how}; {} answers {answer}", plan.dns.record);
    status_record(
        timer,
        state,
        StepKey::DnsStatus,
        DNS_SHARE_OF_RTO,
        in_sync && on_ireland,
        detail,
        answers(&pair, primary_healthy),
    )
}
