//! What a Task is asked ([`StepRequest`]) and what it answers ([`StepRecord`]), kept by the
//! state machine at `$.steps.<`[`StepKey`]`>`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use strum::{EnumIter, IntoEnumIterator, IntoStaticStr};

use super::{Approval, RunbookState};
use crate::aws::{ApiCall, AwsClients};
use crate::time::{self, Timestamp};

/// Where a step's record lives in the execution state: `$.steps.<key>`. The serialised names are
/// the state machines' `ResultPath`s (checked by `tests/contract.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, EnumIter, IntoStaticStr)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
pub enum StepKey {
    // The failover runbook.
    Preflight,
    /// An unplanned run's failed RPO gate, waiting for a human (`runbook::decision`).
    Decision,
    /// An unplanned run below its minimum compute after the promotion, waiting for a human.
    CapacityDecision,
    /// An unplanned run whose data tier is split (a database promoted, another not), waiting for
    /// a human.
    DataTierDecision,
    Promote,
    PromoteStatus,
    Standby,
    StandbyStatus,
    Asg,
    AsgStatus,
    FlipDns,
    DnsStatus,
    // A planned move's fence, barrier and the fence's undo.
    Fence,
    Barrier,
    Unfence,
    /// A roll-back after a promotion: the promoted instance marked diverged.
    Diverged,
    // A failback: the DR region's compute back to standby once Paris serves.
    StandDown,
    // The plan's custom actions, one record per point of the run (`runbook::actions`).
    ActionsBeforeDataTier,
    ActionsAfterDataTier,
    ActionsAfterCompute,
    ActionsAfterTraffic,
    // Reprotect after a failover: the old primary retired, a Paris replica of Ireland.
    RetirePrimary,
    Replica,
    ReplicaStatus,
    // The restore test.
    Snapshot,
    Restore,
    RestoreStatus,
    Validate,
    Cleanup,
}

impl StepKey {
    /// The name in the execution state (`$.steps.<name>`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    pub fn all() -> impl Iterator<Item = StepKey> {
        StepKey::iter()
    }
}

impl std::fmt::Display for StepKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Task's request: which half of the step (act, or check status) and the execution state.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StepRequest {
    #[serde(default)]
    pub action: StepAction,
    pub state: RunbookState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepAction {
    /// Make the change (idempotent).
    #[default]
    Act,
    /// Report whether the change has taken effect.
    Status,
    /// Undo the change (the fence of a planned move that stops before promoting).
    Undo,
    /// The decision step's second question: an unplanned run below its minimum compute after
    /// the promotion asks a human whether to move traffic on what serves.
    Decide,
    /// The decision step's third question: an unplanned run whose data tier is split asks a human
    /// whether to move traffic on the databases promoted.
    DecideDataTier,
    /// The custom-actions handler's, one per point of the run: the plan's custom actions at that
    /// point (`plan::ActionPoint`).
    BeforeDataTier,
    AfterDataTier,
    AfterCompute,
    AfterTraffic,
    /// The report's only: the failure report of a run stopped before any change (preflight, its
    /// RPO gate, a decision), which gives the plan back to the status the run took it from.
    GiveBack,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The step made its change.
    Changed,
    /// An earlier attempt already made it: nothing was called.
    AlreadyDone,
    /// Checks only (preflight, report).
    Checked,
    /// Status: the change has taken effect.
    Ready,
    /// Status: not yet; the state machine waits and asks again.
    NotReady,
    /// A transient state that clears by itself (a replica backing up, an instance stopping,
    /// throttling): nothing done yet; the state machine waits and asks again, within the budget.
    Waiting,
    /// Dry run: the change the step would make; nothing was changed.
    WouldChange,
}

/// One resource as a step saw it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct ResourceState {
    pub resource: String,
    pub state: String,
}

impl ResourceState {
    pub fn new(resource: impl Into<String>, state: impl Into<String>) -> ResourceState {
        ResourceState { resource: resource.into(), state: state.into() }
    }
}

/// The output of every Task.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StepRecord {
    /// The function that acted, e.g. `promote-replica-status`.
    pub step: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: Outcome,
    /// Whether the state machine may go on; false while `NotReady` or `Waiting`.
    pub ready: bool,
    /// Status steps: the change fell back (an instance stopped again after its start), and the
    /// state machine runs the act step again.
    #[serde(default)]
    pub redo: bool,
    /// Status steps: how many times the status was asked, this one included.
    #[serde(default)]
    pub attempt: u32,
    pub detail: String,
    #[serde(default)]
    pub resources: Vec<ResourceState>,
    /// Every AWS call the step made.
    #[serde(default)]
    pub calls: Vec<ApiCall>,
    /// Values later steps or the report need (a Route53 change id, the chosen snapshot, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub facts: BTreeMap<String, String>,
    /// Preflight only: the RPO gate's decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateDecision>,
}

/// Fact of an act step asked more than once: when an earlier attempt last changed the estate.
pub const CHANGED_FACT: &str = "changed_at";

impl StepRecord {
    pub fn mutating_calls(&self) -> usize {
        self.calls.iter().filter(|call| call.is_mutating()).count()
    }

    pub fn seconds(&self) -> f64 {
        time::seconds_between(self.started_at, self.finished_at)
    }

    /// Another attempt of the same act step: it keeps the first attempt's start (the phase's
    /// budget counts from it), the mutating calls made so far (the report counts every change,
    /// including one whose answer was lost) and the facts recorded so far (its own win). A step
    /// that changed the estate on an earlier attempt (the fence, asked again until it holds; the
    /// retired primary, snapshotted, waited for, renamed) has changed it, though this attempt
    /// found it done: the change is kept as a fact ([`CHANGED_FACT`]) through attempts that wait.
    pub fn carry_over(&mut self, previous: &StepRecord) {
        self.started_at = previous.started_at;
        let earlier: Vec<ApiCall> = previous.calls.iter().filter(|c| c.is_mutating()).cloned().collect();
        self.calls.splice(0..0, earlier);
        let mut facts = previous.facts.clone();
        if previous.outcome == Outcome::Changed {
            facts.insert(CHANGED_FACT.into(), time::rfc3339(previous.finished_at));
        }
        facts.append(&mut self.facts);
        self.facts = facts;
        if self.outcome == Outcome::AlreadyDone && self.facts.contains_key(CHANGED_FACT) {
            self.outcome = Outcome::Changed;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateVerdict {
    /// Fresh lag within the RPO.
    WithinRpo,
    /// Lag over the RPO or not replicating, and a human approved going on.
    Approved,
    /// The replica was promoted by an earlier attempt: the lag recorded then stands.
    AlreadyPromoted,
}

/// The RPO gate's decision, recorded by preflight.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GateDecision {
    pub verdict: GateVerdict,
    /// The replica lag the failover accepts (its achieved RPO), when known.
    pub lag_seconds: Option<f64>,
    pub rpo_seconds: u64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Times a step and collects its AWS calls into its record.
pub struct StepTimer<'a> {
    step: &'static str,
    started: Timestamp,
    clients: &'a AwsClients,
    mark: usize,
}

impl<'a> StepTimer<'a> {
    pub fn start(step: &'static str, clients: &'a AwsClients) -> StepTimer<'a> {
        StepTimer { step, started: time::now(), clients, mark: clients.calls.mark() }
    }

    pub fn started(&self) -> Timestamp {
        self.started
    }

    pub fn finish(
        self,
        outcome: Outcome,
        ready: bool,
        detail: impl Into<String>,
        resources: Vec<ResourceState>,
    ) -> StepRecord {
        StepRecord {
            step: self.step.to_string(),
            started_at: self.started,
            finished_at: time::now(),
            outcome,
            ready,
            redo: false,
            attempt: 0,
            detail: detail.into(),
            resources,
            calls: self.clients.calls.since(self.mark),
            facts: BTreeMap::new(),
            gate: None,
        }
    }

    /// Dry run: the record of the change the step would make, having made none.
    pub fn would(self, change: String, resources: Vec<ResourceState>) -> StepRecord {
        self.finish(Outcome::WouldChange, true, format!("dry run: would {change}"), resources)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_task_inputs_are_valid_requests() {
        for text in [
            include_str!("../../../../events/failover-step-act.json"),
            include_str!("../../../../events/failover-step-status.json"),
        ] {
            let payload: serde_json::Value = serde_json::from_str(text).expect("JSON");
            super::super::refuse_untrusted(&payload["state"], "sample", false).expect("no plan, no approval");
            let mut request: StepRequest = serde_json::from_value(payload).expect("a task input");
            // The run names the example plan as published; the steps load it from the store.
            let example = crate::plan::Plan::parse(include_str!("../../../../plans/paris-ireland.toml"), "example")
                .expect("the example plan");
            let named = Some(example.reference().expect("a version"));
            assert_eq!(
                request.state.run.plan, named,
                "the sample names another version: `drctl failover input plans/paris-ireland.toml` prints it"
            );
            request.state.plan = example;
            request.state.validate().expect("a valid plan and run");
        }
    }

    #[test]
    fn step_keys_serialise_as_their_result_paths() {
        assert_eq!(serde_json::to_string(&StepKey::PromoteStatus).expect("json"), "\"promote_status\"");
        assert_eq!(StepKey::FlipDns.as_str(), "flip_dns");
        let keys: BTreeMap<StepKey, u8> = serde_json::from_str(r#"{"dns_status": 1, "preflight": 2}"#).expect("map");
        assert_eq!(keys.keys().copied().collect::<Vec<_>>(), [StepKey::Preflight, StepKey::DnsStatus]);
    }

    fn record(step: &str, started_at: &str, outcome: Outcome, operations: &[&str]) -> StepRecord {
        let at = |t: &str| time::parse(t).expect("time");
        StepRecord {
            step: step.into(),
            started_at: at(started_at),
            finished_at: at(started_at),
            outcome,
            ready: false,
            redo: false,
            attempt: 1,
            detail: String::new(),
            resources: Vec::new(),
            calls: operations
                .iter()
                .map(|op| ApiCall {
                    service: "EC2".into(),
                    operation: op.to_string(),
                    region: "eu-west-1".into(),
                    sent_at_ms: 0.0,
                    millis: 0.0,
                    principal: None,
                })
                .collect(),
            facts: BTreeMap::new(),
            gate: None,
        }
    }

    #[test]
    fn another_attempt_keeps_the_first_start_the_changes_and_the_facts() {
        // A start whose instance fell back, then a throttled restart whose answer was lost.
        let mut first =
            record("start-standby", "2026-11-23T10:00:00Z", Outcome::Changed, &["DescribeInstances", "StartInstances"]);
        first.facts.insert("starts.i-1".into(), "1".into());
        let mut waiting = record("start-standby", "2026-11-23T10:30:00Z", Outcome::Waiting, &["StartInstances"]);
        waiting.carry_over(&first);
        assert_eq!(waiting.started_at, first.started_at, "the compute phase's clock does not restart");
        assert_eq!(waiting.facts.get("starts.i-1").map(String::as_str), Some("1"), "starts are still counted");
        let operations: Vec<&str> = waiting.calls.iter().map(|c| c.operation.as_str()).collect();
        assert_eq!(operations, ["StartInstances", "StartInstances"], "every change is in the report");
    }

    #[test]
    fn a_step_that_changed_on_an_earlier_attempt_stays_changed_when_the_next_finds_it_done() {
        // The fence: scaled to zero on the first attempt, held (nothing left to do) on the second.
        let first = record("fence", "2026-11-23T10:00:00Z", Outcome::Changed, &["UpdateAutoScalingGroup"]);
        let mut held = record("fence", "2026-11-23T10:00:30Z", Outcome::AlreadyDone, &["DescribeAutoScalingGroups"]);
        held.carry_over(&first);
        assert_eq!(held.outcome, Outcome::Changed);
        // Changed, then waiting for it (a snapshot being created), then found done: changed.
        let waiting = record("retire-primary", "2026-11-23T10:00:00Z", Outcome::NotReady, &[]);
        let mut waited = waiting.clone();
        waited.carry_over(&first);
        let mut done = record("retire-primary", "2026-11-23T10:01:00Z", Outcome::AlreadyDone, &[]);
        done.carry_over(&waited);
        assert_eq!(done.outcome, Outcome::Changed);
        // A change whose answer was lost (waiting), then found done, stays "found done".
        let lost = record("promote-replica", "2026-11-23T10:00:00Z", Outcome::Waiting, &["PromoteReadReplica"]);
        let mut found = record("promote-replica", "2026-11-23T10:00:30Z", Outcome::AlreadyDone, &[]);
        found.carry_over(&lost);
        assert_eq!(found.outcome, Outcome::AlreadyDone);
    }
}
