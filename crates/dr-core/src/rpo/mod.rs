//! Replica lag: how far behind Paris the Ireland replica is, read from CloudWatch; and the
//! periodic RPO check of every replicated pair ([`check`]).
//!
//! The one implementation behind `drctl plan check`, the runbook's RPO gate and the periodic
//! RPO checks. A missing datapoint, a stale one, or ReplicaLag -1 means **not replicating**,
//! never "lag 0".

use std::time::{Duration, SystemTime};

use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy};
use aws_smithy_types::DateTime;

use crate::error::DrError;

pub mod check;

/// GetMetricData accepts at most this many queries per call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// What the newest ReplicaLag datapoint says about one replica.
#[derive(Debug, Clone, PartialEq)]
pub enum LagReading {
    /// The replica is replicating, `seconds` behind, as of `age` ago.
    Lag { seconds: f64, age: Duration },
    /// The replica is not replicating; `reason` says how we know.
    NotReplicating { reason: String },
}

/// A reading judged against the RPO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LagVerdict {
    WithinRpo,
    RpoExceeded,
    NotReplicating,
}

impl LagReading {
    pub fn verdict(&self, rpo: Duration) -> LagVerdict {
        match self {
            LagReading::Lag { seconds, .. } if *seconds <= rpo.as_secs_f64() => LagVerdict::WithinRpo,
            LagReading::Lag { .. } => LagVerdict::RpoExceeded,
            LagReading::NotReplicating { .. } => LagVerdict::NotReplicating,
        }
    }

    /// The gate: `Ok(lag seconds)` when within the RPO, the named error otherwise.
    pub fn require_within(&self, replica: &str, rpo: Duration) -> Result<f64, DrError> {
        match self {
            LagReading::Lag { seconds, .. } if *seconds <= rpo.as_secs_f64() => Ok(*seconds),
            LagReading::Lag { seconds, .. } => Err(DrError::RpoExceeded {
                replica: replica.to_string(),
                lag_seconds: *seconds,
                rpo_seconds: rpo.as_secs(),
            }),
            LagReading::NotReplicating { reason } => {
                Err(DrError::ReplicaNotReplicating { replica: replica.to_string(), reason: reason.clone() })
            }
        }
    }
}

/// Reads the newest ReplicaLag of each replica (RDS instance identifiers in the client's
/// region), batching up to [`MAX_QUERIES_PER_CALL`] replicas per GetMetricData call.
///
/// A datapoint older than `freshness` counts as stale. The lookback is three freshness windows
/// so that a stale replica is reported with the age of its last datapoint.
pub async fn read_replica_lags(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    replicas: &[String],
    freshness: Duration,
    now: SystemTime,
) -> Result<Vec<LagReading>, DrError> {
    let metrics: Vec<MetricStat> = replicas
        .iter()
        .map(|replica| maximum_per_minute("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]))
        .collect();
    let newest = newest_datapoints(cloudwatch, metrics, freshness.saturating_mul(3), now).await?;
    Ok(newest.into_iter().map(|datapoint| judge(datapoint, freshness, now)).collect())
}

/// A one-minute Maximum of a metric.
pub fn maximum_per_minute(namespace: &str, metric: &str, dimensions: &[(&str, &str)]) -> MetricStat {
    let metric = Metric::builder()
        .namespace(namespace)
        .metric_name(metric)
        .set_dimensions(Some(
            dimensions.iter().map(|(name, value)| Dimension::builder().name(*name).value(*value).build()).collect(),
        ))
        .build();
    MetricStat::builder().metric(metric).period(60).stat("Maximum").build()
}

/// The newest datapoint (time, value) of each metric over the last `lookback`: the one
/// implementation of batched metric reads. Up to [`MAX_QUERIES_PER_CALL`] metrics per
/// GetMetricData call, every page read: the calls grow with the metrics divided by 500.
pub async fn newest_datapoints(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    metrics: Vec<MetricStat>,
    lookback: Duration,
    now: SystemTime,
) -> Result<Vec<Option<(DateTime, f64)>>, DrError> {
    let start = DateTime::from(now.checked_sub(lookback).unwrap_or(SystemTime::UNIX_EPOCH));
    // Datapoints carry the start of their period: end a period later to include the newest one.
    let end = DateTime::from(now + Duration::from_secs(60));
    let mut newest: Vec<Option<(DateTime, f64)>> = vec![None; metrics.len()];
    let queries: Vec<MetricDataQuery> = metrics
        .into_iter()
        .enumerate()
        .map(|(index, stat)| {
            MetricDataQuery::builder().id(format!("m{index}")).metric_stat(stat).return_data(true).build()
        })
        .collect();
    for batch in queries.chunks(MAX_QUERIES_PER_CALL) {
        let mut pages = cloudwatch
            .get_metric_data()
            .set_metric_data_queries(Some(batch.to_vec()))
            .start_time(start)
            .end_time(end)
            .scan_by(ScanBy::TimestampDescending)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DrError::from_sdk("cloudwatch", "GetMetricData", e))?;
            for result in page.metric_data_results() {
                let Some(slot) = result.id().and_then(query_index).and_then(|index| newest.get_mut(index)) else {
                    continue;
                };
                for (timestamp, value) in result.timestamps().iter().zip(result.values()) {
                    if slot.is_none_or(|(seen, _)| timestamp.secs() > seen.secs()) {
                        *slot = Some((*timestamp, *value));
                    }
                }
            }
        }
    }
    Ok(newest)
}

fn judge(newest: Option<(DateTime, f64)>, freshness: Duration, now: SystemTime) -> LagReading {
    let Some((timestamp, value)) = newest else {
        return LagReading::NotReplicating {
            reason: format!("no ReplicaLag datapoint in the last {} s", freshness.saturating_mul(3).as_secs()),
        };
    };
    let age = SystemTime::try_from(timestamp).ok().and_then(|at| now.duration_since(at).ok()).unwrap_or(Duration::ZERO);
    if age > freshness {
        LagReading::NotReplicating {
            reason: format!(
                "newest ReplicaLag datapoint is {} s old (freshness window {} s)",
                age.as_secs(),
                freshness.as_secs()
            ),
        }
    } else if value < 0.0 {
        LagReading::NotReplicating { reason: "ReplicaLag is -1: replication is stopped or broken".to_string() }
    } else {
        LagReading::Lag { seconds: value, age }
    }
}

fn query_index(id: &str) -> Option<usize> {
    id.strip_prefix('m')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRESHNESS: Duration = Duration::from_secs(300);

    fn reading_at(age_secs: u64, value: f64) -> LagReading {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let at = DateTime::from(now - Duration::from_secs(age_secs));
        judge(Some((at, value)), FRESHNESS, now)
    }

    #[test]
    fn fresh_lag_is_judged_against_the_rpo() {
        let rpo = Duration::from_secs(3600);
        assert_eq!(reading_at(60, 12.0).verdict(rpo), LagVerdict::WithinRpo);
        assert_eq!(reading_at(60, 3600.0).verdict(rpo), LagVerdict::WithinRpo);
        assert_eq!(reading_at(60, 3601.0).verdict(rpo), LagVerdict::RpoExceeded);
    }

    #[test]
    fn minus_one_missing_and_stale_mean_not_replicating() {
        let rpo = Duration::from_secs(3600);
        assert_eq!(reading_at(60, -1.0).verdict(rpo), LagVerdict::NotReplicating);
        assert_eq!(reading_at(301, 0.0).verdict(rpo), LagVerdict::NotReplicating);
        assert_eq!(judge(None, FRESHNESS, SystemTime::now()).verdict(rpo), LagVerdict::NotReplicating);
    }

    #[test]
    fn the_gate_names_its_error() {
        let rpo = Duration::from_secs(3600);
        let exceeded = reading_at(60, 7200.0).require_within("r", rpo);
        assert!(matches!(exceeded, Err(DrError::RpoExceeded { .. })));
        let stopped = reading_at(60, -1.0).require_within("r", rpo);
        assert_eq!(stopped.map_err(|e| e.name()), Err("ReplicaNotReplicating"));
    }
}
