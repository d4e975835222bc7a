//! Readiness on a schedule (AWS's Region switch evaluates its plans every 30 minutes): the plan
//! check of every served plan as its estate stands, a metric of what is not ready (which the
//! template's alarm watches), a snapshot of the findings beside the RPO snapshot, and a message
//! when the standby drifts (a finding that was not there at the last check) or is ready again.
//! A plan a run holds (failing-over) is not checked: the run is changing it.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use serde::{Deserialize, Serialize};

use super::{CheckRow, Readiness, Scope, check_plan};
use crate::aws::AwsClients;
use crate::aws::metrics::publish_metrics;
use crate::aws::objects;
use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind, Severity};
use crate::plan::{Direction, Plan};
use crate::store::{PlanStatus, PlanStore};
use crate::time::{self, Timestamp};

/// The namespace of the readiness metrics: `NotReady` (dimension Plan: how many checks are not
/// ready) and `Finding` (dimensions Plan, Finding: 1 per row with that finding).
pub const READINESS_NAMESPACE: &str = "DrOrchestrator/Readiness";

/// The plan as the estate stands (its plan state says which region is primary; without a store,
/// as written) and its readiness, checked in that direction: after a failover (Ireland primary,
/// Paris its replica) the plan is checked reversed.
pub async fn check_as_it_stands(
    clients: &AwsClients,
    store: Option<&PlanStore>,
    plan: &Plan,
) -> Result<(Plan, Readiness), DrError> {
    let direction = match store {
        Some(store) => store.read_state(&plan.name).await?.state.next_move(plan),
        None => Direction::ToDr,
    };
    let current = plan.facing(direction)?;
    let readiness = check_plan(&clients.facing(direction), &current, Scope::Full).await;
    Ok((current, readiness))
}

/// A plan's last scheduled check, as written to `s3://<reports.bucket>/readiness/<plan>/latest.json`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ReadinessSnapshot {
    pub plan: String,
    pub checked_at: Timestamp,
    pub ready: bool,
    /// The rows that are not ready.
    pub not_ready: Vec<CheckRow>,
}

/// What one scheduled check of a plan did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduledReadiness {
    pub plan: String,
    /// `checked`, or why not (`held by run <id>`).
    pub outcome: String,
    pub ready: Option<bool>,
    /// The finding names of the rows not ready.
    pub findings: Vec<String>,
    /// Whether a message went out (drift, or ready again).
    pub notified: bool,
}

pub fn snapshot_key(plan: &str) -> String {
    format!("readiness/{plan}/latest.json")
}

/// Where the snapshots of the changes are kept, one per change: `readiness/<plan>/history/`.
pub fn history_prefix(plan: &str) -> String {
    format!("readiness/{plan}/history/")
}

fn history_key(plan: &str, checked_at: Timestamp) -> String {
    format!("{}{}.json", history_prefix(plan), time::compact(checked_at))
}

/// `PlanStatus` = 1 for the plan's state now (by plan and status): the dashboard's state widget.
pub fn plan_status_metric(plan: &Plan, status: PlanStatus) -> MetricDatum {
    MetricDatum::builder()
        .metric_name("PlanStatus")
        .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
        .dimensions(Dimension::builder().name("Status").value(status.name()).build())
        .timestamp(time::to_smithy(time::now()))
        .value(1.0)
        .unit(StandardUnit::Count)
        .build()
}

/// The environment variable holding the scheduled check's EventBridge schedule (the template's
/// `ReadinessCheckSchedule`), for the readers of its snapshot.
pub const SCHEDULE_ENV: &str = "READINESS_CHECK_SCHEDULE";

/// How often the scheduled check runs, from its schedule expression: `rate(N minute(s)|hour(s)|
/// day(s))`. A `cron(...)` expression (or none) gives one hour: a snapshot older than that is not
/// trusted, whatever the cron says.
pub fn schedule_interval(expression: Option<&str>) -> Duration {
    const FALLBACK: Duration = Duration::from_secs(3600);
    let Some(rate) = expression.and_then(|e| e.trim().strip_prefix("rate(")?.strip_suffix(')')) else {
        return FALLBACK;
    };
    let mut words = rate.split_whitespace();
    let (Some(count), Some(unit)) = (words.next().and_then(|n| n.parse::<u64>().ok()), words.next()) else {
        return FALLBACK;
    };
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return FALLBACK,
    };
    Duration::from_secs(count.saturating_mul(seconds))
}

/// The plan's newest snapshot, if the scheduled check ever wrote one.
pub async fn read_snapshot(clients: &AwsClients, plan: &Plan) -> Result<Option<ReadinessSnapshot>, DrError> {
    let found = objects::get_json::<ReadinessSnapshot>(
        &clients.home.s3,
        &plan.reports.bucket,
        &snapshot_key(&plan.name),
        "readiness snapshot",
    )
    .await?;
    Ok(found.map(|(snapshot, _)| snapshot))
}

/// Checks one served plan (the published one) as its estate stands; publishes the metrics,
/// writes the snapshot, tells a drift or a recovery.
pub async fn run_scheduled_check(
    clients: &AwsClients,
    store: &PlanStore,
    plan: &Plan,
) -> Result<ScheduledReadiness, DrError> {
    let state = store.read_state(&plan.name).await?.state;
    // The plan's state on the dashboard, whether or not a run holds it. Best effort: a throttled
    // metric must not stop the check (the readiness metrics below page when they are missing).
    let status = vec![plan_status_metric(plan, state.status)];
    if let Err(err) = publish_metrics(&clients.home.cloudwatch, READINESS_NAMESPACE, status).await {
        tracing::warn!(plan = %plan.name, error = err.name(), "MetricsNotPublished: PlanStatus: {err}");
    }
    if state.status == PlanStatus::FailingOver {
        let holder = state.run_id.unwrap_or_default();
        return Ok(ScheduledReadiness {
            plan: plan.name.clone(),
            outcome: format!("not checked: held by run {holder}"),
            ready: None,
            findings: Vec::new(),
            notified: false,
        });
    }
    let (current, readiness) = check_as_it_stands(clients, Some(store), plan).await?;
    let now = time::now();
    publish_metrics(&clients.home.cloudwatch, READINESS_NAMESPACE, readiness_metrics(&readiness, now)).await?;
    let snapshot = ReadinessSnapshot {
        plan: plan.name.clone(),
        checked_at: now,
        ready: readiness.is_ready(),
        not_ready: readiness.rows.iter().filter(|row| !row.is_ready()).cloned().collect(),
    };
    let key = snapshot_key(&plan.name);
    let previous = match objects::get_json::<ReadinessSnapshot>(
        &clients.home.s3,
        &plan.reports.bucket,
        &key,
        "readiness snapshot",
    )
    .await
    {
        Ok(found) => found.map(|(snapshot, _)| snapshot),
        Err(err) => {
            tracing::warn!(plan = %plan.name, error = err.name(), "previous readiness snapshot not read: {err}");
            None
        }
    };
    let notice = drift_notice(&current, previous.as_ref(), &snapshot);
    // The history the posture page draws the drift from: the first check, then each change.
    // Written before the latest snapshot: a write that fails leaves the previous snapshot as it
    // was, so the next check finds the same change again, records and tells it.
    if notice.is_some() || previous.is_none() {
        let history = history_key(&plan.name, snapshot.checked_at);
        objects::put_json(&clients.home.s3, &plan.reports.bucket, &history, &snapshot).await?;
    }
    objects::put_json(&clients.home.s3, &plan.reports.bucket, &key, &snapshot).await?;
    if let Some(notice) = &notice {
        notify::send(clients, notice).await;
    }
    for row in &snapshot.not_ready {
        tracing::warn!(plan = %plan.name, check = row.check.label(), resource = %row.resource, finding = ?row.finding, "{}", row.detail);
    }
    Ok(ScheduledReadiness {
        plan: plan.name.clone(),
        outcome: "checked".into(),
        ready: Some(snapshot.ready),
        findings: snapshot.not_ready.iter().filter_map(|row| row.finding).map(|f| f.name().to_string()).collect(),
        notified: notice.is_some(),
    })
}

/// `NotReady` per plan and `Finding` per (plan, finding name).
pub fn readiness_metrics(readiness: &Readiness, now: Timestamp) -> Vec<MetricDatum> {
    let at = time::to_smithy(now);
    let plan = Dimension::builder().name("Plan").value(&readiness.plan).build();
    let not_ready = readiness.rows.iter().filter(|row| !row.is_ready()).count();
    let mut data = vec![
        MetricDatum::builder()
            .metric_name("NotReady")
            .dimensions(plan.clone())
            .timestamp(at)
            .value(not_ready as f64)
            .unit(StandardUnit::Count)
            .build(),
    ];
    let mut names: Vec<&str> = readiness.findings().into_iter().map(|f| f.name()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let count = readiness.findings().into_iter().filter(|f| f.name() == name).count();
        data.push(
            MetricDatum::builder()
                .metric_name("Finding")
                .dimensions(plan.clone())
                .dimensions(Dimension::builder().name("Finding").value(name).build())
                .timestamp(at)
                .value(count as f64)
                .unit(StandardUnit::Count)
                .build(),
        );
    }
    data
}

/// Told when a row is not ready that was ready (or absent) at the last check, with every finding;
/// and once when everything is ready again. Nothing while the findings stay the same: the
/// template's alarm on `NotReady` pages as long as it lasts.
pub fn drift_notice(plan: &Plan, previous: Option<&ReadinessSnapshot>, now: &ReadinessSnapshot) -> Option<Notice> {
    let was_not_ready = |row: &CheckRow| {
        previous.is_some_and(|before| {
            before
                .not_ready
                .iter()
                .any(|old| old.check == row.check && old.resource == row.resource && old.finding == row.finding)
        })
    };
    let new: Vec<&CheckRow> = now.not_ready.iter().filter(|row| !was_not_ready(row)).collect();
    if now.ready {
        let recovered = previous.is_some_and(|before| !before.ready);
        return recovered.then(|| {
            Notice::new(
                NoticeKind::ReadinessDrift,
                &plan.name,
                None,
                format!("{}: standby READY again", plan.name),
                format!("plan check {} -> {}: every check ready", plan.primary_region, plan.dr_region),
            )
            .resolving()
            .with_severity(Severity::Info)
        });
    }
    if new.is_empty() {
        return None;
    }
    let line = |row: &CheckRow| {
        format!(
            "{} {}: {}: {}",
            row.check.label(),
            row.resource,
            row.finding.map(|f| f.name()).unwrap_or_default(),
            row.detail
        )
    };
    let lines: Vec<String> = now.not_ready.iter().map(line).collect();
    let text = format!(
        "plan check {} -> {}: {} of the checks not ready ({} new)\n{}\nDetails: drctl plan check <plan file>",
        plan.primary_region,
        plan.dr_region,
        now.not_ready.len(),
        new.len(),
        lines.join("\n")
    );
    let findings: Vec<&str> = now.not_ready.iter().filter_map(|row| row.finding).map(|f| f.name()).collect();
    Some(
        Notice::new(
            NoticeKind::ReadinessDrift,
            &plan.name,
            None,
            format!(
                "{}: standby NOT READY ({} finding{})",
                plan.name,
                now.not_ready.len(),
                if now.not_ready.len() == 1 { "" } else { "s" }
            ),
            text,
        )
        .fact("findings", findings),
    )
}

#[cfg(test)]
mod schedule_tests {
    use super::*;

    #[test]
    fn the_schedules_interval_comes_from_its_rate_and_a_cron_trusts_one_hour() {
        assert_eq!(schedule_interval(Some("rate(30 minutes)")), Duration::from_secs(1800));
        assert_eq!(schedule_interval(Some("rate(1 minute)")), Duration::from_secs(60));
        assert_eq!(schedule_interval(Some("rate(2 hours)")), Duration::from_secs(7200));
        assert_eq!(schedule_interval(Some("rate(1 day)")), Duration::from_secs(86_400));
        assert_eq!(schedule_interval(Some("cron(0/15 * * * ? *)")), Duration::from_secs(3600));
        assert_eq!(schedule_interval(None), Duration::from_secs(3600));
    }
}
