//! The periodic RPO check: would a failover now meet the RPO, pair by replicated pair?
//!
//! - **RDS**: the Ireland replica's ReplicaLag (the same reading as the runbook's RPO gate and
//!   `plan check`: [`super::read_replica_lags`]); -1, no datapoint or a stale one means not
//!   replicating, never "lag 0".
//! - **S3**: a heartbeat object (`dr-orchestrator/heartbeat/<plan>.json`, holding the time it was
//!   written) is written to the Paris bucket on each run; the copy replication brought to the
//!   Ireland bucket says how old the newest replicated write is: now minus its time. Read before
//!   the new one is written, it is an upper bound of the data a failover would lose. With
//!   replication metrics on, the rule's `ReplicationLatency` is read too.
//!
//! - **RDS with `database.credentials_secret`**: a database heartbeat (the `rpo-check` row of
//!   `dr_orchestrator.heartbeat`, [`crate::aws::postgres`]) is rewritten on the Paris primary on
//!   each run and looked for on the Ireland replica: the lag is how long the new row took to be
//!   replayed there (watched for [`HEARTBEAT_REPLAY_WAIT`]), else the age of the newest row the
//!   replica has. The same rows are what an unplanned run's gate measures the loss from, so the
//!   status, the gate and the report use one measure; and the rows keep an idle primary's
//!   replica current, where ReplicaLag would grow although nothing is missing. A replica that
//!   cannot be read by SQL falls back to ReplicaLag, the error named.
//!
//! Metric reads are batched (500 queries per GetMetricData), metric writes too (1,000 datums per
//! PutMetricData); heartbeats are two S3 calls per bucket pair, at most [`HEARTBEAT_CONCURRENCY`]
//! in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{LagReading, LagVerdict, read_replica_lags};
use crate::aws::metrics::{maximum_per_minute, newest_datapoints, publish_metrics};
use crate::aws::objects;
use crate::aws::postgres;
use crate::aws::{AwsClients, PRIMARY_REGION_BUDGET, within_primary_budget};
use crate::error::DrError;
use crate::notify::{self, Notice, NoticeAction, NoticeKind, Severity};
use crate::plan::{Database, Plan};
use crate::time::{self, Timestamp};

/// Where a plan's heartbeat lives in both buckets of a pair.
pub fn heartbeat_key(plan: &str) -> String {
    format!("dr-orchestrator/heartbeat/{plan}.json")
}

/// Heartbeat reads and writes in flight at once.
pub const HEARTBEAT_CONCURRENCY: usize = 32;

/// How long the check watches the Ireland replica for the database heartbeat it just wrote.
pub const HEARTBEAT_REPLAY_WAIT: Duration = Duration::from_secs(2);

/// The default namespace of the RPO metrics (template.yaml's `RpoMetricNamespace`).
pub const DEFAULT_NAMESPACE: &str = "DrOrchestrator/Rpo";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PairKind {
    Rds,
    S3,
}

/// One replicated pair of one plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicatedPair {
    pub plan: String,
    pub kind: PairKind,
    /// RDS: the primary instance; S3: the primary region's bucket.
    pub source: String,
    /// RDS: the replica instance; S3: the DR region's bucket.
    pub replica: String,
    /// What the plan calls the replica's region, in the pair's readings.
    pub replica_region_name: String,
    pub rpo: Duration,
    /// RDS: a ReplicaLag datapoint older than this means not replicating.
    pub freshness: Duration,
    /// S3: the replication rule whose `ReplicationLatency` to read, when metrics are on.
    pub metrics_rule: Option<String>,
    /// RDS: the secret of the database's credentials, when the plan names one: the pair is then
    /// measured by its database heartbeat.
    pub credentials_secret: Option<String>,
}

impl ReplicatedPair {
    /// The pair's name in metrics, snapshots and tables.
    pub fn name(&self) -> String {
        format!("{} -> {}", self.source, self.replica)
    }
}

/// Every replicated pair of a plan: its databases, then its buckets.
pub fn pairs_of(plan: &Plan) -> Vec<ReplicatedPair> {
    let rpo = plan.targets.rpo();
    // The buckets' replication metrics are judged with the strictest of the databases' windows.
    let freshness = plan.databases.iter().map(Database::lag_freshness).min().unwrap_or_default();
    let mut pairs: Vec<ReplicatedPair> = plan
        .databases
        .iter()
        .map(|db| ReplicatedPair {
            plan: plan.name.clone(),
            kind: PairKind::Rds,
            source: db.primary_instance.clone(),
            replica: db.replica_instance.clone(),
            replica_region_name: plan.dr_name().to_string(),
            rpo,
            freshness: db.lag_freshness(),
            metrics_rule: None,
            credentials_secret: db.credentials_secret.clone(),
        })
        .collect();
    pairs.extend(plan.s3_replication.iter().map(|bucket| ReplicatedPair {
        plan: plan.name.clone(),
        kind: PairKind::S3,
        source: bucket.source_bucket.clone(),
        replica: bucket.replica_bucket.clone(),
        replica_region_name: plan.dr_name().to_string(),
        rpo,
        freshness,
        metrics_rule: bucket.replication_metrics.then(|| bucket.replication_rule.clone()).flatten(),
        credentials_secret: None,
    }));
    pairs
}

/// One pair, judged.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PairStatus {
    pub plan: String,
    pub kind: PairKind,
    pub pair: String,
    /// How far behind the replica is, when known.
    pub lag_seconds: Option<f64>,
    pub rpo_seconds: u64,
    /// Lag as a share of the RPO, in percent.
    pub budget_used_percent: Option<f64>,
    pub verdict: LagVerdict,
    pub detail: String,
    /// S3 with replication metrics: the rule's newest `ReplicationLatency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_latency_seconds: Option<f64>,
    /// The named error that kept the pair from being read (e.g. `ResourceNotFound`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PairStatus {
    fn judged(pair: &ReplicatedPair, reading: &LagReading) -> PairStatus {
        let rpo_seconds = pair.rpo.as_secs();
        let (lag_seconds, detail) = match reading {
            LagReading::Lag { seconds, .. } => (Some(*seconds), format!("lag {seconds:.0} s")),
            LagReading::NotReplicating { reason } => (None, reason.clone()),
        };
        PairStatus {
            plan: pair.plan.clone(),
            kind: pair.kind,
            pair: pair.name(),
            lag_seconds,
            rpo_seconds,
            budget_used_percent: lag_seconds.map(|lag| lag * 100.0 / rpo_seconds.max(1) as f64),
            verdict: reading.verdict(pair.rpo),
            detail,
            replication_latency_seconds: None,
            error: None,
        }
    }

    /// The status as a reading (the gate's view of it).
    pub fn reading(&self) -> LagReading {
        match self.lag_seconds {
            Some(seconds) => LagReading::Lag { seconds, age: Duration::ZERO },
            None => LagReading::NotReplicating { reason: self.detail.clone() },
        }
    }

    fn failed(pair: &ReplicatedPair, err: &DrError) -> PairStatus {
        let mut status = PairStatus::judged(pair, &LagReading::NotReplicating { reason: err.to_string() });
        status.error = Some(err.name().to_string());
        status
    }
}

/// Whether the check writes a new heartbeat (the scheduled Lambda) or only reads (`drctl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Write,
    ReadOnly,
}

/// The heartbeat object's body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct HeartbeatBody {
    pub plan: String,
    pub written_at: Timestamp,
}

/// Checks every pair; `clients` must serve the pairs' primary and DR regions. A pair that cannot
/// be read (a missing bucket, Paris unreachable) is reported with its named error, not dropped.
pub async fn check_pairs(
    clients: &AwsClients,
    pairs: &[ReplicatedPair],
    heartbeat: Heartbeat,
    now: Timestamp,
) -> Result<Vec<PairStatus>, DrError> {
    let mut statuses: Vec<Option<PairStatus>> = vec![None; pairs.len()];
    // Every call to the primary region (heartbeat writes, S3's metrics) shares one short budget:
    // when Paris hangs, the check still reports Ireland's side within the function's timeout.
    let primary_deadline = tokio::time::Instant::now() + PRIMARY_REGION_BUDGET;

    // RDS: one batched read per freshness window (plans usually share one).
    let mut by_freshness: BTreeMap<Duration, Vec<usize>> = BTreeMap::new();
    for (index, pair) in pairs.iter().enumerate().filter(|(_, p)| p.kind == PairKind::Rds) {
        by_freshness.entry(pair.freshness).or_default().push(index);
    }
    for (freshness, indexes) in by_freshness {
        let replicas: Vec<String> = indexes.iter().map(|i| pairs[*i].replica.clone()).collect();
        let readings = read_replica_lags(&clients.dr.cloudwatch, &replicas, freshness, now).await?;
        for (index, reading) in indexes.into_iter().zip(readings) {
            statuses[index] = Some(PairStatus::judged(&pairs[index], &reading));
        }
    }

    let permits = Arc::new(Semaphore::new(HEARTBEAT_CONCURRENCY));
    let mut tasks = JoinSet::new();

    // RDS with credentials: the database heartbeat replaces ReplicaLag where it can be read.
    for (index, pair) in pairs.iter().enumerate().filter(|(_, p)| p.kind == PairKind::Rds) {
        let Some(secret) = pair.credentials_secret.clone() else { continue };
        let (pair, clients, permits) = (pair.clone(), clients.clone(), Arc::clone(&permits));
        let by_replica_lag = statuses[index].clone().unwrap_or_else(|| unread(&pair));
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            let status = match database_heartbeat_lag(&clients, &pair, &secret, heartbeat, primary_deadline).await {
                Ok((Some((reading, detail)), write_error)) => {
                    with_write_error(PairStatus { detail, ..PairStatus::judged(&pair, &reading) }, write_error)
                }
                Ok((None, write_error)) => PairStatus {
                    detail: format!(
                        "{}; no database heartbeat has reached {} yet",
                        by_replica_lag.detail, pair.replica
                    ),
                    ..with_write_error(by_replica_lag, write_error)
                },
                Err(err) => PairStatus {
                    detail: format!("{}; database heartbeat not read: {err}", by_replica_lag.detail),
                    error: Some(err.name().to_string()),
                    ..by_replica_lag
                },
            };
            (index, status)
        });
    }

    // S3: heartbeats, bounded concurrency.
    for (index, pair) in pairs.iter().enumerate().filter(|(_, p)| p.kind == PairKind::S3) {
        let (pair, clients, permits) = (pair.clone(), clients.clone(), Arc::clone(&permits));
        tasks.spawn(async move {
            let _permit = permits.acquire().await;
            let status = match heartbeat_lag(&clients, &pair, heartbeat, now, primary_deadline).await {
                Ok((reading, write_error)) => with_write_error(PairStatus::judged(&pair, &reading), write_error),
                Err(err) => PairStatus::failed(&pair, &err),
            };
            (index, status)
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (index, status) = done.map_err(|e| DrError::Internal { message: format!("heartbeat task failed: {e}") })?;
        statuses[index] = Some(status);
    }

    // S3 replication metrics, in the source region where S3 publishes them: one batched read.
    let with_metrics: Vec<usize> =
        (0..pairs.len()).filter(|i| pairs[*i].kind == PairKind::S3 && pairs[*i].metrics_rule.is_some()).collect();
    if !with_metrics.is_empty() {
        let metrics = with_metrics
            .iter()
            .map(|i| {
                let pair = &pairs[*i];
                let rule = pair.metrics_rule.as_deref().unwrap_or_default();
                maximum_per_minute(
                    "AWS/S3",
                    "ReplicationLatency",
                    &[("SourceBucket", &pair.source), ("DestinationBucket", &pair.replica), ("RuleId", rule)],
                )
            })
            .collect();
        // Best effort: Paris's CloudWatch is down with Paris, exactly when the lags matter most.
        let read = newest_datapoints(&clients.primary.cloudwatch, metrics, Duration::from_secs(900), now);
        let newest = match within_primary_budget(primary_deadline, &clients.primary.region, read).await {
            Ok(newest) => newest,
            Err(err) => {
                tracing::warn!(error = err.name(), "S3 ReplicationLatency not read: {err}");
                Vec::new()
            }
        };
        for (index, datapoint) in with_metrics.into_iter().zip(newest) {
            if let (Some(status), Some((_, latency))) = (statuses[index].as_mut(), datapoint) {
                status.replication_latency_seconds = Some(latency);
            }
        }
    }

    Ok(statuses.into_iter().zip(pairs).map(|(status, pair)| status.unwrap_or_else(|| unread(pair))).collect())
}

fn unread(pair: &ReplicatedPair) -> PairStatus {
    PairStatus::judged(pair, &LagReading::NotReplicating { reason: "not read".to_string() })
}

/// A reading stands when the next heartbeat could not be written (it is what a failover would
/// lose); the write error is named beside it.
fn with_write_error(status: PairStatus, write_error: Option<DrError>) -> PairStatus {
    match write_error {
        None => status,
        Some(err) => PairStatus {
            error: Some(err.name().to_string()),
            detail: format!("{}; next heartbeat not written: {err}", status.detail),
            ..status
        },
    }
}

/// The database heartbeat of an RDS pair: (when writing) rewrites the `rpo-check` row on the Paris
/// primary, within the primary region's budget, then reads the replica: the new row replayed
/// within [`HEARTBEAT_REPLAY_WAIT`] gives the time it took; otherwise the newest row the replica
/// has gives its age (none at all: `None`). The reading comes with its words. A failed write
/// does not void the reading.
async fn database_heartbeat_lag(
    clients: &AwsClients,
    pair: &ReplicatedPair,
    secret: &str,
    heartbeat: Heartbeat,
    primary_deadline: tokio::time::Instant,
) -> Result<(Option<(LagReading, String)>, Option<DrError>), DrError> {
    let credentials = postgres::read_credentials(clients, secret).await?;
    let mut written = None;
    let mut write_error = None;
    if heartbeat == Heartbeat::Write {
        let write = async {
            let primary = &clients.primary;
            let mut session = postgres::connect_to(&primary.rds, &pair.source, &primary.region, &credentials).await?;
            session.write_through_the_fence().await?;
            session.write_heartbeat(postgres::RPO_CHECK_SOURCE, true).await
        };
        match within_primary_budget(primary_deadline, &clients.primary.region, write).await {
            Ok(at) => written = Some(at),
            Err(err) => write_error = Some(err),
        }
    }
    let session = postgres::connect_to(&clients.dr.rds, &pair.replica, &clients.dr.region, &credentials).await?;
    let watch_until = tokio::time::Instant::now() + HEARTBEAT_REPLAY_WAIT;
    loop {
        let newest = session.newest_heartbeat().await?;
        let seen_at = time::now();
        // Replayed: the lag is (at most) how long the new row took to be there.
        if let (Some(newest), Some(written_at)) = (newest, written)
            && newest >= written_at
        {
            let replay = time::seconds_between(written_at, seen_at).max(0.0);
            let detail = format!(
                "database heartbeat replayed in {} {replay:.2} s after it was written",
                pair.replica_region_name
            );
            return Ok((Some((LagReading::Lag { seconds: replay, age: Duration::ZERO }, detail)), write_error));
        }
        if written.is_some() && tokio::time::Instant::now() < watch_until {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        // Not (yet) replayed: whatever Paris wrote after the newest row Ireland has may be missing.
        let Some(newest) = newest else { return Ok((None, write_error)) };
        let age = time::elapsed(newest, seen_at);
        let detail = format!(
            "newest database heartbeat replayed in {} was written {:.0} s ago ({})",
            pair.replica_region_name,
            age.as_secs_f64(),
            time::rfc3339(newest)
        );
        return Ok((Some((LagReading::Lag { seconds: age.as_secs_f64(), age: Duration::ZERO }, detail)), write_error));
    }
}

/// Reads the replicated heartbeat in Ireland, then (when writing) writes the next one in Paris.
/// A failed write does not void the reading: it comes back beside it.
async fn heartbeat_lag(
    clients: &AwsClients,
    pair: &ReplicatedPair,
    heartbeat: Heartbeat,
    now: Timestamp,
    primary_deadline: tokio::time::Instant,
) -> Result<(LagReading, Option<DrError>), DrError> {
    let key = heartbeat_key(&pair.plan);
    let replicated = objects::get_json::<HeartbeatBody>(&clients.dr.s3, &pair.replica, &key, "heartbeat")
        .await?
        .map(|(beat, _)| beat.written_at);
    let mut write_error = None;
    if heartbeat == Heartbeat::Write {
        let beat = HeartbeatBody { plan: pair.plan.clone(), written_at: now };
        let write = objects::put_json(&clients.primary.s3, &pair.source, &key, &beat);
        write_error = within_primary_budget(primary_deadline, &clients.primary.region, write).await.err();
    }
    let reading = match replicated {
        None => LagReading::NotReplicating { reason: format!("no heartbeat has reached {} yet", pair.replica) },
        Some(written_at) => {
            let age = time::elapsed(written_at, now);
            LagReading::Lag { seconds: age.as_secs_f64(), age }
        }
    };
    Ok((reading, write_error))
}

/// The metrics of a check: per pair (dimensions Plan, Pair) `ReplicationLagSeconds`,
/// `RpoBudgetUsedPercent` and `NotReplicating` (0/1); per plan (dimension Plan)
/// `MaxRpoBudgetUsedPercent` and `NotReplicatingPairs`, which template.yaml's alarms watch.
pub fn rpo_metrics(statuses: &[PairStatus], now: Timestamp) -> Vec<MetricDatum> {
    let at = time::to_smithy(now);
    let datum = |name: &str, value: f64, unit: StandardUnit, dimensions: Vec<Dimension>| {
        MetricDatum::builder()
            .metric_name(name)
            .set_dimensions(Some(dimensions))
            .timestamp(at)
            .value(value)
            .unit(unit)
            .build()
    };
    let mut data = Vec::new();
    // Per plan: the worst budget use among pairs with a lag (none: no datum, never "0 %"), and
    // how many pairs are not replicating.
    let mut per_plan: BTreeMap<&str, (Option<f64>, f64)> = BTreeMap::new();
    for status in statuses {
        let dims = vec![
            Dimension::builder().name("Plan").value(&status.plan).build(),
            Dimension::builder().name("Pair").value(&status.pair).build(),
        ];
        let not_replicating = status.verdict == LagVerdict::NotReplicating;
        if let (Some(lag), Some(used)) = (status.lag_seconds, status.budget_used_percent) {
            data.push(datum("ReplicationLagSeconds", lag, StandardUnit::Seconds, dims.clone()));
            data.push(datum("RpoBudgetUsedPercent", used, StandardUnit::Percent, dims.clone()));
        }
        data.push(datum("NotReplicating", f64::from(u8::from(not_replicating)), StandardUnit::Count, dims));
        let plan = per_plan.entry(&status.plan).or_default();
        if let Some(used) = status.budget_used_percent {
            plan.0 = Some(plan.0.map_or(used, |worst: f64| worst.max(used)));
        }
        plan.1 += f64::from(u8::from(not_replicating));
    }
    for (plan, (max_used, not_replicating)) in per_plan {
        let dims = vec![Dimension::builder().name("Plan").value(plan).build()];
        if let Some(max_used) = max_used {
            data.push(datum("MaxRpoBudgetUsedPercent", max_used, StandardUnit::Percent, dims.clone()));
        }
        data.push(datum("NotReplicatingPairs", not_replicating, StandardUnit::Count, dims));
    }
    data
}

/// A plan's status snapshot, as written to `s3://<reports.bucket>/rpo/<plan>/latest.json`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RpoSnapshot {
    pub plan: String,
    pub checked_at: Timestamp,
    pub rpo_seconds: u64,
    pub pairs: Vec<PairStatus>,
    /// A breach was told and not yet resolved: only then does "within the RPO again" close an
    /// incident (a first check over the RPO opened none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub breach_told: bool,
}

pub fn snapshot_key(plan: &str) -> String {
    format!("rpo/{plan}/latest.json")
}

/// Writes the plan's snapshot to its report bucket (DR region).
pub async fn write_snapshot(clients: &AwsClients, plan: &Plan, snapshot: &RpoSnapshot) -> Result<String, DrError> {
    let key = snapshot_key(&plan.name);
    objects::put_json(&clients.home.s3, &plan.reports.bucket, &key, snapshot).await?;
    Ok(format!("s3://{}/{key}", plan.reports.bucket))
}

/// The plan's last snapshot, if one can be read (a missing or unreadable one counts as none).
async fn read_snapshot(clients: &AwsClients, plan: &Plan) -> Option<RpoSnapshot> {
    let key = snapshot_key(&plan.name);
    match objects::get_json(&clients.home.s3, &plan.reports.bucket, &key, "RPO snapshot").await {
        Ok(found) => found.map(|(snapshot, _)| snapshot),
        Err(err) => {
            tracing::warn!(plan = %plan.name, error = err.name(), "previous RPO snapshot not read: {err}");
            None
        }
    }
}

fn all_within(snapshot: &RpoSnapshot) -> bool {
    !snapshot.pairs.is_empty() && snapshot.pairs.iter().all(|pair| pair.verdict == LagVerdict::WithinRpo)
}

/// The notification of pairs that went over the RPO (or stopped replicating) since the last
/// check: only the change is news, the check runs every few minutes. The RPO alarms of the
/// template (whose action is the same topic) page as long as it lasts.
pub fn breach_notice(plan: &Plan, previous: Option<&RpoSnapshot>, now: &RpoSnapshot) -> Option<Notice> {
    // A pair that has not been within the RPO since the first check (a new deployment whose
    // heartbeat has not replicated yet) is left to the template's RPO alarms, which page the topic.
    let was_within = |pair: &PairStatus| {
        previous.is_some_and(|before| {
            before.pairs.iter().any(|old| old.pair == pair.pair && old.verdict == LagVerdict::WithinRpo)
        })
    };
    let breached: Vec<&PairStatus> =
        now.pairs.iter().filter(|pair| pair.verdict != LagVerdict::WithinRpo && was_within(pair)).collect();
    if breached.is_empty() {
        // Every pair back within the RPO after a breach that was told: its incident closes (same
        // key: one per plan and kind).
        let told = previous.is_some_and(|before| before.breach_told);
        return (all_within(now) && told).then(|| {
            Notice::new(
                NoticeKind::RpoBreach,
                &plan.name,
                None,
                format!("{}: RPO within target again", plan.name),
                format!("every pair within the RPO of {} s again", now.rpo_seconds),
            )
            .resolving()
            .with_severity(Severity::Info)
        });
    }
    let lines: Vec<String> =
        breached.iter().map(|pair| format!("{}: {:?}: {}", pair.pair, pair.verdict, pair.detail)).collect();
    let text = format!(
        "RPO {} s at risk: a failover now would lose more, or the replica is not replicating\n{}",
        now.rpo_seconds,
        lines.join("\n")
    );
    let pairs: Vec<&str> = breached.iter().map(|pair| pair.pair.as_str()).collect();
    let notice = Notice::new(NoticeKind::RpoBreach, &plan.name, None, format!("{}: RPO BREACHED", plan.name), text)
        .fact("pairs", pairs)
        .fact("rpo_seconds", now.rpo_seconds);
    Some(notice)
}

/// What one scheduled run did.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RpoRun {
    pub checked_at: Timestamp,
    pub pairs: usize,
    pub within_rpo: usize,
    pub rpo_exceeded: usize,
    pub not_replicating: usize,
    pub snapshots: Vec<String>,
}

/// The scheduled run: checks every pair of `plans` (sharing `clients`' regions), writes the
/// heartbeats, publishes the metrics in the DR region, and one snapshot per plan.
pub async fn run_check(clients: &AwsClients, plans: &[Plan], namespace: &str) -> Result<RpoRun, DrError> {
    let now = time::now();
    let pairs: Vec<ReplicatedPair> = plans.iter().flat_map(pairs_of).collect();
    let statuses = check_pairs(clients, &pairs, Heartbeat::Write, now).await?;
    publish_metrics(&clients.home.cloudwatch, namespace, rpo_metrics(&statuses, now)).await?;
    let mut snapshots = Vec::new();
    for plan in plans {
        let mut snapshot = RpoSnapshot {
            plan: plan.name.clone(),
            checked_at: now,
            rpo_seconds: plan.targets.rpo().as_secs(),
            pairs: statuses.iter().filter(|s| s.plan == plan.name).cloned().collect(),
            breach_told: false,
        };
        let previous = read_snapshot(clients, plan).await;
        let notice = breach_notice(plan, previous.as_ref(), &snapshot);
        snapshot.breach_told = match &notice {
            Some(notice) => notice.event_action == NoticeAction::Trigger,
            None => previous.as_ref().is_some_and(|before| before.breach_told) && !all_within(&snapshot),
        };
        snapshots.push(write_snapshot(clients, plan, &snapshot).await?);
        if let Some(notice) = notice {
            notify::send(clients, &notice).await;
        }
    }
    let count = |verdict: LagVerdict| statuses.iter().filter(|s| s.verdict == verdict).count();
    for status in statuses.iter().filter(|s| s.verdict != LagVerdict::WithinRpo) {
        tracing::warn!(plan = %status.plan, pair = %status.pair, verdict = ?status.verdict, error = ?status.error, "{}", status.detail);
    }
    Ok(RpoRun {
        checked_at: now,
        pairs: statuses.len(),
        within_rpo: count(LagVerdict::WithinRpo),
        rpo_exceeded: count(LagVerdict::RpoExceeded),
        not_replicating: count(LagVerdict::NotReplicating),
        snapshots,
    })
}

/// The scheduled Lambda's run over every served plan: plans of the same region pair share
/// clients and one batched check.
pub async fn run_scheduled(
    clients_for: impl Fn(&Plan) -> AwsClients,
    plans: &[Plan],
    namespace: &str,
) -> Result<Vec<RpoRun>, DrError> {
    let mut by_regions: BTreeMap<(&str, &str), Vec<Plan>> = BTreeMap::new();
    for plan in plans {
        by_regions.entry((&plan.primary_region, &plan.dr_region)).or_default().push(plan.clone());
    }
    let mut runs = Vec::new();
    for group in by_regions.values() {
        let Some(first) = group.first() else { continue };
        let run = run_check(&clients_for(first), group, namespace).await?;
        tracing::info!(
            pairs = run.pairs,
            within_rpo = run.within_rpo,
            rpo_exceeded = run.rpo_exceeded,
            not_replicating = run.not_replicating,
            "RPO check done"
        );
        runs.push(run);
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(plan: &str, lag: Option<f64>, verdict: LagVerdict) -> PairStatus {
        PairStatus {
            plan: plan.to_string(),
            kind: PairKind::S3,
            pair: "a -> b".to_string(),
            lag_seconds: lag,
            rpo_seconds: 3600,
            budget_used_percent: lag.map(|l| l * 100.0 / 3600.0),
            verdict,
            detail: String::new(),
            replication_latency_seconds: None,
            error: None,
        }
    }

    #[test]
    fn a_breach_is_told_when_it_starts_not_while_it_lasts() {
        let plan = Plan::parse(include_str!("../../../../plans/paris-ireland.toml"), "example").expect("plan");
        let snapshot = |verdict| RpoSnapshot {
            plan: "p".into(),
            checked_at: time::from_epoch_seconds(0),
            rpo_seconds: 3600,
            pairs: vec![status("p", Some(7200.0), verdict)],
            breach_told: false,
        };
        let (within, over) = (snapshot(LagVerdict::WithinRpo), snapshot(LagVerdict::RpoExceeded));
        let told = breach_notice(&plan, Some(&within), &over).expect("a new breach is told");
        let over_told = RpoSnapshot { breach_told: true, ..over.clone() };
        assert_eq!(told.kind, NoticeKind::RpoBreach);
        assert!(told.text.contains("a -> b: RpoExceeded"), "{}", told.text);
        assert!(breach_notice(&plan, Some(&over), &over).is_none(), "still over: already told");
        assert!(breach_notice(&plan, None, &over).is_none(), "the first check sets the baseline: the alarms page");
        assert!(breach_notice(&plan, Some(&over), &within).is_none(), "back within, no breach told: nothing to close");
        let back = breach_notice(&plan, Some(&over_told), &within).expect("back within: the breach's incident closes");
        assert_eq!((back.event_action, back.dedup_key.as_str()), (NoticeAction::Resolve, told.dedup_key.as_str()));
        assert!(breach_notice(&plan, Some(&within), &within).is_none(), "within and within: nothing to tell");
    }

    #[test]
    fn metrics_carry_each_pair_and_each_plans_worst() {
        let statuses = [
            status("p", Some(1800.0), LagVerdict::WithinRpo),
            status("p", None, LagVerdict::NotReplicating),
            status("q", Some(36.0), LagVerdict::WithinRpo),
        ];
        let data = rpo_metrics(&statuses, time::from_epoch_seconds(0));
        let value = |name: &str, plan: &str| {
            data.iter()
                .find(|d| {
                    d.metric_name() == Some(name)
                        && d.dimensions().len() == 1
                        && d.dimensions()[0].value() == Some(plan)
                })
                .and_then(|d| d.value())
        };
        assert_eq!(value("MaxRpoBudgetUsedPercent", "p"), Some(50.0));
        assert_eq!(value("NotReplicatingPairs", "p"), Some(1.0));
        assert_eq!(value("MaxRpoBudgetUsedPercent", "q"), Some(1.0));
        // A pair not replicating has no lag to publish, only its NotReplicating = 1.
        assert_eq!(data.iter().filter(|d| d.metric_name() == Some("ReplicationLagSeconds")).count(), 2);
        // A plan with no lag at all publishes no budget use (never "0 %").
        let silent = rpo_metrics(&[status("r", None, LagVerdict::NotReplicating)], time::from_epoch_seconds(0));
        assert!(silent.iter().all(|d| d.metric_name() != Some("MaxRpoBudgetUsedPercent")));
    }
}
