//! `drctl report ...`: a run report (a run's own, or a round trip's) read from its JSON and
//! printed as Markdown.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use dr_core::DrError;
use dr_core::runbook::report::{RunReport, render_markdown};
use dr_core::runbook::round_trip::{self, RoundTripReport};

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Print a run report (report.json, or the failover execution's output; a round trip's too)
    /// as Markdown.
    Show {
        /// Path of the JSON report.
        report: PathBuf,
    },
}

impl ReportCommand {
    pub fn run(self) -> Result<ExitCode, DrError> {
        let ReportCommand::Show { report } = self;
        let text = std::fs::read_to_string(&report)
            .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", report.display()) })?;
        // A round trip's report has its legs; any other run's has its own timeline.
        if let Ok(round_trip) = serde_json::from_str::<RoundTripReport>(&text) {
            println!("{}", round_trip::render_markdown(&round_trip)?);
            return Ok(ExitCode::SUCCESS);
        }
        let parsed: RunReport = serde_json::from_str(&text)
            .map_err(|e| DrError::InvalidInput { message: format!("{}: not a run report: {e}", report.display()) })?;
        println!("{}", render_markdown(&parsed)?);
        Ok(ExitCode::SUCCESS)
    }
}
