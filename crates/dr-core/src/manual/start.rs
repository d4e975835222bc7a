//! A move started by hand: the published plan (the operator's file must be it), who starts it on
//! record under their own id, the plan taken (a live run), then the failover state machine.

use serde::Serialize;

use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::{Direction, Plan};
use crate::run::{Approval, FailoverKind, Principal, RunInfo, RunMode, RunbookState, Starter};
use crate::store::PlanStore;
use crate::time;

/// What a move started by hand is, and who asks for it.
#[derive(Debug, Clone)]
pub struct MoveRequest {
    pub kind: FailoverKind,
    pub direction: Direction,
    /// Who starts the move (recorded in the plan state and the report).
    pub by: String,
    pub reason: String,
    /// The run id; default `<plan>-<label>-<time to the millisecond>`.
    pub run_id: Option<String>,
    /// Check everything and report what would change; change nothing, take nothing.
    pub dry_run: bool,
    /// A live run's label, in its default run id and its trigger: `manual`, `evac` (a dry run's
    /// is `dryrun`).
    pub label: &'static str,
    /// What started it, in the run's trigger (`drctl`, `evacuation of eu-west-3`).
    pub via: String,
}

/// A move started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StartedMove {
    pub plan: String,
    pub run_id: String,
    pub mode: RunMode,
    pub execution_arn: String,
}

/// The plan a run started by hand acts on: the one published in the store, which must be the
/// operator's file (a run acts on the published plan only, so a file that differs would be a
/// different plan from the one the operator reads): `UntrustedInput` otherwise, before anything.
pub async fn published_as_in(store: &PlanStore, file: &Plan, path: &std::path::Path) -> Result<Plan, DrError> {
    let published = store.load_plan(&file.name).await?;
    if published.version()? != file.version()? {
        return Err(DrError::UntrustedInput {
            what: format!("plan file {}", path.display()),
            field: "plan".into(),
            message: format!(
                "it differs from plan {} as published in s3://{}: publish it first (drctl plan publish), or run the published plan",
                file.name,
                store.reference().bucket
            ),
        });
    }
    Ok(published)
}

/// Takes the published `plan` (unless a dry run) and starts `state_machine` for the move.
/// Re-run with the same run id after a start that failed: the plan it holds is not taken twice.
pub async fn start_move(
    clients: &AwsClients,
    store: &PlanStore,
    state_machine: &str,
    plan: Plan,
    request: &MoveRequest,
) -> Result<StartedMove, DrError> {
    let MoveRequest { kind, direction, by, reason, run_id, dry_run, label, via } = request;
    if by.trim().is_empty() || reason.trim().is_empty() {
        return Err(DrError::InvalidInput { message: "a move needs who (--by) and why (--reason)".into() });
    }
    let now = time::now();
    let label = if *dry_run { "dryrun" } else { label };
    // To the millisecond: two operators starting in the same second get two run ids (and the
    // second one is refused: the plan is taken).
    let run_id = run_id.clone().unwrap_or_else(|| {
        crate::run::run_id(&plan.name, &format!("{label}-{}{:03}", time::compact(now), now.timestamp_subsec_millis()))
    });
    let mut run = RunInfo::new(&run_id, now, format!("manual ({label}) by {by}: {via}"));
    run.mode = if *dry_run { RunMode::DryRun } else { RunMode::Live };
    (run.kind, run.direction) = (*kind, *direction);
    run.requested_by = Some(Approval { by: by.clone(), reason: reason.clone() });
    let mut state = RunbookState::new(plan, run);
    state.validate()?;
    if !dry_run {
        // Who starts it, as STS verifies them, on record under their own id before the plan is
        // taken: a two-person plan's approvals are checked against it.
        let caller = crate::aws::identity::caller(&clients.home.sts).await?;
        let starter = Principal { arn: caller.arn, user_id: caller.user_id };
        store.record_start(&state.plan.name, &run_id, &starter, reason).await?;
        state.run.started_by = Some(starter);
        let held = store.read_state(&state.plan.name).await?.state;
        if !held.is_held_by(&run_id) {
            store.take_for_run(&state.plan, state.run.direction, &run_id, &format!("operator: {by}"), reason).await?;
        }
        state.run.plan_state = Some(store.reference());
    }
    let starter = Starter::new(clients.home.sfn.clone(), state_machine.to_string());
    let execution_arn = match state.run.plan_state {
        Some(_) => store.start_holding(&starter, &state, &format!("operator: {by}")).await?,
        None => starter.start(&state).await?,
    };
    Ok(StartedMove { plan: state.plan.name.clone(), run_id, mode: state.run.mode, execution_arn })
}
