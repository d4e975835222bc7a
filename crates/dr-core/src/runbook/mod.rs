//! The failover runbook's steps: the logic behind every Task state of
//! `statemachines/failover.asl.json`, and of `statemachines/reprotect.asl.json` ([`reprotect`]).
//!
//! The runbooks are tables ([`FAILOVER`], [`REPROTECT`]; `run::table`): a row per Task, naming
//! the Lambda handler that serves it, its action, the Task states, where its record goes and the
//! function below that does the work. Every step receives the whole execution state
//! ([`RunbookState`]: the plan, the run and the records of the steps so far) and returns a
//! [`StepRecord`](crate::run::StepRecord). Steps
//! are idempotent: run again after success, they observe the finished state and make no
//! mutating call. Bad input (an invalid plan, an empty run id) is refused with a named error
//! before any AWS call. Polling is not done here: a step answers `ready` or not (`Waiting` while a
//! transient state clears, `NotReady` until a change has taken effect), and the state machine's
//! Wait/Choice loop asks again, within the phase's time budget (`run::budget`).

pub mod actions;
pub mod capacity;
pub mod compute;
pub mod database;
pub mod decision;
pub mod dns;
pub mod fence;
pub mod preflight;
pub mod report;
pub mod reprotect;
pub mod round_trip;
pub(crate) mod services;

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::ActionPoint;
pub use crate::run::budget::status_record;
use crate::run::table::Kind::{Asks, Changes, Checks, Waits};
use crate::run::table::{Runbook, step};
use crate::run::{RunbookState, StepAction, StepAction::*, StepKey};
use crate::store::Question;

/// The failover runbook (`statemachines/failover.asl.json`), one row per Task. A failback runs
/// the same steps, the plan faced the other way (the stand-down excepted).
#[rustfmt::skip]
pub const FAILOVER: Runbook = Runbook {
    definition: "failover.asl.json",
    steps: &[
        //   handler            action  kind      Task state(s)         $.steps.<key>               record name
        step("preflight",       Act,    Checks,   &["Preflight"],        StepKey::Preflight,         "preflight",
             |c, s| Box::pin(preflight::preflight(c, s))),
        step("preflight",       Status, Asks,     &["Decision"],         StepKey::Decision,          "decision",
             |c, s| Box::pin(decision::decision(c, s, Question::RpoGate))),
        step("preflight",       Decide, Asks,     &["CapacityDecision"], StepKey::CapacityDecision,  "capacity-decision",
             |c, s| Box::pin(decision::decision(c, s, Question::Capacity))),
        step("preflight",       DecideDataTier, Asks, &["DataTierDecision"], StepKey::DataTierDecision, "data-tier-decision",
             |c, s| Box::pin(database::data_tier_decision(c, s))),
        step("fence",           Act,    Changes,  &["Fence"],            StepKey::Fence,             "fence",
             |c, s| Box::pin(fence::fence(c, s))),
        step("fence",           Status, Waits,    &["Barrier"],          StepKey::Barrier,           "barrier",
             |c, s| Box::pin(fence::barrier(c, s))),
        step("fence",           Undo,   Changes,  &["Unfence"],          StepKey::Unfence,           "unfence",
             |c, s| Box::pin(fence::unfence(c, s))),
        step("promote-replica", Act,    Changes,  &["PromoteReplica"],   StepKey::Promote,           "promote-replica",
             |c, s| Box::pin(database::promote_replica(c, s))),
        step("promote-replica", Status, Waits,    &["ReplicaStatus"],    StepKey::PromoteStatus,     "promote-replica-status",
             |c, s| Box::pin(database::replica_status(c, s))),
        step("promote-replica", Undo,   Changes,  &["MarkDiverged"],     StepKey::Diverged,          "mark-diverged",
             |c, s| Box::pin(database::mark_diverged(c, s))),
        step("start-standby",   Act,    Changes,  &["StartStandby"],     StepKey::Standby,           "start-standby",
             |c, s| Box::pin(compute::start_standby(c, s))),
        step("start-standby",   Status, Waits,    &["StandbyStatus"],    StepKey::StandbyStatus,     "start-standby-status",
             |c, s| Box::pin(compute::standby_status(c, s))),
        step("scale-asg",       Act,    Changes,  &["ScaleAsg"],         StepKey::Asg,               "scale-asg",
             |c, s| Box::pin(compute::scale_asg(c, s))),
        step("scale-asg",       Status, Waits,    &["AsgStatus"],        StepKey::AsgStatus,         "scale-asg-status",
             |c, s| Box::pin(compute::asg_status(c, s))),
        step("scale-asg",       Undo,   Changes,  &["StandDown"],        StepKey::StandDown,         "stand-down",
             |c, s| Box::pin(compute::stand_down(c, s))).as_written(),
        step("flip-dns",        Act,    Changes,  &["FlipDns"],          StepKey::FlipDns,           "flip-dns",
             |c, s| Box::pin(dns::flip_dns(c, s))),
        step("flip-dns",        Status, Waits,    &["DnsStatus"],        StepKey::DnsStatus,         "flip-dns-status",
             |c, s| Box::pin(dns::dns_status(c, s))),
        step(actions::HANDLER,  BeforeDataTier, Changes, &["ActionsBeforeDataTier"], StepKey::ActionsBeforeDataTier, "custom-actions-before-data-tier",
             |c, s| Box::pin(actions::run_point(c, s, ActionPoint::BeforeDataTier))),
        step(actions::HANDLER,  AfterDataTier,  Changes, &["ActionsAfterDataTier", "ActionsAfterDataTierApproved"], StepKey::ActionsAfterDataTier, "custom-actions-after-data-tier",
             |c, s| Box::pin(actions::run_point(c, s, ActionPoint::AfterDataTier))),
        step(actions::HANDLER,  AfterCompute,   Changes, &["ActionsAfterCompute", "ActionsAfterComputeApproved"], StepKey::ActionsAfterCompute,   "custom-actions-after-compute",
             |c, s| Box::pin(actions::run_point(c, s, ActionPoint::AfterCompute))),
        step(actions::HANDLER,  AfterTraffic,   Changes, &["ActionsAfterTraffic"],   StepKey::ActionsAfterTraffic,   "custom-actions-after-traffic",
             |c, s| Box::pin(actions::run_point(c, s, ActionPoint::AfterTraffic))),
    ],
};

/// Reprotect after a failover (`statemachines/reprotect.asl.json`): the old primary retired, then
/// a replica of the new primary in the region failed away from.
#[rustfmt::skip]
pub const REPROTECT: Runbook = Runbook {
    definition: "reprotect.asl.json",
    steps: &[
        //   handler            action  kind      Task state(s)         $.steps.<key>               record name
        // Asked again until done: each ask acts on what it finds (snapshot, wait, rename).
        step("retire-primary",  Act,    Changes,  &["RetirePrimary"],    StepKey::RetirePrimary,     "retire-primary",
             |c, s| Box::pin(reprotect::retire_primary(c, s))),
        step("create-replica",  Act,    Changes,  &["CreateReplica"],    StepKey::Replica,           "create-replica",
             |c, s| Box::pin(reprotect::create_replica(c, s))),
        step("create-replica",  Status, Waits,    &["ReplicaStatus"],    StepKey::ReplicaStatus,     "create-replica-status",
             |c, s| Box::pin(reprotect::replica_status(c, s))),
    ],
};

/// The report Tasks of the failover runbook (`failover-report`): the run report, or with
/// `give-back` the failure report of a run stopped before any change, which gives the plan back
/// to the status the run took it from. It sees the plan faced to the run, as the steps do.
pub async fn report_task(
    action: StepAction,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<report::RunReport, DrError> {
    let changed_nothing = match action {
        Act => false,
        GiveBack => true,
        other => {
            return Err(DrError::InvalidInput {
                message: format!("failover-report has no {other:?}: act or give-back"),
            });
        }
    };
    let (state, clients) = state.facing_with(clients)?;
    Box::pin(report::write_report(&clients, &state, changed_nothing)).await
}
