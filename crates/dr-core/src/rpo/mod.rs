//! Replica lag: how far behind Paris the Ireland replica is, read from CloudWatch; and the
//! periodic RPO check of every replicated pair ([`check`]).
//!
//! The one implementation behind `drctl plan check`, the runbook's RPO gate and the periodic
//! RPO checks. A missing datapoint, a stale one, or ReplicaLag -1 means **not replicating**,
//! never "lag 0".

use std::time::Duration;

use crate::aws::metrics::{maximum_per_minute, newest_datapoints};
use crate::error::DrError;
use crate::time::{self, Timestamp};

pub mod check;

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
/// region), batched.
///
/// A datapoint older than `freshness` counts as stale. The lookback is three freshness windows
/// so that a stale replica is reported with the age of its last datapoint.
pub async fn read_replica_lags(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    replicas: &[String],
    freshness: Duration,
    now: Timestamp,
) -> Result<Vec<LagReading>, DrError> {
    let metrics = replicas
        .iter()
        .map(|replica| maximum_per_minute("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]))
        .collect();
    let newest = newest_datapoints(cloudwatch, metrics, freshness.saturating_mul(3), now).await?;
    Ok(newest.into_iter().map(|datapoint| judge(datapoint, freshness, now)).collect())
}

/// ReplicaLag at `at` (an incident's start), read later: the newest datapoint at or before `at`
/// within `freshness`, or else the first one after it, an upper bound (once the primary is gone,
/// RDS PostgreSQL's ReplicaLag grows with wall time). Never the lag at the time of reading.
pub async fn replica_lag_at(
    cloudwatch: &aws_sdk_cloudwatch::Client,
    replica: &str,
    freshness: Duration,
    at: Timestamp,
    now: Timestamp,
) -> Result<LagReading, DrError> {
    let metric = maximum_per_minute("AWS/RDS", "ReplicaLag", &[("DBInstanceIdentifier", replica)]);
    let start = time::before(at, freshness);
    let end = time::after(now.max(at), Duration::from_secs(60));
    let points = crate::aws::metrics::datapoints(cloudwatch, metric, start, end).await?;
    let before = points.iter().rev().find(|(when, _)| *when <= at);
    let chosen = before.or_else(|| points.iter().find(|(when, _)| *when > at)).copied();
    Ok(match chosen {
        None => LagReading::NotReplicating {
            reason: format!("no ReplicaLag datapoint from {} s before the incident's start on", freshness.as_secs()),
        },
        Some((_, value)) if value < 0.0 => {
            LagReading::NotReplicating { reason: "ReplicaLag is -1: replication is stopped or broken".to_string() }
        }
        Some((when, value)) => LagReading::Lag { seconds: value, age: time::elapsed(when, now) },
    })
}

fn judge(newest: Option<(Timestamp, f64)>, freshness: Duration, now: Timestamp) -> LagReading {
    let Some((at, value)) = newest else {
        return LagReading::NotReplicating {
            reason: format!("no ReplicaLag datapoint in the last {} s", freshness.saturating_mul(3).as_secs()),
        };
    };
    let age = time::elapsed(at, now);
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

#[cfg(test)]
mod tests {
    use super::*;

    const FRESHNESS: Duration = Duration::from_secs(300);

    fn reading_at(age_secs: u64, value: f64) -> LagReading {
        let now = time::from_epoch_seconds(1_000_000);
        judge(Some((time::before(now, Duration::from_secs(age_secs)), value)), FRESHNESS, now)
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
        assert_eq!(judge(None, FRESHNESS, time::now()).verdict(rpo), LagVerdict::NotReplicating);
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
