//! The round-trip game day: one live drill that leaves the estate as it found it, reported as one
//! run. `statemachines/round-trip.asl.json` runs four legs, each an execution of its own machine
//! (so each keeps its own history budget, RTO clock and report):
//!
//! 1. **failover**: a planned failover Paris -> Ireland (fence, barrier, promote, compute, DNS);
//! 2. a **verification window** (a Wait of `verification_seconds`: Ireland serves alone while the
//!    operators check it), then **reprotect**: the old Paris primary retired with its final
//!    snapshot, a Paris replica of Ireland;
//! 3. **failback**: a planned move Ireland -> Paris, Ireland's compute back to standby;
//! 4. **reprotect-back**: the old Ireland primary retired, an Ireland replica of Paris.
//!
//! Each leg's input is made when the leg starts ([`prepare_leg`]), so that its RTO runs from its
//! own start; a move takes the plan's single-flight state as a drill does (the game day takes it
//! for the failover before anything starts, so a busy plan is refused at once). The report
//! ([`write_report`]) reads the moves' own reports, and says per leg RTO and data loss, the
//! downtime users saw (writes refused from the fence until DNS answered the other region), how
//! long Ireland served alone, and the estate at the end: `plan check` as it stands. The plan is
//! armed again only if it was armed when the round trip started and that check is green.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use super::report::{Achieved, REPROTECT_PHASES, RunReport, TimelineEntry, outcome_colour, report_base, timeline_of};
use crate::aws::{AwsClients, objects};
use crate::error::DrError;
use crate::notify;
use crate::plan::{Direction, Plan};
use crate::readiness::{CheckRow, Scope, check_plan};
use crate::report::{self, Bar, Head, Objective, RunKind, TimelineReport, cell};
use crate::run::{CaughtError, FailoverKind, RunInfo, RunMode, RunStatus, RunbookState, StepKey, StepRecord};
use crate::store::{PlanStatus, PlanStore};
use crate::time::{self, Timestamp};

/// The legs of a round trip, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    Failover,
    Reprotect,
    Failback,
    ReprotectBack,
}

impl Leg {
    pub const ALL: [Leg; 4] = [Leg::Failover, Leg::Reprotect, Leg::Failback, Leg::ReprotectBack];

    /// The leg's name in run ids and reports.
    pub fn name(self) -> &'static str {
        match self {
            Leg::Failover => "failover",
            Leg::Reprotect => "reprotect",
            Leg::Failback => "failback",
            Leg::ReprotectBack => "reprotect-back",
        }
    }

    /// What the leg does, as the report says it, for a plan whose regions (as written) are called
    /// `primary` and `dr` ([`Plan::primary_name`], [`Plan::dr_name`]).
    pub fn label(self, primary: &str, dr: &str) -> String {
        match self {
            Leg::Failover => format!("failover to {dr}"),
            Leg::Reprotect => format!("reprotect: {} replica of {dr}", with_article(primary)),
            Leg::Failback => format!("failback to {primary}"),
            Leg::ReprotectBack => format!("reprotect: {} replica of {primary}", with_article(dr)),
        }
    }

    /// The direction of the move the leg makes or follows.
    pub fn direction(self) -> Direction {
        match self {
            Leg::Failover | Leg::Reprotect => Direction::ToDr,
            Leg::Failback | Leg::ReprotectBack => Direction::ToPrimary,
        }
    }

    /// Whether the leg moves traffic (a run of the failover runbook) rather than reprotects.
    pub fn is_move(self) -> bool {
        matches!(self, Leg::Failover | Leg::Failback)
    }
}

/// A region's name with its indefinite article, as it is read aloud: "an Ireland", "a Paris",
/// "an eu-west-1" (letters spelled out), "a us-west-2".
fn with_article(name: &str) -> String {
    let article = if name.starts_with(['A', 'E', 'I', 'O', 'a', 'e', 'i', 'o']) { "an" } else { "a" };
    format!("{article} {name}")
}

/// What the round-trip machine keeps of a leg's execution (its Task's `ResultSelector`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LegExecution {
    pub execution: String,
    pub status: String,
    /// A reprotect leg's step records (a move's are in its report).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub steps: BTreeMap<StepKey, StepRecord>,
}

/// The round-trip machine's state.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoundTripState {
    /// The plan as published (each leg faces it its own way), loaded from the plan store by
    /// `run.plan`: never part of an input.
    #[serde(skip, default = "Plan::unloaded")]
    pub plan: Plan,
    /// The round trip as one run: its id prefixes every leg's run id; `triggered_at` is its start.
    pub run: RunInfo,
    /// How long the DR region serves alone before reprotect and failback start.
    pub verification_seconds: u64,
    /// The plan was armed when the round trip started: armed again at the end on a green check.
    pub rearm: bool,
    /// The legs run so far, by leg.
    #[serde(default)]
    pub legs: BTreeMap<Leg, LegExecution>,
    /// The input of the leg about to run (or that was running when the round trip stopped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<RunbookState>,
    /// Set by the machine's Catch: what stopped the round trip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
}

/// The top-level paths the round-trip machine writes besides `$.legs.<leg>`: the next leg's
/// input, the caught error, the report and a failed report's error.
pub const ROUND_TRIP_RESULT_PATHS: &[&str] = &["next", "error", "report", "report_error"];

/// Every leg's execution is named `<round trip id>-<leg>`; run ids are at most 64 characters.
pub const LONGEST_LEG_SUFFIX: usize = "-reprotect-back".len();

impl RoundTripState {
    /// A new round trip of `plan`, started now by `requested_by`.
    pub fn new(plan: Plan, mut run: RunInfo, verification_seconds: u64, rearm: bool) -> RoundTripState {
        run.kind = FailoverKind::Planned;
        run.mode = RunMode::Live;
        run.plan = plan.reference().ok();
        RoundTripState { plan, run, verification_seconds, rearm, legs: BTreeMap::new(), next: None, error: None }
    }

    /// Refuses bad input before any AWS call.
    pub fn validate(&self) -> Result<(), DrError> {
        self.plan.validate()?;
        self.plan.fence_for_planned_move()?;
        let id_ok = !self.run.id.is_empty()
            && self.run.id.len() + LONGEST_LEG_SUFFIX <= crate::run::MAX_RUN_ID_LEN
            && self.run.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(DrError::InvalidInput {
                message: format!(
                    "round trip id {:?}: 1 to {} letters, digits, '-' or '_' (its legs' run ids add {LONGEST_LEG_SUFFIX})",
                    self.run.id,
                    crate::run::MAX_RUN_ID_LEN - LONGEST_LEG_SUFFIX
                ),
            });
        }
        if self.run.plan_state.is_none() {
            return Err(no_plan_state());
        }
        Ok(())
    }

    /// The run id of `leg`.
    pub fn leg_run_id(&self, leg: Leg) -> String {
        format!("{}-{}", self.run.id, leg.name())
    }
}

/// The round-trip Lambda's request: the machine's Task parameters.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum RoundTripRequest {
    /// Make the input of `leg` (and take the plan for a move).
    Leg { leg: Leg, state: Box<RoundTripState> },
    /// Write the round trip's report (and re-arm the plan on a green check).
    Report { state: Box<RoundTripState> },
}

/// The round-trip Lambda's answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum RoundTripAnswer {
    Leg(Box<RunbookState>),
    Report(Box<RoundTripReport>),
}

/// A Task's request from its payload: refused if its state carries a plan or an approval, then
/// the plan loaded from `store` by the name and version the round trip took (`run.plan`).
pub async fn load_request(store: &PlanStore, payload: serde_json::Value) -> Result<RoundTripRequest, DrError> {
    if let Some(state) = payload.get("state") {
        crate::run::refuse_untrusted(state, "the round trip's state", false)?;
    }
    let mut request: RoundTripRequest = crate::error::parse_input(
        payload,
        "round-trip task input {action: leg|report, leg?, state: {run, legs, ...}}",
    )?;
    let (RoundTripRequest::Leg { state, .. } | RoundTripRequest::Report { state }) = &mut request;
    state.plan = store.plan_of_run(&state.run).await?;
    Ok(request)
}

/// Handles one Task of the round-trip machine.
pub async fn handle(clients: &AwsClients, request: RoundTripRequest) -> Result<RoundTripAnswer, DrError> {
    match request {
        RoundTripRequest::Leg { leg, state } => {
            state.validate()?;
            let store = plan_store(clients, &state)?;
            Ok(RoundTripAnswer::Leg(Box::new(prepare_leg(&store, &state, leg).await?)))
        }
        RoundTripRequest::Report { state } => {
            Ok(RoundTripAnswer::Report(Box::new(write_report(clients, &state).await?)))
        }
    }
}

fn plan_store(clients: &AwsClients, state: &RoundTripState) -> Result<PlanStore, DrError> {
    PlanStore::of_run(clients, &state.run).ok_or_else(no_plan_state)
}

fn no_plan_state() -> DrError {
    DrError::InvalidInput {
        message: "a round trip holds the plan's state for its moves: run.plan_state is missing".into(),
    }
}

/// The input of `leg`, started now: a planned, live run in the leg's direction. A move takes the
/// plan's single-flight state for its run (asked again when the leg already holds it, nothing
/// changes); a reprotect holds nothing.
pub async fn prepare_leg(store: &PlanStore, state: &RoundTripState, leg: Leg) -> Result<RunbookState, DrError> {
    state.validate()?;
    let run_id = state.leg_run_id(leg);
    let by = state.run.requested_by.as_ref().map_or("someone", |r| r.by.as_str());
    let mut run = RunInfo::new(&run_id, time::now(), format!("round trip {} ({}) by {by}", state.run.id, leg.name()));
    run.kind = FailoverKind::Planned;
    run.direction = leg.direction();
    run.requested_by = state.run.requested_by.clone();
    run.game_day = true;
    run.round_trip = Some(state.run.id.clone());
    let mut input = RunbookState::new(state.plan.clone(), run);
    input.validate()?;
    if leg.is_move() {
        let reason =
            format!("round trip {}: {}", state.run.id, leg.label(state.plan.primary_name(), state.plan.dr_name()));
        let taken =
            store.take_for_run(&state.plan, leg.direction(), &run_id, &format!("game-day: {by}"), &reason).await;
        if let Err(err) = taken {
            // Asked again after a lost answer, the plan is held by this very leg already.
            let held = store.read_state(&state.plan.name).await?.state;
            let ours = held.is_held_by(&run_id);
            if !(matches!(err, DrError::PlanBusy { .. }) && ours) {
                return Err(err);
            }
        }
        input.run.plan_state = Some(store.reference());
    }
    Ok(input)
}

/// How a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegStatus {
    Succeeded,
    Failed,
    NotRun,
}

/// One leg, as the round-trip report shows it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LegSummary {
    pub leg: Leg,
    pub run_id: String,
    pub status: LegStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// A move: its RTO and data loss against the targets, as its own report has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub achieved: Option<Achieved>,
    /// A move: how long users' writes were refused (the fence until DNS answered the other
    /// region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<f64>,
    pub detail: String,
    /// The leg's own report (a move's), where it was written.
    #[serde(default)]
    pub report: Vec<String>,
    /// The leg's phases, on the round trip's timeline.
    pub timeline: Vec<TimelineEntry>,
}

/// The round-trip report: both legs and both reprotects as one run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RoundTripReport {
    #[serde(flatten)]
    pub head: Head,
    pub rto_target_seconds: u64,
    pub rpo_target_seconds: u64,
    /// What the plan calls its primary region and its DR region (as written): the legs' labels.
    /// A report written before reports named the regions reads "primary" and "DR".
    #[serde(default = "RoundTripReport::primary_not_recorded")]
    pub primary_region_name: String,
    #[serde(default = "RoundTripReport::dr_not_recorded")]
    pub dr_region_name: String,
    pub legs: Vec<LegSummary>,
    /// How long the DR region served alone: the failover's DNS moved to the failback's start (the
    /// verification window and reprotect). Reports written before the plan named its regions
    /// called it `ireland_served_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "ireland_served_seconds")]
    pub dr_served_seconds: Option<f64>,
    pub verification_seconds: u64,
    /// Writes refused over both moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<f64>,
    /// The data lost over both moves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_lost_seconds: Option<f64>,
    /// `plan check` at the end, as the estate stands.
    pub final_state: Vec<CheckRow>,
    /// The plan's state at the end: re-armed, or why not.
    pub plan_state: String,
}

impl TimelineReport for RoundTripReport {
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

impl RoundTripReport {
    pub fn leg(&self, leg: Leg) -> Option<&LegSummary> {
        self.legs.iter().find(|summary| summary.leg == leg)
    }

    /// What `leg` does, with the plan's names for its regions.
    pub fn leg_label(&self, leg: Leg) -> String {
        leg.label(&self.primary_region_name, &self.dr_region_name)
    }

    fn primary_not_recorded() -> String {
        "primary".to_string()
    }

    fn dr_not_recorded() -> String {
        "DR".to_string()
    }
}

/// The run a leg ran, if it started: a finished leg is in `legs`; the one running when the
/// round trip stopped is `next`.
fn leg_started(state: &RoundTripState, leg: Leg) -> bool {
    state.legs.contains_key(&leg) || state.next.as_ref().is_some_and(|next| next.run.id == state.leg_run_id(leg))
}

/// Builds one leg's summary. `report` is a move's own report, read from the report bucket.
fn summarise_leg(state: &RoundTripState, leg: Leg, report: Option<&RunReport>) -> LegSummary {
    let run_id = state.leg_run_id(leg);
    let execution = state.legs.get(&leg);
    let started = leg_started(state, leg);
    let status = match execution {
        Some(done) if done.status == "SUCCEEDED" => LegStatus::Succeeded,
        Some(_) => LegStatus::Failed,
        None if started => LegStatus::Failed,
        None => LegStatus::NotRun,
    };
    let mut summary = LegSummary {
        leg,
        run_id,
        status,
        execution: execution.map(|e| e.execution.clone()),
        started_at: None,
        finished_at: None,
        achieved: None,
        downtime_seconds: None,
        detail: String::new(),
        report: Vec::new(),
        timeline: Vec::new(),
    };
    if leg.is_move() {
        match report {
            Some(report) => {
                summary.started_at = Some(report.head.run.triggered_at);
                summary.finished_at = report.timeline.iter().map(|e| e.finished_at).max();
                summary.achieved = Some(report.achieved.clone());
                summary.downtime_seconds =
                    report.writes_refused().map(|(from, to)| time::seconds_between(from, to).max(0.0));
                summary.detail = report.data_loss.as_ref().map(|loss| loss.summary.clone()).unwrap_or_default();
                if let Some(error) = &report.head.error {
                    summary.detail = format!("stopped by {}: {}", error.error, error.cause);
                }
                summary.report = report.head.locations.clone();
                summary.timeline = report.timeline.clone();
            }
            None if started => summary.detail = "no report found for this leg".into(),
            None => {}
        }
    } else if let Some(execution) = execution {
        summary.timeline = timeline_of(&execution.steps, REPROTECT_PHASES);
        summary.started_at = summary.timeline.iter().map(|e| e.started_at).min();
        summary.finished_at = summary.timeline.iter().map(|e| e.finished_at).max();
        summary.detail = [StepKey::RetirePrimary, StepKey::ReplicaStatus]
            .iter()
            .filter_map(|key| execution.steps.get(key).map(|record| record.detail.clone()))
            .collect::<Vec<_>>()
            .join("; ");
    }
    if summary.status == LegStatus::Failed
        && summary.detail.is_empty()
        && let Some(error) = &state.error
    {
        summary.detail = format!("stopped by {}: {}", error.error, error.cause);
    }
    summary
}

/// Builds the report from the state, the moves' own reports and the estate at the end.
pub fn build_report(
    state: &RoundTripState,
    reports: &BTreeMap<Leg, RunReport>,
    final_state: Vec<CheckRow>,
    plan_state: String,
) -> RoundTripReport {
    let legs: Vec<LegSummary> = Leg::ALL.iter().map(|&leg| summarise_leg(state, leg, reports.get(&leg))).collect();
    let all_done = legs.iter().all(|leg| leg.status == LegStatus::Succeeded);
    let status = RunStatus::of(false, all_done && state.error.is_none());
    let moves: Vec<&LegSummary> = legs.iter().filter(|leg| leg.leg.is_move()).collect();
    let total = |value: fn(&LegSummary) -> Option<f64>| -> Option<f64> {
        moves.iter().map(|leg| value(leg)).sum::<Option<f64>>()
    };
    let dns_moved = legs[0].finished_at;
    let failback_started = legs[2].started_at;
    let dr_served_seconds = dns_moved.zip(failback_started).map(|(from, to)| time::seconds_between(from, to).max(0.0));
    RoundTripReport {
        head: Head::new(&state.plan.name, &state.run, status, state.error.clone()),
        rto_target_seconds: state.plan.targets.rto().as_secs(),
        rpo_target_seconds: state.plan.targets.rpo().as_secs(),
        primary_region_name: state.plan.primary_name().to_string(),
        dr_region_name: state.plan.dr_name().to_string(),
        dr_served_seconds,
        verification_seconds: state.verification_seconds,
        downtime_seconds: total(|leg| leg.downtime_seconds),
        data_lost_seconds: total(|leg| leg.achieved.as_ref().and_then(|a| a.rpo_seconds)),
        legs,
        final_state,
        plan_state,
    }
}

/// The human-readable round-trip report.
/// A `report.json` under a plan's prefix: a round trip's (it has its legs) or any other run's
/// (its own timeline). `drctl report show` and the posture page read both.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyRunReport {
    Run(Box<RunReport>),
    RoundTrip(Box<RoundTripReport>),
}

impl AnyRunReport {
    pub fn from_json(value: serde_json::Value) -> Result<AnyRunReport, serde_json::Error> {
        if value.get("legs").is_some() {
            Ok(AnyRunReport::RoundTrip(Box::new(serde_json::from_value(value)?)))
        } else {
            Ok(AnyRunReport::Run(Box::new(serde_json::from_value(value)?)))
        }
    }
}

pub fn render_markdown(report: &RoundTripReport) -> Result<String, DrError> {
    report::render(|md| write_markdown(md, report))
}

fn write_markdown(md: &mut String, report: &RoundTripReport) -> fmt::Result {
    let extra = [
        format!(
            "**Downtime seen by users:** {} (writes refused from each fence until DNS answered the other region; clients holding the old answer saw up to the record's TTL more)",
            report::seconds(report.downtime_seconds)
        ),
        format!("**Data lost over the round trip:** {}", report::seconds(report.data_lost_seconds)),
        format!(
            "**{} served alone for:** {} (verification window {} s, then reprotect)",
            report.dr_region_name,
            report::seconds(report.dr_served_seconds),
            report.verification_seconds
        ),
        format!("**Plan state after the round trip:** {}", report.plan_state),
    ];
    report.head.write(md, "Round-trip game day report", &extra)?;
    let not_run = Achieved::not_measured(report.rto_target_seconds, report.rpo_target_seconds);
    let moves: Vec<(String, String, &Achieved)> = report
        .legs
        .iter()
        .filter(|leg| leg.leg.is_move())
        .map(|leg| {
            let name = leg.leg.name();
            let achieved = leg.achieved.as_ref().unwrap_or(&not_run);
            (format!("{name} RTO (trigger to DNS moved)"), format!("{name} RPO (data lost)"), achieved)
        })
        .collect();
    let objectives: Vec<Objective<'_>> =
        moves.iter().flat_map(|(rto, rpo, achieved)| achieved.objectives(rto, rpo)).collect();
    report::write_objectives(md, &objectives)?;
    writeln!(
        md,
        "## Legs\n\n| leg | run | status | start | end | writes refused | detail | report |\n|---|---|---|---|---|---|---|---|"
    )?;
    for leg in &report.legs {
        writeln!(
            md,
            "| {} | {} | {:?} | {} | {} | {} | {} | {} |",
            report.leg_label(leg.leg),
            leg.run_id,
            leg.status,
            leg.started_at.map(time::rfc3339).unwrap_or_default(),
            leg.finished_at.map(time::rfc3339).unwrap_or_default(),
            report::seconds(leg.downtime_seconds),
            cell(&leg.detail),
            leg.report.iter().find(|location| location.ends_with(".md")).map_or("", String::as_str)
        )?;
    }
    writeln!(md, "\n## Timeline\n\n![timeline](timeline.svg)\n")?;
    writeln!(md, "| leg | phase | start | end | seconds | outcome |\n|---|---|---|---|---|---|")?;
    for leg in &report.legs {
        for entry in &leg.timeline {
            writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} | {:?} |",
                leg.leg.name(),
                entry.phase,
                time::rfc3339(entry.started_at),
                time::rfc3339(entry.finished_at),
                entry.seconds,
                entry.outcome
            )?;
        }
    }
    writeln!(
        md,
        "\n## The estate after the round trip (plan check)\n\n| check | resource | state | detail |\n|---|---|---|---|"
    )?;
    for row in &report.final_state {
        let state = row.finding.map_or("standby", |f| f.name());
        writeln!(md, "| {} | {} | {} | {} |", row.check.label(), row.resource, state, cell(&row.detail))?;
    }
    Ok(())
}

/// The timeline picture: every leg's phases on one axis from the round trip's start, and the
/// time Ireland served alone between the moves.
pub fn render_svg(report: &RoundTripReport) -> Result<String, DrError> {
    let mut bars = Vec::new();
    for leg in &report.legs {
        bars.extend(leg.timeline.iter().map(|entry| Bar {
            label: format!("{}: {}", leg.leg.name(), entry.phase),
            started_at: entry.started_at,
            finished_at: entry.finished_at,
            colour: outcome_colour(entry.outcome),
        }));
        if leg.leg == Leg::Failover
            && let Some((from, to)) = leg.finished_at.zip(report.leg(Leg::Failback).and_then(|back| back.started_at))
        {
            bars.push(Bar {
                label: format!("{} serves alone (verification)", report.dr_region_name),
                started_at: from,
                finished_at: to,
                colour: "#90a4ae",
            });
        }
    }
    let title = format!(
        "{} round trip {}: {} (downtime {}, data lost {})",
        report.head.plan,
        report.head.run.id,
        report.head.status.label(),
        report::seconds(report.downtime_seconds),
        report::seconds(report.data_lost_seconds)
    );
    report::render(|svg| report::write_gantt(svg, &title, ("round trip start", report.head.run.triggered_at), &bars))
}

/// Reads the moves' reports, checks the estate as it stands, re-arms the plan if it was armed at
/// the start and the check is green, and writes the round-trip report (JSON, Markdown, SVG).
/// Asked again, it writes the same report and changes nothing more.
pub async fn write_report(clients: &AwsClients, state: &RoundTripState) -> Result<RoundTripReport, DrError> {
    state.validate()?;
    let store = plan_store(clients, state)?;
    let bucket = &state.plan.reports.bucket;
    let mut reports = BTreeMap::new();
    for leg in Leg::ALL.into_iter().filter(|&leg| leg.is_move() && leg_started(state, leg)) {
        let key = format!("{}report.json", report_base(&state.plan, &state.leg_run_id(leg)));
        if let Some((report, _)) = objects::get_json::<RunReport>(&clients.home.s3, bucket, &key, "run report").await? {
            reports.insert(leg, report);
        }
    }
    let plan_state = store.read_state(&state.plan.name).await?.state;
    let current = plan_state.current_plan(&state.plan)?;
    let facing = clients.facing(plan_state.next_move(&state.plan));
    // The failover path's check (no Route 53 control-plane call), as the moves' own reports run it.
    let readiness = check_plan(&facing, &current, Scope::DataPlane).await;
    let succeeded = state.error.is_none()
        && Leg::ALL.iter().all(|leg| state.legs.get(leg).is_some_and(|e| e.status == "SUCCEEDED"));
    let plan_summary = match plan_state.status {
        PlanStatus::Armed => "armed".to_string(),
        status if succeeded && state.rearm && readiness.is_ready() => {
            let reason = format!("round trip {} done and plan check green", state.run.id);
            store.set_armed(&state.plan.name, true, "round trip", &reason, false).await?;
            format!("armed again ({} before): plan check green", status.name())
        }
        status if succeeded && state.rearm => {
            let findings: Vec<&str> = readiness.findings().into_iter().map(|f| f.name()).collect();
            format!("{}: not re-armed, plan check finds {}", status.name(), findings.join(", "))
        }
        status if succeeded => format!("{}: left as before the round trip (it was not armed)", status.name()),
        status => format!("{}: the round trip stopped; review, then re-arm by hand", status.name()),
    };
    let mut report = build_report(state, &reports, readiness.rows, plan_summary);
    let base = report_base(&state.plan, &state.run.id);
    report::put_timeline_report(clients, bucket, &base, &mut report, "round-trip report").await?;
    tracing::info!(plan = %state.plan.name, step = "round-trip-report", status = ?report.head.status, location = %report.head.locations.join(" "), "round-trip report written");
    let lines = vec![
        format!("Downtime seen by users: {}", report::seconds(report.downtime_seconds)),
        format!("Data lost: {}", report::seconds(report.data_lost_seconds)),
        format!("Plan: {}", report.plan_state),
    ];
    // Each leg's report publishes its own RTO (a drill's, a failback's); the round trip counts.
    let rto = Objective { name: "RTO", target_seconds: report.rto_target_seconds, achieved_seconds: None, met: None };
    report::publish_run_metrics(clients, &report.head, RunKind::RoundTrip, &rto).await;
    let notice = report
        .head
        .notice("round-trip game day", &lines)
        .fact("downtime_seconds", report.downtime_seconds)
        .fact("data_lost_seconds", report.data_lost_seconds);
    notify::send(clients, &notice).await;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{Approval, Outcome, PlanStateRef};

    fn state() -> RoundTripState {
        let text = include_str!("../../../../plans/paris-ireland.toml");
        let plan = Plan::parse(text, "example").expect("example plan");
        let at = time::parse("2026-11-23T10:00:00Z").expect("time");
        let mut run = RunInfo::new("prod-roundtrip-20261123T100000Z", at, "game day (round trip) by alice");
        run.requested_by = Some(Approval { by: "alice".into(), reason: "game day".into() });
        run.plan_state = Some(PlanStateRef { bucket: "plans".into() });
        RoundTripState::new(plan, run, 900, true)
    }

    fn record(step: &str, start: &str, end: &str) -> StepRecord {
        StepRecord {
            step: step.to_string(),
            started_at: time::parse(start).expect("time"),
            finished_at: time::parse(end).expect("time"),
            outcome: Outcome::Changed,
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

    #[test]
    fn every_leg_runs_under_the_round_trips_id_within_the_run_id_limit() {
        let state = state();
        state.validate().expect("valid");
        assert_eq!(state.leg_run_id(Leg::ReprotectBack), "prod-roundtrip-20261123T100000Z-reprotect-back");
        let long = RoundTripState { run: RunInfo { id: "x".repeat(50), ..state.run.clone() }, ..state.clone() };
        assert!(matches!(long.validate(), Err(DrError::InvalidInput { .. })));
        let unheld = RoundTripState { run: RunInfo { plan_state: None, ..state.run.clone() }, ..state };
        assert!(matches!(unheld.validate(), Err(DrError::InvalidInput { .. })));
    }

    #[test]
    fn a_round_trip_stopped_in_its_failback_reports_what_ran_and_what_did_not() {
        let mut state = state();
        state.legs.insert(
            Leg::Failover,
            LegExecution { execution: "arn:f".into(), status: "SUCCEEDED".into(), steps: BTreeMap::new() },
        );
        let steps = [
            (StepKey::RetirePrimary, record("retire-primary", "2026-11-23T10:20:00Z", "2026-11-23T10:25:00Z")),
            (StepKey::Replica, record("create-replica", "2026-11-23T10:25:00Z", "2026-11-23T10:26:00Z")),
            (StepKey::ReplicaStatus, record("create-replica-status", "2026-11-23T10:50:00Z", "2026-11-23T10:51:00Z")),
        ];
        state.legs.insert(
            Leg::Reprotect,
            LegExecution { execution: "arn:r".into(), status: "SUCCEEDED".into(), steps: steps.into_iter().collect() },
        );
        let mut failback =
            RunbookState::new(state.plan.clone(), RunInfo::new(state.leg_run_id(Leg::Failback), time::now(), "t"));
        failback.run.direction = Direction::ToPrimary;
        state.next = Some(failback);
        state.error = Some(CaughtError { error: "States.TaskFailed".into(), cause: "RpoExceeded".into() });

        let report = build_report(&state, &BTreeMap::new(), Vec::new(), "failing-over".into());
        assert_eq!(report.head.status, RunStatus::Failed);
        let statuses: Vec<LegStatus> = report.legs.iter().map(|leg| leg.status).collect();
        assert_eq!(statuses, [LegStatus::Succeeded, LegStatus::Succeeded, LegStatus::Failed, LegStatus::NotRun]);
        let reprotect = report.leg(Leg::Reprotect).expect("reprotect");
        assert_eq!(reprotect.timeline.len(), 2);
        assert_eq!(reprotect.timeline[1].seconds, 26.0 * 60.0, "from the replica's creation to its lag in the RPO");
        assert!(report.leg(Leg::Failback).expect("failback").detail.contains("no report found"));
        assert_eq!(report.downtime_seconds, None, "not measured: the failback did not finish");
        let markdown = render_markdown(&report).expect("markdown");
        assert!(markdown.contains("**Stopped by:** `States.TaskFailed`: RpoExceeded"), "{markdown}");
        let not_run =
            "| reprotect: an Ireland replica of Paris | prod-roundtrip-20261123T100000Z-reprotect-back | NotRun |";
        assert!(markdown.contains(not_run), "{markdown}");
        let svg = render_svg(&report).expect("svg");
        assert_eq!(svg.matches("<rect").count(), 2, "the reprotect's two phases; the failover's report was not found");
    }

    #[test]
    fn the_legs_are_labelled_with_the_plans_region_names_or_codes() {
        let labels = |plan: &Plan| Leg::ALL.map(|leg| leg.label(plan.primary_name(), plan.dr_name()));
        let mut plan = state().plan;
        assert_eq!(
            labels(&plan),
            [
                "failover to Ireland",
                "reprotect: a Paris replica of Ireland",
                "failback to Paris",
                "reprotect: an Ireland replica of Paris"
            ]
        );
        (plan.primary_region, plan.dr_region) = ("us-east-1".into(), "us-west-2".into());
        plan.region_names.clear();
        assert_eq!(
            labels(&plan),
            [
                "failover to us-west-2",
                "reprotect: a us-east-1 replica of us-west-2",
                "failback to us-east-1",
                "reprotect: a us-west-2 replica of us-east-1"
            ]
        );
    }
}
