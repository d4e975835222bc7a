//! The periodic RPO check against the emulated estate: RDS lag readings, S3 heartbeats, the
//! metrics and the snapshot.
//!
//! Modelled (moto lacks it): RDS publishing ReplicaLag (the tests publish the datapoints) and
//! S3 replication (moto does not copy objects to the replica bucket: the tests copy the
//! heartbeat as S3 replication would, or put an old one there for a replication that stopped).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_s3::primitives::ByteStream;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{
    Heartbeat, HeartbeatBody, PairKind, PairStatus, ReplicatedPair, RpoSnapshot, check_pairs, heartbeat_key, pairs_of,
    run_check, snapshot_key,
};
use dr_core::time;
use dr_emulator::replication::replicate_heartbeats;
use dr_tests::{seeded_estate, unique_suffix};

const NAMESPACE: &str = "DrOrchestrator/RpoTest";

fn rds_pair(plan: &Plan, replica: &str) -> ReplicatedPair {
    ReplicatedPair { replica: replica.to_string(), ..pairs_of(plan).remove(0) }
}

async fn publish_lag(clients: &AwsClients, replica: &str, value: f64, age: Duration) {
    let datum = MetricDatum::builder()
        .metric_name("ReplicaLag")
        .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(replica).build())
        .timestamp(time::to_smithy(time::before(time::now(), age)))
        .value(value)
        .build();
    clients
        .dr
        .cloudwatch
        .put_metric_data()
        .namespace("AWS/RDS")
        .metric_data(datum)
        .send()
        .await
        .expect("ReplicaLag published");
}

fn by_kind(statuses: &[PairStatus], kind: PairKind) -> &PairStatus {
    statuses.iter().find(|s| s.kind == kind).expect("a pair of that kind")
}

#[tokio::test]
async fn rds_lag_under_and_over_the_rpo_minus_one_missing_and_stale() {
    let (plan, clients) = seeded_estate().await;
    let s = unique_suffix();
    let fresh = Duration::from_secs(30);
    let cases = [
        ("under", Some((120.0, fresh)), LagVerdict::WithinRpo),
        ("over", Some((7200.0, fresh)), LagVerdict::RpoExceeded),
        ("stopped", Some((-1.0, fresh)), LagVerdict::NotReplicating),
        ("missing", None, LagVerdict::NotReplicating),
        // Older than the plan's freshness window (300 s): not replicating, never "lag 0".
        ("stale", Some((0.0, Duration::from_secs(600))), LagVerdict::NotReplicating),
    ];
    let mut pairs = Vec::new();
    for (case, datapoint, _) in &cases {
        let replica = format!("lag-{case}-{s}");
        if let Some((value, age)) = datapoint {
            publish_lag(&clients, &replica, *value, *age).await;
        }
        pairs.push(rds_pair(&plan, &replica));
    }
    let statuses = check_pairs(&clients, &pairs, Heartbeat::ReadOnly, time::now()).await.expect("checked");
    let verdicts: Vec<LagVerdict> = statuses.iter().map(|s| s.verdict).collect();
    assert_eq!(verdicts, cases.iter().map(|(_, _, v)| *v).collect::<Vec<_>>(), "{statuses:#?}");
    assert_eq!(statuses[0].budget_used_percent, Some(120.0 * 100.0 / 3600.0));
    assert_eq!(statuses[1].budget_used_percent, Some(200.0));
    for not_replicating in &statuses[2..] {
        assert_eq!((not_replicating.lag_seconds, not_replicating.budget_used_percent), (None, None));
    }
    assert!(statuses[4].detail.contains("old"), "{:?}", statuses[4]);
}

#[tokio::test]
async fn s3_heartbeats_give_the_replication_lag_and_feed_metrics_and_the_snapshot() {
    let (plan, clients) = seeded_estate().await;

    // First run: the heartbeat is written in Paris; nothing has reached Ireland yet.
    let first = run_check(&clients, std::slice::from_ref(&plan), NAMESPACE).await.expect("first run");
    assert_eq!((first.pairs, first.not_replicating), (2, 1), "{first:?}");
    // What S3 replication would do: the heartbeat in Paris appears in Ireland.
    assert_eq!(replicate_heartbeats(&clients, &plan).await.expect("replicated"), 1);
    let second = run_check(&clients, std::slice::from_ref(&plan), NAMESPACE).await.expect("second run");
    assert_eq!(second.within_rpo, 2, "{second:?}");

    // The snapshot in the report bucket has both pairs.
    let object = clients
        .dr
        .s3
        .get_object()
        .bucket(&plan.reports.bucket)
        .key(snapshot_key(&plan.name))
        .send()
        .await
        .expect("snapshot written");
    let snapshot: RpoSnapshot =
        serde_json::from_slice(&object.body.collect().await.expect("body").into_bytes()).expect("a snapshot");
    let s3 = by_kind(&snapshot.pairs, PairKind::S3);
    assert_eq!(s3.verdict, LagVerdict::WithinRpo);
    assert!(s3.lag_seconds.is_some_and(|lag| lag < 60.0), "{s3:?}");
    assert_eq!(by_kind(&snapshot.pairs, PairKind::Rds).lag_seconds, Some(4.0));

    // The plan's worst budget use was published for the alarms.
    let metric =
        dr_core::aws::metrics::maximum_per_minute(NAMESPACE, "MaxRpoBudgetUsedPercent", &[("Plan", &plan.name)]);
    let newest = dr_core::aws::metrics::newest_datapoints(
        &clients.dr.cloudwatch,
        vec![metric],
        Duration::from_secs(600),
        time::now(),
    )
    .await
    .expect("metric read");
    assert!(newest[0].is_some_and(|(_, used)| used > 0.0 && used < 100.0), "{newest:?}");
}

#[tokio::test]
async fn a_stale_heartbeat_is_over_the_rpo_and_a_missing_bucket_is_named() {
    let (mut plan, clients) = seeded_estate().await;
    // Replication stopped two hours ago: the newest heartbeat in Ireland is that old.
    let old =
        HeartbeatBody { plan: plan.name.clone(), written_at: time::before(time::now(), Duration::from_secs(7200)) };
    clients
        .dr
        .s3
        .put_object()
        .bucket(&plan.s3_replication[0].replica_bucket)
        .key(heartbeat_key(&plan.name))
        .body(ByteStream::from(serde_json::to_vec(&old).expect("json")))
        .send()
        .await
        .expect("old heartbeat");
    let mut missing = plan.s3_replication[0].clone();
    missing.replica_bucket = format!("nowhere-{}", unique_suffix());
    missing.source_bucket = format!("nowhere-paris-{}", unique_suffix());
    plan.s3_replication.push(missing);

    let statuses = check_pairs(&clients, &pairs_of(&plan), Heartbeat::ReadOnly, time::now()).await.expect("checked");
    let stale = &statuses[1];
    assert_eq!(stale.verdict, LagVerdict::RpoExceeded, "{stale:?}");
    assert!(stale.lag_seconds.is_some_and(|lag| (7200.0..7300.0).contains(&lag)), "{stale:?}");
    let gone = &statuses[2];
    assert_eq!(
        (gone.verdict, gone.error.as_deref()),
        (LagVerdict::NotReplicating, Some("ResourceNotFound")),
        "{gone:?}"
    );
}

#[tokio::test]
async fn read_only_checks_and_empty_plans_make_no_mutating_call() {
    let (plan, clients) = seeded_estate().await;
    let mark = clients.calls.mark();
    check_pairs(&clients, &pairs_of(&plan), Heartbeat::ReadOnly, time::now()).await.expect("checked");
    assert!(clients.calls.since(mark).iter().all(|c| !c.is_mutating()), "{:?}", clients.calls.since(mark));

    // No pairs at all: nothing to read, nothing to publish.
    let mark = clients.calls.mark();
    let none = check_pairs(&clients, &[], Heartbeat::Write, time::now()).await.expect("checked");
    assert!(none.is_empty());
    let run = run_check(&clients, &[], NAMESPACE).await.expect("empty run");
    assert_eq!((run.pairs, run.snapshots.len()), (0, 0));
    assert!(clients.calls.since(mark).is_empty(), "{:?}", clients.calls.since(mark));
}
