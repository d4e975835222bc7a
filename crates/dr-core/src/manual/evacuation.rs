//! Evacuating a region (`drctl evacuate REGION`): every plan of an inventory whose primary is
//! that region failed over, each its own failover execution, Tier 1 first and at most
//! `concurrency` running at once (they share the DR region's API quotas). A plan already failing
//! over is joined (its execution followed), never started twice; a plan that fails, or cannot be
//! started, does not stop the others. The evacuation report gives each plan's outcome, its RTO
//! and data loss against its targets, and the total.
//!
//! The inventory names each plan's file, its plan store and its failover state machine (one
//! stack per plan). Every plan is loaded and checked before anything starts: a plan that does not
//! load, or a region no plan has as its primary, is `InvalidInput` with nothing started.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::start::{MoveRequest, published_as_in, start_move};
use crate::aws::AwsClients;
use crate::aws::objects::get_json;
use crate::error::DrError;
use crate::notify::{Notice, NoticeKind, Severity};
use crate::plan::{Direction, Plan};
use crate::run::execution;
use crate::run::{FailoverKind, RunMode};
use crate::runbook::report::{RunReport, report_base};
use crate::store::{PlanStatus, PlanStore};
use crate::time::{self, Timestamp};

/// The most plans an evacuation runs at once (AWS's Region switch runs up to 25 child plans).
pub const MAX_CONCURRENCY: usize = 25;

/// The plans an evacuation may move: `[[plans]]` in a TOML file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    pub plans: Vec<InventoryEntry>,
}

/// One plan of an inventory, and where its deployment is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryEntry {
    /// The plan file (relative to the inventory's own directory).
    pub plan: PathBuf,
    /// Its plan store bucket (in its DR region).
    pub bucket: String,
    /// Its failover state machine's ARN.
    pub state_machine: String,
}

impl Inventory {
    /// Reads an inventory file; its plan paths are taken relative to its directory.
    pub fn load(path: &Path) -> Result<Inventory, DrError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| DrError::PlanNotFound { path: path.display().to_string(), message: e.to_string() })?;
        let mut inventory: Inventory = toml::from_str(&text)
            .map_err(|e| DrError::PlanParse { path: path.display().to_string(), message: e.to_string() })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        for entry in &mut inventory.plans {
            if entry.plan.is_relative() {
                entry.plan = dir.join(&entry.plan);
            }
        }
        Ok(inventory)
    }
}

/// What is evacuated, by whom and how.
#[derive(Debug, Clone)]
pub struct EvacuationRequest {
    /// The region evacuated: every plan whose primary it is.
    pub region: String,
    pub by: String,
    pub reason: String,
    pub dry_run: bool,
    /// At most this many plans running at once (1 to [`MAX_CONCURRENCY`]).
    pub concurrency: usize,
    /// How often the running executions are read.
    pub poll: Duration,
}

/// How a plan took part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Part {
    /// Its failover was started by the evacuation.
    Started,
    /// It was already failing over: that run was followed (a dry run only names it).
    Joined,
    /// Already failed over (its DR region is primary): nothing to do.
    AlreadyFailedOver,
    /// It could not be started (the error says why).
    NotStarted,
}

/// One plan's outcome.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PlanOutcome {
    pub plan: String,
    pub tier: u8,
    pub part: Part,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// SUCCEEDED, FAILED, ... as Step Functions ended it; `None` when nothing ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the evacuation started or joined it, and when its execution ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
    pub rto_target_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rto_met: Option<bool>,
    pub rpo_target_seconds: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_lost_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rpo_met: Option<bool>,
}

impl PlanOutcome {
    /// Moved (or, in a dry run, rehearsed) with its run succeeding, or already moved.
    pub fn is_success(&self) -> bool {
        self.part == Part::AlreadyFailedOver
            || (self.part == Part::Joined && self.status.is_none())
            || self.status.as_deref() == Some("SUCCEEDED")
    }
}

/// The evacuation report.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct EvacuationReport {
    pub region: String,
    pub by: String,
    pub reason: String,
    pub mode: RunMode,
    pub concurrency: usize,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    /// In the order they were taken: by tier, then by name.
    pub plans: Vec<PlanOutcome>,
    pub succeeded: usize,
    pub failed: usize,
    /// The evacuation from its start to its last plan's end.
    pub total_seconds: f64,
}

impl EvacuationReport {
    pub fn all_succeeded(&self) -> bool {
        self.failed == 0
    }

    /// What the on-call hears when the evacuation ends: one notice about the region (its "plan"
    /// is `evacuation-<region>`), the Markdown report as its text, critical when a plan failed.
    pub fn notice(&self) -> Notice {
        let mode = if self.mode == RunMode::DryRun { " (dry run)" } else { "" };
        let subject = format!(
            "Evacuation of {}{mode}: {} of {} plans succeeded, {} failed",
            self.region,
            self.succeeded,
            self.plans.len(),
            self.failed
        );
        let notice =
            Notice::new(NoticeKind::EvacuationFinished, &self.evacuation_name(), None, subject, self.markdown())
                .fact("region", &self.region)
                .fact("by", &self.by)
                .fact("succeeded", self.succeeded)
                .fact("failed", self.failed)
                .fact("total_seconds", self.total_seconds);
        if self.all_succeeded() { notice } else { notice.with_severity(Severity::Critical) }
    }

    /// The name the evacuation's notice goes by, in place of a plan's.
    pub fn evacuation_name(&self) -> String {
        format!("evacuation-{}", self.region)
    }

    /// The report as Markdown: a line per plan.
    pub fn markdown(&self) -> String {
        let mode = if self.mode == RunMode::DryRun { " (dry run)" } else { "" };
        let mut md = format!(
            "# Evacuation of {}{mode}\n\n**By:** {}  \n**Why:** {}  \n**Started:** {}  \n**Ended:** {} ({:.0} s)  \n**Plans:** {} succeeded, {} failed (at most {} at once)\n\n",
            self.region,
            self.by,
            self.reason,
            time::rfc3339(self.started_at),
            time::rfc3339(self.ended_at),
            self.total_seconds,
            self.succeeded,
            self.failed,
            self.concurrency,
        );
        md.push_str(
            "| plan | tier | part | run | outcome | RTO (target) | data lost (RPO) |\n|---|---|---|---|---|---|---|\n",
        );
        let seconds = |value: Option<f64>, target: u64, met: Option<bool>| match (value, met) {
            (Some(value), Some(met)) => format!("{value:.0} s ({target} s, {})", if met { "met" } else { "MISSED" }),
            _ => format!("n/a ({target} s)"),
        };
        for plan in &self.plans {
            let outcome = match (&plan.status, &plan.error) {
                (Some(status), Some(error)) => format!("{status}: {error}"),
                (Some(status), None) => status.clone(),
                (None, Some(error)) => error.clone(),
                (None, None) => "-".to_string(),
            };
            md.push_str(&format!(
                "| {} | {} | {:?} | {} | {} | {} | {} |\n",
                plan.plan,
                plan.tier,
                plan.part,
                plan.run_id.as_deref().unwrap_or("-"),
                crate::report::cell(&outcome),
                seconds(plan.rto_seconds, plan.rto_target_seconds, plan.rto_met),
                seconds(plan.data_lost_seconds, plan.rpo_target_seconds, plan.rpo_met),
            ));
        }
        md
    }
}

/// How the operator is told a plan's part.
fn part_name(part: Part) -> &'static str {
    match part {
        Part::Started => "started",
        Part::Joined => "joined ",
        Part::AlreadyFailedOver => "already failed over:",
        Part::NotStarted => "NOT started",
    }
}

/// A plan of the region, ready to be moved.
struct Member {
    plan: Plan,
    file: PathBuf,
    bucket: String,
    state_machine: String,
}

/// A plan whose execution the evacuation follows.
struct Running {
    outcome: PlanOutcome,
    plan: Plan,
    clients: AwsClients,
}

/// Loads every plan of the inventory and keeps those whose primary is the region, by tier then
/// name. Any plan that does not load, or no plan in the region: `InvalidInput`, nothing started.
fn members(inventory: &Inventory, request: &EvacuationRequest) -> Result<Vec<Member>, DrError> {
    if !(1..=MAX_CONCURRENCY).contains(&request.concurrency) {
        return Err(DrError::InvalidInput {
            message: format!("concurrency {}: 1 to {MAX_CONCURRENCY} plans at once", request.concurrency),
        });
    }
    if request.by.trim().is_empty() || request.reason.trim().is_empty() {
        return Err(DrError::InvalidInput { message: "an evacuation needs who (--by) and why (--reason)".into() });
    }
    let mut members = Vec::new();
    let mut problems = Vec::new();
    for entry in &inventory.plans {
        match Plan::load(&entry.plan) {
            Ok(plan) if plan.primary_region == request.region => members.push(Member {
                plan,
                file: entry.plan.clone(),
                bucket: entry.bucket.clone(),
                state_machine: entry.state_machine.clone(),
            }),
            Ok(_) => {}
            Err(err) => problems.push(format!("{}: {err}", entry.plan.display())),
        }
    }
    if !problems.is_empty() {
        return Err(DrError::InvalidInput { message: format!("the inventory: {}", problems.join("; ")) });
    }
    if members.is_empty() {
        return Err(DrError::InvalidInput {
            message: format!("no plan of the inventory has {} as its primary region", request.region),
        });
    }
    members.sort_by(|a, b| (a.plan.tier, &a.plan.name).cmp(&(b.plan.tier, &b.plan.name)));
    Ok(members)
}

/// Fails over every plan of `inventory` whose primary is the region: see the module. `told`
/// hears each plan as it is taken and as it ends (the operator's terminal).
pub async fn evacuate(
    inventory: &Inventory,
    request: &EvacuationRequest,
    told: &(dyn Fn(&str) + Sync),
) -> Result<EvacuationReport, DrError> {
    let mut waiting: VecDeque<Member> = members(inventory, request)?.into();
    let started_at = time::now();
    let mut done: Vec<PlanOutcome> = Vec::new();
    let mut running: Vec<Running> = Vec::new();
    while !waiting.is_empty() || !running.is_empty() {
        while running.len() < request.concurrency {
            let Some(member) = waiting.pop_front() else { break };
            let (outcome, clients) = take_part(&member, request).await;
            told(&format!(
                "{} {} (tier {}){}{}",
                part_name(outcome.part),
                outcome.plan,
                outcome.tier,
                outcome.run_id.as_deref().map(|run| format!(": run {run}")).unwrap_or_default(),
                outcome.error.as_deref().map(|error| format!(": {error}")).unwrap_or_default(),
            ));
            let follows = outcome.execution_arn.is_some() && !(request.dry_run && outcome.part == Part::Joined);
            if follows {
                running.push(Running { outcome, plan: member.plan, clients });
            } else {
                done.push(outcome);
            }
        }
        if running.is_empty() {
            continue;
        }
        tokio::time::sleep(request.poll).await;
        let mut still = Vec::with_capacity(running.len());
        for mut run in running {
            let Some(arn) = run.outcome.execution_arn.clone() else { continue };
            match execution::describe(&run.clients.home.sfn, &arn).await {
                Ok(view) if view.is_running() => still.push(run),
                Ok(view) => {
                    run.outcome.status = Some(view.status.clone());
                    run.outcome.error = view.error.clone();
                    run.outcome.ended_at = Some(view.stopped.unwrap_or_else(time::now));
                    read_figures(&mut run.outcome, &run.plan, &run.clients).await;
                    told(&format!("ended   {}: {}", run.outcome.plan, view.status));
                    done.push(run.outcome);
                }
                // Throttled, or the answer lost: read again on the next poll.
                Err(err) if err.is_retryable() => still.push(run),
                Err(err) => {
                    run.outcome.error = Some(format!("{}: {err}", err.name()));
                    done.push(run.outcome);
                }
            }
        }
        running = still;
    }
    // In the order they were taken: by tier, then name.
    done.sort_by(|a, b| (a.tier, &a.plan).cmp(&(b.tier, &b.plan)));
    let ended_at = time::now();
    let succeeded = done.iter().filter(|plan| plan.is_success()).count();
    Ok(EvacuationReport {
        region: request.region.clone(),
        by: request.by.clone(),
        reason: request.reason.clone(),
        mode: if request.dry_run { RunMode::DryRun } else { RunMode::Live },
        concurrency: request.concurrency,
        started_at,
        ended_at,
        failed: done.len() - succeeded,
        succeeded,
        total_seconds: time::seconds_between(started_at, ended_at).max(0.0),
        plans: done,
    })
}

/// Starts the plan's failover, or joins the one under way; the outcome so far, and the plan's
/// clients when there is an execution to follow.
async fn take_part(member: &Member, request: &EvacuationRequest) -> (PlanOutcome, AwsClients) {
    let plan = &member.plan;
    let mut outcome = PlanOutcome {
        plan: plan.name.clone(),
        tier: plan.tier,
        part: Part::NotStarted,
        run_id: None,
        execution_arn: None,
        status: None,
        error: None,
        started_at: Some(time::now()),
        ended_at: None,
        rto_target_seconds: plan.targets.rto().as_secs(),
        rto_seconds: None,
        rto_met: None,
        rpo_target_seconds: plan.targets.rpo().as_secs(),
        data_lost_seconds: None,
        rpo_met: None,
    };
    let clients = AwsClients::for_plan(plan, "drctl-evacuate").await;
    let store = PlanStore::new(clients.home.s3.clone(), &member.bucket);
    match start_or_join(&clients, &store, member, request).await {
        Ok((part, run_id, execution_arn)) => {
            outcome.part = part;
            outcome.run_id = run_id;
            outcome.execution_arn = execution_arn;
        }
        Err(err) => outcome.error = Some(format!("{}: {err}", err.name())),
    }
    (outcome, clients)
}

/// The plan's part: joined (its state held by a failover under way), already failed over, or
/// started now (a dry run starts a dry run, and takes nothing).
async fn start_or_join(
    clients: &AwsClients,
    store: &PlanStore,
    member: &Member,
    request: &EvacuationRequest,
) -> Result<(Part, Option<String>, Option<String>), DrError> {
    let plan = &member.plan;
    let state = store.read_state(&plan.name).await?.state;
    if state.status == PlanStatus::FailingOver
        && let Some(run_id) = &state.run_id
    {
        // The execution is named after its run (`PlanStore::start_holding`).
        let arn = format!("{}:{run_id}", member.state_machine.replacen(":stateMachine:", ":execution:", 1));
        return Ok((Part::Joined, Some(run_id.clone()), Some(arn)));
    }
    if state.status == PlanStatus::FailedOver || state.dr_is_primary(plan) {
        return Ok((Part::AlreadyFailedOver, state.run_id.clone(), None));
    }
    let published = published_as_in(store, plan, &member.file).await?;
    let move_request = MoveRequest {
        kind: FailoverKind::Unplanned,
        direction: Direction::ToDr,
        by: request.by.clone(),
        reason: request.reason.clone(),
        run_id: None,
        dry_run: request.dry_run,
        label: "evac",
        via: format!("evacuation of {}", request.region),
    };
    let started = start_move(clients, store, &member.state_machine, published, &move_request).await?;
    Ok((Part::Started, Some(started.run_id), Some(started.execution_arn)))
}

/// The run's achieved RTO and data loss, from its report (a run that wrote none has none).
async fn read_figures(outcome: &mut PlanOutcome, plan: &Plan, clients: &AwsClients) {
    let Some(run_id) = &outcome.run_id else { return };
    let key = format!("{}report.json", report_base(plan, run_id));
    match get_json::<RunReport>(&clients.home.s3, &plan.reports.bucket, &key, "run report").await {
        Ok(Some((report, _))) => {
            let achieved = &report.achieved;
            outcome.rto_seconds = achieved.rto_seconds;
            outcome.rto_met = achieved.rto_met;
            outcome.data_lost_seconds = achieved.rpo_seconds;
            outcome.rpo_met = achieved.rpo_met;
        }
        Ok(None) => {}
        Err(err) => tracing::warn!(plan = %plan.name, run = %run_id, "the run's report not read: {err}"),
    }
}
