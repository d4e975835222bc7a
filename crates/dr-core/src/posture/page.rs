//! The posture page: one self-contained HTML file (inline CSS, inline SVG; no script, no
//! external asset, no web font), readable on screen and printed (A4 landscape, one plan a page
//! run, table headers repeated, rows kept whole). Every text that comes from the evidence (plan
//! names, reasons, details, ARNs) is escaped (`report::xml`).

use std::fmt::{self, Write as _};

use super::Window;
use super::build::{
    ApprovalRecord, ApprovalSource, DriftEntry, Event, EventKind, FindingLine, Gap, Measure, Milestone, PlanPosture,
    Posture, ReadinessNow,
};
use crate::error::DrError;
use crate::report::{self, xml};
use crate::run::RunStatus;
use crate::store::PlanStatus;
use crate::time::{self, Timestamp};

/// The colour of a met objective (chart marks, verdicts).
pub const MET_COLOUR: &str = "#1a7f37";
/// The colour of a MISSED objective.
pub const MISSED_COLOUR: &str = "#cf222e";
/// The colour of an objective not measured.
const UNMEASURED_COLOUR: &str = "#6e7781";

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; font-size: 14px;
  line-height: 1.4; color: #1f2328; background: #ffffff; margin: 0 auto; max-width: 1240px; padding: 24px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 0 0 6px; padding-bottom: 4px; border-bottom: 3px solid #1f2328; }
h3 { font-size: 16px; margin: 22px 0 8px; }
p { margin: 4px 0 8px; }
section.plan { margin-top: 36px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 12px; }
th, td { border: 1px solid #d0d7de; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; font-weight: bold; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.summary th { width: 34%; }
tr.missed-row td { background: #fff5f5; }
.met { color: #1a7f37; font-weight: bold; }
.missed { color: #cf222e; font-weight: bold; }
.unmeasured { color: #57606a; }
.failed { color: #cf222e; font-weight: bold; }
.succeeded { color: #1a7f37; }
.badges { margin: 8px 0; }
.badge { display: inline-block; vertical-align: top; border: 2px solid #8c959f; border-radius: 6px;
  padding: 6px 10px; margin: 4px 10px 4px 0; background: #f6f8fa; max-width: 100%; }
.badge strong { font-size: 15px; }
.ok { border-color: #1a7f37; background: #dafbe1; }
.bad { border-color: #cf222e; background: #ffebe9; }
.warn { border-color: #9a6700; background: #fff8c5; }
.empty { font-size: 16px; padding: 12px 14px; border: 2px dashed #8c959f; background: #f6f8fa; }
.meta, small, .small { color: #57606a; }
small, .small { font-size: 12px; }
code, .arn { font-family: "DejaVu Sans Mono", "Liberation Mono", Menlo, Consolas, monospace; font-size: 12px; }
.arn, .fig, time { white-space: nowrap; }
ul { margin: 0; padding-left: 18px; }
figure { margin: 0 0 12px; }
svg { max-width: 100%; height: auto; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  section.plan + section.plan { break-before: page; }
  h2, h3 { break-after: avoid; }
  thead { display: table-header-group; }
  tr, .badge, figure, .empty, table.glance, table.summary, table.totals { break-inside: avoid; }
  small, .small, code, .arn { font-size: 8pt; }
}
"#;

/// The page of `posture`.
pub fn render_html(posture: &Posture) -> Result<String, DrError> {
    report::render(|out| write_page(out, posture))
}

fn write_page(out: &mut String, posture: &Posture) -> fmt::Result {
    let window = posture.window;
    let names: Vec<&str> = posture.plans.iter().map(|plan| plan.plan.as_str()).collect();
    let title = if names.is_empty() { "DR posture".to_string() } else { format!("DR posture: {}", names.join(", ")) };
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")?;
    writeln!(out, "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>", xml(&title))?;
    writeln!(out, "<header>\n<h1>DR posture</h1>")?;
    writeln!(
        out,
        "<p class=\"meta\">From {} to {} (UTC): every drill, failover, failback, dry run, round trip and restore test \
         the stack recorded, the decisions humans took, and readiness as the scheduled check saw it.</p>",
        date_time(window.since),
        date_time(window.until)
    )?;
    if posture.plans.is_empty() {
        writeln!(
            out,
            "<p class=\"empty\">No plan in this report: no drill, failover or restore test recorded since {}.</p>",
            date(window.since)
        )?;
    } else {
        write_glance(out, posture)?;
    }
    writeln!(out, "</header>")?;
    for (index, plan) in posture.plans.iter().enumerate() {
        write_plan(out, plan, window, index)?;
    }
    writeln!(out, "</body>\n</html>")
}

/// One row per plan: where each stands, at a glance.
fn write_glance(out: &mut String, posture: &Posture) -> fmt::Result {
    writeln!(
        out,
        "<table class=\"glance\">\n<thead><tr><th>Plan</th><th>State</th><th>Readiness</th>\
         <th>Last successful live drill</th><th>Last restore test</th><th>RTO met in the window</th></tr></thead>\n<tbody>"
    )?;
    for plan in &posture.plans {
        let totals = &plan.totals;
        writeln!(
            out,
            "<tr><td><strong class=\"fig\">{}</strong></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} of {} measured{}</td></tr>",
            xml(&plan.plan),
            xml(state_name(plan)),
            readiness_word(plan.readiness.as_ref()),
            milestone(plan.last_successful_drill.as_ref()),
            milestone(plan.last_restore_test.as_ref()),
            totals.rto_met,
            totals.rto_measured,
            if totals.rto_missed > 0 {
                format!(" (<span class=\"missed\">{} MISSED</span>)", totals.rto_missed)
            } else {
                String::new()
            }
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_plan(out: &mut String, plan: &PlanPosture, window: Window, index: usize) -> fmt::Result {
    writeln!(out, "<section class=\"plan\" id=\"plan-{index}\">")?;
    writeln!(out, "<h2>Plan {}</h2>", xml(&plan.plan))?;
    writeln!(
        out,
        "<p class=\"meta\">{} (primary) &rarr; {} (DR) &middot; RTO target {} &middot; RPO target {}</p>",
        xml(&plan.primary_region_name),
        xml(&plan.dr_region_name),
        target(plan.rto_target_seconds),
        target(plan.rpo_target_seconds)
    )?;
    write_badges(out, plan)?;
    if plan.events.is_empty() {
        writeln!(
            out,
            "<p class=\"empty\">No drill, failover or restore test recorded for {} since {}.</p>",
            xml(&plan.plan),
            date(window.since)
        )?;
    }
    write_summary(out, plan)?;
    if !plan.events.is_empty() {
        writeln!(out, "<h3>RTO achieved over time</h3>")?;
        write_chart(out, plan, window)?;
        write_events(out, plan)?;
    }
    write_approvals(out, plan)?;
    write_drift(out, plan)?;
    if !plan.unreadable.is_empty() {
        writeln!(out, "<h3>Files that could not be read</h3>\n<ul>")?;
        for file in &plan.unreadable {
            writeln!(out, "<li><code>{}</code></li>", xml(file))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

/// The plan's state now and its latest readiness.
fn write_badges(out: &mut String, plan: &PlanPosture) -> fmt::Result {
    writeln!(out, "<div class=\"badges\">")?;
    match &plan.state {
        Some(state) => {
            let class = match state.status {
                PlanStatus::Armed => "ok",
                PlanStatus::FailingOver | PlanStatus::FailedOver => "warn",
                PlanStatus::Disarmed => "bad",
            };
            let since = state.changed_at.map(|at| format!(" since {}", date_time(at))).unwrap_or_default();
            let run = state
                .run_id
                .as_ref()
                .filter(|run| !state.reason.contains(run.as_str()))
                .map(|run| format!("; run {}", xml(run)))
                .unwrap_or_default();
            writeln!(
                out,
                "<div class=\"badge {class}\">State: <strong>{}</strong>{since}<br><small>by {}: {}{run}</small></div>",
                state.status.name(),
                xml(&state.changed_by),
                xml(&state.reason)
            )?;
        }
        None => writeln!(out, "<div class=\"badge bad\">State: <strong>never armed</strong></div>")?,
    }
    match &plan.readiness {
        Some(readiness) => write_readiness_badge(out, readiness)?,
        None => writeln!(
            out,
            "<div class=\"badge warn\">Readiness: <strong>never checked</strong><br>\
             <small>the scheduled readiness check wrote no snapshot</small></div>"
        )?,
    }
    writeln!(out, "</div>")
}

fn write_readiness_badge(out: &mut String, readiness: &ReadinessNow) -> fmt::Result {
    let class = if readiness.stale || !readiness.ready { if readiness.ready { "warn" } else { "bad" } } else { "ok" };
    let stale = if readiness.stale {
        format!(" <strong>STALE</strong> (no check for {})", duration(readiness.age_seconds))
    } else {
        String::new()
    };
    write!(
        out,
        "<div class=\"badge {class}\">Readiness: <strong>{}</strong><br><small>checked {}{stale}</small>",
        if readiness.ready { "READY" } else { "NOT READY" },
        date_time(readiness.checked_at)
    )?;
    if !readiness.findings.is_empty() {
        writeln!(out, "<ul>")?;
        for finding in &readiness.findings {
            writeln!(out, "<li>{}</li>", finding_text(finding))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</div>")
}

fn write_summary(out: &mut String, plan: &PlanPosture) -> fmt::Result {
    writeln!(out, "<h3>Summary</h3>\n<table class=\"summary\">\n<tbody>")?;
    let row = |out: &mut String, name: &str, value: String| writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
    row(out, "Last successful live drill", milestone(plan.last_successful_drill.as_ref()))?;
    row(out, "Last restore test", milestone(plan.last_restore_test.as_ref()))?;
    if plan.last_restore_test.as_ref().is_some_and(|test| test.status != RunStatus::Succeeded) {
        row(out, "Last successful restore test", milestone(plan.last_successful_restore_test.as_ref()))?;
    }
    row(out, "Longest without a successful live drill", gap(&plan.drill_gap))?;
    row(out, "Longest without a successful restore test", gap(&plan.restore_test_gap))?;
    let totals = &plan.totals;
    row(
        out,
        "RTO in the window",
        format!(
            "<span class=\"met\">{} met</span>, <span class=\"{}\">{} MISSED</span>, of {} measured",
            totals.rto_met,
            if totals.rto_missed > 0 { "missed" } else { "unmeasured" },
            totals.rto_missed,
            totals.rto_measured
        ),
    )?;
    writeln!(out, "</tbody>\n</table>")?;
    if plan.events.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<table class=\"totals\">\n<thead><tr><th>Kind</th><th class=\"num\">Count</th><th class=\"num\">Succeeded</th>\
         <th class=\"num\">RTO met</th><th class=\"num\">RTO MISSED</th></tr></thead>\n<tbody>"
    )?;
    for kind in &totals.kinds {
        let legs = if kind.round_trip_legs > 0 {
            format!(" <small>({} a leg of a round trip)</small>", kind.round_trip_legs)
        } else {
            String::new()
        };
        writeln!(
            out,
            "<tr><td>{}{legs}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            kind.kind.label(),
            kind.count,
            kind.succeeded,
            kind.rto_met,
            if kind.rto_missed > 0 {
                format!("<span class=\"missed\">{}</span>", kind.rto_missed)
            } else {
                "0".to_string()
            }
        )?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_events(out: &mut String, plan: &PlanPosture) -> fmt::Result {
    writeln!(out, "<h3>Events, newest first ({})</h3>", plan.events.len())?;
    writeln!(
        out,
        "<table class=\"events\">\n<thead><tr><th>Date (UTC)</th><th>Event</th><th>Status</th><th>RTO</th>\
         <th>Data loss</th><th>Started and approved by</th><th>Notes</th></tr></thead>\n<tbody>"
    )?;
    for event in &plan.events {
        let missed = event.rto.met == Some(false) || event.data_loss.met == Some(false) || !event.status.is_success();
        writeln!(out, "<tr{}>", if missed { " class=\"missed-row\"" } else { "" })?;
        writeln!(out, "<td>{}</td>", date_time(event.at))?;
        let mut what = format!("<strong>{}</strong><br><code>{}</code>", event.kind.label(), xml(&event.run_id));
        if let Some(kind) = event.move_kind.filter(|_| event.kind != EventKind::RestoreTest) {
            let direction = event.direction.map(|d| format!(" {}", d.move_name())).unwrap_or_default();
            write!(what, "<br><small>{}{direction}</small>", kind.name())?;
        }
        if let Some(round_trip) = &event.round_trip {
            write!(what, "<br><small>leg of round trip <code>{}</code></small>", xml(round_trip))?;
        }
        writeln!(out, "<td>{what}</td>")?;
        let status_class = if event.status.is_success() { "succeeded" } else { "failed" };
        writeln!(out, "<td><span class=\"{status_class}\">{}</span></td>", event.status.label())?;
        writeln!(out, "<td>{}</td>", measure(&event.rto, "target", event.rto_shown_by_leg))?;
        let mut loss = measure(&event.data_loss, "RPO", false);
        if let Some(summary) = &event.data_loss_summary {
            write!(loss, "<br><small>{}</small>", xml(summary))?;
        }
        writeln!(out, "<td>{loss}</td>")?;
        writeln!(out, "<td>{}</td>", who(event))?;
        let mut notes: Vec<String> = Vec::new();
        if let Some(stopped) = &event.stopped_by {
            notes.push(format!("<strong>stopped by</strong> {}", xml(stopped)));
        }
        notes.extend(event.notes.iter().filter(|note| !note.starts_with("leg of round trip")).map(|note| xml(note)));
        if let Some(location) = event.report.iter().find(|l| l.ends_with(".md")).or(event.report.first()) {
            notes.push(format!("<small>report: <code>{}</code></small>", xml(location)));
        }
        writeln!(out, "<td>{}</td>", list(&notes))?;
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody>\n</table>")
}

/// Who started an event, and who approved what on it.
fn who(event: &Event) -> String {
    let mut lines = vec![format!("<small>trigger:</small> {}", xml(&event.trigger))];
    if let Some(requested) = &event.requested_by {
        lines.push(format!(
            "<small>requested by</small> <strong>{}</strong>: {}",
            xml(&requested.by),
            xml(&requested.reason)
        ));
    }
    if let Some(arn) = &event.started_by {
        lines.push(format!("<small>started by (verified)</small> <span class=\"arn\">{}</span>", xml(arn)));
    }
    if let Some(incident) = &event.incident {
        lines.push(format!(
            "<small>incident:</small> alarm <code>{}</code> in ALARM at {} ({})",
            xml(&incident.alarm),
            date_time(incident.alarm_at),
            xml(&incident.alarm_reason)
        ));
    }
    for approval in &event.approvals {
        lines.push(format!(
            "<small>{} {}</small> by <span class=\"arn\">{}</span>{}{}",
            xml(&approval.question),
            xml(&approval.decision),
            xml(approval.by.as_deref().unwrap_or("nobody yet")),
            approval.decided_at.map(|at| format!(" at {}", date_time(at))).unwrap_or_default(),
            approval.reason.as_ref().map(|reason| format!(": {}", xml(reason))).unwrap_or_default()
        ));
    }
    list(&lines)
}

fn write_approvals(out: &mut String, plan: &PlanPosture) -> fmt::Result {
    writeln!(out, "<h3>Approvals and decisions</h3>")?;
    if plan.approvals.is_empty() {
        return writeln!(out, "<p>No human decision recorded in the window.</p>");
    }
    writeln!(
        out,
        "<table class=\"approvals\">\n<thead><tr><th>Decided (UTC)</th><th>Run</th><th>Question</th><th>Decision</th>\
         <th>By</th><th>Reason</th><th>What the run asked</th></tr></thead>\n<tbody>"
    )?;
    for approval in &plan.approvals {
        write_approval(out, approval)?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_approval(out: &mut String, approval: &ApprovalRecord) -> fmt::Result {
    let decided = match (approval.decided_at, approval.asked_at) {
        (Some(at), _) => date_time(at),
        (None, Some(asked)) => format!("not decided<br><small>asked {}</small>", date_time(asked)),
        (None, None) => "<small>as the run report recorded it</small>".to_string(),
    };
    let class = match approval.decision.as_str() {
        "approved" => "met",
        "rejected" => "missed",
        _ => "unmeasured",
    };
    let by = match &approval.by {
        Some(by) if approval.verified => {
            format!("<span class=\"arn\">{}</span><br><small>verified by STS</small>", xml(by))
        }
        Some(by) => format!("<span class=\"arn\">{}</span><br><small>{}</small>", xml(by), source(approval.source)),
        None => "<span class=\"unmeasured\">nobody yet</span>".to_string(),
    };
    writeln!(
        out,
        "<tr><td>{decided}</td><td><code>{}</code></td><td>{}</td><td><span class=\"{class}\">{}</span></td>\
         <td>{by}</td><td>{}</td><td><small>{}</small></td></tr>",
        xml(&approval.run_id),
        xml(&approval.question),
        xml(&approval.decision),
        xml(approval.reason.as_deref().unwrap_or("")),
        xml(&approval.asked)
    )
}

fn source(source: ApprovalSource) -> &'static str {
    match source {
        ApprovalSource::Decision => "decision record",
        ApprovalSource::RunReport => "as the run report names them",
    }
}

fn write_drift(out: &mut String, plan: &PlanPosture) -> fmt::Result {
    writeln!(out, "<h3>Readiness drift</h3>")?;
    if plan.drift.is_empty() {
        let why = if plan.readiness.is_some() {
            "No readiness change in the window."
        } else {
            "No readiness snapshot: the scheduled readiness check never wrote one for this plan."
        };
        return writeln!(out, "<p>{why}</p>");
    }
    writeln!(
        out,
        "<table class=\"drift\">\n<thead><tr><th>Checked (UTC)</th><th>Change</th><th>Readiness</th>\
         <th>Findings</th></tr></thead>\n<tbody>"
    )?;
    for entry in &plan.drift {
        write_drift_entry(out, entry)?;
    }
    writeln!(out, "</tbody>\n</table>")
}

fn write_drift_entry(out: &mut String, entry: &DriftEntry) -> fmt::Result {
    let (class, word) = if entry.ready { ("met", "ready") } else { ("missed", "NOT READY") };
    let findings: Vec<String> = entry.findings.iter().map(finding_text).collect();
    writeln!(
        out,
        "<tr{}><td>{}</td><td>{}</td><td><span class=\"{class}\">{word}</span></td><td>{}</td></tr>",
        if entry.ready { "" } else { " class=\"missed-row\"" },
        date_time(entry.at),
        entry.change.label(),
        if findings.is_empty() { "none".to_string() } else { list(&findings) }
    )
}

/// The RTO achieved over time: one mark per live run and restore test with an RTO (a circle, a
/// square), x the date, y the seconds, the target as a dashed line; met and MISSED in their
/// colours, a MISSED mark labelled too (for a black-and-white print).
fn write_chart(out: &mut String, plan: &PlanPosture, window: Window) -> fmt::Result {
    let marks: Vec<&Event> = plan.events.iter().filter(|event| event.counts_rto()).collect();
    if marks.is_empty() {
        return writeln!(out, "<p>No RTO measured in the window (no live run or restore test reached its end).</p>");
    }
    let (width, height) = (1000.0_f64, 340.0_f64);
    let (left, right, top, bottom) = (90.0, 30.0, 40.0, 56.0);
    let (plot_w, plot_h) = (width - left - right, height - top - bottom);
    let target_seconds = plan.rto_target_seconds as f64;
    let highest = marks.iter().filter_map(|event| event.rto.achieved_seconds).fold(target_seconds, f64::max).max(1.0);
    let step = nice_step(highest * 1.1 / 5.0);
    let y_max = (highest * 1.1 / step).ceil() * step;
    let span = time::seconds_between(window.since, window.until).max(1.0);
    let x_of = |at: Timestamp| left + plot_w * (time::seconds_between(window.since, at) / span).clamp(0.0, 1.0);
    let y_of = |seconds: f64| top + plot_h * (1.0 - (seconds / y_max).clamp(0.0, 1.0));

    writeln!(
        out,
        "<figure>\n<svg viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" \
         aria-label=\"RTO achieved over time for plan {}\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\">",
        xml(&plan.plan)
    )?;
    writeln!(out, "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>")?;
    // Legend.
    writeln!(
        out,
        "<g><circle cx=\"{}\" cy=\"16\" r=\"6\" fill=\"{MET_COLOUR}\"/><text x=\"{}\" y=\"20\">met</text>\
         <circle cx=\"{}\" cy=\"16\" r=\"6\" fill=\"{MISSED_COLOUR}\"/><text x=\"{}\" y=\"20\">MISSED</text>\
         <circle cx=\"{}\" cy=\"16\" r=\"6\" fill=\"none\" stroke=\"#1f2328\"/><text x=\"{}\" y=\"20\">failover, drill, failback</text>\
         <rect x=\"{}\" y=\"10\" width=\"12\" height=\"12\" fill=\"none\" stroke=\"#1f2328\"/><text x=\"{}\" y=\"20\">restore test</text></g>",
        left + 6.0,
        left + 16.0,
        left + 66.0,
        left + 76.0,
        left + 150.0,
        left + 160.0,
        left + 330.0,
        left + 348.0
    )?;
    // Y grid and labels.
    let mut tick = 0.0;
    while tick <= y_max + step / 2.0 {
        let y = y_of(tick);
        writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#eaeef2\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#57606a\">{tick:.0} s</text>",
            left + plot_w,
            left - 6.0,
            y + 4.0
        )?;
        tick += step;
    }
    // X ticks: the window's start and end and three dates between.
    for i in 0..=4 {
        let at = time::after(window.since, std::time::Duration::from_secs_f64(span * f64::from(i) / 4.0));
        let x = x_of(at);
        let anchor = match i {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"#57606a\">{}</text>",
            top + plot_h,
            top + plot_h + 5.0,
            top + plot_h + 18.0,
            date(at)
        )?;
    }
    // Axes and their titles.
    writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{:.1}\" stroke=\"#1f2328\"/>\
         <line x1=\"{left}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1f2328\"/>",
        top + plot_h,
        top + plot_h,
        left + plot_w,
        top + plot_h
    )?;
    writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">date (UTC)</text>\
         <text x=\"16\" y=\"{:.1}\" text-anchor=\"middle\" transform=\"rotate(-90 16 {:.1})\">RTO achieved (seconds)</text>",
        left + plot_w / 2.0,
        height - 10.0,
        top + plot_h / 2.0,
        top + plot_h / 2.0
    )?;
    // The target.
    let target_y = y_of(target_seconds);
    writeln!(
        out,
        "<line x1=\"{left}\" y1=\"{target_y:.1}\" x2=\"{:.1}\" y2=\"{target_y:.1}\" stroke=\"#9a6700\" stroke-width=\"2\" \
         stroke-dasharray=\"8 5\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#9a6700\">RTO target {}</text>",
        left + plot_w,
        left + plot_w - 4.0,
        target_y - 6.0,
        target(plan.rto_target_seconds)
    )?;
    // The marks, oldest first so that the newest is drawn on top.
    for event in marks.iter().rev() {
        let Some(seconds) = event.rto.achieved_seconds else { continue };
        let (x, y) = (x_of(event.at), y_of(seconds));
        let colour = match event.rto.met {
            Some(true) => MET_COLOUR,
            Some(false) => MISSED_COLOUR,
            None => UNMEASURED_COLOUR,
        };
        let title = format!(
            "{} {} at {}: {} against {} ({})",
            event.kind.label(),
            event.run_id,
            time::rfc3339(event.at),
            report::seconds(Some(seconds)),
            report::seconds(Some(target_seconds)),
            event.rto.verdict
        );
        if event.kind == EventKind::RestoreTest {
            writeln!(
                out,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"14\" height=\"14\" fill=\"{colour}\" stroke=\"#ffffff\"><title>{}</title></rect>",
                x - 7.0,
                y - 7.0,
                xml(&title)
            )?;
        } else {
            writeln!(
                out,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"8\" fill=\"{colour}\" stroke=\"#ffffff\"><title>{}</title></circle>",
                xml(&title)
            )?;
        }
        if event.rto.met == Some(false) {
            writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{MISSED_COLOUR}\" font-weight=\"bold\">MISSED {}</text>",
                x + 11.0,
                y + 4.0,
                report::seconds(Some(seconds))
            )?;
        }
    }
    writeln!(out, "</svg>")?;
    writeln!(
        out,
        "<figcaption class=\"small\">One mark per live run and restore test with a measured RTO; the dashed line is \
         the plan's RTO target.</figcaption>\n</figure>"
    )
}

/// A round step near `raw`: 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    (nice * power).max(1.0)
}

/// An objective's cell: the verdict, what was achieved, and the target.
fn measure(measure: &Measure, target_name: &str, shown_by_leg: bool) -> String {
    let class = match measure.met {
        Some(true) => "met",
        Some(false) => "missed",
        None => "unmeasured",
    };
    let achieved = match measure.achieved_seconds {
        Some(seconds) => {
            format!("<span class=\"fig\">{} ({})</span>", report::seconds(Some(seconds)), duration(seconds))
        }
        None => "n/a".to_string(),
    };
    let leg = if shown_by_leg { "<br><small>its failover leg's, below</small>" } else { "" };
    format!(
        "<span class=\"{class}\">{}</span><br>{achieved}<br><small>{target_name} <span class=\"fig\">{}</span></small>{leg}",
        xml(&measure.verdict),
        target(measure.target_seconds)
    )
}

fn finding_text(finding: &FindingLine) -> String {
    format!(
        "<strong>{}</strong> &middot; {} <code>{}</code>: {}",
        xml(&finding.finding),
        xml(&finding.check),
        xml(&finding.resource),
        xml(&finding.detail)
    )
}

fn milestone(milestone: Option<&Milestone>) -> String {
    match milestone {
        Some(m) => format!(
            "{} <small>({}, <code>{}</code>, {})</small>",
            date_time(m.at),
            m.kind.label(),
            xml(&m.run_id),
            m.status.label()
        ),
        None => "<span class=\"missed\">none recorded</span>".to_string(),
    }
}

fn gap(gap: &Gap) -> String {
    let from = if gap.from_first_record {
        format!("the plan's first record ({})", date_time(gap.from))
    } else if gap.from_window_start {
        format!("the window's start ({})", date_time(gap.from))
    } else {
        format!("a success at {}", date_time(gap.from))
    };
    let to =
        if gap.ongoing { format!("the window's end ({}), still open", date_time(gap.to)) } else { date_time(gap.to) };
    let none = if gap.successes == 0 { " &middot; <span class=\"missed\">none in the window</span>" } else { "" };
    format!("<strong>{}</strong> <small>from {from} to {to}</small>{none}", duration(gap.seconds))
}

fn state_name(plan: &PlanPosture) -> &'static str {
    plan.state.as_ref().map_or("never armed", |state| state.status.name())
}

fn readiness_word(readiness: Option<&ReadinessNow>) -> String {
    match readiness {
        None => "<span class=\"unmeasured\">never checked</span>".to_string(),
        Some(r) => format!(
            "<span class=\"{}\">{}</span>{}",
            if r.ready { "met" } else { "missed" },
            if r.ready { "READY" } else { "NOT READY" },
            if r.stale { " <strong>(STALE)</strong>" } else { "" }
        ),
    }
}

/// `<ul>` of already escaped lines (one line: as is).
fn list(lines: &[String]) -> String {
    match lines {
        [] => String::new(),
        [line] => line.clone(),
        lines => format!("<ul>{}</ul>", lines.iter().map(|line| format!("<li>{line}</li>")).collect::<String>()),
    }
}

/// A target: "14400 s (4 h)".
fn target(seconds: u64) -> String {
    format!("{seconds} s ({})", duration(seconds as f64))
}

fn date(at: Timestamp) -> String {
    at.format("%Y-%m-%d").to_string()
}

/// A time as the page shows it, with its exact RFC 3339 value in the markup.
fn date_time(at: Timestamp) -> String {
    format!("<time datetime=\"{}\">{}</time>", time::rfc3339(at), at.format("%Y-%m-%d %H:%M"))
}

/// A duration as a person reads it: "45 s", "12 min 3 s", "4 h 10 min", "38 d 4 h".
pub fn duration(seconds: f64) -> String {
    let total = seconds.max(0.0).round() as u64;
    let (days, hours, minutes, secs) = (total / 86_400, total % 86_400 / 3600, total % 3600 / 60, total % 60);
    let pair = |a: u64, a_unit: &str, b: u64, b_unit: &str| {
        if b == 0 { format!("{a} {a_unit}") } else { format!("{a} {a_unit} {b} {b_unit}") }
    };
    if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", minutes, "min")
    } else if minutes > 0 {
        pair(minutes, "min", secs, "s")
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::super::build::build;
    use super::super::build::fixtures::*;
    use super::*;

    fn sample_page() -> String {
        render_html(&build(&[evidence()], window())).expect("page")
    }

    /// What a self-contained page never holds: a script, an external asset, a web font. Looked
    /// for in its markup (every tag) and its style; the text may quote anything, escaped.
    fn assert_self_contained(page: &str) {
        let lower = page.to_lowercase();
        let tags: Vec<&str> = lower.split('<').skip(1).map(|rest| rest.split('>').next().unwrap_or(rest)).collect();
        for tag in &tags {
            for forbidden in [
                "script",
                "src=",
                "href=",
                "http:",
                "https:",
                "javascript:",
                "link ",
                "iframe",
                "object",
                "embed",
                "on",
            ] {
                let found = if forbidden == "on" {
                    tag.split_whitespace().skip(1).any(|attribute| attribute.starts_with("on"))
                } else {
                    tag.starts_with(forbidden)
                        || tag.contains(&format!(" {forbidden}"))
                        || tag.contains(forbidden) && forbidden.ends_with([':', '='])
                };
                assert!(!found, "the page holds <{tag}> ({forbidden:?})");
            }
        }
        let style = &lower[lower.find("<style>").expect("a style")..lower.find("</style>").expect("its end")];
        for forbidden in ["@import", "url(", "@font-face", "http"] {
            assert!(!style.contains(forbidden), "the style holds {forbidden:?}");
        }
        assert_eq!(lower.matches("<style>").count(), 1);
        assert!(lower.starts_with("<!doctype html>") && lower.trim_end().ends_with("</html>"));
    }

    #[test]
    fn the_page_shows_each_event_its_verdicts_approvals_and_drift() {
        let page = sample_page();
        assert_self_contained(&page);
        assert!(page.contains("<h2>Plan prod</h2>"));
        for text in [
            "live drill",
            "automatic failover",
            "failback",
            "dry run",
            "round trip",
            "restore test",
            "MISSED",
            "18000 s (5 h)",
            "900 s (15 min)",
            "target 14400 s (4 h)",
            APPROVER,
            STARTER,
            "Paris is gone",
            "leg of round trip <code>prod-roundtrip-20261110T100000Z</code>",
            "drifted: not ready",
            "ready again",
            "ReplicaNotReplicating",
            "Longest without a successful restore test",
            "still open",
            "@media print",
            "thead { display: table-header-group; }",
        ] {
            assert!(page.contains(text), "the page lacks {text:?}");
        }
        assert!(!page.contains("No drill, failover or restore test recorded"));
    }

    #[test]
    fn the_chart_marks_each_measured_rto_in_the_colour_of_its_verdict() {
        let page = sample_page();
        let chart = &page[page.find("<svg").expect("a chart")..page.find("</svg>").expect("its end")];
        // Drill, failover leg, failback leg, failback by hand: circles; the October restore test: a
        // square; the round trip is its failover leg's mark.
        assert_eq!(
            chart.matches("<circle cx=").count() - 3,
            5,
            "four runs and the incident, besides the legend's three"
        );
        assert_eq!(chart.matches(&format!("r=\"8\" fill=\"{MISSED_COLOUR}\"")).count(), 1);
        assert_eq!(chart.matches(&format!("r=\"8\" fill=\"{MET_COLOUR}\"")).count(), 4);
        assert_eq!(chart.matches(&format!("width=\"14\" height=\"14\" fill=\"{MET_COLOUR}\"")).count(), 1);
        assert!(chart.contains("stroke-dasharray") && chart.contains("RTO target 14400 s (4 h)"));
        assert!(chart.contains("RTO achieved (seconds)") && chart.contains("date (UTC)"));
        assert!(chart.contains(">2026-10-01<") && chart.contains(">2026-12-01<"), "dated axis");
        // The CSS speaks the chart's colours.
        assert!(STYLE.contains(MET_COLOUR) && STYLE.contains(MISSED_COLOUR));
    }

    #[test]
    fn an_empty_history_says_so_plainly() {
        let window = window();
        let page = render_html(&build(&[], window)).expect("page");
        assert_self_contained(&page);
        assert!(page.contains("No plan in this report: no drill, failover or restore test recorded since 2026-10-01."));

        let mut quiet = evidence();
        quiet.runs.clear();
        quiet.round_trips.clear();
        quiet.restore_tests.clear();
        quiet.decisions.clear();
        quiet.readiness.clear();
        quiet.state = None;
        let page = render_html(&build(&[quiet], window)).expect("page");
        assert_self_contained(&page);
        assert!(page.contains("No drill, failover or restore test recorded for prod since 2026-10-01."), "{page}");
        assert!(page.contains("never armed") && page.contains("never checked"));
        assert!(!page.contains("<svg") && !page.contains("<table class=\"events\">"));
        assert!(!page.contains("<table class=\"totals\">"), "no table of zeros");
        assert!(page.contains("none recorded"));
    }

    #[test]
    fn text_from_operators_is_escaped() {
        let hostile = "<script>alert(\"x\")</script> & 'quotes'";
        let mut evidence = evidence();
        evidence.plan = format!("prod{hostile}");
        evidence.decisions[0].reason = Some(hostile.into());
        evidence.runs[2].head.run.requested_by =
            Some(crate::run::Approval { by: hostile.into(), reason: "<img src=x onerror=alert(1)>".into() });
        evidence.readiness[1].not_ready[0].detail = format!("<b>{hostile}</b>");
        evidence.unreadable = vec!["prod/<evil>/report.json".into()];
        let page = render_html(&build(&[evidence], window())).expect("page");
        assert_self_contained(&page);
        assert!(
            !page.contains("<script>") && !page.contains("<img") && !page.contains("<b>") && !page.contains("<evil>")
        );
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;"));
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;"));
    }

    #[test]
    fn durations_read_as_a_person_says_them() {
        assert_eq!(duration(45.0), "45 s");
        assert_eq!(duration(723.0), "12 min 3 s");
        assert_eq!(duration(14_400.0), "4 h");
        assert_eq!(duration(15_000.0), "4 h 10 min");
        assert_eq!(duration(38.0 * 86_400.0 + 4.0 * 3600.0 + 59.0), "38 d 4 h");
        assert_eq!((nice_step(3456.0), nice_step(0.2), nice_step(f64::NAN)), (5000.0, 1.0, 1.0));
    }
}
