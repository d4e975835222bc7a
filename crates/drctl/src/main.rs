//! drctl: the operator CLI of dr-orchestrator.
//!
//! Exit status: 0 when the command succeeded (and, for `plan check` and `rpo status`, everything
//! is ready), 1 when a check found something not ready, 2 on an error (bad plan, AWS failure).

mod output;
mod runs;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use dr_core::aws::AwsClients;
use dr_core::game_day::{GameDayMode, GameDayRequest, handle_game_day};
use dr_core::plan::Direction;
use dr_core::readiness::scheduled::check_as_it_stands;
use dr_core::restore::restore_test_input;
use dr_core::rpo::LagVerdict;
use dr_core::rpo::check::{Heartbeat, check_pairs, pairs_of};
use dr_core::run::{Approval, FailoverKind, RunInfo, RunMode, RunbookState, Starter};
use dr_core::runbook::report::{RunReport, render_markdown};
use dr_core::runbook::round_trip::{self, RoundTripReport};
use dr_core::store::PlanStore;
use dr_core::trigger::TriggerContext;
use dr_core::{DrError, Plan, time};

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
    Plan(PlanCommand),
    /// Start a failover by hand, or print its execution input.
    #[command(subcommand)]
    Failover(FailoverCommand),
    /// Fail back to Paris once Ireland is primary and reprotected.
    #[command(subcommand)]
    Failback(FailbackCommand),
    /// Game days: a dry run, a live drill, a round trip.
    #[command(subcommand)]
    Drill(DrillCommand),
    /// Follow, list, show and stop runs (Step Functions executions).
    #[command(subcommand)]
    Run(runs::RunCommand),
    /// What deploying the stack for a plan takes from the plan.
    #[command(subcommand)]
    Deploy(DeployCommand),
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
    /// After a failover and its reprotect: the operator's steps.
    #[command(subcommand)]
    Reprotect(ReprotectCommand),
    /// A deployed stack against what the real account answers, before the incident: every call
    /// each function makes, on the plan's real resources, decided by IAM's own policy simulator
    /// (iam:SimulatePrincipalPolicy on the function's deployed role: its policies, its permissions
    /// boundary and the organization's SCPs), and the full readiness check with the DR region's
    /// dependencies. Read-only, safe in production. Exit 1 when a call is denied or a check is
    /// not ready.
    Doctor(DoctorArgs),
}

impl Command {
    async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            Command::Plan(command) => command.run().await,
            Command::Failover(command) => command.run().await,
            Command::Failback(FailbackCommand::Start(start)) => start.start(false, true).await,
            Command::Drill(command) => command.run().await,
            Command::Run(command) => command.run().await,
            Command::Deploy(command) => command.run(),
            Command::Report(command) => command.run(),
            Command::Trigger(command) => command.run().await,
            Command::Rpo(command) => command.run().await,
            Command::RestoreTest(command) => command.run(),
            Command::Reprotect(command) => command.run().await,
            Command::Doctor(command) => command.run().await,
        }
    }
}

/// A plan file, given as the first argument.
#[derive(Args)]
struct PlanArg {
    /// Path of the plan file (TOML), e.g. plans/paris-ireland.toml.
    plan: PathBuf,
}

impl PlanArg {
    /// The plan, read and validated.
    fn load(&self) -> Result<Plan, DrError> {
        Plan::load(&self.plan)
    }

    /// The plan and the clients of its regions (standard credential chain; `AWS_ENDPOINT_URL`).
    async fn load_with_clients(&self) -> Result<(Plan, AwsClients), DrError> {
        let plan = self.load()?;
        let clients = AwsClients::for_plan(&plan).await;
        Ok((plan, clients))
    }
}

#[derive(Args)]
struct StoreArg {
    /// The plan store bucket (plans and their states), in the plan's DR region.
    #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
    bucket: String,
}

impl StoreArg {
    fn open(&self, clients: &AwsClients) -> PlanStore {
        PlanStore::new(clients.dr.s3.clone(), &self.bucket)
    }
}

#[derive(Args)]
pub(crate) struct JsonArg {
    /// Print as JSON.
    #[arg(long)]
    pub(crate) json: bool,
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
        /// The deployed stack (template.yaml, in the plan's DR region) the plan is published for:
        /// a plan whose parameters (`drctl deploy params`) the stack holds otherwise is refused
        /// (PlanStackMismatch) and nothing is published.
        #[arg(long, env = "DR_STACK")]
        stack: Option<String>,
    },
    /// Readiness: every resource exists and sits in its standby state. Read-only. With the plan
    /// store, in the direction the estate stands: after a failover (Ireland primary, Paris its
    /// replica) the plan is checked reversed.
    Check {
        #[command(flatten)]
        plan: PlanArg,
        /// The plan store bucket, whose plan state says which region is primary now (absent:
        /// the plan as written).
        #[arg(long, env = "DR_PLAN_STATE_BUCKET")]
        bucket: Option<String>,
        #[command(flatten)]
        format: JsonArg,
    },
}

impl PlanCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            PlanCommand::Validate(arg) => {
                let plan = arg.load()?;
                println!(
                    "plan {} is valid ({} -> {}, tier {})",
                    plan.name, plan.primary_region, plan.dr_region, plan.tier
                );
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::Publish { plan, store, stack } => {
                let (plan, clients) = plan.load_with_clients().await?;
                if let Some(stack) = stack {
                    let deployed = deployed_parameters(&plan.dr_region, &stack).await?;
                    dr_core::plan::stack::check_deployed_stack(&plan, &stack, &deployed)?;
                    println!("stack {stack} holds the parameters plan {} determines", plan.name);
                }
                store.open(&clients).publish_plan(&plan).await?;
                println!("published plan {} to s3://{}/plans/{}.toml", plan.name, store.bucket, plan.name);
                Ok(ExitCode::SUCCESS)
            }
            PlanCommand::Check { plan, bucket, format } => {
                let (plan, clients) = plan.load_with_clients().await?;
                let store = bucket.map(|bucket| PlanStore::new(clients.home.s3.clone(), bucket));
                let (plan, readiness) = check_as_it_stands(&clients, store.as_ref(), &plan).await?;
                if format.json {
                    output::print_json(&readiness)?;
                } else {
                    output::print_readiness(&plan, &readiness);
                }
                Ok(output::ready_or_not(readiness.is_ready()))
            }
        }
    }
}

#[derive(Subcommand)]
enum FailoverCommand {
    /// Fail PLAN over now: take the plan in the plan store (as an alarm would: an alarm meanwhile
    /// starts nothing, and the plan stays failed-over until re-armed), then start the failover
    /// state machine. Prints the run id and the execution ARN (follow it with `drctl run watch`).
    /// Re-run with the same --run-id if the start failed: the plan it holds is not taken twice.
    Start {
        #[command(flatten)]
        start: StartMove,
        /// A planned move (Paris answers): fence the writer in Paris and prove by a barrier that
        /// Ireland holds every acknowledged write before promoting. Without it: unplanned (an
        /// incident; the data loss is measured at its start and Paris is not fenced).
        #[arg(long, conflicts_with = "unplanned")]
        planned: bool,
        /// An unplanned move (the default, said explicitly).
        #[arg(long)]
        unplanned: bool,
        /// Fail back to Paris (Ireland -> Paris, always planned): as `drctl failback start`.
        #[arg(long)]
        failback: bool,
    },
    /// Print the execution input of a failover of PLAN (it names the plan's published version; an
    /// approval is never part of an input: `drctl run approve` records one). It does not take the
    /// plan: for the local runner; on AWS use `start`.
    Input {
        #[command(flatten)]
        plan: PlanArg,
        /// Run id (default: manual-<time>).
        #[arg(long)]
        run_id: Option<String>,
        /// A planned move (see `start --planned`).
        #[arg(long)]
        planned: bool,
        /// A failback (see `start --failback`).
        #[arg(long)]
        failback: bool,
    },
}

/// What every start names: the plan, its store and the failover state machine.
#[derive(Args)]
struct Runbook {
    #[command(flatten)]
    plan: PlanArg,
    #[command(flatten)]
    store: StoreArg,
    /// ARN of the failover state machine (the stack's FailoverStateMachine).
    #[arg(long, env = "DR_FAILOVER_STATE_MACHINE")]
    state_machine: String,
}

/// Starting a move by hand: `failover start`, `failback start`.
#[derive(Args)]
struct StartMove {
    #[command(flatten)]
    runbook: Runbook,
    /// Who starts the move (recorded in the plan state and the report).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// Run id (default: <plan>-manual-<time to the millisecond>).
    #[arg(long)]
    run_id: Option<String>,
    /// Check everything and report what would change; change nothing, take nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Subcommand)]
enum FailbackCommand {
    /// Fail PLAN back to Paris (Ireland -> Paris, always planned: the writer fenced in Ireland,
    /// a barrier, then the move): Ireland must be primary, with a Paris replica (reprotect).
    /// Takes the plan like `failover start`; prints the execution ARN.
    Start(StartMove),
}

/// The plan a run started by hand acts on: the one published in the store, which must be the
/// operator's file (a run acts on the published plan only, so a file that differs would be a
/// different plan from the one the operator reads): `UntrustedInput` otherwise, before anything.
async fn published_as_in(store: &PlanStore, file: &Plan, path: &std::path::Path) -> Result<Plan, DrError> {
    let published = store.load_plan(&file.name).await?;
    if published.version()? != file.version()? {
        return Err(DrError::UntrustedInput {
            what: format!("plan file {}", path.display()),
            field: "plan".into(),
            message: format!(
                "it differs from plan {} as published in s3://{}: publish it first (drctl plan publish), or run the published plan",
                file.name,
                store.reference().bucket
            ),
        });
    }
    Ok(published)
}

/// The run's kind and direction: a failback is always planned.
fn move_of(planned: bool, failback: bool) -> (FailoverKind, Direction) {
    match (planned, failback) {
        (_, true) => (FailoverKind::Planned, Direction::ToPrimary),
        (true, false) => (FailoverKind::Planned, Direction::ToDr),
        (false, false) => (FailoverKind::Unplanned, Direction::ToDr),
    }
}

/// What `drctl failover start` started.
#[derive(serde::Serialize)]
struct Started {
    plan: String,
    run_id: String,
    mode: RunMode,
    execution_arn: String,
}

impl FailoverCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            FailoverCommand::Input { plan, run_id, planned, failback } => {
                let plan = plan.load()?;
                let now = time::now();
                let run_id = run_id.unwrap_or_else(|| format!("manual-{}", time::compact(now)));
                let mut state = RunbookState::new(plan, RunInfo::new(run_id, now, "manual: drctl"));
                (state.run.kind, state.run.direction) = move_of(planned, failback);
                state.validate()?;
                output::print_json(&state)
            }
            FailoverCommand::Start { start, planned, unplanned: _, failback } => start.start(planned, failback).await,
        }
    }
}

impl StartMove {
    /// Takes the plan (unless a dry run) and starts the failover state machine for the move.
    async fn start(self, planned: bool, failback: bool) -> Result<ExitCode, DrError> {
        let StartMove { runbook: Runbook { plan, store, state_machine }, by, reason, run_id, dry_run } = self;
        if by.trim().is_empty() || reason.trim().is_empty() {
            return Err(DrError::InvalidInput { message: "a failover needs who (--by) and why (--reason)".into() });
        }
        let (file, clients) = plan.load_with_clients().await?;
        let plan = published_as_in(&store.open(&clients), &file, &plan.plan).await?;
        let now = time::now();
        let label = if dry_run { "dryrun" } else { "manual" };
        // To the millisecond: two operators starting in the same second get two run ids (and
        // the second one is refused: the plan is taken).
        let run_id = run_id.unwrap_or_else(|| {
            format!("{}-{label}-{}{:03}", plan.name, time::compact(now), now.timestamp_subsec_millis())
        });
        let mut run = RunInfo::new(&run_id, now, format!("manual ({label}) by {by}: drctl"));
        run.mode = if dry_run { RunMode::DryRun } else { RunMode::Live };
        (run.kind, run.direction) = move_of(planned, failback);
        run.requested_by = Some(Approval { by: by.clone(), reason: reason.clone() });
        let mut state = RunbookState::new(plan, run);
        state.validate()?;
        if !dry_run {
            let store = store.open(&clients);
            // Re-run with the same --run-id after a start that failed: the plan is already
            // this run's.
            // Who starts it, as STS verifies them, on record under their own id before the plan is
            // taken: a two-person plan's approvals are checked against it.
            let caller = dr_core::aws::identity::caller(&clients.dr.sts).await?;
            let starter = dr_core::run::Principal { arn: caller.arn, user_id: caller.user_id };
            store.record_start(&state.plan.name, &run_id, &starter, &reason).await?;
            state.run.started_by = Some(starter);
            let held = store.read_state(&state.plan.name).await?.state;
            if !held.is_held_by(&run_id) {
                let by = format!("operator: {by}");
                store.take_for_run(&state.plan, state.run.direction, &run_id, &by, &reason).await?;
            }
            state.run.plan_state = Some(store.reference());
        }
        let starter = Starter::new(clients.dr.sfn.clone(), state_machine);
        let execution_arn = match state.run.plan_state {
            Some(_) => store.open(&clients).start_holding(&starter, &state, &format!("operator: {by}")).await?,
            None => starter.start(&state).await?,
        };
        output::print_json(&Started { plan: state.plan.name.clone(), run_id, mode: state.run.mode, execution_arn })
    }
}

#[derive(Subcommand)]
enum DrillCommand {
    /// A game day of PLAN through the game day's own checks (`dr_core::game_day`, as the
    /// game-day Lambda runs them): a dry run, or a live drill (a planned failover; a production
    /// plan needs --confirm with its name), or a round trip (failover, verification window,
    /// reprotect, failback, reprotect, one report). Prints the execution ARN.
    Start {
        #[command(flatten)]
        runbook: Runbook,
        /// ARN of the round-trip state machine (for --round-trip).
        #[arg(long, env = "DR_ROUND_TRIP_STATE_MACHINE")]
        round_trip_state_machine: Option<String>,
        /// Check everything and change nothing.
        #[arg(long, required_unless_present = "live", conflicts_with = "live")]
        dry_run: bool,
        /// Move for real (a planned failover).
        #[arg(long)]
        live: bool,
        /// A live drill that comes back (failover, verification, reprotect, failback, reprotect).
        #[arg(long, requires = "live")]
        round_trip: bool,
        /// The round trip's verification window in minutes (default 15).
        #[arg(long, requires = "round_trip")]
        verification_minutes: Option<u64>,
        /// The plan's name again, for a live drill of a production plan.
        #[arg(long)]
        confirm: Option<String>,
        /// Who runs the game day.
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

impl DrillCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        let DrillCommand::Start {
            runbook: Runbook { plan, store, state_machine },
            round_trip_state_machine,
            dry_run,
            live: _,
            round_trip,
            verification_minutes,
            confirm,
            by,
            reason,
        } = self;
        let (plan, clients) = plan.load_with_clients().await?;
        let for_plan = clients.clone();
        let ctx = TriggerContext {
            store: store.open(&clients),
            starter: Starter::new(clients.dr.sfn.clone(), state_machine),
            round_trip: round_trip_state_machine.map(|arn| Starter::new(clients.dr.sfn.clone(), arn)),
            plan_names: vec![plan.name.clone()],
            account_id: dr_core::aws::identity::caller(&clients.home.sts).await?.account,
            clients_for: std::sync::Arc::new(move |_| for_plan.clone()),
            confirmation_poll: std::time::Duration::from_secs(30),
            confirmation_wait: dr_core::trigger::MAX_CONFIRMATION_WAIT,
            fence_function: None,
        };
        let request = GameDayRequest {
            plan: plan.name.clone(),
            mode: if dry_run { GameDayMode::DryRun } else { GameDayMode::Drill },
            requested_by: by,
            reason,
            confirm,
            direction: Direction::ToDr,
            round_trip,
            verification_minutes,
        };
        output::print_json(&handle_game_day(&ctx, request).await?)
    }
}

#[derive(Subcommand)]
enum DeployCommand {
    /// The stack parameters (template.yaml) the plan determines, normalised as IAM and Route 53
    /// need them (the record in lower case without its trailing dot, bucket ARNs), one
    /// `Name=Value` a line (empty values left out: the template's defaults) for
    /// `sam deploy --parameter-overrides $(drctl deploy params PLAN)`; the other parameters are
    /// the deployment's choices (the plan store bucket, schedules, subnets, keys, the hosted
    /// zone's id and the secret's ARN).
    Params {
        #[command(flatten)]
        plan: PlanArg,
        /// The detection stack's (template-us-east-1.yaml, in us-east-1) instead: its health
        /// check, alarm and forwarding rule.
        #[arg(long)]
        detection: bool,
        #[command(flatten)]
        format: JsonArg,
    },
    /// The staging drill for PLAN as one path (docs/staging-drill.md): deploy to the staging
    /// account, doctor, a dry run, a live drill with a writer, reprotect and failback, a round
    /// trip, the evidence to keep; the exact commands, with the plan's names, as a shell script.
    StagingDrill {
        #[command(flatten)]
        plan: PlanArg,
        /// The stack's name in the staging account.
        #[arg(long)]
        stack: String,
        /// The plan store bucket of that deployment.
        #[arg(long)]
        bucket: String,
    },
}

impl DeployCommand {
    fn run(self) -> Result<ExitCode, DrError> {
        let (plan, detection, format) = match self {
            DeployCommand::Params { plan, detection, format } => (plan, detection, format),
            DeployCommand::StagingDrill { plan, stack, bucket } => {
                let path = plan.plan.to_string_lossy().to_string();
                let stages = dr_core::doctor::staging::staging_drill(&plan.load()?, &path, &stack, &bucket);
                print!("{}", dr_core::doctor::staging::render(&stages));
                return Ok(ExitCode::SUCCESS);
            }
        };
        let plan = plan.load()?;
        let parameters = if detection {
            dr_core::plan::stack::detection_stack_parameters(&plan)?
        } else {
            dr_core::plan::stack::stack_parameters(&plan)?
        };
        if format.json {
            let map: serde_json::Map<String, serde_json::Value> =
                parameters.into_iter().map(|(name, value)| (name.to_string(), value.into())).collect();
            return output::print_json(&map);
        }
        // An empty value is the template's default for the optional ones (no fence, no KMS key):
        // left out, since `--parameter-overrides` takes no empty value.
        for (name, value) in parameters.into_iter().filter(|(_, value)| !value.is_empty()) {
            println!("{name}={value}");
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// A deployed stack's parameters (DescribeStacks in `region`), by name.
async fn deployed_parameters(region: &str, stack: &str) -> Result<BTreeMap<String, String>, DrError> {
    let (cloudformation, _) = stack_clients(region).await;
    Ok(dr_core::doctor::describe_stack(&cloudformation, stack, region).await?.1)
}

/// CloudFormation in the stack's region, and IAM (global).
async fn stack_clients(region: &str) -> (aws_sdk_cloudformation::Client, aws_sdk_iam::Client) {
    let config =
        dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(region.to_string())).load().await;
    (aws_sdk_cloudformation::Client::new(&config), aws_sdk_iam::Client::new(&config))
}

/// `drctl doctor`.
#[derive(Args)]
struct DoctorArgs {
    #[command(flatten)]
    plan: PlanArg,
    /// The deployed stack (template.yaml, in the plan's DR region).
    #[arg(long, required_unless_present = "actions")]
    stack: Option<String>,
    /// Print, as JSON, every action doctor simulates for each function (whatever options a plan
    /// takes) and exit: what a security reviewer reads against the template.
    #[arg(long)]
    actions: bool,
    #[command(flatten)]
    format: JsonArg,
}

impl DoctorArgs {
    async fn run(self) -> Result<ExitCode, DrError> {
        if self.actions {
            return output::print_json(&dr_core::doctor::calls::actions_by_function(&self.plan.load()?));
        }
        let stack = self.stack.unwrap_or_default();
        let (plan, clients) = self.plan.load_with_clients().await?;
        let (cloudformation, iam) = stack_clients(&plan.dr_region).await;
        let report = dr_core::doctor::examine(&clients, &cloudformation, &iam, &plan, &stack).await?;
        if self.format.json {
            output::print_json(&report)?;
        } else {
            output::print_doctor(&plan, &report);
        }
        Ok(output::ready_or_not(report.is_clean()))
    }
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Print a run report (report.json, or the failover execution's output; a round trip's too)
    /// as Markdown.
    Show {
        /// Path of the JSON report.
        report: PathBuf,
    },
}

impl ReportCommand {
    fn run(self) -> Result<ExitCode, DrError> {
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

#[derive(Args)]
struct OperatorArg {
    /// Who makes the change (recorded in the plan state).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
    /// Change a plan a run still holds (failing-over): only when that run is known to be over;
    /// arm although `plan check` is not green.
    #[arg(long)]
    force: bool,
}

/// A change of the plan's state by an operator.
#[derive(Args)]
struct StateChange {
    #[command(flatten)]
    plan: PlanArg,
    #[command(flatten)]
    store: StoreArg,
    #[command(flatten)]
    operator: OperatorArg,
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
    Arm(StateChange),
    /// Switch automatic failover off (maintenance, a planned Paris outage).
    Disarm(StateChange),
}

impl TriggerCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        let (plan, store, change) = match self {
            TriggerCommand::Status { plan, store } => (plan, store, None),
            TriggerCommand::Arm(StateChange { plan, store, operator }) => (plan, store, Some((true, operator))),
            TriggerCommand::Disarm(StateChange { plan, store, operator }) => (plan, store, Some((false, operator))),
        };
        let (plan, clients) = plan.load_with_clients().await?;
        let store = store.open(&clients);
        let state = match change {
            None => store.read_state(&plan.name).await?.state,
            Some((true, op)) => {
                // Armed only on a green plan check, in the direction the estate stands: after a
                // failback, once Ireland replicates Paris again.
                let (_, readiness) = check_as_it_stands(&clients, Some(&store), &plan).await?;
                if !readiness.is_ready() && !op.force {
                    let findings = readiness
                        .rows
                        .iter()
                        .filter(|row| !row.is_ready())
                        .map(|row| format!("{} {}: {}", row.check.label(), row.resource, row.detail))
                        .collect();
                    return Err(DrError::PreflightFailed { findings });
                }
                store.set_armed(&plan.name, true, &op.by, &op.reason, op.force).await?
            }
            Some((false, op)) => store.set_armed(&plan.name, false, &op.by, &op.reason, op.force).await?,
        };
        output::print_json(&state)
    }
}

#[derive(Subcommand)]
enum RpoCommand {
    /// Every replicated pair of PLAN (database, buckets): lag, share of the RPO used, verdict.
    /// Read-only: reads the newest replicated heartbeat, writes none. Exit 1 if any pair is
    /// over the RPO or not replicating.
    Status {
        #[command(flatten)]
        plan: PlanArg,
        #[command(flatten)]
        format: JsonArg,
    },
}

impl RpoCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        let RpoCommand::Status { plan, format } = self;
        let (plan, clients) = plan.load_with_clients().await?;
        let statuses = check_pairs(&clients, &pairs_of(&plan), Heartbeat::ReadOnly, time::now()).await?;
        if format.json {
            output::print_json(&statuses)?;
        } else {
            output::print_rpo(&plan, &statuses);
        }
        Ok(output::ready_or_not(statuses.iter().all(|s| s.verdict == LagVerdict::WithinRpo)))
    }
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

impl RestoreTestCommand {
    fn run(self) -> Result<ExitCode, DrError> {
        let RestoreTestCommand::Input { plan } = self;
        output::print_json(&restore_test_input(&plan.load()?, time::now(), "manual: drctl")?)
    }
}

#[derive(Subcommand)]
enum ReprotectCommand {
    /// Delete the old primary reprotect retired (`<primary>-retired-<run time>`), once the new
    /// Paris replica is available and replicating within the RPO and its final snapshot is
    /// available; refused otherwise, and for any instance reprotect did not retire.
    DeleteRetired {
        #[command(flatten)]
        plan: PlanArg,
        /// The retired instance.
        instance: String,
        /// The instance's name again: deleting is never a slip.
        #[arg(long)]
        confirm: String,
    },
}

impl ReprotectCommand {
    async fn run(self) -> Result<ExitCode, DrError> {
        let ReprotectCommand::DeleteRetired { plan, instance, confirm } = self;
        if confirm != instance {
            return Err(DrError::InvalidInput {
                message: format!("--confirm must repeat the instance's name, {instance}"),
            });
        }
        let (plan, clients) = plan.load_with_clients().await?;
        println!("{}", dr_core::runbook::reprotect::delete_retired(&clients, &plan, &instance).await?);
        Ok(ExitCode::SUCCESS)
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
