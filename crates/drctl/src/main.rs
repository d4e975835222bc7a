//! drctl: the operator CLI of dr-orchestrator.
//!
//! Exit status: 0 when the command succeeded (and, for `plan check`, everything is ready),
//! 1 when `plan check` found something not ready, 2 on an error (bad plan, AWS failure).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Parser, Subcommand};
use comfy_table::{Cell, Color, ContentArrangement, Table, presets::UTF8_FULL_CONDENSED};
use dr_core::aws::AwsClients;
use dr_core::estate::{
    Outage, SeedOptions, TriggerSeed, replicate_heartbeats, require_emulator, seed, seed_triggers, simulate_outage,
};
use dr_core::readiness::{Readiness, check_plan};
use dr_core::restore::restore_test_input;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{Heartbeat, PairKind, PairStatus, check_pairs, pairs_of};
use dr_core::runbook::report::{RunReport, render_markdown};
use dr_core::runbook::{Approval, RunInfo, RunbookState};
use dr_core::trigger::PlanStore;
use dr_core::{DrError, Plan};

#[derive(Parser)]
#[command(name = "drctl", version, about = "Operate dr-orchestrator disaster-recovery plans")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a plan, or check that its estate is ready for a failover.
    #[command(subcommand)]
    Plan(PlanCommand),
    /// The emulated estate (only against a local emulator: AWS_ENDPOINT_URL on loopback).
    #[command(subcommand)]
    Estate(EstateCommand),
    /// The failover runbook's execution input.
    #[command(subcommand)]
    Failover(FailoverCommand),
    /// Run reports.
    #[command(subcommand)]
    Report(ReportCommand),
    /// The plan's automatic-failover state: armed, failing-over, failed-over or disarmed.
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Replication lag against the RPO.
    #[command(subcommand)]
    Rpo(RpoCommand),
    /// The monthly restore test.
    #[command(subcommand)]
    RestoreTest(RestoreTestCommand),
}

#[derive(Subcommand)]
enum RestoreTestCommand {
    /// Print the execution input of a restore test of PLAN (for `aws stepfunctions
    /// start-execution --input` on the restore-test state machine).
    Input {
        #[command(flatten)]
        plan: PlanArg,
    },
}

#[derive(Subcommand)]
enum RpoCommand {
    /// Every replicated pair of PLAN (database, buckets): lag, share of the RPO used, verdict.
    /// Read-only: reads the newest replicated heartbeat, writes none. Exit 1 if any pair is
    /// over the RPO or not replicating.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        /// Print the statuses as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct StoreArg {
    /// The plan store bucket (plans and their states), in the plan's DR region.
    #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
    bucket: String,
}

#[derive(Args)]
struct OperatorArg {
    /// Who makes the change (recorded in the plan state).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// Change a plan a run still holds (failing-over): only when that run is known to be over.
    #[arg(long)]
    force: bool,
}

#[derive(Subcommand)]
enum TriggerCommand {
    /// Print the plan's state as JSON.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Let an alarm fail the plan over (after a failover: once Paris serves again).
    Arm {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        operator: OperatorArg,
    },
    /// Switch automatic failover off (maintenance, a planned Paris outage).
    Disarm {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
        #[command(flatten)]
        operator: OperatorArg,
    },
}

#[derive(Subcommand)]
enum FailoverCommand {
    /// Print the execution input of a failover of PLAN (for `aws stepfunctions start-execution
    /// --input`), with an optional approval to pass a failed RPO gate.
    Input {
        #[command(flatten)]
        plan: PlanArg,
        /// Run id (default: manual-<unix seconds>).
        #[arg(long)]
        run_id: Option<String>,
        /// Who approves failing over although the RPO gate fails (recorded in the report).
        #[arg(long, requires = "approval_reason")]
        approve_by: Option<String>,
        /// Why they approve.
        #[arg(long, requires = "approve_by")]
        approval_reason: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Print a run report (report.json, or the failover execution's output) as Markdown.
    Show {
        /// Path of the JSON report.
        report: PathBuf,
    },
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Parse and validate a plan file; lists every problem.
    Validate(PlanArg),
    /// Validate a plan and publish it to the plan store, where the trigger Lambdas read it.
    Publish {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Readiness: every resource exists and sits in its standby state. Read-only.
    Check {
        #[command(flatten)]
        plan: PlanArg,
        /// Print the table as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum EstateCommand {
    /// Create (or bring back to standby) the plan's estate in the emulator.
    Seed {
        #[command(flatten)]
        plan: PlanArg,
        /// The ReplicaLag datapoint to publish for the replica, in seconds.
        #[arg(long, default_value_t = SeedOptions::default().replica_lag_seconds)]
        replica_lag_seconds: f64,
    },
    /// Publish the plan to a plan store bucket and register the failover state machine in the
    /// emulator's Step Functions; prints the state machine ARN.
    Triggers {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        store: StoreArg,
        /// The state machine definition to register.
        #[arg(long, default_value = "statemachines/failover.asl.json")]
        definition: PathBuf,
        #[arg(long, default_value = "dr-failover")]
        state_machine_name: String,
    },
    /// Simulate a Paris outage: the health metric goes unhealthy, the trigger's alarm moves to
    /// ALARM; prints the EventBridge event CloudWatch sends.
    Outage {
        #[command(flatten)]
        plan: PlanArg,
        /// Paris answers again inside the confirmation window.
        #[arg(long)]
        flap: bool,
    },
    /// Copy the plan's RPO heartbeats from the Paris to the Ireland buckets, as S3 replication
    /// would (the emulator does not replicate).
    Replicate {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Print the input of an execution recorded by the emulator's Step Functions.
    ExecutionInput {
        /// The execution ARN (the alarm trigger's or the game day's answer).
        execution_arn: String,
    },
}

#[derive(Args)]
struct PlanArg {
    /// Path of the plan file (TOML), e.g. plans/paris-ireland.toml.
    plan: PathBuf,
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
    match run(Cli::parse().command).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error {}: {err}", err.name());
            if let DrError::InvalidPlan { problems, .. } = &err {
                for problem in problems {
                    eprintln!("  {:<26} {:<34} {}", problem.code.name(), problem.field, problem.message);
                }
            }
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<ExitCode, DrError> {
    match command {
        Command::Plan(PlanCommand::Validate(arg)) => {
            let plan = Plan::load(&arg.plan)?;
            println!("plan {} is valid ({} -> {}, tier {})", plan.name, plan.primary_region, plan.dr_region, plan.tier);
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(PlanCommand::Check { plan, json }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let readiness = check_plan(&clients, &plan).await;
            if json {
                print_json(&readiness)?;
            } else {
                print_readiness(&plan, &readiness);
            }
            Ok(if readiness.is_ready() { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Failover(FailoverCommand::Input { plan, run_id, approve_by, approval_reason }) => {
            let plan = Plan::load(&plan.plan)?;
            let now = std::time::SystemTime::now();
            let run_id = run_id.unwrap_or_else(|| {
                format!("manual-{}", now.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default())
            });
            let approval = approve_by.zip(approval_reason).map(|(by, reason)| Approval { by, reason });
            let state = RunbookState {
                plan,
                run: RunInfo::new(run_id, now, "manual: drctl"),
                approval,
                steps: Default::default(),
                error: None,
            };
            state.validate()?;
            print_json(&state)
        }
        Command::Report(ReportCommand::Show { report }) => {
            let text = std::fs::read_to_string(&report)
                .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", report.display()) })?;
            let report: RunReport = serde_json::from_str(&text).map_err(|e| DrError::InvalidInput {
                message: format!("{}: not a run report: {e}", report.display()),
            })?;
            println!("{}", render_markdown(&report));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan(PlanCommand::Publish { plan, store }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            PlanStore::new(clients.dr.s3.clone(), &store.bucket).publish_plan(&plan).await?;
            println!("published plan {} to s3://{}/plans/{}.toml", plan.name, store.bucket, plan.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Trigger(command) => {
            let (plan, store, change) = match command {
                TriggerCommand::Status { plan, store } => (plan, store, None),
                TriggerCommand::Arm { plan, store, operator } => (plan, store, Some((true, operator))),
                TriggerCommand::Disarm { plan, store, operator } => (plan, store, Some((false, operator))),
            };
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let store = PlanStore::new(clients.dr.s3.clone(), &store.bucket);
            let state = match change {
                None => store.read_state(&plan.name).await?.state,
                Some((armed, op)) => store.set_armed(&plan.name, armed, &op.by, &op.reason, op.force).await?,
            };
            print_json(&state)
        }
        Command::Estate(EstateCommand::Triggers { plan, store, definition, state_machine_name }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let state_machine_definition = std::fs::read_to_string(&definition)
                .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", definition.display()) })?;
            let seed = TriggerSeed { plan_state_bucket: store.bucket, state_machine_name, state_machine_definition };
            println!("{}", seed_triggers(&clients, &plan, &seed).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Estate(EstateCommand::Outage { plan, flap }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let event = simulate_outage(&clients, &plan, if flap { Outage::Flap } else { Outage::Sustained }).await?;
            print_json(&event)
        }
        Command::Estate(EstateCommand::Replicate { plan }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let copied = replicate_heartbeats(&clients, &plan).await?;
            println!("replicated {copied} heartbeat(s) of {} to Ireland", plan.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Estate(EstateCommand::ExecutionInput { execution_arn }) => {
            let region = execution_arn.split(':').nth(3).unwrap_or_default().to_string();
            let clients = AwsClients::for_regions(&region, &region).await;
            require_emulator(&clients)?;
            let execution = clients
                .dr
                .sfn
                .describe_execution()
                .execution_arn(&execution_arn)
                .send()
                .await
                .map_err(|e| DrError::from_sdk("sfn", "DescribeExecution", e))?;
            println!("{}", execution.input().unwrap_or("{}"));
            Ok(ExitCode::SUCCESS)
        }
        Command::RestoreTest(RestoreTestCommand::Input { plan }) => {
            let plan = Plan::load(&plan.plan)?;
            print_json(&restore_test_input(&plan, SystemTime::now(), "manual: drctl")?)
        }
        Command::Rpo(RpoCommand::Status { plan, json }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            let statuses = check_pairs(&clients, &pairs_of(&plan), Heartbeat::ReadOnly, SystemTime::now()).await?;
            if json {
                print_json(&statuses)?;
            } else {
                print_rpo(&plan, &statuses);
            }
            let all_within = statuses.iter().all(|s| s.verdict == LagVerdict::WithinRpo);
            Ok(if all_within { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Estate(EstateCommand::Seed { plan, replica_lag_seconds }) => {
            let plan = Plan::load(&plan.plan)?;
            let clients = AwsClients::for_plan(&plan).await;
            seed(&clients, &plan, SeedOptions { replica_lag_seconds, ..SeedOptions::default() }).await?;
            println!(
                "seeded the emulated estate of {} ({} primary, {} DR) at {}",
                plan.name,
                plan.primary_region,
                plan.dr_region,
                clients.endpoint_url().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<ExitCode, DrError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| DrError::InvalidInput { message: format!("cannot print as JSON: {e}") })?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn print_rpo(plan: &Plan, statuses: &[PairStatus]) {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if table.width().is_none() {
        table.set_width(150);
    }
    table.set_header(["pair", "kind", "lag", "RPO budget used", "verdict", "detail"]);
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

fn print_readiness(plan: &Plan, readiness: &Readiness) {
    let mut table = Table::new();
    table.load_style(UTF8_FULL_CONDENSED).set_content_arrangement(ContentArrangement::Dynamic);
    if table.width().is_none() {
        table.set_width(150);
    }
    table.set_header(["check", "resource", "status", "detail"]);
    for row in &readiness.rows {
        let status = match row.finding {
            None => Cell::new("READY").fg(Color::Green),
            Some(finding) => Cell::new(finding.name()).fg(Color::Red),
        };
        table.add_row(vec![Cell::new(&row.check), Cell::new(&row.resource), status, Cell::new(&row.detail)]);
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
