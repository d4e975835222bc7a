//! `drctl run ...`: following, listing, showing and stopping runs (Step Functions executions),
//! on AWS or on the local Step Functions service (`AWS_ENDPOINT_URL_SFN`), with the same code.

use std::collections::{HashMap, HashSet};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use dr_core::aws::AwsClients;
use dr_core::aws::objects::get_json;
use dr_core::run::execution::{self, ExecutionView, Progress, StepEvent, step_budgets, step_events};
use dr_core::run::{Principal, StepKey};
use dr_core::runbook::report::{Achieved, RunReport, render_markdown, report_base};
use dr_core::runbook::round_trip::{self, RoundTripReport};
use dr_core::store::{DecisionStatus, PlanStore, Question};
use dr_core::{DrError, time};
use indicatif::{ProgressBar, ProgressStyle};

use crate::common::JsonArg;
use crate::output;

/// A run: its execution ARN (what `failover start`, `drill start` and the triggers print).
#[derive(Args)]
pub struct RunArg {
    /// The execution ARN.
    run: String,
}

impl RunArg {
    /// The Step Functions client of the execution's region.
    async fn sfn(&self) -> Result<aws_sdk_sfn::Client, DrError> {
        sfn_of(&self.run).await
    }
}

/// The region a Step Functions ARN (a state machine's, an execution's) names: the deployment's,
/// where its plan store lives.
fn execution_region(arn: &str) -> Result<&str, DrError> {
    arn.split(':').nth(3).filter(|r| !r.is_empty()).ok_or_else(|| DrError::InvalidInput {
        message: format!("{arn} is not a Step Functions ARN (arn:aws:states:REGION:ACCOUNT:...)"),
    })
}

/// The Step Functions client of the region a Step Functions ARN names.
async fn sfn_of(arn: &str) -> Result<aws_sdk_sfn::Client, DrError> {
    let region = execution_region(arn)?;
    Ok(AwsClients::for_regions(region, region).await.dr.sfn)
}

/// The run's input with the plan version it took, loaded from the plan store that published it:
/// the store the run holds (`run.plan_state`), else `DR_PLAN_STATE_BUCKET`. `None` when the input
/// is not a runbook's, or no store gives its plan.
async fn loaded_input(view: &ExecutionView) -> Option<dr_core::run::RunbookState> {
    let mut state = view.runbook_input()?;
    let bucket = match &state.run.plan_state {
        Some(location) => location.bucket.clone(),
        None => std::env::var("DR_PLAN_STATE_BUCKET").ok()?,
    };
    let region = execution_region(&view.execution_arn).ok()?;
    let clients = AwsClients::for_regions(region, region).await;
    state.plan = PlanStore::new(clients.dr.s3.clone(), bucket).plan_of_run(&state.run).await.ok()?;
    Some(state)
}

/// A run, and who acts on it and why (a decision, a stop).
#[derive(Args)]
pub struct RunBy {
    #[command(flatten)]
    run: RunArg,
    /// Who (recorded in the decision and the report, or the stopped execution's cause).
    #[arg(long)]
    by: String,
    /// Why.
    #[arg(long)]
    reason: String,
}

/// A decision on a run waiting at its RPO gate: who decides is the caller's IAM principal, as
/// STS verifies it (never a typed name); why is theirs to say.
#[derive(Args)]
pub struct RunDecision {
    #[command(flatten)]
    run: RunArg,
    /// Why (recorded in the decision and the report, with who decided).
    #[arg(long)]
    reason: String,
}

impl RunDecision {
    /// Writes the decision where the run reads it: the caller's answer under their own id, and
    /// the run's decision taken, conditionally (one answer wins).
    async fn decide(self, verdict: DecisionStatus) -> Result<ExitCode, DrError> {
        let sfn = self.run.sfn().await?;
        let view = execution::describe(&sfn, &self.run.run).await?;
        if !view.is_running() {
            return Err(DrError::InvalidInput {
                message: format!("run {} is {}: nothing waits", view.name, view.status),
            });
        }
        let Some(state) = view.runbook_input() else {
            return Err(DrError::InvalidInput { message: format!("run {} is not a runbook's run", view.name) });
        };
        let Some(location) = &state.run.plan_state else {
            return Err(DrError::InvalidInput {
                message: format!("run {} holds no plan state: it cannot wait for a decision", view.name),
            });
        };
        let region = execution_region(&view.execution_arn)?;
        let clients = AwsClients::for_regions(region, region).await;
        let store = PlanStore::new(clients.dr.s3.clone(), &location.bucket);
        let plan = store.plan_of_run(&state.run).await?;
        let caller = dr_core::aws::identity::caller(&clients.dr.sts).await?;
        let by = Principal { arn: caller.arn, user_id: caller.user_id };
        // A run asks at most one question at a time: the data tier's and the capacity one come
        // after the promotion (one or the other, never both), so once asked it is the one waiting.
        let mut question = Question::RpoGate;
        for later in [Question::DataTier, Question::Capacity] {
            if store.read_decision(&plan.name, &state.run.id, later).await?.is_some() {
                question = later;
                break;
            }
        }
        let decision = store.decide(&plan, &state.run, question, verdict, &by, &self.reason).await?;
        output::print_json(&decision)
    }
}

#[derive(Subcommand)]
pub enum RunCommand {
    /// Follow a run live: each step as it starts and ends, retries, failures and decisions, a
    /// progress display (on a terminal) with the step's elapsed time against its budget and the
    /// run's against the RTO; at the end, the report. Exit 0 when the run succeeded, 1 when it
    /// failed or was stopped.
    Watch {
        #[command(flatten)]
        run: RunArg,
        /// How often to ask Step Functions for new events.
        #[arg(long, default_value_t = 1.0)]
        poll_seconds: f64,
    },
    /// The recent runs of a plan on a state machine: status, start, duration, RTO and data loss.
    List {
        /// The plan's name.
        plan: String,
        /// The state machine (default: the failover runbook).
        #[arg(long, env = "DR_FAILOVER_STATE_MACHINE")]
        state_machine: String,
        /// How many executions to look at, newest first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[command(flatten)]
        format: JsonArg,
    },
    /// A run's status and its report (the execution's output, or the report the run wrote).
    Show {
        #[command(flatten)]
        run: RunArg,
    },
    /// Approve a run waiting for a decision: at its RPO gate (an unplanned failover whose replica
    /// lags past the RPO, or does not replicate), or after its promotion below the plan's minimum
    /// compute (traffic then moves on what serves). It goes on, and its report names who approved
    /// and why.
    Approve(RunDecision),
    /// Reject a run waiting for a decision: it stops with `DecisionRejected` (at the RPO gate,
    /// having changed nothing; below the minimum compute, with the database promoted and traffic
    /// where it was).
    Reject(RunDecision),
    /// Stop a running execution (Step Functions' StopExecution; the executions it waits for stop
    /// too). Steps already taken are not undone: the plan stays taken until an operator re-arms
    /// it, and a half-done failover is finished or reverted by hand from its report.
    Stop(RunBy),
}

impl RunCommand {
    pub async fn run(self) -> Result<ExitCode, DrError> {
        match self {
            RunCommand::Watch { run, poll_seconds } => {
                let sfn = run.sfn().await?;
                let poll = Duration::from_secs_f64(poll_seconds.clamp(0.1, 60.0));
                watch(&sfn, &run.run, poll).await
            }
            RunCommand::List { plan, state_machine, limit, format } => {
                let sfn = sfn_of(&state_machine).await?;
                let mut rows = Vec::new();
                for arn in execution::list(&sfn, &state_machine, limit).await? {
                    let view = execution::describe(&sfn, &arn).await?;
                    if view.plan_name().as_deref() != Some(plan.as_str()) {
                        continue;
                    }
                    let report = report_of(&view).await;
                    rows.push(output::RunRow::new(&view, report.as_ref().and_then(Report::achieved)));
                }
                if format.json {
                    output::print_json(&rows)
                } else {
                    output::print_runs(&plan, &rows);
                    Ok(ExitCode::SUCCESS)
                }
            }
            RunCommand::Show { run } => {
                let sfn = run.sfn().await?;
                let view = execution::describe(&sfn, &run.run).await?;
                print_status(&view);
                print_report(&view).await?;
                Ok(outcome(&view))
            }
            RunCommand::Approve(decide) => decide.decide(DecisionStatus::Approved).await,
            RunCommand::Reject(decide) => decide.decide(DecisionStatus::Rejected).await,
            RunCommand::Stop(RunBy { run, by, reason }) => {
                if by.trim().is_empty() || reason.trim().is_empty() {
                    return Err(DrError::InvalidInput {
                        message: "stopping a run needs who (--by) and why (--reason)".into(),
                    });
                }
                let sfn = run.sfn().await?;
                execution::stop(&sfn, &run.run, "StoppedByOperator", &format!("{by}: {reason}")).await?;
                let view = execution::describe(&sfn, &run.run).await?;
                print_status(&view);
                Ok(ExitCode::SUCCESS)
            }
        }
    }
}

/// 0 when the run succeeded, 1 otherwise (still running included).
fn outcome(view: &ExecutionView) -> ExitCode {
    output::ready_or_not(view.status == "SUCCEEDED")
}

fn print_status(view: &ExecutionView) {
    let took = match (view.started, view.stopped) {
        (Some(start), Some(stop)) => {
            format!(" after {}", output::duration((stop - start).to_std().unwrap_or_default()))
        }
        _ => String::new(),
    };
    println!("run {} {}{took}", view.name, view.status);
    if let Some(error) = &view.error {
        println!("error {error}: {}", view.cause.as_deref().unwrap_or_default());
    }
}

/// The run's report: its execution's output (a run report, a round trip's), or the report the
/// run wrote under its plan's reports prefix (a failed run's failure report).
async fn report_of(view: &ExecutionView) -> Option<Report> {
    if let Some(output) = view.output.as_deref().and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok()) {
        // A run's output is its report; a round trip's keeps its report under `report`.
        for candidate in [output.get("report").cloned(), Some(output)].into_iter().flatten() {
            if let Ok(report) = serde_json::from_value::<RoundTripReport>(candidate.clone()) {
                return Some(Report::RoundTrip(Box::new(report)));
            }
            if let Ok(report) = serde_json::from_value::<RunReport>(candidate) {
                return Some(Report::Run(Box::new(report)));
            }
        }
    }
    let state = loaded_input(view).await?;
    let clients = AwsClients::for_plan(&state.plan, "drctl").await;
    let key = format!("{}report.json", report_base(&state.plan, &state.run.id));
    let found = get_json::<RunReport>(&clients.home.s3, &state.plan.reports.bucket, &key, "run report").await;
    found.ok().flatten().map(|(report, _)| Report::Run(Box::new(report)))
}

enum Report {
    Run(Box<RunReport>),
    RoundTrip(Box<RoundTripReport>),
}

impl Report {
    /// The RTO and data loss `run list` shows: a run report's; a round trip's, none (its figures
    /// are its legs').
    fn achieved(&self) -> Option<&Achieved> {
        match self {
            Report::Run(report) => Some(&report.achieved),
            Report::RoundTrip(_) => None,
        }
    }
}

async fn print_report(view: &ExecutionView) -> Result<(), DrError> {
    match report_of(view).await {
        Some(Report::Run(report)) => println!("\n{}", render_markdown(&report)?),
        Some(Report::RoundTrip(report)) => println!("\n{}", round_trip::render_markdown(&report)?),
        None if view.is_running() => {}
        None => println!("no report: the run wrote none (see its history: drctl run watch {})", view.execution_arn),
    }
    Ok(())
}

/// Follows an execution until it ends, printing each new step line, then the report.
async fn watch(sfn: &aws_sdk_sfn::Client, arn: &str, poll: Duration) -> Result<ExitCode, DrError> {
    let first = execution::describe(sfn, arn).await?;
    let input = loaded_input(&first).await;
    let rto = input.as_ref().map(|state| Duration::from_secs(u64::from(state.plan.targets.rto_minutes) * 60));
    let budgets = match rto {
        Some(rto) => step_budgets(&execution::definition(sfn, &first.state_machine_arn).await?, rto),
        None => HashMap::new(),
    };
    // The RTO runs from the trigger (the detection, or the operator's start), not the execution.
    let clock_start = input.as_ref().map(|state| state.run.triggered_at).or(first.started).unwrap_or_else(time::now);
    let started = first.started.unwrap_or(clock_start);
    println!(
        "watching {} ({}){}",
        first.name,
        first.state_machine_arn.rsplit(':').next().unwrap_or_default(),
        rto.map(|rto| format!(", RTO target {}", output::duration(rto))).unwrap_or_default()
    );
    let bar = ProgressBar::new_spinner();
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let mut shown = 0_usize;
    let mut entered: HashSet<String> = HashSet::new();
    // States whose last attempt failed (a caught failure exits the state without an answer).
    let mut failed: HashSet<String> = HashSet::new();
    // Each state's latest start (a Parallel's branches run Tasks side by side), and the newest.
    let mut starts: HashMap<String, time::Timestamp> = HashMap::new();
    let mut current: Option<(String, time::Timestamp)> = None;
    loop {
        let history = execution::history(sfn, arn).await?;
        let events = step_events(&history);
        let waits: HashSet<&str> =
            events.iter().filter(|e| e.progress == Progress::Waiting).map(|e| e.state.as_str()).collect();
        let mut ended = None;
        // A decision into a Wait is the run polling: said by the progress display only (a
        // decision is in the history once the state it chose is entered, so `waits` has it).
        while shown < events.len() {
            let event = &events[shown];
            let shown_at_all = match &event.progress {
                Progress::Failed { .. } => {
                    failed.insert(event.state.clone());
                    true
                }
                Progress::Retried | Progress::Started => {
                    failed.remove(&event.state);
                    true
                }
                // A caught failure exits its state: that is no answer.
                Progress::Done => !failed.remove(&event.state),
                _ => true,
            };
            let line =
                if shown_at_all { line_of(event, started, &budgets, &mut entered, &waits, &starts, arn) } else { None };
            if let Some(line) = line {
                bar.suspend(|| println!("{line}"));
            }
            match &event.progress {
                Progress::Started => {
                    starts.insert(event.state.clone(), event.at);
                    current = Some((event.state.clone(), event.at));
                }
                Progress::Ended { status, .. } => ended = Some(status.clone()),
                _ => {}
            }
            shown += 1;
        }
        if ended.is_some() {
            break;
        }
        let now = time::now();
        let step = current
            .as_ref()
            .map(|(state, at)| {
                let elapsed = output::duration((now - *at).to_std().unwrap_or_default());
                match budgets.get(state) {
                    Some((_, budget)) => format!("{state} {elapsed} of {}", output::duration(*budget)),
                    None => format!("{state} {elapsed}"),
                }
            })
            .unwrap_or_default();
        let clock = output::duration((now - clock_start).to_std().unwrap_or_default());
        bar.set_message(match rto {
            Some(rto) => format!("{step} | RTO clock {clock} of {}", output::duration(rto)),
            None => format!("{step} | {clock}"),
        });
        bar.tick();
        tokio::time::sleep(poll).await;
    }
    bar.finish_and_clear();
    let last = execution::describe(sfn, arn).await?;
    print_status(&last);
    print_report(&last).await?;
    Ok(outcome(&last))
}

/// The line an event prints, if any: a Task's first start (with its budget), each answer, failure
/// and retry, each decision that does not lead to a Wait, the end.
fn line_of(
    event: &StepEvent,
    started: time::Timestamp,
    budgets: &HashMap<String, (StepKey, Duration)>,
    entered: &mut HashSet<String>,
    waits: &HashSet<&str>,
    starts: &HashMap<String, time::Timestamp>,
    arn: &str,
) -> Option<String> {
    let at = format!("+{:>7}", output::duration((event.at - started).to_std().unwrap_or_default()));
    let state = &event.state;
    let text = match &event.progress {
        Progress::Started if entered.insert(state.clone()) => match budgets.get(state) {
            Some((StepKey::Decision, budget)) => format!(
                "started  {state}: the RPO gate refused the run; it waits up to {} for\n            \
                 drctl run approve {arn} --reason WHY   (or drctl run reject ...)",
                output::duration(*budget)
            ),
            Some((StepKey::CapacityDecision, budget)) => format!(
                "started  {state}: below the plan's minimum compute after the promotion; it waits up to {} for\n            \
                 drctl run approve {arn} --reason WHY   (traffic moves on what serves; or drctl run reject ...)",
                output::duration(*budget)
            ),
            Some((StepKey::DataTierDecision, budget)) => format!(
                "started  {state}: the data tier failed; if a database was promoted and another not, it waits up to {} for\n            \
                 drctl run approve {arn} --reason WHY   (traffic moves on the databases promoted; or drctl run reject ...)",
                output::duration(*budget)
            ),
            Some((_, budget)) => format!("started  {state} (budget {})", output::duration(*budget)),
            None => format!("started  {state}"),
        },
        Progress::Started | Progress::Waiting => return None,
        Progress::Done => {
            let took = starts
                .get(state)
                .map(|at| format!(" in {}", output::duration((event.at - *at).to_std().unwrap_or_default())))
                .unwrap_or_default();
            let mut text = format!("answered {state}{took}");
            // Each resource as the step left it, once the step is ready (a status step not ready
            // yet is asked again and says it then): an estate's every database, group, service
            // and record has its own line.
            let record = budgets.get(state).and_then(|(key, _)| event.record(*key)).filter(|record| record.ready);
            for resource in record.iter().flat_map(|record| &record.resources) {
                text.push_str(&format!("\n            {}: {}", resource.resource, resource.state));
            }
            text
        }
        Progress::Failed { error, cause } => format!("failed   {state}: {error}: {}", output::shorten(cause, 160)),
        Progress::Retried => format!("retried  {state}"),
        Progress::Decided { next } if waits.contains(next.as_str()) => return None,
        Progress::Decided { next } => format!("decided  {state} -> {next}"),
        Progress::Ended { status, error, .. } => match error {
            Some(error) => format!("{status} ({error})"),
            None => status.clone(),
        },
    };
    Some(format!("{at}  {text}"))
}
