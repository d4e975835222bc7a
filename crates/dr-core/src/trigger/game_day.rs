//! Manual game days: a dry run (every step checks and says what it would do, nothing changes)
//! or a live drill (a real failover, which for a production plan needs `confirm` = the plan's
//! name). Invoked through the Lambda API only (IAM), never a public endpoint.

use serde::{Deserialize, Serialize};

use super::TriggerContext;
use crate::error::DrError;
use crate::plan::{Direction, Environment};
use crate::run::{Approval, FailoverKind, RunInfo, RunMode, RunbookState};
use crate::time;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GameDayMode {
    DryRun,
    Drill,
}

/// The game-day Lambda's input.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GameDayRequest {
    pub plan: String,
    pub mode: GameDayMode,
    pub requested_by: String,
    pub reason: String,
    /// For a drill of a production plan: the plan's name, typed by the operator.
    #[serde(default)]
    pub confirm: Option<String>,
    /// An approval to pass a failed RPO gate, recorded in the report.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// `to-dr` (the default: a failover drill) or `to-primary` (fail back to Paris once Ireland
    /// is primary and reprotected).
    #[serde(default)]
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct GameDayOutcome {
    pub plan: String,
    pub mode: GameDayMode,
    pub run_id: String,
    pub execution_arn: String,
}

/// Validates a game-day request and starts its run.
pub async fn handle_game_day(ctx: &TriggerContext, request: GameDayRequest) -> Result<GameDayOutcome, DrError> {
    if request.requested_by.trim().is_empty() || request.reason.trim().is_empty() {
        return Err(DrError::InvalidInput {
            message: "a game day needs who asks (requested_by) and why (reason)".into(),
        });
    }
    if !ctx.plan_names.contains(&request.plan) {
        return Err(DrError::PlanNotFound {
            path: request.plan,
            message: format!("this deployment serves {}", ctx.plan_names.join(", ")),
        });
    }
    let plan = ctx.store.load_plan(&request.plan).await?;
    if request.mode == GameDayMode::Drill
        && plan.environment == Environment::Production
        && request.confirm.as_deref() != Some(plan.name.as_str())
    {
        return Err(DrError::DrillNotConfirmed { plan: plan.name });
    }

    let now = time::now();
    let (label, mode) = match (request.mode, request.direction) {
        (GameDayMode::DryRun, _) => ("dryrun", RunMode::DryRun),
        (GameDayMode::Drill, Direction::ToDr) => ("drill", RunMode::Live),
        (GameDayMode::Drill, Direction::ToPrimary) => ("failback", RunMode::Live),
    };
    let run_id = format!("{}-{label}-{}", plan.name, time::compact(now));
    let mut run = RunInfo::new(&run_id, now, format!("game day ({label}) by {}", request.requested_by));
    run.mode = mode;
    // Paris answers during a game day: the drill fences the writer and proves the barrier (its
    // dry run says how it would).
    run.kind = FailoverKind::Planned;
    run.direction = request.direction;
    run.requested_by = Some(Approval { by: request.requested_by.clone(), reason: request.reason.clone() });
    let mut input = RunbookState { approval: request.approval, ..RunbookState::new(plan.clone(), run) };
    input.validate()?;

    if request.mode == GameDayMode::Drill {
        // A drill is a real failover: it takes the plan like an incident does, so that an alarm
        // during the drill starts nothing, and the plan stays failed-over until re-armed.
        let by = format!("game-day: {}", request.requested_by);
        ctx.store.take_for_run(&plan, input.run.direction, &run_id, &by, &format!("drill: {}", request.reason)).await?;
        input.run.plan_state = Some(ctx.store.reference());
    }

    let execution_arn = ctx.starter.start(&input).await?;
    tracing::info!(plan = %plan.name, mode = ?request.mode, execution = %execution_arn, by = %request.requested_by, "game day started");
    Ok(GameDayOutcome { plan: plan.name, mode: request.mode, run_id, execution_arn })
}
