//! Time budgets and polling: how long each phase of a run may take, and how often the state
//! machine asks again.
//!
//! A phase (the database, the compute, DNS, ...) may use a share of the RTO, counted in elapsed
//! time from its first attempt: a step that is not done when its phase's budget is spent fails
//! with `StepTimedOut`. Until then, transient states that clear by themselves (a replica backing
//! up, an instance stopping, throttling) are waited out: the step answers `Waiting` and the state
//! machine asks again after `poll_seconds`.
//!
//! The poll interval grows with the RTO so that the worst-case execution history stays under
//! Step Functions' 25,000 events (`tests/contract.rs` computes it from the definitions for the
//! longest RTO a plan accepts).

use std::time::Duration;

use super::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer};
use crate::error::DrError;
use crate::time::{self, Timestamp};

/// Step Functions' execution history quota.
pub const HISTORY_QUOTA: u64 = 25_000;
/// What the polling may use of it: the rest is for the steps that do not loop, retries and margin.
pub const POLLING_EVENTS: u64 = 20_000;
/// The shortest poll interval (the Wait states').
pub const MIN_POLL_SECONDS: u64 = 15;
/// The longest: a change is seen at most this late.
pub const MAX_POLL_SECONDS: u64 = 300;

/// History events per second of RTO, per second of poll interval, of the failover runbook in the
/// worst case: every loop of the run's path polls for its phase's whole budget. Each phase's
/// share of the RTO times the events of one turn of its loop (a Task is 5 events, a Wait or a
/// Choice 2). The worst path is an unplanned run's: preflight 0.125 x 9, a decision at the RPO
/// gate 0.25 x 9, database 0.5 x 9, compute 0.5 x 14, a decision below the minimum capacity
/// 0.25 x 9, DNS 0.125 x 9, and the plan's custom actions at four points, 0.125 x 9 each. A
/// planned one has the fence and barrier (0.125 x 9) instead of the decisions, then DNS and a
/// failback's stand-down, or the roll-back's unfence and mark (0.125 x 9 each): 20.5.
/// `tests/contract.rs` checks the definitions against it.
pub const FAILOVER_EVENTS_PER_RTO_SECOND: f64 = 22.75;

/// How often the state machines ask again, for a plan with this RTO.
pub fn poll_seconds(rto: Duration) -> u64 {
    let needed = (FAILOVER_EVENTS_PER_RTO_SECOND * rto.as_secs_f64() / POLLING_EVENTS as f64).ceil() as u64;
    needed.clamp(MIN_POLL_SECONDS, MAX_POLL_SECONDS)
}

/// A phase of a run: the steps that share one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// The phase's first step: its first attempt starts the phase's clock.
    pub first: StepKey,
    /// The share of the RTO the phase may take.
    pub share_of_rto: f64,
}

impl StepKey {
    /// The phase a step belongs to.
    pub fn phase(self) -> Phase {
        let (first, share_of_rto) = match self {
            StepKey::Preflight => (StepKey::Preflight, 0.125),
            // A human answers within a quarter of the RTO (an hour of four), or the run fails.
            StepKey::Decision => (StepKey::Decision, 0.25),
            StepKey::CapacityDecision => (StepKey::CapacityDecision, 0.25),
            StepKey::DataTierDecision => (StepKey::DataTierDecision, 0.25),
            StepKey::Promote | StepKey::PromoteStatus => (StepKey::Promote, 0.5),
            StepKey::Standby | StepKey::StandbyStatus | StepKey::Asg | StepKey::AsgStatus => (StepKey::Standby, 0.5),
            StepKey::FlipDns | StepKey::DnsStatus => (StepKey::FlipDns, 0.125),
            // The barrier has its own, shorter timeout (`fence.barrier_timeout_seconds`).
            StepKey::Fence | StepKey::Barrier => (StepKey::Fence, 0.125),
            StepKey::Unfence => (StepKey::Unfence, 0.125),
            StepKey::Diverged => (StepKey::Diverged, 0.125),
            // Stopping instances takes minutes; the users are already back on Paris.
            StepKey::StandDown => (StepKey::StandDown, 0.125),
            // Each point of the plan's custom actions: the longest `timeout_seconds` the plan
            // accepts.
            StepKey::ActionsBeforeDataTier => (StepKey::ActionsBeforeDataTier, 0.125),
            StepKey::ActionsAfterDataTier => (StepKey::ActionsAfterDataTier, 0.125),
            StepKey::ActionsAfterCompute => (StepKey::ActionsAfterCompute, 0.125),
            StepKey::ActionsAfterTraffic => (StepKey::ActionsAfterTraffic, 0.125),
            // Reprotect is not on an outage's clock, but a snapshot and a new cross-region replica
            // of a large database take hours: half the RTO, then the RTO (within the history
            // quota at the longest RTO). Out of it, StepTimedOut; a new run goes on from there.
            StepKey::RetirePrimary => (StepKey::RetirePrimary, 0.5),
            StepKey::Replica | StepKey::ReplicaStatus => (StepKey::Replica, 1.0),
            StepKey::Snapshot => (StepKey::Snapshot, 0.125),
            // The restore itself is measured against the whole RTO.
            StepKey::Restore | StepKey::RestoreStatus => (StepKey::Restore, 1.0),
            StepKey::Validate => (StepKey::Validate, 0.125),
            // An instance still being created is deleted once it is available.
            StepKey::Cleanup => (StepKey::Cleanup, 0.25),
        };
        Phase { first, share_of_rto }
    }
}

/// The budget of a step's phase: when it started and how long it may take.
pub struct Budget {
    pub started: Timestamp,
    pub allowed: Duration,
}

impl Budget {
    /// The budget of `key`'s phase in this run; a phase not started yet starts `now`.
    pub fn of(state: &RunbookState, key: StepKey, now: Timestamp) -> Budget {
        let phase = key.phase();
        let started = state.step(phase.first).map_or(now, |first| first.started_at);
        let allowed = Duration::from_secs_f64(state.plan.targets.rto().as_secs_f64() * phase.share_of_rto);
        Budget { started, allowed }
    }

    pub fn elapsed(&self, now: Timestamp) -> Duration {
        time::elapsed(self.started, now)
    }

    /// `StepTimedOut` when the budget is spent at `now`.
    pub fn check(&self, key: StepKey, now: Timestamp, last_state: &str) -> Result<(), DrError> {
        let elapsed = self.elapsed(now);
        if elapsed > self.allowed {
            return Err(DrError::StepTimedOut {
                step: key.to_string(),
                waited_seconds: elapsed.as_secs(),
                budget_seconds: self.allowed.as_secs(),
                last_state: last_state.to_string(),
            });
        }
        Ok(())
    }
}

/// Finishes a status check: ready, not ready yet, or out of its phase's time budget
/// (`StepTimedOut`). The budget is judged at the moment the step started, as every other decision
/// of the step is ([`StepTimer::started`]): judged at two moments, a step could find the budget
/// not spent for its own verdict and spent here a few calls later.
pub fn status_record(
    timer: StepTimer<'_>,
    state: &RunbookState,
    key: StepKey,
    ready: bool,
    detail: String,
    resources: Vec<ResourceState>,
) -> Result<StepRecord, DrError> {
    if !ready {
        let at = timer.started();
        Budget::of(state, key, at).check(key, at, &detail)?;
    }
    let outcome = if ready { Outcome::Ready } else { Outcome::NotReady };
    let mut record = timer.finish(outcome, ready, detail, resources);
    record.attempt = state.next_attempt(key);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;
    use crate::run::RunInfo;

    fn at(text: &str) -> Timestamp {
        time::parse(text).expect("time")
    }

    /// The example plan (RTO 4 h), its promotion first tried at 10:00.
    fn promoting() -> RunbookState {
        let plan = Plan::parse(include_str!("../../../../plans/paris-ireland.toml"), "example").expect("example plan");
        let mut state = RunbookState::new(plan, RunInfo::new("r1", at("2026-11-23T09:59:00Z"), "test"));
        let record = StepRecord {
            step: "promote-replica".into(),
            started_at: at("2026-11-23T10:00:00Z"),
            finished_at: at("2026-11-23T10:00:01Z"),
            outcome: Outcome::Waiting,
            ready: false,
            attempt: 1,
            detail: "waiting: ReplicaNotPromotable".into(),
            resources: Vec::new(),
            calls: Vec::new(),
            facts: Default::default(),
            gate: None,
            redo: false,
        };
        state.steps.insert(StepKey::Promote, record);
        state
    }

    #[test]
    fn a_phase_is_timed_from_its_first_attempt_not_counted_in_attempts() {
        let state = promoting();
        // The database phase may take half the RTO (2 h), whoever asks: the act or the status step.
        let budget = Budget::of(&state, StepKey::PromoteStatus, at("2026-11-23T10:10:00Z"));
        assert_eq!(budget.started, at("2026-11-23T10:00:00Z"));
        assert_eq!(budget.allowed, Duration::from_secs(2 * 3600));
        // A replica backing up for 40 minutes is waited out...
        assert!(budget.check(StepKey::Promote, at("2026-11-23T10:40:00Z"), "backing-up").is_ok());
        // ...and past the budget the step is out of time, with what it waited for.
        let err = budget.check(StepKey::Promote, at("2026-11-23T12:00:01Z"), "backing-up").expect_err("spent");
        assert_eq!(err.name(), "StepTimedOut");
        assert!(
            matches!(&err, DrError::StepTimedOut { waited_seconds: 7201, budget_seconds: 7200, last_state, .. } if last_state == "backing-up"),
            "{err:?}"
        );
        // A phase not started yet starts now.
        let fresh = Budget::of(&state, StepKey::FlipDns, at("2026-11-23T13:00:00Z"));
        assert_eq!(fresh.started, at("2026-11-23T13:00:00Z"));
    }

    #[test]
    fn the_run_carries_its_poll_interval() {
        // Tier 1's 4 h: the custom actions' four points took it past the 15 s floor.
        assert_eq!(promoting().run.poll_seconds, 17);
    }

    #[test]
    fn the_poll_interval_grows_with_the_rto_within_bounds() {
        assert_eq!(poll_seconds(Duration::from_secs(30 * 60)), MIN_POLL_SECONDS);
        assert_eq!(poll_seconds(Duration::from_secs(4 * 3600)), 17);
        assert_eq!(poll_seconds(Duration::from_secs(8 * 3600)), 33);
        assert_eq!(poll_seconds(Duration::from_secs(24 * 3600)), 99);
    }
}
