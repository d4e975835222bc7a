//! CloudWatch metrics: reads, batched (the one implementation behind the replica lag, the RPO
//! check's S3 replication latency and the trigger's health-check confirmation), and writes (the
//! RPO, readiness and run metrics).

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricDatum, MetricStat, ScanBy};

use crate::error::DrError;
use crate::time::{self, Timestamp};

/// GetMetricData accepts at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// PutMetricData accepts at most this many datums per call.
pub const MAX_DATUMS_PER_CALL: usize = 1000;

/// Publishes the metrics, [`MAX_DATUMS_PER_CALL`] per PutMetricData call.
pub async fn publish_metrics(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    namespace: &str,
    data: Vec<MetricDatum>,
) -> Result<(), DrError> {
    for batch in data.chunks(MAX_DATUMS_PER_CALL) {
        cloudwatch
            .put_metric_data()
            .namespace(namespace)
            .set_metric_data(Some(batch.to_vec()))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    }
    Ok(())
}

/// A one-minute statistic (`Maximum`, `Minimum`, ...) of a metric.
pub fn per_minute(namespace: &str, metric: &str, dimensions: &[(&str, &str)], stat: &str) -> MetricStat {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(
            dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(*value).build()).collect(),
        ))
        .build();
    MetricStat::builder().metric(metric).period(60).stat(stat).build()
}

/// A one-minute Maximum of a metric.
pub fn maximum_per_minute(namespace: &str, metric: &str, dimensions: &[(&str, &str)]) -> MetricStat {
    per_minute(namespace, metric, dimensions, "Maximum")
}

/// The newest datapoint (time, value) of each metric over the last `lookback`. Up to
/// [`MAX_QUERIES_PER_CALL`] metrics per GetMetricData call, every page read: the calls grow with
/// the metrics divided by 500.
pub async fn newest_datapoints(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    metrics: Vec<MetricStat>,
    lookback: Duration,
    now: Timestamp,
) -> Result<Vec<Option<(Timestamp, f64)>>, DrError> {
    let mut newest: Vec<Option<(Timestamp, f64)>> = vec![None; metrics.len()];
    let queries: Vec<MetricDataQuery> = metrics
        .into_iter()
        .enumerate()
        .map(|(index, stat)| {
            MetricDataQuery::builder().id(format!("m{index}")).metric_stat(stat).return_data(true).build()
        })
        .collect();
    // Datapoints carry the start of their period: end a period later to include the newest one.
    let (start, end) = (time::before(now, lookback), time::after(now, Duration::from_secs(60)));
    for batch in queries.chunks(MAX_QUERIES_PER_CALL) {
        for (id, at, value) in query(cloudwatch, batch.to_vec(), start, end, ScanBy::TimestampDescending).await? {
            let Some(slot) = query_index(&id).and_then(|index| newest.get_mut(index)) else { continue };
            if slot.is_none_or(|(seen, _)| at > seen) {
                *slot = Some((at, value));
            }
        }
    }
    Ok(newest)
}

/// Every datapoint (time, value) of one metric between `start` and `end`, oldest first.
pub async fn datapoints(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    metric: MetricStat,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<(Timestamp, f64)>, DrError> {
    let query = MetricDataQuery::builder().id("m0").metric_stat(metric).return_data(true).build();
    let points = self::query(cloudwatch, vec![query], start, end, ScanBy::TimestampAscending).await?;
    Ok(points.into_iter().map(|(_, at, value)| (at, value)).collect())
}

/// One GetMetricData request, every page: (query id, time, value).
async fn query(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    queries: Vec<MetricDataQuery>,
    start: Timestamp,
    end: Timestamp,
    order: ScanBy,
) -> Result<Vec<(String, Timestamp, f64)>, DrError> {
    let mut pages = cloudwatch
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(time::to_smithy(start))
        .end_time(time::to_smithy(end))
        .scan_by(order)
        .into_paginator()
        .send();
    let mut points = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("cloudwatch", "GetMetricData", e))?;
        for result in page.metric_data_results() {
            let id = result.id().unwrap_or_default();
            for (timestamp, value) in result.timestamps().iter().zip(result.values()) {
                if let Some(at) = time::from_smithy(timestamp) {
                    points.push((id.to_string(), at, *value));
                }
            }
        }
    }
    Ok(points)
}

fn query_index(id: &str) -> Option<usize> {
    id.strip_prefix('m')?.parse().ok()
}
