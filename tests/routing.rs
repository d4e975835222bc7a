//! Traffic moves to Ireland once, last, and never back by itself.
//!
//! The DNS answers here are asked of DNS (the emulator's DNS server answers as Route 53 would,
//! from the current state of every health check involved: moto evaluates neither health checks
//! nor alarms, so the local stack does). The detection health check that feeds the trigger is on
//! no record; the PRIMARY record carries the routing health check, which only the runbook moves.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::time::Duration;

use aws_sdk_route53::types::{
    Change, ChangeAction, ChangeBatch, InsufficientDataHealthStatus, ResourceRecord, ResourceRecordSet,
    ResourceRecordSetFailover, RrType,
};
use dr_core::aws::ApiCall;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::{find_health_check, find_hosted_zone};
use dr_core::aws::metrics::{datapoints, per_minute};
use dr_core::aws::objects::{get_json, put_json};
use dr_core::error::parse_input;
use dr_core::plan::{DnsStrategy, Plan, fqdn};
use dr_core::readiness::scheduled::{ReadinessSnapshot, run_scheduled_check, snapshot_key};
use dr_core::readiness::{Finding, Readiness, Scope, check_plan};
use dr_core::run::{RunStatus, StepKey};
use dr_core::runbook::report::RunReport;
use dr_core::store::PlanStatus;
use dr_core::time;
use dr_core::trigger::{Decision, handle_alarm_event};
use dr_emulator::control::{route53_answer, route53_misses_datapoints};
use dr_emulator::estate::{SeedOptions, create_routing_health_check, put_routing_alarm, seed};
use dr_emulator::outage::{Outage, simulate_outage, simulate_recovery};
use dr_tests::{
    emulator_clients, failover_input, failover_under_faults, is_route53_api, isolated_plan, recorded_executions,
    run_failover, seeded_estate, trigger_context, unique_suffix,
};

/// What DNS answers for the plan's record now.
async fn dns(clients: &AwsClients, plan: &Plan) -> String {
    let values =
        clients.dns.answer(&plan.dns.records[0].record, &plan.dns.records[0].record_type).await.expect("a DNS answer");
    assert_eq!(values.len(), 1, "{values:?}");
    values[0].clone()
}

fn finding_of(readiness: &Readiness, check: &str) -> Option<Finding> {
    readiness.rows.iter().find(|row| row.check.label() == check).and_then(|row| row.finding)
}

fn report(execution: &dr_tests::Execution) -> RunReport {
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    serde_json::from_value(execution.output.clone()).expect("the execution output is the run report")
}

#[tokio::test(flavor = "multi_thread")]
async fn paris_unhealthy_moves_nothing_until_the_runbook_flips_and_a_recovered_paris_gets_nothing_back() {
    let (plan, clients) = seeded_estate().await;
    let (paris, ireland) = (plan.dns.records[0].primary.value.clone(), plan.dns.records[0].secondary.value.clone());
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    assert_eq!(dns(&clients, &plan).await, paris);

    // Paris stops answering: its detection health check is unhealthy, the trigger's alarm is in
    // ALARM. The detection check is on no record: DNS still answers Paris.
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage simulated");
    assert_eq!(dns(&clients, &plan).await, paris, "an unhealthy Paris moves no traffic by itself");

    // The trigger confirms and starts the runbook; from the trigger to the report, no Route 53 API.
    let mark = clients.calls.mark();
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm event").expect("event")).await.expect("handled");
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    let executions = recorded_executions(&clients, &plan).await;
    let report = report(&run_failover(&executions[0].1));
    assert_eq!(report.head.status, RunStatus::Succeeded);
    let trigger_calls = clients.calls.since(mark);
    let step_calls: Vec<ApiCall> = report.steps.iter().flat_map(|s| s.calls.clone()).collect();
    assert!(!trigger_calls.is_empty() && !step_calls.is_empty());
    let route53: Vec<&ApiCall> = trigger_calls.iter().chain(&step_calls).filter(|c| is_route53_api(c)).collect();
    assert!(route53.is_empty(), "Route 53 API calls on the failover path: {route53:?}");
    assert!(
        step_calls.iter().any(|c| c.service == "CloudWatch" && c.operation == "PutMetricData"),
        "the flip publishes the routing metric: {step_calls:?}"
    );

    // DNS answered Paris until the flip (preflight's answer, the flip's "before"), Ireland after.
    let record = |key: StepKey| report.steps.iter().find(|s| report_key(s) == Some(key)).cloned();
    let preflight = record(StepKey::Preflight).expect("preflight");
    assert!(
        preflight.resources.iter().any(|r| r.resource.starts_with("dns answer") && r.state.contains(&paris)),
        "{:#?}",
        preflight.resources
    );
    let flip = record(StepKey::FlipDns).expect("flip");
    assert!(flip.resources.iter().any(|r| r.state.contains(&format!("before the flip: answers {paris}"))), "{flip:#?}");
    let status = record(StepKey::DnsStatus).expect("dns status");
    assert!(status.detail.contains(&format!("answers {ireland}")), "{status:#?}");
    assert_eq!(dns(&clients, &plan).await, ireland);
    assert_eq!(ctx.store.read_state(&plan.name).await.expect("state").state.status, PlanStatus::FailedOver);

    // Paris answers again: its detection check is healthy, the alarm OK. Traffic stays in Ireland.
    simulate_recovery(&clients, &plan).await.expect("Paris recovers");
    assert_eq!(dns(&clients, &plan).await, ireland, "a recovered Paris gets no traffic back by itself");
    // ... and when the runbook's datapoint has long aged out (ten minutes on, no new data), the
    // routing alarm keeps ALARM (TreatMissingData = ignore) and the health check its status.
    let later = time::after(time::now(), Duration::from_secs(600));
    let answer = route53_answer(&clients, &plan.dns.records[0].record, &plan.dns.records[0].record_type, Some(later))
        .await
        .expect("answer");
    assert_eq!(answer.values, std::slice::from_ref(&ireland), "{answer:?}");
}

/// The step key of a report's step record (the report keeps records in key order, by name).
fn report_key(record: &dr_core::run::StepRecord) -> Option<StepKey> {
    match record.step.as_str() {
        "preflight" => Some(StepKey::Preflight),
        "flip-dns" => Some(StepKey::FlipDns),
        "flip-dns-status" => Some(StepKey::DnsStatus),
        _ => None,
    }
}

#[tokio::test]
async fn a_flap_leaves_traffic_on_paris_throughout() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let event = simulate_outage(&clients, &plan, Outage::Flap).await.expect("flap simulated");
    assert_eq!(dns(&clients, &plan).await, plan.dns.records[0].primary.value);
    let outcome = handle_alarm_event(&ctx, parse_input(event, "alarm event").expect("event")).await.expect("handled");
    assert_eq!(outcome.decision, Decision::Flap, "{outcome:?}");
    assert_eq!(dns(&clients, &plan).await, plan.dns.records[0].primary.value);
    simulate_recovery(&clients, &plan).await.expect("Paris answers");
    assert_eq!(dns(&clients, &plan).await, plan.dns.records[0].primary.value);
}

/// Without `TreatMissingData = ignore` and `LastKnownStatus`, one published datapoint is not
/// enough: when it ages out, Route 53 sends traffic back to Paris by itself. This is what the
/// plan check's findings are for.
#[tokio::test]
async fn without_the_two_settings_traffic_goes_back_when_the_datapoint_ages_out() {
    let (plan, clients) = seeded_estate().await;
    let routing = plan.dns.routing.clone().expect("routing strategy");
    put_routing_alarm(&clients, &plan, &routing, "missing").await.expect("alarm");
    let weak = format!("weak-routing-{}", unique_suffix());
    let weak_id = create_routing_health_check(&clients, &plan, &weak, InsufficientDataHealthStatus::Healthy)
        .await
        .expect("check");
    set_primary_health_check(&clients, &plan, Some(&weak_id)).await;
    dr_core::runbook::dns::publish_routing(&clients, &plan, &routing, dr_core::plan::Direction::ToDr)
        .await
        .expect("routing metric");
    // Route 53 judges the stream at the end of the datapoint's minute.
    dns_moves_to(&clients, &plan, &plan.dns.records[0].secondary.value).await;
    let later = time::after(time::now(), Duration::from_secs(600));
    let answer = route53_answer(&clients, &plan.dns.records[0].record, &plan.dns.records[0].record_type, Some(later))
        .await
        .expect("answer");
    assert_eq!(
        answer.values,
        std::slice::from_ref(&plan.dns.records[0].primary.value),
        "back to Paris by itself: {answer:?}"
    );
}

/// Waits until DNS answers `value`: Route 53's checkers judge the alarm's data stream at the end
/// of each minute (two minutes at most).
async fn dns_moves_to(clients: &AwsClients, plan: &Plan, value: &str) {
    for _ in 0..130 {
        if dns(clients, plan).await == value {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(dns(clients, plan).await, value, "DNS did not move within two minutes");
}

/// Route 53 judges the routing alarm's data stream, not the alarm's state: when its checkers
/// miss the runbook's first datapoints, the alarm reads ALARM while the PRIMARY stays healthy.
/// The status step publishes the metric again on every poll until DNS answers Ireland, so the
/// checkers see a later one and traffic moves.
#[tokio::test(flavor = "multi_thread")]
async fn traffic_moves_even_when_route_53_misses_the_first_routing_datapoints() {
    let (plan, clients) = seeded_estate().await;
    let routing = plan.dns.routing.clone().expect("routing strategy");
    route53_misses_datapoints(&clients, &plan.dr_region, &routing, &plan.name, 2).await.expect("fault set");
    let run_id = format!("missed-{}", unique_suffix());
    let report = report(&run_failover(&failover_input(&plan, &run_id).await));
    assert_eq!(report.head.status, RunStatus::Succeeded);
    let status = report.steps.iter().find(|s| report_key(s) == Some(StepKey::DnsStatus)).expect("dns status");
    assert!(status.detail.contains(&format!("answers {}", plan.dns.records[0].secondary.value)), "{status:#?}");
    let metric = per_minute(&routing.namespace, &routing.metric, &[("Plan", plan.name.as_str())], "SampleCount");
    let since = time::before(time::now(), Duration::from_secs(900));
    let points = datapoints(&clients.home.cloudwatch, metric, since, time::after(time::now(), Duration::from_secs(60)))
        .await
        .expect("GetMetricData");
    let publications: f64 = points.iter().map(|(_, count)| count).sum();
    assert!(publications >= 3.0, "the flip's datapoint, the two missed and more: {points:?}");
    assert_eq!(dns(&clients, &plan).await, plan.dns.records[0].secondary.value);
}

/// Points the PRIMARY record at another health check (or none), as an operator could by hand.
async fn set_primary_health_check(clients: &AwsClients, plan: &Plan, health_check: Option<&str>) {
    let zone = find_hosted_zone(&clients.route53, &plan.dns.hosted_zone).await.expect("zone").expect("zone");
    let set = ResourceRecordSet::builder()
        .name(fqdn(&plan.dns.records[0].record))
        .r#type(RrType::Cname)
        .set_identifier(&plan.dns.records[0].primary.set_identifier)
        .failover(ResourceRecordSetFailover::Primary)
        .ttl(i64::from(plan.dns.records[0].ttl_seconds))
        .resource_records(ResourceRecord::builder().value(&plan.dns.records[0].primary.value).build().expect("record"))
        .set_health_check_id(health_check.map(str::to_string))
        .build()
        .expect("record set");
    let batch = ChangeBatch::builder()
        .changes(Change::builder().action(ChangeAction::Upsert).resource_record_set(set).build().expect("change"))
        .build()
        .expect("batch");
    clients
        .route53
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(batch)
        .send()
        .await
        .expect("ChangeResourceRecordSets");
}

#[tokio::test]
async fn plan_check_names_a_routing_alarm_that_does_not_ignore_missing_data() {
    let (plan, clients) = seeded_estate().await;
    let routing = plan.dns.routing.clone().expect("routing strategy");
    put_routing_alarm(&clients, &plan, &routing, "missing").await.expect("alarm");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(finding_of(&readiness, "routing alarm"), Some(Finding::RoutingAlarmMisconfigured), "{readiness:#?}");
    let row = readiness.rows.iter().find(|r| r.check.label() == "routing alarm").expect("row");
    assert!(row.detail.contains("TreatMissingData"), "{row:?}");
}

#[tokio::test]
async fn plan_check_names_a_routing_health_check_without_last_known_status() {
    let (mut plan, clients) = seeded_estate().await;
    let name = format!("healthy-when-unsure-{}", unique_suffix());
    let id = create_routing_health_check(&clients, &plan, &name, InsufficientDataHealthStatus::Healthy)
        .await
        .expect("check");
    set_primary_health_check(&clients, &plan, Some(&id)).await;
    if let Some(routing) = plan.dns.routing.as_mut() {
        routing.health_check = name;
    }
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(finding_of(&readiness, "routing health check"), Some(Finding::RoutingHealthCheckMisconfigured));
    let row = readiness.rows.iter().find(|r| r.check.label() == "routing health check").expect("row");
    assert!(row.detail.contains("LastKnownStatus"), "{row:?}");
}

#[tokio::test]
async fn the_detection_check_on_the_primary_record_is_refused_in_the_plan_and_named_in_the_estate() {
    let (plan, clients) = seeded_estate().await;
    let detection = plan.trigger.as_ref().map(|t| t.detection_health_check.clone()).expect("trigger");
    // In the plan: refused with its named problem.
    let mut wrong = plan.clone();
    if let Some(routing) = wrong.dns.routing.as_mut() {
        routing.health_check = detection.clone();
    }
    let refused = wrong.validate().expect_err("refused");
    assert!(refused.to_string().contains("DetectionCheckOnRecord"), "{refused}");
    // In the estate (someone attached it by hand): a named finding.
    let detection_id = find_health_check(&clients.route53, &detection).await.expect("lookup").expect("detection check");
    set_primary_health_check(&clients, &plan, Some(&detection_id)).await;
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert_eq!(finding_of(&readiness, "detection health check"), Some(Finding::DetectionCheckOnRecord));
    assert_eq!(finding_of(&readiness, "dns primary record"), Some(Finding::DetectionCheckOnRecord));
}

#[tokio::test(flavor = "multi_thread")]
async fn record_upsert_moves_every_record_in_one_batch_and_dns_follows() {
    let (plan, clients) = two_records_moved_by_upsert().await;
    let readiness = check_plan(&clients, &plan, Scope::Full).await;
    assert!(readiness.is_ready(), "{:#?}", readiness.rows);
    for record in &plan.dns.records {
        let rows = readiness.rows.iter().filter(|row| row.resource.starts_with(&fqdn(&record.record))).count();
        assert_eq!(rows, 3, "its PRIMARY, its SECONDARY and its answer: {:#?}", readiness.rows);
        assert_eq!(answer(&clients, record).await, record.primary.value);
    }
    let report = report(&run_failover(&failover_input(&plan, &format!("upsert-{}", unique_suffix())).await));
    let flips: Vec<&str> = report
        .steps
        .iter()
        .flat_map(|s| s.calls.iter())
        .filter(|c| c.is_mutating() && is_route53_api(c))
        .map(|c| c.operation.as_str())
        .collect();
    assert_eq!(flips, ["ChangeResourceRecordSets"], "one batch moves both records");
    for record in &plan.dns.records {
        assert_eq!(answer(&clients, record).await, record.secondary.value, "{}", record.record);
    }
}

/// Under 20 % throttling and half the answers lost, the batch that moves both records takes
/// effect once (a lost answer is read back, not sent again), and DNS answers Ireland for each.
#[tokio::test(flavor = "multi_thread")]
async fn record_upsert_under_throttling_and_lost_answers_changes_both_records_once() {
    let (plan, clients) = two_records_moved_by_upsert().await;
    let run_id = format!("upsert-faults-{}", unique_suffix());
    let (execution, stopped, injected) =
        failover_under_faults(&clients, &plan, 47, &run_id, dr_tests::run_failover_polling).await;
    assert_eq!(execution.status, "SUCCEEDED", "re-runs after {stopped:?}: {execution:#?}");
    eprintln!("two records under {:?}: re-runs after {stopped:?}", injected.injected);
    let batches: u32 = injected
        .applied
        .iter()
        .filter(|call| call.operation == "ChangeResourceRecordSets")
        .map(|call| call.times)
        .sum();
    assert_eq!(batches, 1, "one change batch, once: {injected:#?}");
    for record in &plan.dns.records {
        assert_eq!(answer(&clients, record).await, record.secondary.value, "{}", record.record);
    }
}

/// The isolated plan with `record-upsert` and a second failover pair in the zone (the storefront
/// beside the application), seeded.
async fn two_records_moved_by_upsert() -> (Plan, AwsClients) {
    let mut plan = isolated_plan();
    plan.dns.strategy = DnsStrategy::RecordUpsert;
    plan.dns.routing = None;
    let mut storefront = plan.dns.records[0].clone();
    storefront.record = storefront.record.replacen("app.", "www.", 1);
    storefront.primary.value = "storefront-paris.example.net".into();
    storefront.secondary.value = "storefront-ireland.example.net".into();
    plan.dns.records.push(storefront);
    plan.validate().expect("two records");
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding");
    (plan, clients)
}

async fn answer(clients: &AwsClients, record: &dr_core::plan::DnsRecord) -> String {
    let values = clients.dns.answer(&record.record, &record.record_type).await.expect("a DNS answer");
    values.join(", ")
}

/// Preflight makes no Route 53 API call, so it takes the routing pieces from the scheduled
/// readiness check's snapshot: a routing health check detached from the PRIMARY record, named
/// there, refuses the run before any change (rather than promoting, then waiting out the DNS
/// budget). The same snapshot once older than its schedule no longer stops a run: preflight goes
/// on and says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_detached_routing_health_check_named_by_the_readiness_check_stops_preflight_before_any_change() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    let routing = plan.dns.routing.clone().expect("routing strategy");
    let routing_id = find_health_check(&clients.route53, &routing.health_check).await.expect("list").expect("check");
    set_primary_health_check(&clients, &plan, None).await;
    let scheduled = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("the scheduled check");
    assert!(scheduled.findings.iter().any(|f| f == "RecordMisconfigured"), "{scheduled:?}");

    let refused = run_failover(&failover_input(&plan, &format!("detached-{}", unique_suffix())).await);
    assert_eq!(refused.status, "FAILED", "{refused:#?}");
    assert_eq!(refused.error.as_deref(), Some("PreflightFailed"), "{refused:#?}");
    let cause = refused.cause.as_ref().map(|c| c.to_string()).unwrap_or_default();
    assert!(cause.contains("health check is none") && cause.contains("readiness check of"), "{cause}");
    let replica = dr_core::aws::lookup::describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("replica");
    assert!(replica.read_replica_source_db_instance_identifier().is_some(), "nothing promoted");

    // The record repaired, but the snapshot that named it is now older than its schedule
    // (30 minutes, the template's default): it no longer stops a run, and preflight says so.
    set_primary_health_check(&clients, &plan, Some(&routing_id)).await;
    let key = snapshot_key(&plan.name);
    let (mut snapshot, _) = get_json::<ReadinessSnapshot>(&clients.home.s3, &plan.reports.bucket, &key, "snapshot")
        .await
        .expect("read")
        .expect("the snapshot");
    snapshot.checked_at = time::before(time::now(), Duration::from_secs(2 * 3600));
    put_json(&clients.home.s3, &plan.reports.bucket, &key, &snapshot).await.expect("aged");
    let report = report(&run_failover(&failover_input(&plan, &format!("stale-{}", unique_suffix())).await));
    let preflight = report.steps.iter().find(|s| report_key(s) == Some(StepKey::Preflight)).expect("preflight");
    assert!(
        preflight.resources.iter().any(|r| r.state.contains("older than its schedule (30 min)")),
        "{:#?}",
        preflight.resources
    );
    assert_eq!(dns(&clients, &plan).await, plan.dns.records[0].secondary.value);
}
