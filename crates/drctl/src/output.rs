//! How drctl prints: tables for people, JSON for scripts, errors with their stable name.

use std::process::ExitCode;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use dr_core::readiness::Readiness;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{PairKind, PairStatus};
use dr_core::run::execution::ExecutionView;
use dr_core::runbook::report::Achieved;
use dr_core::{DrError, Plan};

pub fn print_json<T: serde::Serialize>(value: &T) -> Result<ExitCode, DrError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| DrError::serialisation("output", e))?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// 0 when everything checked is ready, 1 otherwise.
pub fn ready_or_not(ready: bool) -> ExitCode {
    if ready { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

pub fn print_error(err: &DrError) {
    eprintln!("error {}: {err}", err.name());
    if let DrError::InvalidPlan { problems, .. } = err {
        for problem in problems {
            eprintln!("  {:<26} {:<34} {}", problem.code.name(), problem.field, problem.message);
        }
    }
}

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if table.width().is_none() {
        table.set_width(150);
    }
    table.set_header(header.to_vec());
    table
}

pub fn print_rpo(plan: &Plan, statuses: &[PairStatus]) {
    let mut table = table(&["pair", "kind", "lag", "RPO budget used", "verdict", "detail"]);
    for status in statuses {
        let verdict = match status.verdict {
            LagVerdict::WithinRpo => Cell::new("WITHIN RPO").fg(Color::Green),
            LagVerdict::RpoExceeded => Cell::new("RPO EXCEEDED").fg(Color::Red),
            LagVerdict::NotReplicating => Cell::new("NOT REPLICATING").fg(Color::Red),
        };
        let kind = match status.kind {
            PairKind::Rds => "rds",
            PairKind::S3 => "s3",
        };
        let detail = match (&status.error, status.replication_latency_seconds) {
            (Some(error), _) => format!("{error}: {}", status.detail),
            (None, Some(latency)) => format!("{}; ReplicationLatency {latency:.0} s", status.detail),
            (None, None) => status.detail.clone(),
        };
        table.add_row(vec![
            Cell::new(&status.pair),
            Cell::new(kind),
            Cell::new(status.lag_seconds.map_or("-".to_string(), |lag| format!("{lag:.0} s"))),
            Cell::new(status.budget_used_percent.map_or("-".to_string(), |used| format!("{used:.1} %"))),
            verdict,
            Cell::new(detail),
        ]);
    }
    println!("plan {}: RPO {} min", plan.name, plan.targets.rpo_minutes);
    println!("{table}");
}

pub fn print_readiness(plan: &Plan, readiness: &Readiness) {
    let mut table = table(&["check", "resource", "status", "detail"]);
    for row in &readiness.rows {
        let status = match row.finding {
            None => Cell::new("READY").fg(Color::Green),
            Some(finding) => Cell::new(finding.name()).fg(Color::Red),
        };
        table.add_row(vec![Cell::new(row.check.label()), Cell::new(&row.resource), status, Cell::new(&row.detail)]);
    }
    println!(
        "plan {}: {} -> {} (RTO {} min, RPO {} min)",
        plan.name, plan.primary_region, plan.dr_region, plan.targets.rto_minutes, plan.targets.rpo_minutes
    );
    println!("{table}");
    let not_ready = readiness.rows.iter().filter(|row| !row.is_ready()).count();
    if not_ready == 0 {
        println!("READY: {} checks passed", readiness.rows.len());
    } else {
        println!("NOT READY: {not_ready} of {} checks failed", readiness.rows.len());
    }
}

pub fn print_doctor(plan: &Plan, report: &dr_core::doctor::DoctorReport) {
    println!("stack {} (account {}) for plan {}", report.stack, report.account, report.plan);
    let denied: Vec<_> = report.denied().collect();
    if denied.is_empty() {
        println!("IAM: the {} calls of the stack's functions are allowed on the plan's resources", report.calls.len());
    } else {
        let mut table = table(&["function", "action", "resource", "decision", "denied by", "why it is needed"]);
        for call in &denied {
            table.add_row(vec![
                Cell::new(&call.call.function),
                Cell::new(&call.call.action),
                Cell::new(&call.call.resource),
                Cell::new(&call.decision).fg(Color::Red),
                Cell::new(call.denied_by()),
                Cell::new(call.call.why),
            ]);
        }
        println!("IAM: {} of {} calls DENIED", denied.len(), report.calls.len());
        println!("{table}");
    }
    print_readiness(plan, &report.readiness);
}

/// A duration as people read it: "850 ms", "12.3 s", "4 min 05 s", "2 h 10 min".
pub fn duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    match secs {
        0 => format!("{} ms", d.as_millis()),
        1..60 => format!("{:.1} s", d.as_secs_f64()),
        60..3600 => format!("{} min {:02} s", secs / 60, secs % 60),
        _ => format!("{} h {:02} min", secs / 3600, secs % 3600 / 60),
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// One run in `drctl run list`.
#[derive(serde::Serialize)]
pub struct RunRow {
    pub name: String,
    pub status: String,
    pub started: Option<dr_core::time::Timestamp>,
    pub duration_seconds: Option<f64>,
    /// "RTO 312 s (target 14400 s, met)", from the report.
    pub rto: Option<String>,
    pub data_loss: Option<String>,
    pub execution_arn: String,
}

impl RunRow {
    /// The run's execution, and the RTO and data loss its report gives (`None`: no figures).
    pub fn new(view: &ExecutionView, achieved: Option<&Achieved>) -> RunRow {
        let [rto, data_loss] = match achieved {
            Some(achieved) => achieved.objectives("RTO", "data loss").map(|o| Some(o.line())),
            None => [None, None],
        };
        RunRow {
            name: view.name.clone(),
            status: view.status.clone(),
            started: view.started,
            duration_seconds: view
                .started
                .zip(view.stopped)
                .map(|(start, stop)| (stop - start).num_milliseconds() as f64 / 1000.0),
            rto,
            data_loss,
            execution_arn: view.execution_arn.clone(),
        }
    }
}

pub fn print_runs(plan: &str, rows: &[RunRow]) {
    println!("runs of {plan} (newest first)");
    let mut table = table(&["run", "status", "started", "took", "RTO", "data loss"]);
    for row in rows {
        table.add_row(vec![
            Cell::new(&row.name),
            Cell::new(&row.status).fg(if row.status == "SUCCEEDED" { Color::Green } else { Color::Red }),
            Cell::new(row.started.map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default()),
            Cell::new(
                row.duration_seconds
                    .map(|s| duration(std::time::Duration::from_secs_f64(s.max(0.0))))
                    .unwrap_or_default(),
            ),
            Cell::new(row.rto.as_deref().unwrap_or("-")),
            Cell::new(row.data_loss.as_deref().unwrap_or("-")),
        ]);
    }
    println!("{table}");
}
