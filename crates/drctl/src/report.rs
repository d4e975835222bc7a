//! `drctl report ...`: a run report (a run's own, or a round trip's) read from its JSON and
//! printed as Markdown; the posture page of one or more plans from what their stack stores.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use dr_core::DrError;
use dr_core::posture::{self, Window, gather::gather};
use dr_core::runbook::report::render_markdown;
use dr_core::runbook::round_trip::{self, AnyRunReport};
use dr_core::store::PlanStore;
use dr_core::time;

use crate::common::PlanArg;

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Print a run report (report.json, or the failover execution's output; a round trip's too)
    /// as Markdown.
    Show {
        /// Path of the JSON report.
        report: PathBuf,
    },
    /// The DR posture of one or more plans, from what their stack stores (run, round-trip and
    /// restore-test reports, readiness snapshots, decisions): one self-contained HTML page
    /// (printable, no script, no external asset) and its JSON. Read-only.
    Posture {
        /// The plan files (TOML), e.g. plans/paris-ireland.toml.
        #[arg(required = true)]
        plans: Vec<PathBuf>,
        /// The plan store bucket (plans, their states, the decisions humans took).
        #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
        bucket: String,
        /// How far back: a number and a unit, `12mo` (months), `90d`, `8w`, `1y`.
        #[arg(long, default_value = "12mo", value_parser = parse_since)]
        since: Duration,
        /// The folder the page (posture.html) and its JSON (posture.json) are written to.
        #[arg(long, default_value = "posture")]
        out: PathBuf,
    },
}

impl ReportCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            ReportCommand::Show { report } => show(&report),
            ReportCommand::Posture { plans, bucket, since, out } => {
                let until = time::now();
                let window = Window { since: time::before(until, since), until };
                let mut evidence = Vec::new();
                for plan in plans {
                    let (plan, clients) = PlanArg { plan }.load_with_clients().await?;
                    let store = PlanStore::new(clients.home.s3.clone(), &bucket);
                    evidence.push(gather(&clients, &plan, &store).await?);
                }
                let page = posture::build(&evidence, window);
                let html = posture::render_html(&page)?;
                let json = serde_json::to_string_pretty(&page).map_err(|e| DrError::serialisation("posture", e))?;
                let written = |e: std::io::Error| DrError::InvalidInput { message: format!("{}: {e}", out.display()) };
                std::fs::create_dir_all(&out).map_err(written)?;
                std::fs::write(out.join("posture.html"), html).map_err(written)?;
                std::fs::write(out.join("posture.json"), json).map_err(written)?;
                println!("{}", out.join("posture.html").display());
                println!("{}", out.join("posture.json").display());
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

fn show(report: &Path) -> Result<ExitCode, DrError> {
    let not_a_report = |e: &dyn std::fmt::Display| DrError::InvalidInput {
        message: format!("{}: not a run report: {e}", report.display()),
    };
    let text = std::fs::read_to_string(report)
        .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", report.display()) })?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| not_a_report(&e))?;
    let markdown = match AnyRunReport::from_json(value).map_err(|e| not_a_report(&e))? {
        AnyRunReport::RoundTrip(round_trip) => round_trip::render_markdown(&round_trip)?,
        AnyRunReport::Run(run) => render_markdown(&run)?,
    };
    println!("{markdown}");
    Ok(ExitCode::SUCCESS)
}

/// `12mo`, `90d`, `8w`, `1y`, `36h`: a look-back (a month is a twelfth of a 365-day year).
fn parse_since(text: &str) -> Result<Duration, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| format!("{text}: a number then a unit, e.g. 12mo"))?;
    let unit_seconds = match unit {
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "mo" => 365 * 86_400 / 12,
        "y" => 365 * 86_400,
        _ => return Err(format!("{text}: the unit is h, d, w, mo or y")),
    };
    Ok(Duration::from_secs(number.saturating_mul(unit_seconds)))
}

#[cfg(test)]
mod tests {
    use super::parse_since;

    #[test]
    fn a_look_back_is_a_number_and_a_unit() {
        assert_eq!(parse_since("12mo"), parse_since("1y"));
        assert_eq!(parse_since("90d"), Ok(std::time::Duration::from_secs(90 * 86_400)));
        assert!(parse_since("12").is_err() && parse_since("mo").is_err() && parse_since("3m").is_err());
    }
}
