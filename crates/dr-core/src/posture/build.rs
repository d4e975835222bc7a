//! The posture from the evidence (pure): per plan, every event in the window newest first, who
//! started and who approved what, the longest time without a successful drill or restore test,
//! the readiness now and its drift, and the totals. [`Posture`] is the JSON `drctl report
//! posture` writes beside the page.
//!
//! How a run is classified (from its [`RunInfo`], as `game_day`, `trigger`, `drctl` and the round
//! trip set it):
//!
//! - a dry run (`mode: dry-run`), whatever started it: [`EventKind::DryRun`];
//! - an incident (`incident`, or a trigger `alarm: ...`): [`EventKind::AutomaticFailover`];
//! - a move back to the primary region (`to-primary`): [`EventKind::Failback`];
//! - a failover started as a game day (`game_day`; in older reports, a planned run whose trigger
//!   is `game day (drill) by ...` or a round trip's failover leg's, `round trip <id> (failover)
//!   by ...`): [`EventKind::LiveDrill`];
//! - any other failover (`manual (...) by ...: drctl`, planned or unplanned):
//!   [`EventKind::ManualFailover`].
//!
//! A round trip's own report is a [`EventKind::RoundTrip`]; a restore test's, a
//! [`EventKind::RestoreTest`]. A run that is a round trip's leg says so (`round_trip`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Evidence, Window};
use crate::plan::Direction;
use crate::readiness::CheckRow;
use crate::readiness::scheduled::ReadinessSnapshot;
use crate::report::{RunKind, verdict};
use crate::restore::report::RestoreReport;
use crate::run::{Approval, FailoverKind, Incident, RunInfo, RunMode, RunStatus};
use crate::runbook::report::RunReport;
use crate::runbook::round_trip::{Leg, LegStatus, RoundTripReport};
use crate::store::{Decision, DecisionStatus, PlanState, Question};
use crate::time::{self, Timestamp};

/// A readiness snapshot older than this (at the window's end) is flagged stale: the scheduled
/// check runs every 30 minutes by default (`ReadinessCheckSchedule`), so a few hours without one
/// means it stopped.
pub const READINESS_STALE_AFTER_SECONDS: u64 = 3 * 3600;

/// The DR posture of every plan over a window.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Posture {
    pub window: Window,
    pub plans: Vec<PlanPosture>,
}

/// One plan's posture.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct PlanPosture {
    pub plan: String,
    pub primary_region_name: String,
    pub dr_region_name: String,
    pub rto_target_seconds: u64,
    pub rpo_target_seconds: u64,
    /// The plan's single-flight state now; `None` if it was never armed.
    pub state: Option<PlanState>,
    /// The newest readiness snapshot (up to the window's end); `None` if the check never ran.
    pub readiness: Option<ReadinessNow>,
    /// Every drill, failover, failback, dry run, round trip and restore test started in the
    /// window, newest first.
    pub events: Vec<Event>,
    /// Every human decision on a run in the window (or taken in it), and the approvals the run
    /// reports recorded at their RPO gate without one, newest first.
    pub approvals: Vec<ApprovalRecord>,
    /// The newest successful live drill (a game day's live failover, or a round trip), at any
    /// time up to the window's end.
    pub last_successful_drill: Option<Milestone>,
    /// The newest restore test, whatever its status, up to the window's end.
    pub last_restore_test: Option<Milestone>,
    /// The newest successful restore test, up to the window's end.
    pub last_successful_restore_test: Option<Milestone>,
    /// The longest time in the window without a successful live drill.
    pub drill_gap: Gap,
    /// The longest time in the window without a successful restore test.
    pub restore_test_gap: Gap,
    /// Readiness changes in the window (drifted, findings changed, ready again), newest first.
    pub drift: Vec<DriftEntry>,
    pub totals: Totals,
    /// Files that could not be read, as the evidence names them.
    pub unreadable: Vec<String>,
}

/// What an event was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    /// A live planned failover started as a game day (or a round trip's failover leg).
    LiveDrill,
    /// An unplanned failover the alarm trigger started on a confirmed incident.
    AutomaticFailover,
    /// A failover an operator started by hand (`drctl failover start`), planned or unplanned.
    ManualFailover,
    /// A move back to the primary region (by hand, a game day or a round trip's leg).
    Failback,
    /// A dry run: every check, nothing changed.
    DryRun,
    /// A round trip: failover, verification window, reprotect, failback, reprotect.
    RoundTrip,
    /// A restore test: the latest snapshot restored in the DR region, validated, deleted.
    RestoreTest,
}

impl EventKind {
    pub const ALL: [EventKind; 7] = [
        EventKind::LiveDrill,
        EventKind::AutomaticFailover,
        EventKind::ManualFailover,
        EventKind::Failback,
        EventKind::DryRun,
        EventKind::RoundTrip,
        EventKind::RestoreTest,
    ];

    /// How the page names it.
    pub fn label(self) -> &'static str {
        match self {
            EventKind::LiveDrill => "live drill",
            EventKind::AutomaticFailover => "automatic failover",
            EventKind::ManualFailover => "failover by hand",
            EventKind::Failback => "failback",
            EventKind::DryRun => "dry run",
            EventKind::RoundTrip => "round trip",
            EventKind::RestoreTest => "restore test",
        }
    }
}

/// An objective as an event achieved it: the target, what was achieved, and the verdict
/// (`met`, `MISSED`, `not measured`: [`crate::report::verdict`]).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Measure {
    pub target_seconds: u64,
    pub achieved_seconds: Option<f64>,
    pub met: Option<bool>,
    pub verdict: String,
}

impl Measure {
    pub fn new(target_seconds: u64, achieved_seconds: Option<f64>, met: Option<bool>) -> Measure {
        Measure { target_seconds, achieved_seconds, met, verdict: verdict(met).to_string() }
    }
}

/// One drill, failover, failback, dry run, round trip or restore test.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Event {
    /// When it started (the RTO's start: the alarm for an incident).
    pub at: Timestamp,
    pub kind: EventKind,
    pub run_id: String,
    /// The round trip this run is a leg of, when it is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub round_trip: Option<String>,
    pub status: RunStatus,
    /// A move's kind (planned: fenced, barrier; unplanned: an incident).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub move_kind: Option<FailoverKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The achieved RTO against the target (a restore test: the restore until available; a
    /// round trip: its failover leg's).
    pub rto: Measure,
    /// The data lost against the RPO (a restore test: the snapshot's age; a round trip: over
    /// both moves).
    pub data_loss: Measure,
    /// What the run says of its data loss, when it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_loss_summary: Option<String>,
    /// A round trip whose failover leg is an event of its own: its RTO is that leg's, counted
    /// (and charted) there.
    #[serde(default)]
    pub rto_shown_by_leg: bool,
    /// Who or what started it, as the run records it ("game day (drill) by alice").
    pub trigger: String,
    /// Who asked for it, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<Approval>,
    /// Who started it by hand, as STS verified them (ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    /// The incident an automatic run answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// The decisions humans took on this run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// The error that stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
    /// What else its report says (reduced capacity, roll-back, validation, the legs, ...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Where its report was written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<String>,
}

impl Event {
    /// A successful live drill: a game day's live failover that succeeded, or a round trip that
    /// did.
    pub fn is_successful_drill(&self) -> bool {
        matches!(self.kind, EventKind::LiveDrill | EventKind::RoundTrip) && self.status == RunStatus::Succeeded
    }

    pub fn is_successful_restore_test(&self) -> bool {
        self.kind == EventKind::RestoreTest && self.status == RunStatus::Succeeded
    }

    /// Whether its RTO counts in the totals and the chart: measured, and not a round trip whose
    /// failover leg shows it.
    pub fn counts_rto(&self) -> bool {
        self.rto.achieved_seconds.is_some() && !self.rto_shown_by_leg
    }
}

/// Where a human decision comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ApprovalSource {
    /// The run's decision in the plan store (`drctl run approve|reject`), its decider verified by
    /// STS.
    Decision,
    /// The approval the run report recorded at its RPO gate (no decision found for it).
    RunReport,
}

/// A human decision on a run.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ApprovalRecord {
    pub run_id: String,
    /// "RPO gate" or "capacity".
    pub question: String,
    /// What the run asked (the gate's refusal, the shortfall).
    pub asked: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked_at: Option<Timestamp>,
    /// `approved`, `rejected` or `pending`.
    pub decision: String,
    /// Who decided: their IAM principal's ARN (a decision), or as the run report names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// `by` is the ARN STS verified.
    pub verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    pub source: ApprovalSource,
}

impl ApprovalRecord {
    /// When it happened: decided, else asked.
    pub fn at(&self) -> Option<Timestamp> {
        self.decided_at.or(self.asked_at)
    }
}

/// A dated event, for the summary.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Milestone {
    pub at: Timestamp,
    pub run_id: String,
    pub kind: EventKind,
    pub status: RunStatus,
}

/// The longest stretch of the window without a success.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Gap {
    pub from: Timestamp,
    pub to: Timestamp,
    pub seconds: f64,
    /// It runs to the window's end: still open.
    pub ongoing: bool,
    /// It starts at the window's start (no success before it in the window).
    pub from_window_start: bool,
    /// The plan's first record (its first readiness check or run) came after the window's start:
    /// the gap is counted from there, not from before the plan existed.
    #[serde(default)]
    pub from_first_record: bool,
    /// How many successes the window holds.
    pub successes: usize,
}

/// A readiness finding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
pub struct FindingLine {
    /// The finding's stable name (`ReplicaNotReplicating`).
    pub finding: String,
    /// What was checked ("read replica").
    pub check: String,
    pub resource: String,
    pub detail: String,
}

impl FindingLine {
    fn of(row: &CheckRow) -> FindingLine {
        FindingLine {
            finding: row.finding.map_or("NotReady", |finding| finding.name()).to_string(),
            check: row.check.label().to_string(),
            resource: row.resource.clone(),
            detail: row.detail.clone(),
        }
    }
}

/// The newest readiness snapshot.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ReadinessNow {
    pub checked_at: Timestamp,
    pub ready: bool,
    /// Older than [`READINESS_STALE_AFTER_SECONDS`] at the window's end.
    pub stale: bool,
    /// Its age at the window's end.
    pub age_seconds: f64,
    pub findings: Vec<FindingLine>,
}

/// How readiness changed at a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DriftChange {
    /// The first snapshot known: where the history starts.
    FirstCheck,
    /// Ready before, not ready now.
    Drifted,
    /// Not ready before and now, with other findings.
    FindingsChanged,
    /// Not ready before, ready now.
    ReadyAgain,
}

impl DriftChange {
    pub fn label(self) -> &'static str {
        match self {
            DriftChange::FirstCheck => "first check",
            DriftChange::Drifted => "drifted: not ready",
            DriftChange::FindingsChanged => "findings changed",
            DriftChange::ReadyAgain => "ready again",
        }
    }
}

/// A change of readiness.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct DriftEntry {
    pub at: Timestamp,
    pub change: DriftChange,
    pub ready: bool,
    /// The findings at this check (none when ready).
    pub findings: Vec<FindingLine>,
}

/// How many events of a kind, and how they went.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct KindTotal {
    pub kind: EventKind,
    pub count: usize,
    pub succeeded: usize,
    pub rto_met: usize,
    pub rto_missed: usize,
    /// Of `count`, the legs of a round trip (also counted by their round trip).
    pub round_trip_legs: usize,
}

/// The window's totals.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Totals {
    /// Every kind, in [`EventKind::ALL`]'s order (zero counts included).
    pub kinds: Vec<KindTotal>,
    /// Events with a measured RTO ([`Event::counts_rto`]), and how many met it.
    pub rto_measured: usize,
    pub rto_met: usize,
    pub rto_missed: usize,
}

/// The posture of every plan in `evidence` over `window` (pure).
pub fn build(evidence: &[Evidence], window: Window) -> Posture {
    Posture { window, plans: evidence.iter().map(|plan| build_plan(plan, window)).collect() }
}

fn build_plan(evidence: &Evidence, window: Window) -> PlanPosture {
    let in_window = |at: Timestamp| window.since <= at && at <= window.until;
    // Every event known up to the window's end (the summary's "last" may predate the window).
    let mut all: Vec<Event> = Vec::new();
    let leg_ids = round_trip_legs(&evidence.round_trips);
    for report in &evidence.runs {
        all.push(run_event(report, &leg_ids));
    }
    let leg_events: BTreeSet<String> = all.iter().filter_map(|event| event.round_trip.clone()).collect();
    for report in &evidence.round_trips {
        all.push(round_trip_event(report, &leg_events));
    }
    for report in &evidence.restore_tests {
        all.push(restore_event(report));
    }
    all.retain(|event| event.at <= window.until);
    all.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| b.run_id.cmp(&a.run_id)));

    let (mut events, earlier): (Vec<Event>, Vec<Event>) = all.into_iter().partition(|event| in_window(event.at));
    let approvals = approvals(evidence, &events, window);
    for event in &mut events {
        event.approvals = approvals.iter().filter(|a| a.run_id == event.run_id).cloned().collect();
    }
    let newest = |wanted: &dyn Fn(&Event) -> bool| {
        events.iter().chain(earlier.iter()).find(|event| wanted(event)).map(|event| Milestone {
            at: event.at,
            run_id: event.run_id.clone(),
            kind: event.kind,
            status: event.status,
        })
    };
    let last_successful_drill = newest(&Event::is_successful_drill);
    let last_restore_test = newest(&|event: &Event| event.kind == EventKind::RestoreTest);
    let last_successful_restore_test = newest(&Event::is_successful_restore_test);
    let successes =
        |wanted: fn(&Event) -> bool| -> Vec<Timestamp> { events.iter().filter(|e| wanted(e)).map(|e| e.at).collect() };
    // A plan younger than the window: its gaps start at its first record, not before it existed.
    let first_record = evidence
        .readiness
        .iter()
        .map(|snapshot| snapshot.checked_at)
        .chain(events.iter().chain(earlier.iter()).map(|event| event.at))
        .min();
    let counted = match first_record {
        Some(first) if first > window.since => Window { since: first.min(window.until), until: window.until },
        _ => window,
    };
    let gap_of = |wanted: fn(&Event) -> bool| {
        let mut gap = longest_gap(counted, successes(wanted));
        gap.from_first_record = gap.from_window_start && counted.since > window.since;
        gap
    };
    PlanPosture {
        plan: evidence.plan.clone(),
        primary_region_name: evidence.primary_region_name.clone(),
        dr_region_name: evidence.dr_region_name.clone(),
        rto_target_seconds: evidence.rto_target_seconds,
        rpo_target_seconds: evidence.rpo_target_seconds,
        state: evidence.state.clone(),
        readiness: readiness_now(&evidence.readiness, window.until),
        drill_gap: gap_of(Event::is_successful_drill),
        restore_test_gap: gap_of(Event::is_successful_restore_test),
        drift: drift(&evidence.readiness, window),
        totals: totals(&events),
        last_successful_drill,
        last_restore_test,
        last_successful_restore_test,
        events,
        approvals,
        unreadable: evidence.unreadable.clone(),
    }
}

/// What started `run`, and so what it was: the dashboard's [`RunKind`], with a failover told
/// apart as automatic (an incident's) or by hand (see the module's documentation).
pub fn classify(run: &RunInfo, direction: Direction) -> EventKind {
    let as_reported = RunInfo { direction, ..run.clone() };
    match RunKind::of_move(&as_reported) {
        RunKind::DryRun => EventKind::DryRun,
        RunKind::Failback => EventKind::Failback,
        RunKind::Drill => EventKind::LiveDrill,
        _ if run.incident.is_some() || run.trigger.starts_with("alarm") => EventKind::AutomaticFailover,
        _ if is_game_day_before_marking(run) => EventKind::LiveDrill,
        _ => EventKind::ManualFailover,
    }
}

/// A game day's run in a report written before runs were marked (`RunInfo::game_day`): a planned
/// run whose trigger says so.
fn is_game_day_before_marking(run: &RunInfo) -> bool {
    run.kind == FailoverKind::Planned
        && (run.trigger.starts_with("game day") || round_trip_of_trigger(&run.trigger).is_some())
}

/// The round trip a leg's trigger names: `round trip <id> (<leg>) by <who>`, in a report written
/// before legs named their round trip (`RunInfo::round_trip`).
fn round_trip_of_trigger(trigger: &str) -> Option<&str> {
    let rest = trigger.strip_prefix("round trip ")?;
    let (id, _) = rest.split_once(" (")?;
    (!id.is_empty() && !id.contains(' ')).then_some(id)
}

/// Every leg run id of the round trips' reports, with its round trip.
fn round_trip_legs(round_trips: &[RoundTripReport]) -> Vec<(String, String)> {
    round_trips
        .iter()
        .flat_map(|report| report.legs.iter().map(|leg| (leg.run_id.clone(), report.head.run.id.clone())))
        .collect()
}

fn run_event(report: &RunReport, legs: &[(String, String)]) -> Event {
    let run = &report.head.run;
    let kind = classify(run, report.direction);
    // The leg says so itself (`RunInfo::round_trip`); an older one is known by its round trip's
    // report, or by the trigger text its round trip gave it.
    let round_trip = run
        .round_trip
        .clone()
        .or_else(|| legs.iter().find(|(leg, _)| *leg == run.id).map(|(_, round_trip)| round_trip.clone()))
        .or_else(|| round_trip_of_trigger(&run.trigger).map(str::to_string));
    let achieved = &report.achieved;
    let mut notes = Vec::new();
    if let Some(round_trip) = &round_trip {
        notes.push(format!("leg of round trip {round_trip}"));
    }
    if run.mode == RunMode::DryRun {
        notes.push(format!("dry run of a {} {}: nothing changed", run.kind.name(), report.direction.move_name()));
    }
    if let Some(refused) = &report.gate_refused {
        notes.push(format!("RPO gate refused: {refused}"));
    }
    notes.extend(report.shortfall.iter().map(|line| format!("reduced capacity: {line}")));
    notes.extend(report.split_data_tier.iter().map(|line| format!("data tier split: {line}")));
    notes.extend(report.rolled_back.iter().cloned());
    // A dry run lost nothing and left the region as it was: its report's data loss is a forecast.
    let loss = report.data_loss.as_ref().filter(|_| run.mode == RunMode::Live);
    if let Some(loss) = loss {
        notes.push(format!("{}: {}", loss.region_left, loss.primary));
    }
    if let Some(plan_state) = &report.plan_state {
        notes.push(format!("plan after the run: {plan_state}"));
    }
    Event {
        at: run.triggered_at,
        kind,
        run_id: run.id.clone(),
        round_trip,
        status: report.head.status,
        move_kind: Some(run.kind),
        direction: Some(report.direction),
        rto: Measure::new(achieved.rto_target_seconds, achieved.rto_seconds, achieved.rto_met),
        data_loss: Measure::new(achieved.rpo_target_seconds, achieved.rpo_seconds, achieved.rpo_met),
        data_loss_summary: loss.map(|loss| loss.summary.clone()),
        rto_shown_by_leg: false,
        trigger: run.trigger.clone(),
        requested_by: run.requested_by.clone(),
        started_by: run.started_by.as_ref().map(|principal| principal.arn.clone()),
        incident: run.incident.clone(),
        approvals: Vec::new(),
        stopped_by: report.head.error.as_ref().map(|error| error.reason()),
        notes,
        report: report.head.locations.clone(),
    }
}

fn round_trip_event(report: &RoundTripReport, leg_events: &BTreeSet<String>) -> Event {
    let run = &report.head.run;
    let failover = report.leg(Leg::Failover).and_then(|leg| leg.achieved.as_ref());
    let rto = match failover {
        Some(achieved) => Measure::new(report.rto_target_seconds, achieved.rto_seconds, achieved.rto_met),
        None => Measure::new(report.rto_target_seconds, None, None),
    };
    let data_met = report.data_lost_seconds.map(|lost| lost <= report.rpo_target_seconds as f64);
    let mut notes: Vec<String> = report
        .legs
        .iter()
        .map(|leg| {
            let status = match leg.status {
                LegStatus::Succeeded => "succeeded",
                LegStatus::Failed => "FAILED",
                LegStatus::NotRun => "not run",
            };
            let detail = if leg.detail.is_empty() { String::new() } else { format!(": {}", leg.detail) };
            format!("{} ({}) {status}{detail}", report.leg_label(leg.leg), leg.run_id)
        })
        .collect();
    if let Some(downtime) = report.downtime_seconds {
        notes.push(format!("writes refused over both moves: {downtime:.0} s"));
    }
    if let Some(served) = report.dr_served_seconds {
        notes.push(format!("{} served alone for {served:.0} s", report.dr_region_name));
    }
    notes.push(format!("plan after the round trip: {}", report.plan_state));
    Event {
        at: run.triggered_at,
        kind: EventKind::RoundTrip,
        run_id: run.id.clone(),
        round_trip: None,
        status: report.head.status,
        move_kind: Some(FailoverKind::Planned),
        direction: None,
        rto,
        data_loss: Measure::new(report.rpo_target_seconds, report.data_lost_seconds, data_met),
        data_loss_summary: report.data_lost_seconds.map(|lost| format!("data lost over both moves: {lost:.0} s")),
        rto_shown_by_leg: leg_events.contains(&run.id),
        trigger: run.trigger.clone(),
        requested_by: run.requested_by.clone(),
        started_by: run.started_by.as_ref().map(|principal| principal.arn.clone()),
        incident: run.incident.clone(),
        approvals: Vec::new(),
        stopped_by: report.head.error.as_ref().map(|error| error.reason()),
        notes,
        report: report.head.locations.clone(),
    }
}

fn restore_event(report: &RestoreReport) -> Event {
    let run = &report.head.run;
    let snapshot = report.snapshot.as_deref().unwrap_or("none found");
    let mut notes = vec![format!(
        "database {}: snapshot {snapshot}{}",
        report.database,
        report.snapshot_created_at.map(|at| format!(" (created {})", time::rfc3339(at))).unwrap_or_default()
    )];
    notes.push(format!("validation: {}", report.validation.as_deref().unwrap_or("not reached")));
    notes.push(format!(
        "temporary instance {} {}",
        report.instance,
        if report.cleaned_up { "deleted" } else { "NOT confirmed deleted" }
    ));
    Event {
        at: run.triggered_at,
        kind: EventKind::RestoreTest,
        run_id: run.id.clone(),
        round_trip: None,
        status: report.head.status,
        move_kind: None,
        direction: None,
        rto: Measure::new(report.rto_target_seconds, report.restore_seconds, report.rto_met),
        data_loss: Measure::new(
            report.rpo_target_seconds,
            report.snapshot_age_seconds.map(|age| age as f64),
            report.rpo_met,
        ),
        data_loss_summary: report.snapshot_age_seconds.map(|age| format!("snapshot age {age} s")),
        rto_shown_by_leg: false,
        trigger: run.trigger.clone(),
        requested_by: run.requested_by.clone(),
        started_by: run.started_by.as_ref().map(|principal| principal.arn.clone()),
        incident: run.incident.clone(),
        approvals: Vec::new(),
        stopped_by: report.head.error.as_ref().map(|error| error.reason()),
        notes,
        report: report.head.locations.clone(),
    }
}

fn question_name(question: Question) -> &'static str {
    match question {
        Question::RpoGate => "RPO gate",
        Question::Capacity => "capacity",
        Question::DataTier => "data tier",
    }
}

/// The decisions on the window's runs (or taken in it), and the gate approvals the window's run
/// reports recorded with no decision behind them; newest first.
fn approvals(evidence: &Evidence, events: &[Event], window: Window) -> Vec<ApprovalRecord> {
    let runs: BTreeSet<&str> = events.iter().map(|event| event.run_id.as_str()).collect();
    let in_window = |at: Option<Timestamp>| at.is_some_and(|at| window.since <= at && at <= window.until);
    let mut records: Vec<ApprovalRecord> = evidence
        .decisions
        .iter()
        .filter(|d| runs.contains(d.run_id.as_str()) || in_window(d.decided_at) || in_window(Some(d.asked_at)))
        .map(decision_record)
        .collect();
    for report in evidence.runs.iter().filter(|report| runs.contains(report.head.run.id.as_str())) {
        let run_id = &report.head.run.id;
        let decided = evidence.decisions.iter().any(|d| d.run_id == *run_id && d.asks == Question::RpoGate);
        let Some(gate) = report.gate.as_ref().filter(|_| !decided) else { continue };
        let Some(approval) = &gate.approval else { continue };
        records.push(ApprovalRecord {
            run_id: run_id.clone(),
            question: question_name(Question::RpoGate).to_string(),
            asked: gate.reason.clone(),
            asked_at: None,
            decision: DecisionStatus::Approved.name().to_string(),
            by: Some(approval.by.clone()),
            verified: false,
            reason: Some(approval.reason.clone()),
            decided_at: None,
            source: ApprovalSource::RunReport,
        });
    }
    // Newest first; a record with no time of its own (a report's gate approval) by its run's start.
    let started = |record: &ApprovalRecord| {
        record.at().or_else(|| events.iter().find(|event| event.run_id == record.run_id).map(|event| event.at))
    };
    records.sort_by(|a, b| started(b).cmp(&started(a)).then_with(|| b.run_id.cmp(&a.run_id)));
    records
}

fn decision_record(decision: &Decision) -> ApprovalRecord {
    ApprovalRecord {
        run_id: decision.run_id.clone(),
        question: question_name(decision.asks).to_string(),
        asked: decision.question.clone(),
        asked_at: Some(decision.asked_at),
        decision: decision.status.name().to_string(),
        verified: decision.decided_by.is_some(),
        by: decision.decided_by.clone(),
        reason: decision.reason.clone(),
        decided_at: decision.decided_at,
        source: ApprovalSource::Decision,
    }
}

/// The newest snapshot up to `until`, and whether it is stale there.
fn readiness_now(snapshots: &[ReadinessSnapshot], until: Timestamp) -> Option<ReadinessNow> {
    let newest = snapshots.iter().filter(|s| s.checked_at <= until).max_by_key(|s| s.checked_at)?;
    let age_seconds = time::seconds_between(newest.checked_at, until).max(0.0);
    Some(ReadinessNow {
        checked_at: newest.checked_at,
        ready: newest.ready,
        stale: age_seconds > READINESS_STALE_AFTER_SECONDS as f64,
        age_seconds,
        findings: findings(newest),
    })
}

fn findings(snapshot: &ReadinessSnapshot) -> Vec<FindingLine> {
    snapshot.not_ready.iter().map(FindingLine::of).collect()
}

/// The readiness changes in the window, newest first: each check whose readiness (or, not ready,
/// whose findings) differ from the check before it. The newest check before the window is where
/// the history starts; without one, the window's first check is listed as the first.
fn drift(snapshots: &[ReadinessSnapshot], window: Window) -> Vec<DriftEntry> {
    let mut sorted: Vec<&ReadinessSnapshot> = snapshots.iter().filter(|s| s.checked_at <= window.until).collect();
    sorted.sort_by_key(|s| s.checked_at);
    let names = |s: &ReadinessSnapshot| -> BTreeSet<String> {
        s.not_ready.iter().map(|row| format!("{}|{}", FindingLine::of(row).finding, row.resource)).collect()
    };
    let mut before: Option<&ReadinessSnapshot> = None;
    let mut entries = Vec::new();
    for snapshot in sorted {
        if snapshot.checked_at >= window.since {
            let change = match before {
                None => Some(DriftChange::FirstCheck),
                Some(previous) if previous.ready && !snapshot.ready => Some(DriftChange::Drifted),
                Some(previous) if !previous.ready && snapshot.ready => Some(DriftChange::ReadyAgain),
                Some(previous) if !snapshot.ready && names(previous) != names(snapshot) => {
                    Some(DriftChange::FindingsChanged)
                }
                Some(_) => None,
            };
            if let Some(change) = change {
                entries.push(DriftEntry {
                    at: snapshot.checked_at,
                    change,
                    ready: snapshot.ready,
                    findings: findings(snapshot),
                });
            }
        }
        before = Some(snapshot);
    }
    entries.reverse();
    entries
}

/// The longest stretch of `window` between successes (at `successes`, any order), the stretch
/// still open at the window's end included.
pub fn longest_gap(window: Window, mut successes: Vec<Timestamp>) -> Gap {
    successes.retain(|at| window.since <= *at && *at <= window.until);
    successes.sort();
    let count = successes.len();
    // Each bound, and whether it is a success (else the window's start or end).
    let mut bounds = Vec::with_capacity(count + 2);
    bounds.push((window.since, false));
    bounds.extend(successes.into_iter().map(|at| (at, true)));
    bounds.push((window.until, false));
    let mut longest = ((window.since, false), (window.since, false));
    for pair in bounds.windows(2) {
        // Ties go to the later stretch: the one still open, if it is one of them.
        if let [from, to] = pair
            && (to.0 - from.0) >= (longest.1.0 - longest.0.0)
        {
            longest = (*from, *to);
        }
    }
    let ((from, from_success), (to, to_success)) = longest;
    Gap {
        from,
        to,
        seconds: time::seconds_between(from, to).max(0.0),
        ongoing: !to_success,
        from_window_start: !from_success,
        from_first_record: false,
        successes: count,
    }
}

fn totals(events: &[Event]) -> Totals {
    let kinds = EventKind::ALL
        .iter()
        .map(|&kind| {
            let of_kind: Vec<&Event> = events.iter().filter(|event| event.kind == kind).collect();
            KindTotal {
                kind,
                count: of_kind.len(),
                succeeded: of_kind.iter().filter(|event| event.status.is_success()).count(),
                rto_met: of_kind.iter().filter(|e| e.counts_rto() && e.rto.met == Some(true)).count(),
                rto_missed: of_kind.iter().filter(|e| e.counts_rto() && e.rto.met == Some(false)).count(),
                round_trip_legs: of_kind.iter().filter(|event| event.round_trip.is_some()).count(),
            }
        })
        .collect();
    let measured: Vec<&Event> = events.iter().filter(|event| event.counts_rto()).collect();
    Totals {
        kinds,
        rto_measured: measured.len(),
        rto_met: measured.iter().filter(|event| event.rto.met == Some(true)).count(),
        rto_missed: measured.iter().filter(|event| event.rto.met == Some(false)).count(),
    }
}

/// Evidence to build from, in tests: a production plan over October and November 2026.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::super::{Evidence, Window};
    use crate::plan::Direction;
    use crate::readiness::scheduled::ReadinessSnapshot;
    use crate::readiness::{Check, CheckRow, Finding};
    use crate::report::Head;
    use crate::restore::report::RestoreReport;
    use crate::run::{
        Approval, FailoverKind, GateDecision, GateVerdict, Incident, Principal, RunInfo, RunMode, RunStatus,
    };
    use crate::runbook::report::{Achieved, DataLoss, RunReport};
    use crate::runbook::round_trip::{Leg, LegStatus, LegSummary, RoundTripReport};
    use crate::store::{Decision, DecisionStatus, PlanState, PlanStatus, Question};
    use crate::time::{self, Timestamp};

    pub const APPROVER: &str = "arn:aws:sts::123456789012:assumed-role/DrApprover/bob";
    pub const STARTER: &str = "arn:aws:sts::123456789012:assumed-role/DrOperator/carol";
    pub const ROUND_TRIP: &str = "prod-roundtrip-20261110T100000Z";
    pub const INCIDENT_RUN: &str = "prod-paris-primary-health-20261102T031500Z";

    pub fn at(text: &str) -> Timestamp {
        time::parse(text).expect("time")
    }

    pub fn window() -> Window {
        Window { since: at("2026-10-01T00:00:00Z"), until: at("2026-12-01T00:00:00Z") }
    }

    /// A live run of `trigger` at `start`, RTO `rto` seconds (target 4 h, RPO 1 h).
    pub fn run(id: &str, start: &str, trigger: &str, kind: FailoverKind, rto: Option<f64>) -> RunReport {
        let mut info = RunInfo::new(id, at(start), trigger);
        info.kind = kind;
        let status = if rto.is_some() { RunStatus::Succeeded } else { RunStatus::Failed };
        let rpo = match kind {
            FailoverKind::Planned => rto.map(|_| 0.0),
            FailoverKind::Unplanned => rto.map(|_| 600.0),
        };
        RunReport {
            head: Head {
                plan: "prod".into(),
                run: info,
                status,
                error: None,
                generated_at: at(start),
                locations: vec![
                    format!("s3://reports/prod/{id}/report.json"),
                    format!("s3://reports/prod/{id}/report.md"),
                ],
            },
            plan_state: None,
            achieved: Achieved {
                rto_target_seconds: 14_400,
                rto_seconds: rto,
                rto_met: rto.map(|s| s <= 14_400.0),
                rpo_target_seconds: 3600,
                rpo_seconds: rpo,
                rpo_met: rpo.map(|s| s <= 3600.0),
            },
            gate: None,
            timeline: Vec::new(),
            steps: Vec::new(),
            final_state: Vec::new(),
            mutating_calls: 0,
            direction: Direction::ToDr,
            data_loss: Some(DataLoss {
                kind,
                fenced_at: None,
                barrier_confirmed_at: None,
                summary: match kind {
                    FailoverKind::Planned => "data lost: none (proven by the barrier)".into(),
                    FailoverKind::Unplanned => "data lost: up to 600 s of writes".into(),
                },
                primary: "fenced: Paris takes no writes until it is failed back".into(),
                region_left: "Paris".into(),
            }),
            gate_refused: None,
            shortfall: Vec::new(),
            split_data_tier: None,
            rolled_back: Vec::new(),
        }
    }

    pub fn drill(id: &str, start: &str, rto: Option<f64>) -> RunReport {
        let mut report = run(id, start, "game day (drill) by alice", FailoverKind::Planned, rto);
        report.head.run.requested_by = Some(Approval { by: "alice".into(), reason: "quarterly game day".into() });
        report.head.run.game_day = true;
        report
    }

    /// An unplanned failover the alarm started, over its RTO (5 h), its RPO gate approved by bob.
    pub fn incident() -> RunReport {
        let mut report = run(
            INCIDENT_RUN,
            "2026-11-02T03:15:00Z",
            "alarm: paris-primary-health",
            FailoverKind::Unplanned,
            Some(18_000.0),
        );
        report.head.run.incident = Some(Incident {
            id: "paris-primary-health@2026-11-02T03:15:00Z".into(),
            alarm: "paris-primary-health".into(),
            alarm_at: at("2026-11-02T03:15:00Z"),
            alarm_reason: "Threshold Crossed: 3 of 3 checkers".into(),
            confirmed_at: at("2026-11-02T03:17:00Z"),
            evidence: vec!["probe timed out".into()],
        });
        report.achieved.rpo_seconds = Some(5400.0);
        report.achieved.rpo_met = Some(false);
        report.gate = Some(GateDecision {
            verdict: GateVerdict::Approved,
            lag_seconds: None,
            rpo_seconds: 3600,
            reason: "RpoExceeded: replica 5400 s behind".into(),
            approval: Some(Approval { by: APPROVER.into(), reason: "Paris is gone".into() }),
        });
        report
    }

    pub fn restore(id: &str, start: &str, seconds: Option<f64>) -> RestoreReport {
        let info = RunInfo::new(id, at(start), "schedule: monthly restore test");
        RestoreReport {
            head: Head {
                plan: "prod".into(),
                run: info,
                status: if seconds.is_some() { RunStatus::Succeeded } else { RunStatus::Failed },
                error: None,
                generated_at: at(start),
                locations: Vec::new(),
            },
            database: "db-paris".into(),
            instance: format!("{id}-db"),
            snapshot: Some("rds:db-paris-2026".into()),
            snapshot_created_at: Some(at(start)),
            snapshot_age_seconds: Some(1200),
            rpo_target_seconds: 3600,
            rpo_met: Some(true),
            restore_seconds: seconds,
            rto_target_seconds: 14_400,
            rto_met: seconds.map(|s| s <= 14_400.0),
            validation: seconds.map(|_| "42 tables, newest row 20 min old".into()),
            cleaned_up: true,
            steps: Vec::new(),
        }
    }

    pub fn snapshot(checked: &str, findings: &[(Finding, &str)]) -> ReadinessSnapshot {
        ReadinessSnapshot {
            plan: "prod".into(),
            checked_at: at(checked),
            ready: findings.is_empty(),
            not_ready: findings
                .iter()
                .map(|(finding, detail)| {
                    CheckRow::not_ready(Check::ReadReplica, "db-ireland (eu-west-1)", *finding, *detail)
                })
                .collect(),
        }
    }

    pub fn round_trip() -> (RoundTripReport, RunReport, RunReport) {
        let trigger = |leg: &str| format!("round trip {ROUND_TRIP} ({leg}) by alice");
        let failover = run(
            &format!("{ROUND_TRIP}-failover"),
            "2026-11-10T10:00:05Z",
            &trigger("failover"),
            FailoverKind::Planned,
            Some(1500.0),
        );
        let mut failback = run(
            &format!("{ROUND_TRIP}-failback"),
            "2026-11-10T11:30:00Z",
            &trigger("failback"),
            FailoverKind::Planned,
            Some(1400.0),
        );
        failback.direction = Direction::ToPrimary;
        failback.head.run.direction = Direction::ToPrimary;
        let mut info = RunInfo::new(ROUND_TRIP, at("2026-11-10T10:00:00Z"), "game day (round trip) by alice");
        info.kind = FailoverKind::Planned;
        info.requested_by = Some(Approval { by: "alice".into(), reason: "round trip before the freeze".into() });
        let leg = |leg: Leg, report: Option<&RunReport>| LegSummary {
            leg,
            run_id: format!("{ROUND_TRIP}-{}", leg.name()),
            status: LegStatus::Succeeded,
            execution: None,
            started_at: report.map(|r| r.head.run.triggered_at),
            finished_at: None,
            achieved: report.map(|r| r.achieved.clone()),
            downtime_seconds: report.map(|_| 40.0),
            detail: String::new(),
            report: Vec::new(),
            timeline: Vec::new(),
        };
        let report = RoundTripReport {
            head: Head {
                plan: "prod".into(),
                run: info,
                status: RunStatus::Succeeded,
                error: None,
                generated_at: at("2026-11-10T13:00:00Z"),
                locations: Vec::new(),
            },
            rto_target_seconds: 14_400,
            rpo_target_seconds: 3600,
            primary_region_name: "Paris".into(),
            dr_region_name: "Ireland".into(),
            legs: vec![
                leg(Leg::Failover, Some(&failover)),
                leg(Leg::Reprotect, None),
                leg(Leg::Failback, Some(&failback)),
                leg(Leg::ReprotectBack, None),
            ],
            dr_served_seconds: Some(3600.0),
            verification_seconds: 900,
            downtime_seconds: Some(80.0),
            data_lost_seconds: Some(0.0),
            final_state: Vec::new(),
            plan_state: "armed".into(),
        };
        (report, failover, failback)
    }

    /// A live drill met, an unplanned failover MISSED (approved by bob), a failback by hand, a dry
    /// run, a round trip, restore tests, readiness drift, a drill before the window.
    pub fn evidence() -> Evidence {
        let mut failback = run(
            "prod-manual-20261103T090000Z000",
            "2026-11-03T09:00:00Z",
            "manual (manual) by carol: drctl",
            FailoverKind::Planned,
            Some(2400.0),
        );
        failback.direction = Direction::ToPrimary;
        failback.head.run.direction = Direction::ToPrimary;
        failback.head.run.started_by = Some(Principal { arn: STARTER.into(), user_id: "AROA:carol".into() });
        let mut dry_run = run(
            "prod-dryrun-20261001T080000Z",
            "2026-10-01T08:00:00Z",
            "game day (dryrun) by alice",
            FailoverKind::Planned,
            None,
        );
        dry_run.head.run.mode = RunMode::DryRun;
        dry_run.head.status = RunStatus::DryRunCompleted;
        let (round_trip, failover_leg, failback_leg) = round_trip();
        Evidence {
            plan: "prod".into(),
            primary_region_name: "Paris (eu-west-3)".into(),
            dr_region_name: "Ireland (eu-west-1)".into(),
            rto_target_seconds: 14_400,
            rpo_target_seconds: 3600,
            state: Some(PlanState {
                plan: "prod".into(),
                status: PlanStatus::Armed,
                changed_at: Some(at("2026-11-10T13:00:00Z")),
                changed_by: "report".into(),
                reason: "round trip done, plan check green".into(),
                incident: None,
                run_id: Some(ROUND_TRIP.into()),
                last_automatic_run_at: None,
                primary_region: None,
                taken_from: None,
                plan_version: None,
                fenced_on_return: None,
            }),
            runs: vec![
                drill("prod-drill-20260901T090000Z", "2026-09-01T09:00:00Z", Some(800.0)),
                dry_run,
                drill("prod-drill-20261005T090000Z", "2026-10-05T09:00:00Z", Some(900.0)),
                incident(),
                failback,
                failover_leg,
                failback_leg,
            ],
            round_trips: vec![round_trip],
            restore_tests: vec![
                restore("prod-restore-20261015T020000", "2026-10-15T02:00:00Z", Some(1800.0)),
                restore("prod-restore-20261115T020000", "2026-11-15T02:00:00Z", None),
            ],
            readiness: vec![
                snapshot("2026-09-30T12:00:00Z", &[]),
                snapshot("2026-10-20T08:30:00Z", &[(Finding::ReplicaNotReplicating, "replication stopped: IO error")]),
                snapshot(
                    "2026-10-20T09:00:00Z",
                    &[
                        (Finding::ReplicaNotReplicating, "replication stopped: IO error"),
                        (Finding::RpoExceeded, "lag 4000 s"),
                    ],
                ),
                snapshot("2026-10-21T10:00:00Z", &[]),
                snapshot("2026-11-30T22:00:00Z", &[]),
            ],
            decisions: vec![Decision {
                plan: "prod".into(),
                run_id: INCIDENT_RUN.into(),
                asks: Question::RpoGate,
                status: DecisionStatus::Approved,
                question: "RpoExceeded: replica 5400 s behind".into(),
                asked_at: at("2026-11-02T03:20:00Z"),
                execution_arn: None,
                deadline: at("2026-11-02T05:20:00Z"),
                decided_by: Some(APPROVER.into()),
                decided_by_id: Some("AROA:bob".into()),
                decided_at: Some(at("2026-11-02T03:40:00Z")),
                reason: Some("Paris is gone".into()),
            }],
            unreadable: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;
    use crate::readiness::Finding;

    fn kind_of(trigger: &str, kind: FailoverKind, direction: Direction, mode: RunMode) -> EventKind {
        let mut run = RunInfo::new("r", at("2026-10-01T00:00:00Z"), trigger);
        (run.kind, run.direction, run.mode) = (kind, direction, mode);
        classify(&run, direction)
    }

    #[test]
    fn runs_are_classified_by_what_started_them() {
        use {Direction::*, FailoverKind::*, RunMode::*};
        assert_eq!(kind_of("game day (drill) by alice", Planned, ToDr, Live), EventKind::LiveDrill);
        assert_eq!(kind_of("round trip rt-1 (failover) by alice", Planned, ToDr, Live), EventKind::LiveDrill);
        assert_eq!(kind_of("round trip rt-1 (failback) by alice", Planned, ToPrimary, Live), EventKind::Failback);
        assert_eq!(kind_of("game day (failback) by alice", Planned, ToPrimary, Live), EventKind::Failback);
        assert_eq!(kind_of("game day (dryrun) by alice", Planned, ToDr, DryRun), EventKind::DryRun);
        assert_eq!(kind_of("manual (dryrun) by carol: drctl", Unplanned, ToDr, DryRun), EventKind::DryRun);
        assert_eq!(kind_of("alarm: paris-primary-health", Unplanned, ToDr, Live), EventKind::AutomaticFailover);
        assert_eq!(kind_of("manual (manual) by carol: drctl", Unplanned, ToDr, Live), EventKind::ManualFailover);
        assert_eq!(kind_of("manual (manual) by carol: drctl", Planned, ToDr, Live), EventKind::ManualFailover);
        assert_eq!(kind_of("manual (manual) by carol: drctl", Planned, ToPrimary, Live), EventKind::Failback);
        let mut marked = RunInfo::new("r", at("2026-10-01T00:00:00Z"), "something new");
        marked.game_day = true;
        assert_eq!(classify(&marked, ToDr), EventKind::LiveDrill, "marked as a game day's");
        // An unplanned run a game day could not have started is not a drill.
        assert_eq!(kind_of("game day (drill) by alice", Unplanned, ToDr, Live), EventKind::ManualFailover);
    }

    #[test]
    fn the_window_holds_every_event_newest_first_with_its_round_trip_and_approvals() {
        let posture = build(&[evidence()], window());
        let plan = &posture.plans[0];
        let kinds: Vec<(EventKind, &str)> = plan.events.iter().map(|e| (e.kind, e.run_id.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (EventKind::RestoreTest, "prod-restore-20261115T020000"),
                (EventKind::Failback, "prod-roundtrip-20261110T100000Z-failback"),
                (EventKind::LiveDrill, "prod-roundtrip-20261110T100000Z-failover"),
                (EventKind::RoundTrip, ROUND_TRIP),
                (EventKind::Failback, "prod-manual-20261103T090000Z000"),
                (EventKind::AutomaticFailover, INCIDENT_RUN),
                (EventKind::RestoreTest, "prod-restore-20261015T020000"),
                (EventKind::LiveDrill, "prod-drill-20261005T090000Z"),
                (EventKind::DryRun, "prod-dryrun-20261001T080000Z"),
            ],
            "the September drill is before the window"
        );
        let leg = &plan.events[2];
        assert_eq!(leg.round_trip.as_deref(), Some(ROUND_TRIP));
        assert!(leg.notes.contains(&format!("leg of round trip {ROUND_TRIP}")));
        let round_trip = &plan.events[3];
        assert!(round_trip.rto_shown_by_leg && !round_trip.counts_rto());
        assert_eq!(round_trip.rto.achieved_seconds, Some(1500.0), "its failover leg's RTO");

        let incident = &plan.events[5];
        assert_eq!((incident.rto.verdict.as_str(), incident.data_loss.verdict.as_str()), ("MISSED", "MISSED"));
        assert_eq!(incident.incident.as_ref().map(|i| i.alarm.as_str()), Some("paris-primary-health"));
        // The decision, verified, once: the report's gate approval is the same decision.
        assert_eq!(incident.approvals.len(), 1);
        let approval = &incident.approvals[0];
        assert_eq!((approval.by.as_deref(), approval.verified), (Some(APPROVER), true));
        assert_eq!((approval.source, approval.reason.as_deref()), (ApprovalSource::Decision, Some("Paris is gone")));
        assert_eq!(plan.approvals, vec![approval.clone()]);

        let failback = &plan.events[4];
        assert_eq!(failback.started_by.as_deref(), Some(STARTER));
        assert_eq!(plan.events[7].requested_by.as_ref().map(|r| r.by.as_str()), Some("alice"));
    }

    #[test]
    fn a_gate_approval_without_a_decision_comes_from_the_run_report_unverified() {
        let mut evidence = evidence();
        evidence.decisions.clear();
        let plan = &build(&[evidence], window()).plans[0];
        let approval = &plan.approvals[0];
        assert_eq!((approval.source, approval.verified), (ApprovalSource::RunReport, false));
        assert_eq!(approval.by.as_deref(), Some(APPROVER));
    }

    #[test]
    fn a_plan_younger_than_the_window_counts_its_gaps_from_its_first_record() {
        let mut evidence = evidence();
        evidence.restore_tests.clear();
        evidence.round_trips.clear();
        evidence.runs.clear();
        evidence.readiness.retain(|snapshot| snapshot.checked_at >= at("2026-11-20T00:00:00Z"));
        let first = evidence.readiness.iter().map(|snapshot| snapshot.checked_at).min();
        let year = Window { since: at("2025-12-01T00:00:00Z"), until: window().until };
        let plan = &build(&[evidence], year).plans[0];
        let gap = &plan.drill_gap;
        assert_eq!(Some(gap.from), first, "{gap:?}");
        assert!(gap.from_first_record && gap.ongoing && gap.successes == 0, "{gap:?}");
    }

    #[test]
    fn gaps_run_between_successes_and_up_to_the_end_of_the_window() {
        let window = window();
        let plan = &build(&[evidence()], window).plans[0];
        // Drills: Oct 5 (drill), Nov 10 (the round trip and its failover leg).
        let drill = &plan.drill_gap;
        assert_eq!((drill.from, drill.to), (at("2026-10-05T09:00:00Z"), at("2026-11-10T10:00:00Z")));
        assert!(!drill.ongoing && !drill.from_window_start);
        assert_eq!(drill.successes, 3);
        // Restore tests: Oct 15 succeeded, Nov 15 failed: the gap in progress since Oct 15 is the longest.
        let restore = &plan.restore_test_gap;
        assert_eq!((restore.from, restore.to), (at("2026-10-15T02:00:00Z"), window.until));
        assert!(restore.ongoing);
        assert_eq!(restore.seconds, time::seconds_between(restore.from, restore.to));
        assert_eq!(plan.last_successful_drill.as_ref().map(|m| m.kind), Some(EventKind::LiveDrill));
        assert_eq!(plan.last_restore_test.as_ref().map(|m| m.status), Some(RunStatus::Failed));
        assert_eq!(
            plan.last_successful_restore_test.as_ref().map(|m| m.run_id.as_str()),
            Some("prod-restore-20261015T020000")
        );

        let none = longest_gap(window, Vec::new());
        assert!(none.ongoing && none.from_window_start);
        assert_eq!((none.from, none.to, none.successes), (window.since, window.until, 0));
        let early = longest_gap(window, vec![at("2026-10-02T00:00:00Z"), at("2025-01-01T00:00:00Z")]);
        assert_eq!((early.from, early.successes), (at("2026-10-02T00:00:00Z"), 1), "outside the window: not counted");
    }

    #[test]
    fn a_success_before_the_window_is_the_last_one_though_the_window_has_none() {
        let mut evidence = evidence();
        evidence.runs.truncate(1);
        evidence.round_trips.clear();
        evidence.restore_tests.clear();
        let plan = &build(&[evidence], window()).plans[0];
        assert!(plan.events.is_empty());
        assert_eq!(plan.last_successful_drill.as_ref().map(|m| m.run_id.as_str()), Some("prod-drill-20260901T090000Z"));
        assert_eq!(plan.drill_gap.seconds, time::seconds_between(window().since, window().until));
        assert_eq!(plan.totals.rto_measured, 0);
    }

    #[test]
    fn readiness_now_is_the_newest_snapshot_flagged_stale_after_a_few_hours() {
        let plan = &build(&[evidence()], window()).plans[0];
        let now = plan.readiness.as_ref().expect("a snapshot");
        assert!(now.ready && !now.stale);
        assert_eq!(now.age_seconds, 7200.0);

        let mut evidence = evidence();
        evidence.readiness.pop();
        evidence.readiness.push(snapshot("2026-11-30T18:00:00Z", &[(Finding::AmiMissing, "ami-1 gone")]));
        let plan = &build(&[evidence], window()).plans[0];
        let now = plan.readiness.as_ref().expect("a snapshot");
        assert!(!now.ready && now.stale);
        assert_eq!(now.findings[0].finding, "AmiMissing");
    }

    #[test]
    fn drift_lists_the_changes_between_ready_and_not_ready_with_the_findings() {
        let plan = &build(&[evidence()], window()).plans[0];
        let changes: Vec<(DriftChange, Vec<&str>)> = plan
            .drift
            .iter()
            .map(|entry| (entry.change, entry.findings.iter().map(|f| f.finding.as_str()).collect()))
            .collect();
        assert_eq!(
            changes,
            [
                (DriftChange::ReadyAgain, vec![]),
                (DriftChange::FindingsChanged, vec!["ReplicaNotReplicating", "RpoExceeded"]),
                (DriftChange::Drifted, vec!["ReplicaNotReplicating"]),
            ],
            "newest first; the September snapshot is the baseline, the November one changes nothing"
        );

        let mut evidence = evidence();
        evidence.readiness.remove(0);
        let plan = &build(&[evidence], window()).plans[0];
        assert_eq!(
            plan.drift.last().map(|entry| entry.change),
            Some(DriftChange::FirstCheck),
            "the first check is the first"
        );
    }

    #[test]
    fn totals_count_each_kind_and_the_rto_met() {
        let plan = &build(&[evidence()], window()).plans[0];
        let total = |kind: EventKind| plan.totals.kinds.iter().find(|t| t.kind == kind).cloned().expect("kind");
        let drills = total(EventKind::LiveDrill);
        assert_eq!((drills.count, drills.succeeded, drills.rto_met, drills.round_trip_legs), (2, 2, 2, 1));
        let automatic = total(EventKind::AutomaticFailover);
        assert_eq!((automatic.count, automatic.rto_missed), (1, 1));
        assert_eq!(total(EventKind::RestoreTest).count, 2);
        assert_eq!(total(EventKind::DryRun).count, 1);
        assert_eq!(total(EventKind::ManualFailover).count, 0);
        // Drill, leg, failback leg, failback by hand, restore test met; the incident MISSED; the
        // round trip is counted by its leg.
        assert_eq!((plan.totals.rto_measured, plan.totals.rto_met, plan.totals.rto_missed), (6, 5, 1));
        let json = serde_json::to_value(build(&[evidence()], window())).expect("json");
        assert_eq!(json["plans"][0]["events"][5]["kind"], "automatic-failover");
        assert_eq!(json["plans"][0]["events"][5]["rto"]["verdict"], "MISSED");
    }
}
