//! An incident's run: its id (the execution name) and its execution input, both derived only
//! from the incident and the stored state, so that every delivery of the same incident starts
//! the same execution.

use crate::error::DrError;
use crate::plan::Plan;
use crate::run::{Incident, RunInfo, RunbookState};
use crate::store::PlanStore;
use crate::time::{self, Timestamp};

/// The run id (= execution name) of an incident: the plan and the second the alarm fired.
pub fn incident_run_id(plan: &Plan, alarm_at: Timestamp) -> String {
    crate::run::run_id(&plan.name, &time::compact(alarm_at))
}

/// The execution input of an automatic run, derived only from the stored state, so that every
/// delivery of the incident builds the same input (Step Functions then treats a second
/// StartExecution of the same name as the same execution).
pub(super) fn incident_input(
    plan: &Plan,
    incident: &Incident,
    run_id: &str,
    store: &PlanStore,
) -> Result<RunbookState, DrError> {
    let mut run = RunInfo::new(run_id, incident.alarm_at, format!("alarm: {}", incident.alarm));
    run.incident = Some(incident.clone());
    run.plan_state = Some(store.reference());
    Ok(RunbookState::new(plan.clone(), run))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_are_compact_and_deterministic() {
        let at = time::parse("2026-11-23T15:04:05.123Z").expect("time");
        assert_eq!(time::compact(at), "20261123T150405Z");
    }
}
