//! RPO-check benchmark on the emulator: wall time and AWS calls (GetMetricData, PutMetricData,
//! S3) of one scheduled check (heartbeats written, metrics published) at 10, 100 and 1,000
//! replicated pairs, half RDS replicas and half S3 bucket pairs.
//!
//!   scripts/bench      (starts the emulator; runs the failover benchmark, then this one)

// A benchmark binary: a failed setup step ends it with a message.
#![allow(clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::Instant;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use dr_core::aws::AwsClients;
use dr_core::aws::metrics::publish_metrics;
use dr_core::rpo::check::{
    Heartbeat, HeartbeatBody, PairKind, ReplicatedPair, check_pairs, heartbeat_key, rpo_metrics,
};
use dr_core::time;
use dr_tests::{isolated_plan, unique_suffix};

const NAMESPACE: &str = "DrOrchestrator/RpoBench";

async fn create_bucket(s3: &aws_sdk_s3::Client, region: &str, bucket: &str) {
    s3.create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            CreateBucketConfiguration::builder().location_constraint(BucketLocationConstraint::from(region)).build(),
        )
        .send()
        .await
        .expect("bucket created");
}

/// `count` pairs: RDS replicas with a fresh ReplicaLag datapoint, S3 pairs whose Ireland bucket
/// holds a replicated heartbeat (moto does not replicate: set up as S3 replication would leave it).
async fn estate(clients: &AwsClients, count: usize) -> Vec<ReplicatedPair> {
    let template = dr_core::rpo::check::pairs_of(&isolated_plan()).remove(0);
    let plan = format!("bench{}", unique_suffix());
    let mut pairs = Vec::new();
    let mut lags = Vec::new();
    for index in 0..count {
        if index % 2 == 0 {
            let replica = format!("{plan}-db-{index}");
            lags.push(
                MetricDatum::builder()
                    .metric_name("ReplicaLag")
                    .dimensions(Dimension::builder().name("DBInstanceIdentifier").value(&replica).build())
                    .timestamp(time::to_smithy(time::now()))
                    .value(5.0)
                    .build(),
            );
            pairs.push(ReplicatedPair {
                plan: plan.clone(),
                kind: PairKind::Rds,
                source: format!("{plan}-paris-db-{index}"),
                replica,
                // The figures are those of the batched ReplicaLag reads: no database behind them.
                credentials_secret: None,
                ..template.clone()
            });
        } else {
            let (source, replica) = (format!("{plan}-paris-{index}"), format!("{plan}-ireland-{index}"));
            create_bucket(&clients.primary.s3, &clients.primary.region, &source).await;
            create_bucket(&clients.dr.s3, &clients.dr.region, &replica).await;
            let beat = HeartbeatBody { plan: plan.clone(), written_at: time::now() };
            clients
                .dr
                .s3
                .put_object()
                .bucket(&replica)
                .key(heartbeat_key(&plan))
                .body(ByteStream::from(serde_json::to_vec(&beat).expect("json")))
                .send()
                .await
                .expect("heartbeat");
            pairs.push(ReplicatedPair {
                plan: plan.clone(),
                kind: PairKind::S3,
                source,
                replica,
                metrics_rule: None,
                ..template.clone()
            });
        }
    }
    for batch in lags.chunks(1000) {
        clients
            .dr
            .cloudwatch
            .put_metric_data()
            .namespace("AWS/RDS")
            .set_metric_data(Some(batch.to_vec()))
            .send()
            .await
            .expect("lags published");
    }
    pairs
}

#[tokio::main]
async fn main() {
    let plan = isolated_plan();
    let clients = AwsClients::for_plan(&plan, "bench-rpo").await;
    println!("RPO check on the emulator: one scheduled run (read lags, write heartbeats, publish metrics)");
    println!(
        "{:>6} {:>10} {:>14} {:>14} {:>12} {:>12} {:>10}",
        "pairs", "wall ms", "GetMetricData", "PutMetricData", "S3 GetObject", "S3 PutObject", "not ok"
    );
    for count in [10, 100, 1000] {
        let pairs = estate(&clients, count).await;
        let mark = clients.calls.mark();
        let started = Instant::now();
        let now = time::now();
        let statuses = check_pairs(&clients, &pairs, Heartbeat::Write, now).await.expect("checked");
        publish_metrics(&clients.dr.cloudwatch, NAMESPACE, rpo_metrics(&statuses, now)).await.expect("published");
        let wall = started.elapsed().as_secs_f64() * 1000.0;
        let mut calls: BTreeMap<String, usize> = BTreeMap::new();
        for call in clients.calls.since(mark) {
            *calls.entry(format!("{}:{}", call.service, call.operation)).or_default() += 1;
        }
        let count_of = |name: &str| calls.iter().filter(|(k, _)| k.ends_with(name)).map(|(_, n)| n).sum::<usize>();
        let not_ok = statuses.iter().filter(|s| s.verdict != dr_core::rpo::LagVerdict::WithinRpo).count();
        println!(
            "{:>6} {:>10.0} {:>14} {:>14} {:>12} {:>12} {:>10}",
            count,
            wall,
            count_of(":GetMetricData"),
            count_of(":PutMetricData"),
            count_of(":GetObject"),
            count_of(":PutObject"),
            not_ok
        );
    }
}
