//! How drctl prints: tables for people, JSON for scripts, errors with their stable name.

use std::process::ExitCode;

use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use dr_core::readiness::Readiness;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{PairKind, PairStatus};
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
