//! drctl: the operator CLI of dr-orchestrator.
//!
//! Exit status: 0 when the command succeeded (and, for `plan check` and `rpo status`, everything
//! is ready), 1 when a check found something not ready, 2 on an error (bad plan, AWS failure).

mod common;
mod deploy;
mod doctor;
mod drill;
mod evacuate;
mod failover;
mod output;
mod plan;
mod report;
mod reprotect;
mod restore_test;
mod rpo;
mod runs;
mod trigger;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dr_core::DrError;

#[derive(Parser)]
#[command(name = "drctl", version, about = "Operate dr-orchestrator disaster-recovery plans")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plan, publish it, or check that its estate is ready for a failover.
    #[command(subcommand)]
    Plan(plan::PlanCommand),
    /// Start a failover by hand, or print its execution input.
    #[command(subcommand)]
    Failover(failover::FailoverCommand),
    /// Fail back to the plan's primary region once its DR region is primary and reprotected.
    #[command(subcommand)]
    Failback(failover::FailbackCommand),
    /// Game days: a dry run, a live drill, a round trip.
    #[command(subcommand)]
    Drill(drill::DrillCommand),
    /// Follow, list, show and stop runs (Step Functions executions).
    #[command(subcommand)]
    Run(runs::RunCommand),
    /// What deploying the stack for a plan takes from the plan.
    #[command(subcommand)]
    Deploy(deploy::DeployCommand),
    /// Run reports.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// The plan's automatic-failover state: armed, failing-over, failed-over or disarmed.
    #[command(subcommand)]
    Trigger(trigger::TriggerCommand),
    /// Replication lag against the RPO.
    #[command(subcommand)]
    Rpo(rpo::RpoCommand),
    /// The monthly restore test.
    #[command(subcommand)]
    RestoreTest(restore_test::RestoreTestCommand),
    /// After a failover and its reprotect: the operator's steps.
    #[command(subcommand)]
    Reprotect(reprotect::ReprotectCommand),
    /// A deployed stack against what the real account answers, before the incident: every call
    /// each function makes, on the plan's real resources, decided by IAM's own policy simulator
    /// (iam:SimulatePrincipalPolicy on the function's deployed role: its policies, its permissions
    /// boundary and the organization's SCPs), and the full readiness check with the DR region's
    /// dependencies. Read-only, safe in production. Exit 1 when a call is denied or a check is
    /// not ready.
    Doctor(doctor::DoctorArgs),
    /// Evacuate a region: fail over every plan of an inventory whose primary it is, Tier 1
    /// first, a bounded number at a time; a plan already failing over is joined, one that fails
    /// does not stop the others. Prints the evacuation report; exit 1 when a plan did not move.
    Evacuate(evacuate::EvacuateArgs),
}

impl Command {
    async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            Command::Plan(command) => command.run().await,
            Command::Failover(command) => command.run().await,
            Command::Failback(command) => command.run().await,
            Command::Drill(command) => command.run().await,
            Command::Run(command) => command.run().await,
            Command::Deploy(command) => command.run(),
            Command::Report(command) => command.run().await,
            Command::Trigger(command) => command.run().await,
            Command::Rpo(command) => command.run().await,
            Command::RestoreTest(command) => command.run(),
            Command::Reprotect(command) => command.run().await,
            Command::Doctor(command) => command.run().await,
            Command::Evacuate(command) => command.run().await,
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command.run().await {
        Ok(code) => code,
        Err(err) => {
            output::print_error(&err);
            ExitCode::from(2)
        }
    }
}
