//! The restore test's report.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::{SNAPSHOT_AGE_FACT, SNAPSHOT_CREATED_FACT, SNAPSHOT_FACT, instance_id};
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::notify::Severity;
use crate::report::{self, Head, Objective, ReportFile, RunKind, cell};
use crate::run::{RunStatus, RunbookState, StepKey, StepRecord, ValidState};
use crate::time::{self, Timestamp};

/// The restore test's report: what was restored, how long it took against the RTO, how old the
/// data was against the RPO, what validation found and whether the instance is gone.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RestoreReport {
    #[serde(flatten)]
    pub head: Head,
    /// The database restored (its primary instance): an estate's each in its own run.
    #[serde(default)]
    pub database: String,
    pub instance: String,
    pub snapshot: Option<String>,
    pub snapshot_created_at: Option<Timestamp>,
    /// Snapshot age against the RPO: the data a restore from backup would lose.
    pub snapshot_age_seconds: Option<u64>,
    pub rpo_target_seconds: u64,
    pub rpo_met: Option<bool>,
    /// From the restore request until the instance was available.
    pub restore_seconds: Option<f64>,
    pub rto_target_seconds: u64,
    pub rto_met: Option<bool>,
    pub validation: Option<String>,
    /// Whether the temporary instance was deleted.
    pub cleaned_up: bool,
    pub steps: Vec<StepRecord>,
}

pub fn build_restore_report(state: &RunbookState) -> RestoreReport {
    let fact = |key: &str| state.step(StepKey::Snapshot).and_then(|r| r.facts.get(key)).cloned();
    let snapshot_age_seconds = fact(SNAPSHOT_AGE_FACT).and_then(|age| age.parse().ok());
    let ready = state.step(StepKey::RestoreStatus).filter(|s| s.ready);
    let restore_seconds = state
        .step(StepKey::Restore)
        .zip(ready)
        .map(|(start, ready)| time::seconds_between(start.started_at, ready.finished_at).max(0.0));
    let (rto, rpo) = (state.plan.targets.rto().as_secs(), state.plan.targets.rpo().as_secs());
    let validation = state.step(StepKey::Validate).map(|r| r.detail.clone());
    let cleaned_up = state.step(StepKey::Cleanup).is_some();
    let succeeded = state.error.is_none() && validation.is_some() && cleaned_up;
    RestoreReport {
        head: Head::of(state, RunStatus::of(false, succeeded)),
        database: state
            .plan
            .database_named(state.run.restore_database.as_deref())
            .map(|db| db.primary_instance.clone())
            .unwrap_or_default(),
        instance: instance_id(&state.run.id),
        snapshot: fact(SNAPSHOT_FACT),
        snapshot_created_at: fact(SNAPSHOT_CREATED_FACT).and_then(|at| time::parse(&at).ok()),
        snapshot_age_seconds,
        rpo_target_seconds: rpo,
        rpo_met: snapshot_age_seconds.map(|age| age <= rpo),
        restore_seconds,
        rto_target_seconds: rto,
        rto_met: restore_seconds.map(|s| s <= rto as f64),
        validation,
        cleaned_up,
        steps: state.steps.values().cloned().collect(),
    }
}

pub fn render_restore_markdown(report: &RestoreReport) -> Result<String, DrError> {
    report::render(|md| write_markdown(md, report))
}

fn write_markdown(md: &mut String, report: &RestoreReport) -> fmt::Result {
    let snapshot = report.snapshot.as_deref().unwrap_or("none");
    let created = report.snapshot_created_at.map_or("n/a".to_string(), time::rfc3339);
    let extra = [
        format!("**Database:** {}", report.database),
        format!("**Snapshot:** {snapshot} (created {created})"),
        format!(
            "**Temporary instance:** {} ({})",
            report.instance,
            if report.cleaned_up { "deleted" } else { "NOT confirmed deleted" }
        ),
        format!("**Validation:** {}", report.validation.as_deref().unwrap_or("not reached")),
    ];
    report.head.write(md, "Restore test report", &extra)?;
    report::write_objectives(md, &objectives(report))?;
    writeln!(
        md,
        "## Steps\n\n| step | start | end | outcome | AWS calls (mutating) | detail |\n|---|---|---|---|---|---|"
    )?;
    for step in &report.steps {
        writeln!(
            md,
            "| {} | {} | {} | {:?} | {} ({}) | {} |",
            step.step,
            time::rfc3339(step.started_at),
            time::rfc3339(step.finished_at),
            step.outcome,
            step.calls.len(),
            step.mutating_calls(),
            cell(&step.detail)
        )?;
    }
    Ok(())
}

/// The restore test's objectives: the restore against the RTO, the snapshot's age against the RPO.
fn objectives(report: &RestoreReport) -> [Objective<'static>; 2] {
    [
        Objective {
            name: "RTO (restore until available)",
            target_seconds: report.rto_target_seconds,
            achieved_seconds: report.restore_seconds,
            met: report.rto_met,
        },
        Objective {
            name: "RPO (snapshot age)",
            target_seconds: report.rpo_target_seconds,
            achieved_seconds: report.snapshot_age_seconds.map(|s| s as f64),
            met: report.rpo_met,
        },
    ]
}

/// Writes the report (JSON and Markdown) to `s3://<reports.bucket>/<prefix><plan>/restore-tests/<run>/`.
pub async fn write_restore_report(clients: &AwsClients, state: &ValidState) -> Result<RestoreReport, DrError> {
    let mut report = build_restore_report(state);
    let reports = &state.plan.reports;
    let base = format!("{}{}/restore-tests/{}/", reports.prefix, state.plan.name, state.run.id);
    let (json_key, md_key) = (format!("{base}report.json"), format!("{base}report.md"));
    report.head.locations = [&json_key, &md_key].iter().map(|key| report::location(&reports.bucket, key)).collect();
    let json = serde_json::to_vec_pretty(&report).map_err(|e| DrError::serialisation("restore report", e))?;
    let markdown = render_restore_markdown(&report)?.into_bytes();
    let files = vec![
        ReportFile { key: json_key, body: json, content_type: "application/json" },
        ReportFile { key: md_key, body: markdown, content_type: "text/markdown; charset=utf-8" },
    ];
    report::put_report_files(clients, &reports.bucket, files).await?;
    tracing::info!(plan = %state.plan.name, step = "restore-report", status = ?report.head.status, "restore test report written");
    let [rto_objective, _] = objectives(&report);
    report::publish_run_metrics(clients, &report.head, RunKind::RestoreTest, &rto_objective).await;
    let [rto, rpo] = objectives(&report).map(|objective| objective.line());
    let lines = vec![
        format!("Database {}", report.database),
        rto,
        rpo,
        format!(
            "Temporary instance {}",
            if report.cleaned_up { "deleted" } else { "NOT deleted: the janitor retries" }
        ),
    ];
    let notice = report.head.notice("restore test", &lines).fact("restore_seconds", report.restore_seconds);
    // A failed restore test needs a human in working hours, not at night.
    let notice = if report.head.status.is_success() { notice } else { notice.with_severity(Severity::Error) };
    crate::notify::send(clients, &notice.fact("cleaned_up", report.cleaned_up)).await;
    Ok(report)
}
