//! The DR posture at a glance (`drctl report posture`): one self-contained HTML page (and its
//! JSON) from what the stack stores, for auditors and the on-call. Per plan: every drill,
//! failover, failback, round trip and restore test in the window with its achieved RTO and data
//! loss against the targets, who started and who approved what, the longest time without a
//! successful drill or restore test, the readiness drift, and the RTO achieved over time.
//!
//! [`gather`] reads the evidence (report bucket, plan store); [`build()`] turns it into a
//! [`Posture`] (pure); [`page`] renders that as plain HTML with inline SVG: no script, no
//! external asset, printable.

pub mod build;
pub mod gather;
pub mod page;

pub use build::{Event, EventKind, PlanPosture, Posture, build};
pub use page::render_html;

use serde::{Deserialize, Serialize};

use crate::readiness::scheduled::ReadinessSnapshot;
use crate::restore::report::RestoreReport;
use crate::runbook::report::RunReport;
use crate::runbook::round_trip::RoundTripReport;
use crate::store::{Decision, PlanState};
use crate::time::Timestamp;

/// Everything the stack stores about one plan, as read (oldest first where it is a history).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Evidence {
    pub plan: String,
    /// What the plan calls its regions, as written ("Paris (eu-west-3)").
    pub primary_region_name: String,
    pub dr_region_name: String,
    pub rto_target_seconds: u64,
    pub rpo_target_seconds: u64,
    /// The plan's single-flight state now (armed, failed-over, ...), if it was ever armed.
    pub state: Option<PlanState>,
    /// Every run report (`<prefix><plan>/<run>/report.json`): failovers, failbacks, live drills,
    /// dry runs, a round trip's legs.
    pub runs: Vec<RunReport>,
    /// Every round trip's own report.
    pub round_trips: Vec<RoundTripReport>,
    /// Every restore test's report (`<prefix><plan>/restore-tests/<run>/report.json`).
    pub restore_tests: Vec<RestoreReport>,
    /// The scheduled readiness check's snapshots: each change (drift, ready again) and the latest.
    pub readiness: Vec<ReadinessSnapshot>,
    /// The decisions humans took on runs (RPO gate, capacity), with their verified identities.
    pub decisions: Vec<Decision>,
    /// Files that could not be read or parsed, named (the page lists them: nothing is dropped
    /// silently).
    pub unreadable: Vec<String>,
}

/// The window the page covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Window {
    pub since: Timestamp,
    pub until: Timestamp,
}
