//! The run report: timeline, achieved RTO and RPO against the targets, the decisions taken and
//! the final state of each resource. Written to the report bucket as JSON, as Markdown and as an
//! SVG timeline, and returned as the execution's output.

use std::fmt::Write as _;
use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use super::preflight::GateDecision;
use super::{CaughtError, Outcome, RunInfo, RunMode, RunbookState, StepRecord, format_time, parse_time};
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::readiness::{CheckRow, check_plan};
use crate::trigger::{PlanState, PlanStatus, PlanStore, Versioned, WriteOutcome};

/// The phases of the timeline: the act step and the status step that closes it.
const PHASES: &[(&str, &str, Option<&str>)] = &[
    ("preflight and RPO gate", "preflight", None),
    ("promote replica", "promote", Some("promote_status")),
    ("start standby EC2", "standby", Some("standby_status")),
    ("scale Auto Scaling group", "asg", Some("asg_status")),
    ("flip DNS", "flip_dns", Some("dns_status")),
];

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TimelineEntry {
    pub phase: String,
    pub started_at: String,
    pub finished_at: String,
    pub seconds: f64,
    pub outcome: Outcome,
    pub api_calls: usize,
    pub mutating_calls: usize,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Achieved {
    pub rto_target_seconds: u64,
    /// Trigger to DNS answering Ireland; `None` when DNS was not flipped.
    pub rto_seconds: Option<f64>,
    pub rto_met: Option<bool>,
    pub rpo_target_seconds: u64,
    /// The replica lag at promotion.
    pub rpo_seconds: Option<f64>,
    pub rpo_met: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunReport {
    pub plan: String,
    pub run: RunInfo,
    /// "succeeded" or "failed"; a dry run: "dry run completed" or "dry run failed".
    pub status: String,
    /// The plan's single-flight state after the run, when the run held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    pub achieved: Achieved,
    pub gate: Option<GateDecision>,
    pub timeline: Vec<TimelineEntry>,
    /// Every step record, as the state machine passed them.
    pub steps: Vec<StepRecord>,
    pub final_state: Vec<CheckRow>,
    pub mutating_calls: usize,
    pub generated_at: String,
    /// Where the report was written: JSON, Markdown, SVG.
    pub locations: Vec<String>,
}

fn seconds_between(start: &str, end: &str) -> Option<f64> {
    let (start, end) = (parse_time(start).ok()?, parse_time(end).ok()?);
    Some(end.duration_since(start).map(|d| d.as_secs_f64()).unwrap_or(0.0))
}

/// Builds the report from the execution state and the estate as it is now (no S3 write).
pub fn build_report(state: &RunbookState, final_state: Vec<CheckRow>) -> RunReport {
    let plan = &state.plan;
    let steps = &state.steps;
    let timeline: Vec<TimelineEntry> = PHASES
        .iter()
        .filter_map(|(phase, act_key, status_key)| {
            let act = steps.get(*act_key)?;
            let status = status_key.and_then(|key| steps.get(key));
            let last = status.unwrap_or(act);
            let records: Vec<&StepRecord> = [Some(act), status].into_iter().flatten().collect();
            Some(TimelineEntry {
                phase: phase.to_string(),
                started_at: act.started_at.clone(),
                finished_at: last.finished_at.clone(),
                seconds: seconds_between(&act.started_at, &last.finished_at).unwrap_or(0.0),
                outcome: act.outcome,
                api_calls: records.iter().map(|r| r.calls.len()).sum(),
                mutating_calls: records.iter().map(|r| r.mutating_calls()).sum(),
                detail: format!(
                    "{}{}",
                    act.detail,
                    status.map(|s| format!("; {} (check {})", s.detail, s.attempt)).unwrap_or_default()
                ),
            })
        })
        .collect();
    let gate = steps.get("preflight").and_then(|p| p.gate.clone());
    let dns_done = steps.get("dns_status").filter(|s| s.ready);
    let dry_run = state.is_dry_run();
    // A dry run changes nothing: there is no recovery time to measure.
    let rto_seconds =
        dns_done.filter(|_| !dry_run).and_then(|s| seconds_between(&state.run.triggered_at, &s.finished_at));
    let rto_target = plan.targets.rto().as_secs();
    let rpo_target = plan.targets.rpo().as_secs();
    let rpo_seconds = gate.as_ref().and_then(|g| g.lag_seconds).filter(|_| !dry_run);
    let achieved = Achieved {
        rto_target_seconds: rto_target,
        rto_seconds,
        rto_met: rto_seconds.map(|s| s <= rto_target as f64),
        rpo_target_seconds: rpo_target,
        rpo_seconds,
        rpo_met: rpo_seconds.map(|s| s <= rpo_target as f64),
    };
    let succeeded = state.error.is_none() && dns_done.is_some();
    RunReport {
        plan: plan.name.clone(),
        run: state.run.clone(),
        status: match (dry_run, succeeded) {
            (false, true) => "succeeded",
            (false, false) => "failed",
            (true, true) => "dry run completed",
            (true, false) => "dry run failed",
        }
        .to_string(),
        plan_state: None,
        error: state.error.clone(),
        achieved,
        gate,
        mutating_calls: steps.values().map(StepRecord::mutating_calls).sum(),
        timeline,
        steps: steps.values().cloned().collect(),
        final_state,
        generated_at: format_time(SystemTime::now()),
        locations: Vec::new(),
    }
}

fn optional_seconds(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), |s| format!("{s:.0} s"))
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

/// The human-readable report.
pub fn render_markdown(report: &RunReport) -> String {
    let mut md = String::new();
    let a = &report.achieved;
    let kind = if report.run.mode == RunMode::DryRun { "Failover DRY RUN report" } else { "Failover report" };
    let _ = writeln!(md, "# {kind}: {} / run {}\n", report.plan, report.run.id);
    let _ = writeln!(md, "- **Status:** {}", report.status.to_uppercase());
    if report.run.mode == RunMode::DryRun {
        let _ = writeln!(
            md,
            "- **Mode:** dry run: every step checked its preconditions and reports what it would do; nothing was changed"
        );
    }
    if let Some(error) = &report.error {
        let _ = writeln!(md, "- **Stopped by:** `{}`: {}", error.error, error.cause);
    }
    let _ = writeln!(md, "- **Trigger:** {} at {}", report.run.trigger, report.run.triggered_at);
    if let Some(requested) = &report.run.requested_by {
        let _ = writeln!(md, "- **Requested by:** {}, reason: {}", requested.by, requested.reason);
    }
    if let Some(incident) = &report.run.incident {
        let _ = writeln!(
            md,
            "- **Incident:** alarm `{}` in ALARM at {} ({})",
            incident.alarm, incident.alarm_at, incident.alarm_reason
        );
        let _ = writeln!(md, "- **Confirmed at:** {}: {}", incident.confirmed_at, incident.evidence.join("; "));
    }
    if let Some(plan_state) = &report.plan_state {
        let _ = writeln!(md, "- **Plan state after the run:** {plan_state}");
    }
    let _ = writeln!(md, "- **Report generated:** {}\n", report.generated_at);
    let _ = writeln!(md, "| objective | target | achieved | verdict |\n|---|---|---|---|");
    let _ = writeln!(
        md,
        "| RTO (trigger to DNS on Ireland) | {} s | {} | {} |",
        a.rto_target_seconds,
        optional_seconds(a.rto_seconds),
        verdict(a.rto_met)
    );
    let _ = writeln!(
        md,
        "| RPO (replica lag at promotion) | {} s | {} | {} |\n",
        a.rpo_target_seconds,
        optional_seconds(a.rpo_seconds),
        verdict(a.rpo_met)
    );
    let _ = writeln!(md, "## Decisions\n");
    match &report.gate {
        Some(gate) => {
            let _ = writeln!(md, "- RPO gate: **{:?}**: {}", gate.verdict, gate.reason);
            if let Some(approval) = &gate.approval {
                let _ = writeln!(md, "- **Human approval recorded:** by {}, reason: {}", approval.by, approval.reason);
            }
        }
        None => {
            let _ = writeln!(md, "- RPO gate: not reached");
        }
    }
    let _ = writeln!(md, "- Mutating AWS calls in this run: {}\n", report.mutating_calls);
    let _ = writeln!(md, "## Timeline\n\n![timeline](timeline.svg)\n");
    let _ = writeln!(
        md,
        "| phase | start | end | seconds | outcome | AWS calls (mutating) | detail |\n|---|---|---|---|---|---|---|"
    );
    for entry in &report.timeline {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:?} | {} ({}) | {} |",
            entry.phase,
            entry.started_at,
            entry.finished_at,
            entry.seconds,
            entry.outcome,
            entry.api_calls,
            entry.mutating_calls,
            entry.detail.replace('|', "/")
        );
    }
    let _ = writeln!(md, "\n## Final state\n\n| check | resource | state | detail |\n|---|---|---|---|");
    for row in &report.final_state {
        let state = row.finding.map_or("standby".to_string(), |f| f.name().to_string());
        let _ = writeln!(md, "| {} | {} | {} | {} |", row.check, row.resource, state, row.detail.replace('|', "/"));
    }
    md
}

/// A Gantt-style picture of the timeline, from the trigger to the last step.
pub fn render_svg(report: &RunReport) -> String {
    let origin = parse_time(&report.run.triggered_at).ok();
    let offset = |at: &str| -> f64 {
        match (origin, parse_time(at).ok()) {
            (Some(origin), Some(at)) => at.duration_since(origin).map(|d| d.as_secs_f64()).unwrap_or(0.0),
            _ => 0.0,
        }
    };
    let end = report.timeline.iter().map(|e| offset(&e.finished_at)).fold(1.0_f64, f64::max);
    let (label_width, chart_width, row_height) = (220.0, 560.0, 28.0);
    let height = 60.0 + row_height * report.timeline.len() as f64;
    let scale = chart_width / end;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n",
        label_width + chart_width + 100.0
    );
    let _ = writeln!(
        svg,
        "<text x=\"10\" y=\"18\" font-weight=\"bold\">{} run {}: {} (RTO {})</text>",
        xml(&report.plan),
        xml(&report.run.id),
        report.status,
        optional_seconds(report.achieved.rto_seconds)
    );
    for (row, entry) in report.timeline.iter().enumerate() {
        let y = 36.0 + row_height * row as f64;
        let x = label_width + offset(&entry.started_at) * scale;
        let width = ((offset(&entry.finished_at) - offset(&entry.started_at)) * scale).max(2.0);
        let colour = match entry.outcome {
            Outcome::AlreadyDone => "#9e9e9e",
            Outcome::Checked => "#1976d2",
            Outcome::WouldChange => "#f9a825",
            _ => "#2e7d32",
        };
        let _ = writeln!(svg, "<text x=\"10\" y=\"{}\">{}</text>", y + 14.0, xml(&entry.phase));
        let _ = writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"18\" fill=\"{colour}\"><title>{} - {}</title></rect>",
            entry.started_at, entry.finished_at
        );
        let _ = writeln!(svg, "<text x=\"{:.1}\" y=\"{}\">{:.1} s</text>", x + width + 4.0, y + 14.0, entry.seconds);
    }
    let _ = writeln!(
        svg,
        "<text x=\"{label_width}\" y=\"{}\" fill=\"#555\">0 s = trigger at {}; axis {:.0} s</text>",
        height - 8.0,
        report.run.triggered_at,
        end
    );
    svg.push_str("</svg>\n");
    svg
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Builds the report from the state and the estate as it is now, writes it to the report
/// bucket (JSON, Markdown, SVG) and returns it.
pub async fn write_report(clients: &AwsClients, state: &RunbookState) -> Result<RunReport, DrError> {
    state.validate()?;
    let readiness = check_plan(clients, &state.plan).await;
    let mut report = build_report(state, readiness.rows);
    let plan_state = next_plan_state(clients, state, &report).await?;
    report.plan_state = plan_state.as_ref().map(|next| next.summary.clone());
    let reports = &state.plan.reports;
    let base = format!("{}{}/{}/", reports.prefix, state.plan.name, state.run.id);
    let json_key = format!("{base}report.json");
    let md_key = format!("{base}report.md");
    let svg_key = format!("{base}timeline.svg");
    report.locations =
        [&json_key, &md_key, &svg_key].iter().map(|key| format!("s3://{}/{key}", reports.bucket)).collect();
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| DrError::InvalidInput { message: format!("report not serialisable: {e}") })?;
    let files = [
        (json_key.as_str(), json, "application/json"),
        (md_key.as_str(), render_markdown(&report).into_bytes(), "text/markdown; charset=utf-8"),
        (svg_key.as_str(), render_svg(&report).into_bytes(), "image/svg+xml"),
    ];
    put_report_files(clients, &reports.bucket, files).await?;
    tracing::info!(plan = %state.plan.name, step = "report", status = %report.status, location = %report.locations.join(" "), "report written");
    // Last, once the report is safely written: a failed write above fails the run, and a plan
    // marked failed-over must not have a failed run behind it.
    if let Some(NextPlanState { store, read, new: Some(new), .. }) = plan_state
        && store.write_state(&read, &new).await? == WriteOutcome::Lost
    {
        tracing::warn!(plan = %state.plan.name, step = "report", "plan state changed by someone else; not marked failed-over");
        report.plan_state = Some("changed by someone else while the report was written; not marked failed-over".into());
    }
    Ok(report)
}

/// Writes a report's files (key, body, content type) to the report bucket, in the DR region.
pub async fn put_report_files(
    clients: &AwsClients,
    bucket: &str,
    files: impl IntoIterator<Item = (&str, Vec<u8>, &str)>,
) -> Result<(), DrError> {
    for (key, body, content_type) in files {
        clients
            .dr
            .s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| DrError::from_sdk("s3", "PutObject", e))?;
    }
    Ok(())
}

/// The plan state a run leaves behind, and the write that records it.
struct NextPlanState {
    store: PlanStore,
    read: Versioned,
    /// `Some`: the state to write (failed-over); `None`: nothing changes.
    new: Option<PlanState>,
    summary: String,
}

/// A live run holding the plan's single-flight state: on success the plan becomes failed-over
/// (until an operator re-arms it); on failure it stays failing-over, for a human to look at.
async fn next_plan_state(
    clients: &AwsClients,
    state: &RunbookState,
    report: &RunReport,
) -> Result<Option<NextPlanState>, DrError> {
    let Some(location) = &state.run.plan_state else { return Ok(None) };
    let store = PlanStore::new(clients.dr.s3.clone(), &location.bucket);
    let read = store.read_state(&state.plan.name).await?;
    let held = read.state.status == PlanStatus::FailingOver && read.state.run_id.as_deref() == Some(&state.run.id);
    let (new, summary) = if !held {
        let holder = read.state.run_id.as_deref().unwrap_or("nobody");
        (None, format!("{} (held by {holder})", read.state.status.name()))
    } else if report.status != "succeeded" {
        (None, format!("{}: the run failed; re-arm after review", PlanStatus::FailingOver.name()))
    } else {
        let done = read.state.moved(PlanStatus::FailedOver, "report", format!("run {} succeeded", state.run.id));
        (Some(done), format!("{}: re-arm after failing back", PlanStatus::FailedOver.name()))
    };
    Ok(Some(NextPlanState { store, read, new, summary }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runbook::preflight::GateVerdict;
    use crate::runbook::{Approval, RunbookState};

    fn record(step: &str, start: &str, end: &str, outcome: Outcome) -> StepRecord {
        StepRecord {
            step: step.to_string(),
            started_at: start.to_string(),
            finished_at: end.to_string(),
            outcome,
            ready: true,
            attempt: 1,
            detail: format!("{step} done"),
            resources: Vec::new(),
            calls: Vec::new(),
            facts: Default::default(),
            gate: None,
        }
    }

    fn state() -> RunbookState {
        let text = include_str!("../../../../plans/paris-ireland.toml");
        let plan = crate::plan::Plan::parse(text, "example").expect("example plan");
        let mut preflight = record("preflight", "2026-11-23T10:00:10Z", "2026-11-23T10:00:12Z", Outcome::Checked);
        preflight.gate = Some(GateDecision {
            verdict: GateVerdict::Approved,
            lag_seconds: Some(5400.0),
            rpo_seconds: 3600,
            reason: "RpoExceeded overridden".to_string(),
            approval: Some(Approval { by: "sre@example.com".into(), reason: "Paris is gone".into() }),
        });
        let steps = [
            ("preflight", preflight),
            ("promote", record("promote-replica", "2026-11-23T10:00:13Z", "2026-11-23T10:00:14Z", Outcome::Changed)),
            (
                "promote_status",
                record("promote-replica-status", "2026-11-23T10:09:00Z", "2026-11-23T10:10:00Z", Outcome::Ready),
            ),
            ("flip_dns", record("flip-dns", "2026-11-23T10:10:05Z", "2026-11-23T10:10:06Z", Outcome::Changed)),
            ("dns_status", record("flip-dns-status", "2026-11-23T10:11:00Z", "2026-11-23T10:12:00Z", Outcome::Ready)),
        ]
        .into_iter()
        .map(|(key, record)| (key.to_string(), record))
        .collect();
        RunbookState {
            plan,
            run: RunInfo::new("r1", parse_time("2026-11-23T10:00:00Z").expect("time"), "test"),
            approval: None,
            steps,
            error: None,
        }
    }

    #[test]
    fn rto_runs_from_the_trigger_to_dns_ready_and_rpo_is_the_lag_at_promotion() {
        let report = build_report(&state(), Vec::new());
        assert_eq!(report.status, "succeeded");
        assert_eq!(report.achieved.rto_seconds, Some(720.0));
        assert_eq!(report.achieved.rto_met, Some(true));
        assert_eq!(report.achieved.rpo_seconds, Some(5400.0));
        assert_eq!(report.achieved.rpo_met, Some(false));
        let promote = &report.timeline[1];
        assert_eq!((promote.phase.as_str(), promote.seconds), ("promote replica", 587.0));
    }

    #[test]
    fn markdown_and_svg_show_the_decisions_and_every_phase() {
        let report = build_report(&state(), Vec::new());
        let markdown = render_markdown(&report);
        assert!(markdown.contains("Human approval recorded:** by sre@example.com, reason: Paris is gone"));
        assert!(markdown.contains("| RPO (replica lag at promotion) | 3600 s | 5400 s | MISSED |"), "{markdown}");
        let svg = render_svg(&report);
        assert_eq!(svg.matches("<rect").count(), report.timeline.len());
    }

    #[test]
    fn a_run_stopped_by_an_error_reports_failed_without_an_rto() {
        let mut state = state();
        state.steps.remove("dns_status");
        state.error = Some(CaughtError { error: "StepTimedOut".into(), cause: "dns_status not ready".into() });
        let report = build_report(&state, Vec::new());
        assert_eq!(report.status, "failed");
        assert_eq!(report.achieved.rto_seconds, None);
        assert!(render_markdown(&report).contains("**Stopped by:** `StepTimedOut`"));
    }
}
