//! The failover report: timeline, achieved RTO and RPO against the targets, the decisions taken
//! and the final state of each resource. Written to the report bucket as JSON, as Markdown and as
//! an SVG timeline, and returned as the execution's output.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::compute::SHORTFALL_FACT;
use super::database::{DIVERGED_BY_RUN_TAG, DIVERGED_FACT};
use super::decision::SPLIT_FACT;
use super::fence;
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::notify::{self, Notice};
use crate::plan::{Direction, Plan};
use crate::readiness::{CheckRow, Scope, check_plan};
use crate::report::{self, Bar, Head, Objective, RunKind, TimelineReport, cell};
use crate::run::{
    CaughtError, FailoverKind, GateDecision, Outcome, RunStatus, RunbookState, StepKey, StepRecord, ValidState,
};
use crate::store::{PlanState, PlanStatus, PlanStore, Versioned, WriteOutcome};
use crate::time::{self, Timestamp};

/// A phase of a timeline: its name, the act step and the status step that closes it.
pub type Phase = (&'static str, StepKey, Option<StepKey>);

/// The phases of the failover runbook's timeline.
const PHASES: &[Phase] = &[
    ("preflight and RPO gate", StepKey::Preflight, None),
    ("wait for a decision (RPO gate refused)", StepKey::Decision, None),
    ("custom actions before the data tier", StepKey::ActionsBeforeDataTier, None),
    (FENCE_PHASE, StepKey::Fence, Some(StepKey::Barrier)),
    ("undo the fence", StepKey::Unfence, None),
    ("promote replica", StepKey::Promote, Some(StepKey::PromoteStatus)),
    ("custom actions after the data tier", StepKey::ActionsAfterDataTier, None),
    ("start standby EC2", StepKey::Standby, Some(StepKey::StandbyStatus)),
    ("scale Auto Scaling group", StepKey::Asg, Some(StepKey::AsgStatus)),
    ("custom actions after compute", StepKey::ActionsAfterCompute, None),
    (DNS_PHASE, StepKey::FlipDns, Some(StepKey::DnsStatus)),
    ("custom actions after traffic moved", StepKey::ActionsAfterTraffic, None),
    ("stand down the DR region's compute (failback)", StepKey::StandDown, None),
];
const FENCE_PHASE: &str = "fence the writer and barrier";
const DNS_PHASE: &str = "flip DNS";

/// The phases of the reprotect machine's timeline.
pub const REPROTECT_PHASES: &[Phase] = &[
    ("retire the old primary (final snapshot, rename)", StepKey::RetirePrimary, None),
    ("replicate back (new replica within the RPO)", StepKey::Replica, Some(StepKey::ReplicaStatus)),
];

/// The timeline of `steps`: one entry per phase that ran, from its act to its last status check.
pub fn timeline_of(steps: &BTreeMap<StepKey, StepRecord>, phases: &[Phase]) -> Vec<TimelineEntry> {
    phases
        .iter()
        .filter_map(|(phase, act_key, status_key)| {
            // A point of the run with no custom action (its record names none): not a phase of
            // this run.
            let no_action = |record: &&StepRecord| {
                matches!(
                    act_key,
                    StepKey::ActionsBeforeDataTier
                        | StepKey::ActionsAfterDataTier
                        | StepKey::ActionsAfterCompute
                        | StepKey::ActionsAfterTraffic
                ) && record.resources.is_empty()
            };
            let act = steps.get(act_key).filter(|record| !no_action(record))?;
            let status = status_key.and_then(|key| steps.get(&key));
            let last = status.unwrap_or(act);
            let records: Vec<&StepRecord> = [Some(act), status].into_iter().flatten().collect();
            Some(TimelineEntry {
                phase: phase.to_string(),
                started_at: act.started_at,
                finished_at: last.finished_at,
                seconds: time::seconds_between(act.started_at, last.finished_at).max(0.0),
                outcome: act.outcome,
                api_calls: records.iter().map(|r| r.calls.len()).sum(),
                mutating_calls: records.iter().map(|r| r.mutating_calls()).sum(),
                detail: format!(
                    "{}{}",
                    act.detail,
                    status.map(|s| format!("; {} (check {})", s.detail, s.attempt)).unwrap_or_default()
                ),
            })
        })
        .collect()
}

/// Where a run's report files go: `<prefix><plan>/<run id>/`.
pub fn report_base(plan: &Plan, run_id: &str) -> String {
    format!("{}{}/{run_id}/", plan.reports.prefix, plan.name)
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct TimelineEntry {
    pub phase: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub seconds: f64,
    pub outcome: Outcome,
    pub api_calls: usize,
    pub mutating_calls: usize,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Achieved {
    pub rto_target_seconds: u64,
    /// Trigger to DNS answering Ireland; `None` when DNS was not flipped.
    pub rto_seconds: Option<f64>,
    pub rto_met: Option<bool>,
    pub rpo_target_seconds: u64,
    /// The data lost: 0 for a planned move whose barrier was replayed; for an unplanned one, the
    /// loss measured at the incident's start (the gate's reading).
    pub rpo_seconds: Option<f64>,
    pub rpo_met: Option<bool>,
}

impl Achieved {
    /// Targets with nothing measured (a move that did not report).
    pub fn not_measured(rto_target_seconds: u64, rpo_target_seconds: u64) -> Achieved {
        Achieved {
            rto_target_seconds,
            rto_seconds: None,
            rto_met: None,
            rpo_target_seconds,
            rpo_seconds: None,
            rpo_met: None,
        }
    }

    /// The two rows of the objectives table, under the given names.
    pub fn objectives<'a>(&self, rto: &'a str, rpo: &'a str) -> [Objective<'a>; 2] {
        [
            Objective {
                name: rto,
                target_seconds: self.rto_target_seconds,
                achieved_seconds: self.rto_seconds,
                met: self.rto_met,
            },
            Objective {
                name: rpo,
                target_seconds: self.rpo_target_seconds,
                achieved_seconds: self.rpo_seconds,
                met: self.rpo_met,
            },
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunReport {
    #[serde(flatten)]
    pub head: Head,
    /// The plan's single-flight state after the run, when the run held it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_state: Option<String>,
    pub achieved: Achieved,
    pub gate: Option<GateDecision>,
    pub timeline: Vec<TimelineEntry>,
    /// Every step record, as the state machine passed them.
    pub steps: Vec<StepRecord>,
    pub final_state: Vec<CheckRow>,
    pub mutating_calls: usize,
    /// A failover (`to-dr`) or a failback (`to-primary`).
    #[serde(default)]
    pub direction: Direction,
    /// What the move lost, and how it is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss: Option<DataLoss>,
    /// The RPO gate's refusal an unplanned run asked a human to decide on (`runbook::decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate_refused: Option<String>,
    /// What the compute branch could not bring up: the run moved traffic on what reached the
    /// plan's minimum healthy capacity (`runbook::compute`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shortfall: Vec<String>,
    /// An unplanned run that moved traffic with its data tier split, on a human's approval: which
    /// databases were promoted and which not (`runbook::decision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_data_tier: Option<String>,
    /// A planned move that failed after its fence and was rolled back: where the estate is, and
    /// what a human must do (the failover machine's `RollBackIfPlanned`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rolled_back: Vec<String>,
}

impl TimelineReport for RunReport {
    fn head_mut(&mut self) -> &mut Head {
        &mut self.head
    }

    fn markdown(&self) -> Result<String, DrError> {
        render_markdown(self)
    }

    fn svg(&self) -> Result<String, DrError> {
        render_svg(self)
    }
}

impl RunReport {
    /// When users' writes were refused: from the fence until DNS answered the other region
    /// (a planned move that got that far).
    pub fn writes_refused(&self) -> Option<(Timestamp, Timestamp)> {
        let phase = |name: &str| self.timeline.iter().find(|entry| entry.phase == name);
        Some((phase(FENCE_PHASE)?.started_at, phase(DNS_PHASE)?.finished_at))
    }
}

/// What a run says of its data loss and of the old primary.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DataLoss {
    pub kind: FailoverKind,
    /// When the fence held (planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced_at: Option<String>,
    /// When the barrier was seen replayed in Ireland (planned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub barrier_confirmed_at: Option<String>,
    /// "data lost: none (proven by the barrier)", or the loss measured at the incident's start.
    pub summary: String,
    /// What the operator must do about the region the move left.
    pub primary: String,
    /// That region, as the plan names it: the primary in a failover, the DR region in a failback.
    #[serde(default = "DataLoss::region_not_recorded")]
    pub region_left: String,
}

impl DataLoss {
    /// What a report written before reports named the region calls it.
    fn region_not_recorded() -> String {
        "Old primary".to_string()
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// Whether a planned move's barrier was seen replayed in the target region: then nothing was lost.
fn barrier_replayed(state: &RunbookState) -> bool {
    state.step(StepKey::Barrier).is_some_and(|r| r.ready && r.outcome == Outcome::Ready)
}

fn data_loss(state: &RunbookState, gate: Option<&GateDecision>) -> DataLoss {
    let fact = |key: StepKey, fact: &str| state.step(key).and_then(|r| r.facts.get(fact)).cloned();
    let unfenced = state.step(StepKey::Unfence).is_some();
    let kind = state.run.kind;
    // The plan as the move sees it: its primary is the region the move leaves.
    let (left, reached) = (state.plan.primary_name(), state.plan.dr_name());
    let (summary, primary) = match kind {
        FailoverKind::Planned if barrier_replayed(state) => (
            "data lost: none (proven by the barrier)".to_string(),
            if state.run.direction == Direction::ToPrimary {
                format!("fenced: {left} takes no writes; reprotect makes it {reached}'s replica")
            } else {
                format!("fenced: {left} takes no writes until it is failed back")
            },
        ),
        FailoverKind::Planned if unfenced => {
            ("nothing promoted: the barrier was not reached".to_string(), format!("fence undone: {left} serves again"))
        }
        FailoverKind::Planned => (
            "not proven: the barrier was not reached".to_string(),
            "fenced: undo the fence by hand if the run stopped before promoting".to_string(),
        ),
        FailoverKind::Unplanned => (
            match gate {
                Some(gate) => match gate.lag_seconds {
                    Some(lag) => format!("data lost: up to {lag:.0} s of writes; {}", gate.reason),
                    None => format!("data lost: unknown; {}", gate.reason),
                },
                None => "data lost: not measured (the gate was not reached)".to_string(),
            },
            format!("not fenced: fence {left} (or keep it down) before it serves again"),
        ),
    };
    DataLoss {
        kind,
        fenced_at: fact(StepKey::Fence, fence::FENCED_FACT),
        barrier_confirmed_at: fact(StepKey::Barrier, fence::BARRIER_CONFIRMED_FACT),
        summary,
        primary,
        region_left: left.to_string(),
    }
}

/// Builds the report from the execution state, as the run's move sees it ([`RunbookState::facing`]:
/// in a failback, the plan reversed), and the estate as it is now (no S3 write).
pub fn build_report(state: &RunbookState, final_state: Vec<CheckRow>) -> RunReport {
    let plan = &state.plan;
    let timeline = timeline_of(&state.steps, PHASES);
    let gate = state.gate().cloned();
    let dns_done = state.step(StepKey::DnsStatus).filter(|s| s.ready);
    let dry_run = state.is_dry_run();
    // A dry run changes nothing: there is no recovery time to measure.
    let rto_seconds =
        dns_done.filter(|_| !dry_run).map(|s| time::seconds_between(state.run.triggered_at, s.finished_at).max(0.0));
    let rto_target = plan.targets.rto().as_secs();
    let rpo_target = plan.targets.rpo().as_secs();
    let rpo_seconds = if barrier_replayed(state) { Some(0.0) } else { gate.as_ref().and_then(|g| g.lag_seconds) }
        .filter(|_| !dry_run);
    let achieved = Achieved {
        rto_target_seconds: rto_target,
        rto_seconds,
        rto_met: rto_seconds.map(|s| s <= rto_target as f64),
        rpo_target_seconds: rpo_target,
        rpo_seconds,
        rpo_met: rpo_seconds.map(|s| s <= rpo_target as f64),
    };
    let succeeded = state.error.is_none() && dns_done.is_some();
    RunReport {
        head: Head::of(state, RunStatus::of(dry_run, succeeded)),
        plan_state: None,
        achieved,
        gate,
        mutating_calls: state.steps.values().map(StepRecord::mutating_calls).sum(),
        timeline,
        steps: state.steps.values().cloned().collect(),
        final_state,
        direction: state.run.direction,
        data_loss: Some(data_loss(state, state.gate())),
        gate_refused: state.gate_error.as_ref().map(CaughtError::reason),
        shortfall: state.steps.values().filter_map(|step| step.facts.get(SHORTFALL_FACT).cloned()).collect(),
        split_data_tier: state.steps.values().find_map(|step| step.facts.get(SPLIT_FACT).cloned()),
        rolled_back: rolled_back(state),
    }
}

/// The instance a rolled-back run had promoted (marked diverged), when the roll-back held: the
/// source region serves again with no replica, no DR until reprotect.
fn diverged_after_roll_back(state: &RunbookState) -> Option<&String> {
    state.step(StepKey::Unfence).filter(|s| s.ready)?;
    state.step(StepKey::Diverged).and_then(|s| s.facts.get(DIVERGED_FACT))
}

/// What a roll-back left: the source region serving again, traffic never moved, and, when the
/// run had promoted, the diverged instance and no DR until reprotect.
fn rolled_back(state: &RunbookState) -> Vec<String> {
    let Some(unfence) = state.step(StepKey::Unfence).filter(|s| s.ready) else { return Vec::new() };
    let plan = &state.plan;
    let mut lines = vec![format!(
        "rolled back: {} ({}); traffic stays on {}",
        unfence.detail, plan.primary_region, plan.primary_region
    )];
    if let Some(instance) = diverged_after_roll_back(state) {
        lines.push(format!(
            "NO DR: {instance} ({}) was promoted by this run and marked {DIVERGED_BY_RUN_TAG}: {} has no replica \
             until reprotect (the reprotect machine with `drctl failover input PLAN{}` as its input), then re-arm",
            plan.dr_region,
            plan.primary_region,
            if state.run.direction == Direction::ToDr { " --failback" } else { "" }
        ));
    }
    lines
}

/// The human-readable report.
pub fn render_markdown(report: &RunReport) -> Result<String, DrError> {
    report::render(|md| write_markdown(md, report))
}

fn write_markdown(md: &mut String, report: &RunReport) -> fmt::Result {
    let a = &report.achieved;
    let mut extra = Vec::new();
    if let Some(plan_state) = &report.plan_state {
        extra.push(format!("**Plan state after the run:** {plan_state}"));
    }
    if let Some(loss) = &report.data_loss {
        extra.push(format!("**{}:** {}", capitalised(report.direction.move_name()), loss.kind.name()));
        if let Some(at) = &loss.fenced_at {
            extra.push(format!("**Fenced at:** {at}"));
        }
        if let Some(at) = &loss.barrier_confirmed_at {
            extra.push(format!("**Barrier confirmed at:** {at}"));
        }
        extra.push(format!("**Data loss:** {}", loss.summary));
        extra.push(format!("**{}:** {}", loss.region_left, loss.primary));
    }
    for shortfall in &report.shortfall {
        extra.push(format!("**Serving on reduced capacity:** {shortfall}"));
    }
    if let Some(split) = &report.split_data_tier {
        extra.push(format!("**Data tier split:** {split}"));
    }
    for line in &report.rolled_back {
        extra.push(format!("**Roll-back:** {line}"));
    }
    let title = format!("{} report", capitalised(report.direction.move_name()));
    report.head.write(md, &title, &extra)?;
    report::write_objectives(md, &a.objectives("RTO (trigger to DNS moved)", "RPO (data lost)"))?;
    writeln!(md, "## Decisions\n")?;
    match &report.gate {
        Some(gate) => {
            writeln!(md, "- RPO gate: **{:?}**: {}", gate.verdict, gate.reason)?;
            if let Some(approval) = &gate.approval {
                writeln!(md, "- **Human approval recorded:** by {}, reason: {}", approval.by, approval.reason)?;
            }
        }
        None => match &report.gate_refused {
            Some(refusal) => writeln!(md, "- RPO gate: **refused**: {refusal}")?,
            None => writeln!(md, "- RPO gate: not reached")?,
        },
    }
    writeln!(md, "- Mutating AWS calls in this run: {}\n", report.mutating_calls)?;
    writeln!(md, "## Timeline\n\n![timeline](timeline.svg)\n")?;
    writeln!(
        md,
        "| phase | start | end | seconds | outcome | AWS calls (mutating) | detail |\n|---|---|---|---|---|---|---|"
    )?;
    for entry in &report.timeline {
        writeln!(
            md,
            "| {} | {} | {} | {:.1} | {:?} | {} ({}) | {} |",
            entry.phase,
            time::rfc3339(entry.started_at),
            time::rfc3339(entry.finished_at),
            entry.seconds,
            entry.outcome,
            entry.api_calls,
            entry.mutating_calls,
            cell(&entry.detail)
        )?;
    }
    writeln!(md, "\n## Final state\n\n| check | resource | state | detail |\n|---|---|---|---|")?;
    for row in &report.final_state {
        let state = row.finding.map_or("standby", |f| f.name());
        writeln!(md, "| {} | {} | {} | {} |", row.check.label(), row.resource, state, cell(&row.detail))?;
    }
    Ok(())
}

/// A Gantt-style picture of the timeline, from the trigger to the last step.
pub fn render_svg(report: &RunReport) -> Result<String, DrError> {
    report::render(|svg| write_svg(svg, report))
}

fn write_svg(svg: &mut String, report: &RunReport) -> fmt::Result {
    let title = format!(
        "{} run {}: {} (RTO {})",
        report.head.plan,
        report.head.run.id,
        report.head.status.label(),
        report::seconds(report.achieved.rto_seconds)
    );
    let bars: Vec<Bar> = report
        .timeline
        .iter()
        .map(|entry| Bar {
            label: entry.phase.clone(),
            started_at: entry.started_at,
            finished_at: entry.finished_at,
            colour: outcome_colour(entry.outcome),
        })
        .collect();
    report::write_gantt(svg, &title, ("trigger", report.head.run.triggered_at), &bars)
}

/// A timeline bar's colour: grey already done, blue checked, amber would change, green changed.
pub fn outcome_colour(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::AlreadyDone => "#9e9e9e",
        Outcome::Checked => "#1976d2",
        Outcome::WouldChange => "#f9a825",
        _ => "#2e7d32",
    }
}

/// Builds the report from the state and the estate as it is now, writes it to the report
/// bucket (JSON, Markdown, SVG) and returns it.
/// `changed_nothing`: the run stopped before any change (the state machine's RefusalReport), so a
/// plan it holds is given back.
pub async fn write_report(
    clients: &AwsClients,
    state: &ValidState,
    changed_nothing: bool,
) -> Result<RunReport, DrError> {
    let readiness = check_plan(clients, &state.plan, Scope::DataPlane).await;
    let mut report = build_report(state, readiness.rows);
    if let Some(started) = reprotect_after_roll_back(clients, state).await {
        report.rolled_back.push(started);
    }
    let plan_state = next_plan_state(clients, state, &report, changed_nothing).await?;
    report.plan_state = plan_state.as_ref().map(|next| next.summary.clone());
    let reports = &state.plan.reports;
    let base = report_base(&state.plan, &state.run.id);
    report::put_timeline_report(clients, &reports.bucket, &base, &mut report, "report").await?;
    tracing::info!(plan = %state.plan.name, step = "report", status = ?report.head.status, location = %report.head.locations.join(" "), "report written");
    // Last, once the report is safely written: a failed write above fails the run, and a plan
    // marked failed-over must not have a failed run behind it.
    if let Some(NextPlanState { store, read, new: Some(new), .. }) = plan_state
        && store.write_state(&read, &new).await? == WriteOutcome::Lost
    {
        tracing::warn!(plan = %state.plan.name, step = "report", "plan state changed by someone else; left as they left it");
        report.plan_state = Some("changed by someone else while the report was written; left as they left it".into());
    }
    let [rto, _] = report.achieved.objectives("RTO", "RPO");
    report::publish_run_metrics(clients, &report.head, RunKind::of_move(&state.run), &rto).await;
    notify::send(clients, &notice(&report)).await;
    Ok(report)
}

/// Where the deployment's reprotect machine is (`REPROTECT_STATE_MACHINE_ARN`, template.yaml): the
/// failure report of a roll-back starts it.
pub const REPROTECT_MACHINE_ENV: &str = "REPROTECT_STATE_MACHINE_ARN";

/// After a roll-back past the promotion (no DR), reprotect at once unless the plan says an
/// operator starts it (`fence.reprotect_after_roll_back`): an execution of the reprotect machine
/// named `<run id>-reprotect` (started again by a retried report: the same execution), in the
/// other orientation (the diverged instance retired, a new replica of the source region). What
/// the report says of it; `None` when there was no roll-back past a promotion.
async fn reprotect_after_roll_back(clients: &AwsClients, state: &RunbookState) -> Option<String> {
    if diverged_after_roll_back(state).is_none() || state.is_dry_run() {
        return None;
    }
    let wanted = state.plan.fence.as_ref().is_none_or(|fence| fence.reprotect_after_roll_back.unwrap_or(true));
    if !wanted {
        return Some("reprotect waits for an operator (fence.reprotect_after_roll_back = false)".into());
    }
    let Ok(machine) = std::env::var(REPROTECT_MACHINE_ENV) else {
        return Some(format!("reprotect NOT started ({REPROTECT_MACHINE_ENV} is not set): start it by hand"));
    };
    // Execution names are at most 80 characters.
    let suffix = "-reprotect";
    let keep = state.run.id.len().min(80 - suffix.len());
    let mut run = crate::run::RunInfo::new(
        format!("{}{suffix}", &state.run.id[..keep]),
        time::now(),
        format!("roll-back of run {}", state.run.id),
    );
    run.kind = FailoverKind::Planned;
    run.direction = match state.run.direction {
        Direction::ToDr => Direction::ToPrimary,
        Direction::ToPrimary => Direction::ToDr,
    };
    let mut input = RunbookState::new(state.plan.clone(), run);
    // The published plan the rolled-back run took (a failback's plan, reversed, has no reference
    // of its own).
    input.run.plan = state.run.plan.clone();
    let starter = crate::run::Starter::new(clients.home.sfn.clone(), machine);
    match starter.start(&input).await {
        Ok(arn) => {
            tracing::warn!(plan = %state.plan.name, step = "report", execution = %arn, "reprotect started after the roll-back");
            Some(format!("reprotect started at once: {arn}"))
        }
        Err(err) => {
            tracing::error!(plan = %state.plan.name, step = "report", error = err.name(), "reprotect not started: {err}");
            Some(format!("reprotect NOT started ({}: {err}): start it by hand", err.name()))
        }
    }
}

/// The run's notification: its status, RTO and data loss against the targets, the plan's state.
pub fn notice(report: &RunReport) -> Notice {
    let a = &report.achieved;
    let mut lines: Vec<String> = a.objectives("RTO", "RPO").iter().map(Objective::line).collect();
    if let Some(loss) = &report.data_loss {
        lines.push(format!("{}; {}", capitalised(&loss.summary), loss.primary));
    }
    for shortfall in &report.shortfall {
        lines.push(format!("Reduced capacity: {shortfall}"));
    }
    if let Some(split) = &report.split_data_tier {
        lines.push(format!("Data tier split: {split}"));
    }
    for line in &report.rolled_back {
        lines.push(capitalised(line));
    }
    if let Some(plan_state) = &report.plan_state {
        lines.push(format!("Plan: {plan_state}"));
    }
    let what = format!("{} {}", report.head.run.kind.name(), report.direction.move_name());
    report
        .head
        .notice(&what, &lines)
        .fact("rto_seconds", a.rto_seconds)
        .fact("rto_met", a.rto_met)
        .fact("data_lost_seconds", a.rpo_seconds)
        .fact("rpo_met", a.rpo_met)
        .fact("direction", report.direction)
        .fact("shortfall", &report.shortfall)
        .fact("split_data_tier", &report.split_data_tier)
        .fact("rolled_back", &report.rolled_back)
}

/// Who the report writes the plan state as.
pub const REPORT: &str = "report";

/// The plan state a run leaves behind, and the write that records it.
struct NextPlanState {
    store: PlanStore,
    read: Versioned,
    /// `Some`: the state to write (failed-over); `None`: nothing changes.
    new: Option<PlanState>,
    summary: String,
}

/// A live run holding the plan's single-flight state: on success the plan becomes failed-over
/// (until an operator re-arms it); a run that failed before any change gives it back to the
/// status it took it from; a run that failed after changing the estate leaves it failing-over,
/// for a human to look at.
async fn next_plan_state(
    clients: &AwsClients,
    state: &RunbookState,
    report: &RunReport,
    changed_nothing: bool,
) -> Result<Option<NextPlanState>, DrError> {
    let Some(store) = PlanStore::of_run(clients, &state.run) else { return Ok(None) };
    let read = store.read_state(&state.plan.name).await?;
    let held = read.state.is_held_by(&state.run.id);
    let (new, summary) = if !held {
        let holder = read.state.run_id.as_deref().unwrap_or("nobody");
        (None, format!("{} (held by {holder})", read.state.status.name()))
    } else if report.head.status != RunStatus::Succeeded && changed_nothing {
        let back = read.state.given_back(REPORT, format!("run {} stopped before any change: given back", state.run.id));
        let summary = format!("{}: given back, the run changed nothing", back.status.name());
        (Some(back), summary)
    } else if report.head.status != RunStatus::Succeeded && diverged_after_roll_back(state).is_some() {
        // Rolled back after a promotion: the source region serves, with no replica. Automatic
        // failover stays off until reprotect and a green plan check (`drctl trigger arm`).
        let why = format!(
            "run {} rolled back after promoting: {} serves with no replica; reprotect, then re-arm once plan check is green",
            state.run.id, state.plan.primary_region
        );
        let summary = format!(
            "{}: rolled back, no DR: reprotect, then re-arm once plan check is green",
            PlanStatus::Disarmed.name()
        );
        (Some(read.state.moved(PlanStatus::Disarmed, REPORT, why)), summary)
    } else if report.head.status != RunStatus::Succeeded {
        // Still held, with why, for `drctl trigger status` and the reconciler (which leaves a
        // hold the report has judged and told).
        let error = state.error.as_ref().map_or_else(|| "no error recorded".to_string(), CaughtError::reason);
        let why = format!(
            "run {} failed after changing the estate ({error}): check the estate, then re-arm (drctl trigger arm --force)",
            state.run.id
        );
        let summary = format!(
            "{}: the run failed after changing the estate; re-arm after review",
            PlanStatus::FailingOver.name()
        );
        (Some(read.state.moved(PlanStatus::FailingOver, REPORT, why)), summary)
    } else if state.plan.reversed {
        // Back on Paris, with no replica in Ireland yet: automatic failover stays off until the
        // original direction is reprotected and `plan check` is green (`drctl trigger arm`).
        let mut done = read.state.moved(
            PlanStatus::Disarmed,
            REPORT,
            format!("failback {} succeeded: reprotect, then re-arm once plan check is green", state.run.id),
        );
        done.primary_region = Some(state.plan.dr_region.clone());
        (Some(done), format!("{}: reprotect, then re-arm once plan check is green", PlanStatus::Disarmed.name()))
    } else {
        let mut done = read.state.moved(PlanStatus::FailedOver, REPORT, format!("run {} succeeded", state.run.id));
        done.primary_region = Some(state.plan.dr_region.clone());
        (Some(done), format!("{}: reprotect, fail back, then re-arm", PlanStatus::FailedOver.name()))
    };
    Ok(Some(NextPlanState { store, read, new, summary }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Approval, CaughtError, GateVerdict, RunInfo};

    fn at(text: &str) -> Timestamp {
        time::parse(text).expect("time")
    }

    fn record(step: &str, start: &str, end: &str, outcome: Outcome) -> StepRecord {
        StepRecord {
            step: step.to_string(),
            started_at: at(start),
            finished_at: at(end),
            outcome,
            ready: true,
            attempt: 1,
            detail: format!("{step} done"),
            resources: Vec::new(),
            calls: Vec::new(),
            facts: Default::default(),
            gate: None,
            redo: false,
        }
    }

    fn state() -> RunbookState {
        let text = include_str!("../../../../plans/paris-ireland.toml");
        let plan = crate::plan::Plan::parse(text, "example").expect("example plan");
        let mut preflight = record("preflight", "2026-11-23T10:00:10Z", "2026-11-23T10:00:12Z", Outcome::Checked);
        preflight.gate = Some(GateDecision {
            verdict: GateVerdict::Approved,
            lag_seconds: Some(5400.0),
            rpo_seconds: 3600,
            reason: "RpoExceeded overridden".to_string(),
            approval: Some(Approval { by: "sre@example.com".into(), reason: "Paris is gone".into() }),
        });
        let steps = [
            (StepKey::Preflight, preflight),
            (
                StepKey::Promote,
                record("promote-replica", "2026-11-23T10:00:13Z", "2026-11-23T10:00:14Z", Outcome::Changed),
            ),
            (
                StepKey::PromoteStatus,
                record("promote-replica-status", "2026-11-23T10:09:00Z", "2026-11-23T10:10:00Z", Outcome::Ready),
            ),
            (StepKey::FlipDns, record("flip-dns", "2026-11-23T10:10:05Z", "2026-11-23T10:10:06Z", Outcome::Changed)),
            (
                StepKey::DnsStatus,
                record("flip-dns-status", "2026-11-23T10:11:00Z", "2026-11-23T10:12:00Z", Outcome::Ready),
            ),
        ]
        .into_iter()
        .collect();
        RunbookState { steps, ..RunbookState::new(plan, RunInfo::new("r1", at("2026-11-23T10:00:00Z"), "test")) }
    }

    #[test]
    fn rto_runs_from_the_trigger_to_dns_ready_and_rpo_is_the_lag_at_promotion() {
        let report = build_report(&state(), Vec::new());
        assert_eq!(report.head.status, RunStatus::Succeeded);
        assert_eq!(report.achieved.rto_seconds, Some(720.0));
        assert_eq!(report.achieved.rto_met, Some(true));
        assert_eq!(report.achieved.rpo_seconds, Some(5400.0));
        assert_eq!(report.achieved.rpo_met, Some(false));
        let promote = &report.timeline[1];
        assert_eq!((promote.phase.as_str(), promote.seconds), ("promote replica", 587.0));
    }

    #[test]
    fn markdown_and_svg_show_the_decisions_and_every_phase() {
        let report = build_report(&state(), Vec::new());
        let markdown = render_markdown(&report).expect("markdown");
        assert!(markdown.contains("Human approval recorded:** by sre@example.com, reason: Paris is gone"));
        assert!(markdown.contains("| RPO (data lost) | 3600 s | 5400 s | MISSED |"), "{markdown}");
        let svg = render_svg(&report).expect("svg");
        assert_eq!(svg.matches("<rect").count(), report.timeline.len());
    }

    #[test]
    fn a_run_stopped_by_an_error_reports_failed_without_an_rto() {
        let mut state = state();
        state.steps.remove(&StepKey::DnsStatus);
        state.error = Some(CaughtError { error: "StepTimedOut".into(), cause: "dns_status not ready".into() });
        let report = build_report(&state, Vec::new());
        assert_eq!(report.head.status, RunStatus::Failed);
        assert_eq!(report.achieved.rto_seconds, None);
        assert!(render_markdown(&report).expect("markdown").contains("**Stopped by:** `StepTimedOut`"));
    }

    /// A planned move whose barrier was replayed, in `direction`, as its report sees it (faced).
    fn planned_move(direction: Direction) -> RunbookState {
        let mut state = state();
        state.run.kind = FailoverKind::Planned;
        state.run.direction = direction;
        state
            .steps
            .insert(StepKey::Fence, record("fence", "2026-11-23T10:00:12Z", "2026-11-23T10:00:13Z", Outcome::Changed));
        state.steps.insert(
            StepKey::Barrier,
            record("barrier", "2026-11-23T10:00:13Z", "2026-11-23T10:00:15Z", Outcome::Ready),
        );
        (*state.facing().expect("a planned move of the example")).clone()
    }

    #[test]
    fn a_failbacks_report_and_notice_name_the_region_the_data_left_and_the_one_it_reached() {
        let report = build_report(&planned_move(Direction::ToPrimary), Vec::new());
        let loss = report.data_loss.as_ref().expect("data loss");
        assert_eq!(loss.region_left, "Ireland", "a failback leaves Ireland");
        assert_eq!(loss.primary, "fenced: Ireland takes no writes; reprotect makes it Paris's replica");
        let markdown = render_markdown(&report).expect("markdown");
        assert!(markdown.contains("# Failback report"), "{markdown}");
        assert!(markdown.contains("**Ireland:** fenced: Ireland takes no writes; reprotect makes it Paris's replica"));
        assert!(notice(&report).text.contains("fenced: Ireland takes no writes; reprotect makes it Paris's replica"));

        let report = build_report(&planned_move(Direction::ToDr), Vec::new());
        let markdown = render_markdown(&report).expect("markdown");
        assert!(markdown.contains("**Paris:** fenced: Paris takes no writes until it is failed back"), "{markdown}");
    }

    #[test]
    fn a_plan_without_region_names_is_told_in_its_region_codes() {
        // The customer's microservices platform: us-east-1 -> us-west-2, no names given.
        let us = |mut state: RunbookState| {
            let plan = &mut state.plan;
            plan.name = "microservices-prod".into();
            (plan.primary_region, plan.dr_region) = ("us-east-1".into(), "us-west-2".into());
            plan.region_names.clear();
            plan.validate().expect("a valid plan");
            state.run.plan = plan.reference().ok();
            // The fixture's approval speaks of Paris: no gate here.
            state.steps.get_mut(&StepKey::Preflight).expect("preflight").gate = None;
            state
        };
        let failover = build_report(&us(state()), Vec::new());
        let loss = failover.data_loss.as_ref().expect("data loss");
        assert_eq!(loss.primary, "not fenced: fence us-east-1 (or keep it down) before it serves again");

        let mut failback = us(state());
        failback.run.kind = FailoverKind::Planned;
        failback.run.direction = Direction::ToPrimary;
        failback.steps.insert(
            StepKey::Barrier,
            record("barrier", "2026-11-23T10:00:13Z", "2026-11-23T10:00:15Z", Outcome::Ready),
        );
        let failback = build_report(&failback.facing().expect("a failback"), Vec::new());
        let loss = failback.data_loss.as_ref().expect("data loss");
        assert_eq!(loss.primary, "fenced: us-west-2 takes no writes; reprotect makes it us-east-1's replica");

        for report in [&failover, &failback] {
            let told = format!("{}\n{}", render_markdown(report).expect("markdown"), notice(report).text);
            assert!(!told.contains("Paris") && !told.contains("Ireland"), "{told}");
        }
    }
}
