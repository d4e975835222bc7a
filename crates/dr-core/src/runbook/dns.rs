//! Move traffic to Ireland, last (after the database and compute are ready), and verify that DNS
//! answers Ireland; in a failback (the plan reversed, `Plan::facing`), back to Paris the same way. Two strategies (the plan's `dns.strategy`; trade-offs in docs/plan.md):
//!
//! - `routing-health-check` (the default): publish the routing metric (1) in the DR region; the
//!   routing alarm moves to ALARM, the routing health check on the PRIMARY record fails, and
//!   Route 53 answers the SECONDARY. Verified by the alarm's state and a DNS answer; the metric
//!   is published on every poll until DNS answers (Route 53 follows the alarm's data stream, and
//!   its checkers can miss a datapoint). No Route 53 API call at all. Traffic stays there until the runbook publishes 0 (failback): the alarm
//!   keeps its state when data stops, the health check keeps its last known status.
//! - `record-upsert`: UPSERT the PRIMARY record to Ireland's value (Route 53's control plane, in
//!   us-east-1), wait for the change to be INSYNC and for DNS to answer Ireland.

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StateValue};
use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord, ResourceRecordSet, ResourceRecordSetFailover,
};

use super::status_record;
use crate::aws::lookup::{describe_alarm, failover_records, find_hosted_zone};
use crate::aws::metrics::{datapoints, per_minute};
use crate::aws::{AwsClients, once};
use crate::error::DrError;
use crate::plan::{Direction, DnsStrategy, Plan, Routing, fqdn};
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};
use crate::time::{self, Timestamp};

/// Fact key of the Route53 change id in the flip's record (record-upsert).
pub const CHANGE_ID_FACT: &str = "route53_change_id";

fn routing(plan: &Plan) -> Option<&Routing> {
    plan.dns.routing.as_ref().filter(|_| plan.dns.strategy == DnsStrategy::RoutingHealthCheck)
}

/// What DNS answers for each of the plan's records now: whether it answers the target of the move,
/// and what it answers as a resource state.
async fn answered(clients: &AwsClients, plan: &Plan, when: &str) -> Result<Vec<(bool, ResourceState)>, DrError> {
    let mut seen = Vec::with_capacity(plan.dns.records.len());
    for record in &plan.dns.records {
        let values = clients.dns.answer(&record.record, &record.record_type).await?;
        let shown = if values.is_empty() { "nothing".to_string() } else { values.join(", ") };
        let on_target = answers(&values, &plan.target_after_move(record).value);
        seen.push((on_target, ResourceState::new(fqdn(&record.record), format!("{when}: answers {shown}"))));
    }
    Ok(seen)
}

fn answers(values: &[String], target: &str) -> bool {
    values.iter().any(|value| fqdn(value) == fqdn(target))
}

/// The routing alarm's state once a move of `plan` has sent traffic: ALARM after a failover, OK
/// after a failback.
fn moved_alarm_state(plan: &Plan) -> StateValue {
    match plan.move_direction() {
        Direction::ToDr => StateValue::Alarm,
        Direction::ToPrimary => StateValue::Ok,
    }
}

/// Moves traffic to the plan's DR region (Paris in a failback); already there: no call.
pub async fn flip_dns(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("flip-dns", clients);
    match routing(&state.plan) {
        Some(routing) => flip_by_routing(timer, clients, state, routing).await,
        None => flip_by_upsert(timer, clients, state).await,
    }
}

async fn routing_alarm(clients: &AwsClients, routing: &Routing) -> Result<Option<StateValue>, DrError> {
    let alarm = describe_alarm(&clients.routing, &routing.alarm).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "CloudWatch alarm",
        id: routing.alarm.clone(),
        region: clients.home.region.clone(),
    })?;
    Ok(alarm.state_value().cloned())
}

/// Publishes the routing metric: where Route 53 sends traffic once the alarm has evaluated it.
pub async fn publish_routing(
    clients: &AwsClients,
    plan: &Plan,
    routing: &Routing,
    to: Direction,
) -> Result<(), DrError> {
    let datum = MetricDatum::builder()
        .metric_name(&routing.metric)
        .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
        .timestamp(time::to_smithy(time::now()))
        .value(to.metric_value())
        .build();
    clients
        .routing
        .put_metric_data()
        .namespace(&routing.namespace)
        .metric_data(datum)
        .customize()
        .config_override(once::cloudwatch())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    Ok(())
}

/// Whether the routing metric was published towards `to` since `since`: a publication whose
/// answer was lost took effect all the same, and is not sent twice. CloudWatch makes a datapoint
/// readable within seconds, occasionally minutes; one not readable yet is published again: the
/// same value, so the alarm sees the same maximum.
pub async fn routing_published_since(
    clients: &AwsClients,
    plan: &Plan,
    routing: &Routing,
    to: Direction,
    since: Timestamp,
) -> Result<bool, DrError> {
    // Per minute, the extreme in the direction of `to`: one publication in the minute shows.
    let stat = if to == Direction::ToDr { "Maximum" } else { "Minimum" };
    let metric = per_minute(&routing.namespace, &routing.metric, &[("Plan", &plan.name)], stat);
    let start = since - chrono::Duration::seconds(60);
    let points = datapoints(&clients.routing, metric, start, time::now() + chrono::Duration::seconds(60)).await?;
    Ok(points.iter().any(|(at, value)| *at + chrono::Duration::seconds(60) > since && *value == to.metric_value()))
}

async fn flip_by_routing(
    timer: StepTimer<'_>,
    clients: &AwsClients,
    state: &RunbookState,
    routing: &Routing,
) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let (to, moved) = (plan.move_direction(), moved_alarm_state(plan));
    let alarm = routing_alarm(clients, routing).await?;
    let alarm_state = ResourceState::new(
        format!("{} ({})", routing.alarm, clients.home.region),
        alarm.as_ref().map_or("unknown", |s| s.as_str()).to_string(),
    );
    let mut resources = vec![alarm_state];
    resources.extend(answered(clients, plan, "before the flip").await?.into_iter().map(|(_, seen)| seen));
    if alarm.as_ref() == Some(&moved) {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("routing alarm {} already {}: traffic goes to {}", routing.alarm, moved.as_str(), plan.dr_region),
            resources,
        ));
    }
    let change = format!(
        "publish {}/{} = {} (Plan={}) in {}",
        routing.namespace,
        routing.metric,
        to.metric_value(),
        plan.name,
        clients.home.region
    );
    if state.is_dry_run() {
        return Ok(timer.would(change, resources));
    }
    if routing_published_since(clients, plan, routing, to, state.run.triggered_at).await? {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("routing metric already published by this run; alarm {} not evaluated yet", routing.alarm),
            resources,
        ));
    }
    publish_routing(clients, plan, routing, to).await?;
    tracing::info!(plan = %plan.name, step = "flip-dns", resource = %routing.alarm, to = %plan.dr_region, "routing metric published");
    Ok(timer.finish(Outcome::Changed, true, change.replacen("publish", "published", 1), resources))
}

/// The PRIMARY failover record of each of the plan's records, as Route 53 holds them, in the
/// plan's order, and their zone.
struct Primaries {
    zone_id: String,
    records: Vec<ResourceRecordSet>,
}

async fn primaries(clients: &AwsClients, plan: &Plan) -> Result<Primaries, DrError> {
    let dns = &plan.dns;
    let zone_id = find_hosted_zone(&clients.route53, &dns.hosted_zone).await?.ok_or_else(|| {
        DrError::ResourceNotFound { kind: "hosted zone", id: dns.hosted_zone.clone(), region: "global".to_string() }
    })?;
    let mut records = Vec::with_capacity(dns.records.len());
    for record in &dns.records {
        let sets = failover_records(&clients.route53, &zone_id, record).await?;
        let primary = sets.into_iter().find(|set| set.failover() == Some(&ResourceRecordSetFailover::Primary));
        records.push(primary.ok_or_else(|| DrError::ResourceNotFound {
            kind: "failover record",
            id: format!("{} PRIMARY", record.record),
            region: "global".to_string(),
        })?);
    }
    Ok(Primaries { zone_id, records })
}

/// Each PRIMARY failover record's value as Route 53 holds it now (a record-upsert move changes
/// them), in the plan's order.
pub async fn primary_record_values(clients: &AwsClients, plan: &Plan) -> Result<Vec<String>, DrError> {
    Ok(primaries(clients, plan).await?.records.iter().map(|set| value_of(set).to_string()).collect())
}

fn value_of(set: &ResourceRecordSet) -> &str {
    set.resource_records().first().map(|r| r.value()).unwrap_or_default()
}

/// UPSERTs every PRIMARY record not yet at its target, in one change batch (Route 53 applies a
/// batch whole or not at all: the records move together).
async fn flip_by_upsert(
    timer: StepTimer<'_>,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<StepRecord, DrError> {
    let plan = &state.plan;
    let found = primaries(clients, plan).await?;
    // The DR region's value in a failover, the primary's own back in a failback.
    let moves: Vec<(&ResourceRecordSet, &str)> = found
        .records
        .iter()
        .zip(&plan.dns.records)
        .map(|(set, record)| (set, plan.target_after_move(record).value.as_str()))
        .collect();
    let resources: Vec<ResourceState> = moves
        .iter()
        .map(|(set, _)| ResourceState::new(set.name(), format!("PRIMARY answers {}", value_of(set))))
        .collect();
    let to_move: Vec<&(&ResourceRecordSet, &str)> =
        moves.iter().filter(|(set, target)| value_of(set) != *target).collect();
    if to_move.is_empty() {
        let detail = format!("every PRIMARY record already answers its {} value", plan.dr_name());
        return Ok(timer.finish(Outcome::AlreadyDone, true, detail, resources));
    }
    let described =
        to_move.iter().map(|(set, target)| format!("{} to {target}", set.name())).collect::<Vec<_>>().join(", ");
    if state.is_dry_run() {
        return Ok(timer.would(format!("UPSERT the PRIMARY record {described}"), resources));
    }
    let build = |e| DrError::request_build("route53", "ChangeResourceRecordSets", e);
    let mut changes = Vec::with_capacity(to_move.len());
    for (set, target) in &to_move {
        let moved = ResourceRecordSet::builder()
            .name(set.name())
            .r#type(set.r#type().clone())
            .set_set_identifier(set.set_identifier().map(str::to_string))
            .failover(ResourceRecordSetFailover::Primary)
            .set_ttl(set.ttl())
            .set_health_check_id(set.health_check_id().map(str::to_string))
            .resource_records(ResourceRecord::builder().value(*target).build().map_err(build)?)
            .build()
            .map_err(build)?;
        changes.push(Change::builder().action(ChangeAction::Upsert).resource_record_set(moved).build().map_err(build)?);
    }
    let batch = ChangeBatch::builder()
        .comment(format!("dr-orchestrator {} {} run {}", state.run.direction.move_name(), plan.name, state.run.id))
        .set_changes(Some(changes))
        .build()
        .map_err(build)?;
    let change = clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(&found.zone_id)
        .change_batch(batch)
        .customize()
        .config_override(once::route53())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("route53", "ChangeResourceRecordSets", e))?;
    let change_id = change.change_info().map(|c| c.id().to_string()).unwrap_or_default();
    tracing::info!(plan = %plan.name, step = "flip-dns", change_id = %change_id, "PRIMARY records moved: {described}");
    let moved: Vec<ResourceState> =
        moves.iter().map(|(set, target)| ResourceState::new(set.name(), format!("PRIMARY set to {target}"))).collect();
    let mut done =
        timer.finish(Outcome::Changed, true, format!("PRIMARY record UPSERT {described}, change {change_id}"), moved);
    done.facts.insert(CHANGE_ID_FACT.to_string(), change_id);
    Ok(done)
}

/// Ready when DNS answers the region moved to: with the routing strategy once the routing alarm
/// is in ALARM (OK after a failback; read in the home region); with record-upsert once the change
/// is INSYNC.
pub async fn dns_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("flip-dns-status", clients);
    let plan = &state.plan;
    let seen = answered(clients, plan, "now").await?;
    let on_target = seen.iter().all(|(on_target, _)| *on_target);
    let seen: Vec<ResourceState> = seen.into_iter().map(|(_, seen)| seen).collect();
    let (settled, how) = match routing(plan) {
        Some(routing) => {
            let alarm = routing_alarm(clients, routing).await?;
            let text = alarm.as_ref().map_or("unknown", |s| s.as_str());
            let moved = alarm == Some(moved_alarm_state(plan));
            let mut how = format!("routing alarm {} {text}", routing.alarm);
            if !on_target {
                // Published again on every poll until DNS answers the region moved to, whatever
                // the alarm's state: Route 53 judges the alarm's data stream, not its state, and
                // with LastKnownStatus a datapoint its checkers missed leaves the PRIMARY healthy
                // however long the alarm reads ALARM. And the alarm takes each minute's Maximum:
                // a failback's 0 published in the minute of the failover's 1 is hidden. A repeat
                // of the same value changes nothing.
                publish_routing(clients, plan, routing, plan.move_direction()).await?;
                how = format!("{how}; routing metric published again");
            }
            (moved, how)
        }
        None => {
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
            (in_sync, format!("change {}", if in_sync { "INSYNC" } else { "PENDING" }))
        }
    };
    let answers = seen.iter().map(|s| format!("{} {}", s.resource, s.state)).collect::<Vec<_>>().join("; ");
    let detail = match seen.as_slice() {
        [one] => format!("{how}; {}", one.state),
        _ => format!("{how}; {answers}"),
    };
    status_record(timer, state, StepKey::DnsStatus, settled && on_target, detail, seen)
}
