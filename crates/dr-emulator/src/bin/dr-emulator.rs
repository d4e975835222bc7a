//! dr-emulator: the developer tool of the local stack (never pointed at AWS: every command refuses
//! an endpoint that is not on loopback). The demo and the by-hand examples of docs/testing.md use it.
//!
//! Exit status: 0 on success, 2 on an error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dr_core::aws::AwsClients;
use dr_core::{DrError, Plan};
use dr_emulator::control::back_instance_with;
use dr_emulator::estate::{SeedOptions, publish_replica_lag, seed};
use dr_emulator::executions::{TriggerSeed, execution_input, seed_triggers, substitute};
use dr_emulator::lambdas;
use dr_emulator::outage::{Outage, simulate_outage, simulate_recovery};
use dr_emulator::replication::replicate_heartbeats;

#[derive(Parser)]
#[command(name = "dr-emulator", version, about = "The local stack of dr-orchestrator (loopback emulator only)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct PlanArg {
    /// Path of the plan file (TOML), e.g. plans/paris-ireland.toml.
    plan: PathBuf,
}

impl PlanArg {
    async fn load(&self) -> Result<(Plan, AwsClients), DrError> {
        let plan = Plan::load(&self.plan)?;
        let clients = AwsClients::for_plan(&plan, "dr-emulator").await;
        Ok((plan, clients))
    }
}

#[derive(Subcommand)]
enum Command {
    /// Create (or bring back to standby) the plan's estate in the emulator.
    Seed {
        #[command(flatten)]
        plan: PlanArg,
        /// The ReplicaLag datapoint to publish for the replica, in seconds.
        #[arg(long, default_value_t = SeedOptions::default().replica_lag_seconds)]
        replica_lag_seconds: f64,
    },
    /// Publish a ReplicaLag datapoint for both of the plan's database instances, whichever is the
    /// replica now, as RDS does every minute for a replica (moto publishes none).
    ReplicaLag {
        #[command(flatten)]
        plan: PlanArg,
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
    },
    /// Publish the plan to a plan store bucket and register a state machine in the emulator's Step
    /// Functions; prints the state machine ARN.
    Triggers {
        #[command(flatten)]
        plan: PlanArg,
        /// The plan store bucket (DR region).
        #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
        bucket: String,
        /// The state machine definition to register.
        #[arg(long, default_value = "statemachines/failover.asl.json")]
        definition: PathBuf,
        /// Its DefinitionSubstitutions (a JSON object of names and values, e.g. the local
        /// function names in tests/sfn/failover.local.json).
        #[arg(long, default_value = "tests/sfn/failover.local.json")]
        substitutions: PathBuf,
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
    /// Paris answers again: the detection health check turns healthy, the trigger's alarms move to
    /// OK; prints the EventBridge event CloudWatch sends.
    Recover {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Copy the plan's RPO heartbeats from the Paris to the Ireland buckets, as S3 replication
    /// would (the emulator does not replicate).
    Replicate {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// What DNS answers for the plan's record now (asked of DNS), and why (the emulator's Route 53
    /// model: which record answered, the health checks' states).
    Dns {
        #[command(flatten)]
        plan: PlanArg,
    },
    /// Serve the plan's database on real PostgreSQL (until stopped): a primary and its streaming
    /// standby, backing the emulated Paris primary and Ireland replica; writes `--ready` (the
    /// servers' ports, JSON) once both answer.
    Database {
        #[command(flatten)]
        plan: PlanArg,
        #[arg(long)]
        ready: PathBuf,
    },
    /// Print the input an execution was started with.
    ExecutionInput {
        /// The execution ARN (the alarm trigger's or the game day's answer).
        execution_arn: String,
    },
    /// Serve the Lambda Invoke API with the real function binaries (until stopped).
    Lambdas {
        /// The functions (JSON: name -> {binary, timeout_seconds, memory_mb, environment}),
        /// written from template.yaml by scripts/local_functions.py.
        #[arg(long)]
        functions: PathBuf,
        /// Where the binaries are.
        #[arg(long, default_value = "target/debug")]
        binaries: PathBuf,
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// A variable every function gets, NAME=VALUE (repeatable).
        #[arg(long = "env", value_parser = parse_variable)]
        environment: Vec<(String, String)>,
        #[arg(long, default_value = "eu-west-1")]
        region: String,
    },
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    text.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())).ok_or_else(|| format!("{text:?}: NAME=VALUE"))
}

impl Command {
    async fn run(self) -> Result<(), DrError> {
        match self {
            Command::Seed { plan, replica_lag_seconds } => {
                let (plan, clients) = plan.load().await?;
                seed(&clients, &plan, SeedOptions { replica_lag_seconds }).await?;
                println!(
                    "seeded the emulated estate of {} ({} primary, {} DR) at {}",
                    plan.name,
                    plan.primary_region,
                    plan.dr_region,
                    clients.endpoint_url().unwrap_or_default()
                );
            }
            Command::ReplicaLag { plan, seconds } => {
                let (plan, clients) = plan.load().await?;
                for db in &plan.databases {
                    publish_replica_lag(&clients.primary, &db.primary_instance, seconds).await?;
                    publish_replica_lag(&clients.dr, &db.replica_instance, seconds).await?;
                    println!(
                        "ReplicaLag {seconds} s published for {} and {}",
                        db.primary_instance, db.replica_instance
                    );
                }
            }
            Command::Triggers { plan, bucket, definition, substitutions, state_machine_name } => {
                let (plan, clients) = plan.load().await?;
                let read = |path: &PathBuf| {
                    std::fs::read_to_string(path)
                        .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", path.display()) })
                };
                let values: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&read(&substitutions)?)
                        .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", substitutions.display()) })?;
                let state_machine_definition = substitute(&read(&definition)?, &values)?;
                let seed = TriggerSeed { plan_state_bucket: bucket, state_machine_name, state_machine_definition };
                println!("{}", seed_triggers(&clients, &plan, &seed).await?);
            }
            Command::Outage { plan, flap } => {
                let (plan, clients) = plan.load().await?;
                let outage = if flap { Outage::Flap } else { Outage::Sustained };
                let event = simulate_outage(&clients, &plan, outage).await?;
                let text = serde_json::to_string_pretty(&event).map_err(|e| DrError::serialisation("event", e))?;
                println!("{text}");
            }
            Command::Recover { plan } => {
                let (plan, clients) = plan.load().await?;
                let event = simulate_recovery(&clients, &plan).await?;
                let text = serde_json::to_string_pretty(&event).map_err(|e| DrError::serialisation("event", e))?;
                println!("{text}");
            }
            Command::Replicate { plan } => {
                let (plan, clients) = plan.load().await?;
                let copied = replicate_heartbeats(&clients, &plan).await?;
                println!("replicated {copied} heartbeat(s) of {} to Ireland", plan.name);
            }
            Command::Lambdas { functions, binaries, listen, environment, region } => {
                let text = std::fs::read_to_string(&functions)
                    .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", functions.display()) })?;
                let functions = serde_json::from_str(&text).map_err(|e| DrError::InvalidInput {
                    message: format!("{}: not a function table: {e}", functions.display()),
                })?;
                let config = lambdas::Config {
                    functions,
                    binaries,
                    environment: environment.into_iter().collect(),
                    region,
                    account: dr_emulator::estate::EMULATOR_ACCOUNT.to_string(),
                };
                lambdas::serve(config, listen)
                    .await
                    .map_err(|e| DrError::InvalidInput { message: format!("cannot serve on {listen}: {e}") })?;
            }
            Command::Dns { plan } => {
                let (plan, clients) = plan.load().await?;
                for record in &plan.dns.records {
                    let values = clients.dns.answer(&record.record, &record.record_type).await?;
                    let why = dr_emulator::control::route53_answer(&clients, &record.record, &record.record_type, None)
                        .await?
                        .why;
                    let side = if values.contains(&record.primary.value) {
                        plan.primary_name()
                    } else if values.contains(&record.secondary.value) {
                        plan.dr_name()
                    } else {
                        "neither region"
                    };
                    println!("{} {} -> {} ({side}): {why}", record.record, record.record_type, values.join(", "));
                }
            }
            Command::Database { plan, ready } => {
                let (plan, clients) = plan.load().await?;
                let unavailable = |e: dr_emulator::postgres::PostgresError| DrError::InvalidInput {
                    message: format!("the local PostgreSQL pair: {e}"),
                };
                // One PostgreSQL pair per database; the ready file gives the first's ports (the
                // demo's writer writes to it).
                let mut pairs = Vec::new();
                for (index, db) in plan.databases.iter().enumerate() {
                    let pair =
                        dr_emulator::postgres::Pair::start(&format!("{}-{index}", plan.name)).map_err(unavailable)?;
                    back_instance_with(&clients, &plan.primary_region, &db.primary_instance, &pair.primary).await?;
                    back_instance_with(&clients, &plan.dr_region, &db.replica_instance, &pair.standby).await?;
                    println!(
                        "{} backed by PostgreSQL on 127.0.0.1:{}, {} by its standby on 127.0.0.1:{}",
                        db.primary_instance, pair.primary.port, db.replica_instance, pair.standby.port
                    );
                    pairs.push(pair);
                }
                let first = pairs
                    .first()
                    .ok_or_else(|| DrError::InvalidInput { message: "the plan names no database".into() })?;
                let ports =
                    serde_json::json!({ "primary_port": first.primary.port, "standby_port": first.standby.port });
                std::fs::write(&ready, ports.to_string())
                    .map_err(|e| DrError::InvalidInput { message: format!("{}: {e}", ready.display()) })?;
                // Until stopped (scripts/lib.sh's stop_background sends SIGTERM); the pair stops on drop.
                let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .map_err(|e| DrError::Internal { message: format!("signal: {e}") })?;
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
                let _ = std::fs::remove_file(&ready);
                drop(pairs);
            }
            Command::ExecutionInput { execution_arn } => {
                let region = execution_arn.split(':').nth(3).unwrap_or_default().to_string();
                let clients = AwsClients::for_regions(&region, &region).await;
                println!("{}", execution_input(&clients, &execution_arn).await?);
            }
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // `RUST_LOG=info` shows the local Lambda service's invocations.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let result = Cli::parse().command.run().await;
    result.map_or_else(
        |err| {
            eprintln!("error {}: {err}", err.name());
            ExitCode::from(2)
        },
        |()| ExitCode::SUCCESS,
    )
}
