//! What every run report shares: the header (status, what stopped the run, who or what started it,
//! the incident), the objectives table with one verdict rule, Markdown cells, and the write of
//! the report's files to the report bucket. The failover report (`runbook::report`) and the
//! restore-test report (`restore::report`) are built from these.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use crate::aws::metrics::publish_metrics;
use crate::aws::{AwsClients, objects};
use crate::error::DrError;
use crate::notify::{Notice, NoticeKind, Severity};
use crate::plan::Direction;
use crate::run::{CaughtError, RunInfo, RunMode, RunStatus, RunbookState};
use crate::time::{self, Timestamp};

/// The verdict of an objective: met, MISSED, or not measured.
pub fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

/// "123 s", or "n/a" when not measured.
pub fn seconds(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), |s| format!("{s:.0} s"))
}

/// Text made safe for a Markdown table cell.
pub fn cell(text: &str) -> String {
    text.replace('|', "/").replace('\n', " ")
}

/// What every report starts with: the run, how it ended, and where the report was written.
/// Flattened into each report's JSON.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Head {
    pub plan: String,
    pub run: RunInfo,
    pub status: RunStatus,
    /// The error that stopped the run, as the state machine's Catch recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    pub generated_at: Timestamp,
    /// Where the report was written (`s3://...`).
    pub locations: Vec<String>,
}

impl Head {
    /// The head of a report on `state`, generated now.
    pub fn of(state: &RunbookState, status: RunStatus) -> Head {
        Head::new(&state.plan.name, &state.run, status, state.error.clone())
    }

    /// The head of a report on `run` of `plan`, generated now; its locations are set once written.
    pub fn new(plan: &str, run: &RunInfo, status: RunStatus, error: Option<CaughtError>) -> Head {
        Head {
            plan: plan.to_string(),
            run: run.clone(),
            status,
            error,
            generated_at: time::now(),
            locations: Vec::new(),
        }
    }

    /// Title and the run's facts, as a bullet list. `extra` bullets go before "Report generated".
    pub fn write(&self, out: &mut String, title: &str, extra: &[String]) -> fmt::Result {
        let dry_run = self.run.mode == RunMode::DryRun;
        let title = if dry_run { format!("{title} (DRY RUN)") } else { title.to_string() };
        writeln!(out, "# {title}: {} / run {}\n", self.plan, self.run.id)?;
        writeln!(out, "- **Status:** {}", self.status.label().to_uppercase())?;
        if dry_run {
            writeln!(
                out,
                "- **Mode:** dry run: every step checked its preconditions and reports what it would do; nothing was changed"
            )?;
        }
        if let Some(error) = &self.error {
            writeln!(out, "- **Stopped by:** `{}`: {}", error.error, error.cause)?;
        }
        writeln!(out, "- **Trigger:** {} at {}", self.run.trigger, time::rfc3339(self.run.triggered_at))?;
        if let Some(requested) = &self.run.requested_by {
            writeln!(out, "- **Requested by:** {}, reason: {}", requested.by, requested.reason)?;
        }
        if let Some(incident) = &self.run.incident {
            writeln!(
                out,
                "- **Incident:** alarm `{}` in ALARM at {} ({})",
                incident.alarm,
                time::rfc3339(incident.alarm_at),
                incident.alarm_reason
            )?;
            writeln!(
                out,
                "- **Confirmed at:** {}: {}",
                time::rfc3339(incident.confirmed_at),
                incident.evidence.join("; ")
            )?;
        }
        for line in extra {
            writeln!(out, "- {line}")?;
        }
        writeln!(out, "- **Report generated:** {}\n", time::rfc3339(self.generated_at))
    }
}

impl Head {
    /// The notification of a finished run: `what` ("failover", "restore test", ...) and its
    /// status in the subject; what stopped it, the `lines` and where the report is, in the text.
    pub fn notice(&self, what: &str, lines: &[String]) -> Notice {
        let kind = if self.status.is_success() { NoticeKind::RunFinished } else { NoticeKind::RunFailed };
        let status = self.status.label().to_uppercase();
        let mut text = vec![format!("{what} {status}: run {}", self.run.id)];
        if let Some(error) = &self.error {
            let cause: String = error.cause.chars().take(300).collect();
            text.push(format!("Stopped by {}: {cause}", error.error));
        }
        text.extend(lines.iter().cloned());
        if let Some(markdown) = self.locations.iter().find(|l| l.ends_with(".md")) {
            text.push(format!("Report: {markdown}"));
        }
        let notice = Notice::new(
            kind,
            &self.plan,
            Some(self.run.id.as_str()),
            format!("{}: {what} {status}", self.plan),
            text.join("\n"),
        );
        // A run that ended well closes its incident; a dry run that failed changed nothing and
        // pages nobody at night. A round trip's leg is part of the round trip's incident, which
        // only the round trip's own report closes.
        let notice = match (&self.run.round_trip, self.status.is_success(), self.run.mode) {
            (Some(round_trip), succeeded, _) => {
                let notice = notice.in_incident_of(round_trip);
                if succeeded { notice.with_severity(Severity::Info) } else { notice }
            }
            (None, true, _) => notice.resolving(),
            (None, false, RunMode::DryRun) => notice.with_severity(Severity::Warning),
            (None, false, RunMode::Live) => notice,
        };
        notice
            .fact("status", self.status)
            .fact("error", self.error.as_ref().map(|e| e.error.clone()))
            .fact("report", &self.locations)
    }
}

/// What a report is about, as the dashboard's run metrics and the posture page name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// A move to the DR region that is not a game day: an incident's, or an operator's.
    Failover,
    /// A move back to the primary region (a game day's too).
    Failback,
    /// A game day's live failover (a drill, a round trip's failover leg).
    Drill,
    DryRun,
    RoundTrip,
    RestoreTest,
}

impl RunKind {
    /// The kind of a failover runbook's run.
    pub fn of_move(run: &RunInfo) -> RunKind {
        match (run.mode, run.direction, run.game_day) {
            (RunMode::DryRun, _, _) => RunKind::DryRun,
            (RunMode::Live, Direction::ToPrimary, _) => RunKind::Failback,
            (RunMode::Live, Direction::ToDr, true) => RunKind::Drill,
            (RunMode::Live, Direction::ToDr, false) => RunKind::Failover,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RunKind::Failover => "failover",
            RunKind::Failback => "failback",
            RunKind::Drill => "drill",
            RunKind::DryRun => "dry-run",
            RunKind::RoundTrip => "round-trip",
            RunKind::RestoreTest => "restore-test",
        }
    }
}

/// The namespace of the run metrics (the template's dashboard and the report functions' policy).
pub const RUNS_NAMESPACE: &str = "DrOrchestrator/Runs";

/// The run metrics of a finished run: `RunsFinished` (1, by plan, kind and outcome), and when an
/// RTO was measured `AchievedRtoSeconds` (by plan and kind) beside `RtoTargetSeconds` (by plan).
pub fn run_metrics(head: &Head, kind: RunKind, rto: &Objective<'_>) -> Vec<MetricDatum> {
    let at = time::to_smithy(head.generated_at);
    let dimension = |name: &str, value: &str| Dimension::builder().name(name).value(value).build();
    let outcome = if head.status.is_success() { "succeeded" } else { "failed" };
    let datum = |name: &str, value: f64, unit: StandardUnit| {
        MetricDatum::builder().metric_name(name).timestamp(at).value(value).unit(unit)
    };
    let mut data = vec![
        datum("RunsFinished", 1.0, StandardUnit::Count)
            .dimensions(dimension("Plan", &head.plan))
            .dimensions(dimension("Kind", kind.name()))
            .dimensions(dimension("Outcome", outcome))
            .build(),
    ];
    if let Some(achieved) = rto.achieved_seconds {
        data.push(
            datum("AchievedRtoSeconds", achieved, StandardUnit::Seconds)
                .dimensions(dimension("Plan", &head.plan))
                .dimensions(dimension("Kind", kind.name()))
                .build(),
        );
        data.push(
            datum("RtoTargetSeconds", rto.target_seconds as f64, StandardUnit::Seconds)
                .dimensions(dimension("Plan", &head.plan))
                .build(),
        );
    }
    data
}

/// Publishes a finished run's metrics. Best effort, as a notice: the report is written and told
/// whatever CloudWatch answers (`MetricsNotPublished` in the log).
pub async fn publish_run_metrics(clients: &AwsClients, head: &Head, kind: RunKind, rto: &Objective<'_>) {
    if let Err(err) = publish_metrics(&clients.home.cloudwatch, RUNS_NAMESPACE, run_metrics(head, kind, rto)).await {
        tracing::warn!(plan = %head.plan, run = %head.run.id, error = err.name(), "MetricsNotPublished: {err}");
    }
}

/// One row of the objectives table.
pub struct Objective<'a> {
    pub name: &'a str,
    pub target_seconds: u64,
    pub achieved_seconds: Option<f64>,
    pub met: Option<bool>,
}

impl Objective<'_> {
    /// The objective on one line, as a notification says it: "RTO 312 s (target 14400 s, met)".
    pub fn line(&self) -> String {
        format!(
            "{} {} (target {} s, {})",
            self.name,
            seconds(self.achieved_seconds),
            self.target_seconds,
            verdict(self.met)
        )
    }
}

/// The objectives table: target, achieved, verdict.
pub fn write_objectives(out: &mut String, objectives: &[Objective<'_>]) -> fmt::Result {
    writeln!(out, "| objective | target | achieved | verdict |\n|---|---|---|---|")?;
    for objective in objectives {
        writeln!(
            out,
            "| {} | {} s | {} | {} |",
            objective.name,
            objective.target_seconds,
            seconds(objective.achieved_seconds),
            verdict(objective.met)
        )?;
    }
    writeln!(out)
}

/// Runs a renderer into a fresh string. Writing to a `String` only fails if a `Display`
/// implementation does: a bug, reported as `Internal`.
pub fn render(write: impl FnOnce(&mut String) -> fmt::Result) -> Result<String, DrError> {
    let mut out = String::new();
    write(&mut out).map_err(|e| DrError::Internal { message: format!("report rendering failed: {e}") })?;
    Ok(out)
}

/// One bar of a timeline picture: a phase, when it ran, and its colour.
pub struct Bar {
    pub label: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub colour: &'static str,
}

/// A Gantt-style timeline picture (SVG): one row a bar, on one axis from `origin` (0 s) to the
/// last bar's end. Every report's timeline is drawn by this.
pub fn write_gantt(svg: &mut String, title: &str, origin: (&str, Timestamp), bars: &[Bar]) -> fmt::Result {
    let (origin_name, origin_at) = origin;
    let offset = |at: Timestamp| time::seconds_between(origin_at, at).max(0.0);
    let end = bars.iter().map(|bar| offset(bar.finished_at)).fold(1.0_f64, f64::max);
    let (label_width, chart_width, row_height) = (260.0, 560.0, 28.0);
    let height = 60.0 + row_height * bars.len() as f64;
    let scale = chart_width / end;
    writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">",
        label_width + chart_width + 100.0
    )?;
    writeln!(svg, "<text x=\"10\" y=\"18\" font-weight=\"bold\">{}</text>", xml(title))?;
    for (row, bar) in bars.iter().enumerate() {
        let y = 36.0 + row_height * row as f64;
        let x = label_width + offset(bar.started_at) * scale;
        let seconds = (offset(bar.finished_at) - offset(bar.started_at)).max(0.0);
        let width = (seconds * scale).max(2.0);
        writeln!(svg, "<text x=\"10\" y=\"{}\">{}</text>", y + 14.0, xml(&bar.label))?;
        writeln!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{width:.1}\" height=\"18\" fill=\"{}\"><title>{} - {}</title></rect>",
            bar.colour,
            time::rfc3339(bar.started_at),
            time::rfc3339(bar.finished_at)
        )?;
        writeln!(svg, "<text x=\"{:.1}\" y=\"{}\">{seconds:.1} s</text>", x + width + 4.0, y + 14.0)?;
    }
    writeln!(
        svg,
        "<text x=\"{label_width}\" y=\"{}\" fill=\"#555\">0 s = {origin_name} at {}; axis {end:.0} s</text>",
        height - 8.0,
        time::rfc3339(origin_at),
    )?;
    writeln!(svg, "</svg>")
}

/// Text made safe for XML and HTML, in an element or a quoted attribute: the timeline picture, the
/// posture page (`posture::page`).
pub(crate) fn xml(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A report file: key, body, content type.
pub struct ReportFile {
    pub key: String,
    pub body: Vec<u8>,
    pub content_type: &'static str,
}

/// Where a report file lives.
pub fn location(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// A report written as JSON, Markdown and an SVG timeline: the failover report and the
/// round-trip report.
pub trait TimelineReport: Serialize {
    fn head_mut(&mut self) -> &mut Head;
    fn markdown(&self) -> Result<String, DrError>;
    fn svg(&self) -> Result<String, DrError>;
}

/// Writes `report` under `base` in `bucket` (`report.json`, `report.md`, `timeline.svg`), its
/// head's locations set first so that each file says where the others are. `what` names it in a
/// serialisation error.
pub async fn put_timeline_report(
    clients: &AwsClients,
    bucket: &str,
    base: &str,
    report: &mut impl TimelineReport,
    what: &str,
) -> Result<(), DrError> {
    let keys = [format!("{base}report.json"), format!("{base}report.md"), format!("{base}timeline.svg")];
    report.head_mut().locations = keys.iter().map(|key| location(bucket, key)).collect();
    let json = serde_json::to_vec_pretty(&*report).map_err(|e| DrError::serialisation(what, e))?;
    let [json_key, md_key, svg_key] = keys;
    let files = vec![
        ReportFile { key: json_key, body: json, content_type: "application/json" },
        ReportFile { key: md_key, body: report.markdown()?.into_bytes(), content_type: "text/markdown; charset=utf-8" },
        ReportFile { key: svg_key, body: report.svg()?.into_bytes(), content_type: "image/svg+xml" },
    ];
    put_report_files(clients, bucket, files).await
}

/// Writes a report's files to the report bucket (DR region).
pub async fn put_report_files(clients: &AwsClients, bucket: &str, files: Vec<ReportFile>) -> Result<(), DrError> {
    for file in files {
        objects::put(&clients.home.s3, bucket, &file.key, file.body, file.content_type).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::NoticeAction;

    #[test]
    fn a_run_is_one_incident_closed_by_its_success_and_a_leg_is_its_round_trips() {
        let mut run = RunInfo::new("prod-20261207T031500Z", time::now(), "alarm-trigger");
        let failed = Head::new("prod", &run, RunStatus::Failed, None).notice("failover", &[]);
        let succeeded = Head::new("prod", &run, RunStatus::Succeeded, None).notice("failover", &[]);
        assert_eq!(failed.dedup_key, "dr-orchestrator.prod.run.prod-20261207T031500Z");
        assert_eq!((failed.severity, failed.event_action), (Severity::Critical, NoticeAction::Trigger));
        assert_eq!(succeeded.dedup_key, failed.dedup_key);
        assert_eq!((succeeded.severity, succeeded.event_action), (Severity::Info, NoticeAction::Resolve));

        run.mode = RunMode::DryRun;
        let dry = Head::new("prod", &run, RunStatus::DryRunFailed, None).notice("failover", &[]);
        assert_eq!(dry.severity, Severity::Warning, "a failed dry run changed nothing");

        let mut leg = RunInfo::new("prod-roundtrip-1-failover", time::now(), "round trip prod-roundtrip-1 (failover)");
        leg.round_trip = Some("prod-roundtrip-1".into());
        let done = Head::new("prod", &leg, RunStatus::Succeeded, None).notice("drill", &[]);
        assert_eq!(done.dedup_key, "dr-orchestrator.prod.run.prod-roundtrip-1");
        assert_eq!(done.event_action, NoticeAction::Trigger, "only the round trip's own report closes it");
        assert_eq!(done.run.as_deref(), Some("prod-roundtrip-1-failover"));
    }
}
