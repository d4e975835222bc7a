//! Manual game days: a dry run (every step checks and says what it would do, nothing changes)
//! or a live drill (a real failover, which for a production plan needs `confirm` = the plan's
//! name), which can be a round trip (failover, verification window, reprotect, failback,
//! reprotect: `runbook::round_trip`). Invoked through the Lambda API only (IAM), never a public
//! endpoint.

use serde::{Deserialize, Serialize};

use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind, Severity};
use crate::plan::{Direction, Environment, Plan};
use crate::run::{Approval, FailoverKind, RunInfo, RunMode, RunbookState};
use crate::runbook::round_trip::{Leg, RoundTripState, prepare_leg};
use crate::store::PlanStatus;
use crate::time;
use crate::trigger::TriggerContext;

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
    /// `to-dr` (the default: a failover drill) or `to-primary` (fail back to Paris once Ireland
    /// is primary and reprotected).
    #[serde(default)]
    pub direction: Direction,
    /// A live drill that comes back: failover, a verification window, reprotect, failback,
    /// reprotect, one report (`runbook::round_trip`).
    #[serde(default)]
    pub round_trip: bool,
    /// A round trip's verification window: how long Ireland serves alone before the way back.
    #[serde(default)]
    pub verification_minutes: Option<u64>,
}

/// A round trip's verification window when the request names none.
pub const DEFAULT_VERIFICATION_MINUTES: u64 = 15;
/// The longest verification window a round trip accepts (a day: longer is not a game day).
pub const MAX_VERIFICATION_MINUTES: u64 = 24 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct GameDayOutcome {
    pub plan: String,
    pub mode: GameDayMode,
    pub run_id: String,
    pub execution_arn: String,
}

/// The game-day Lambda's request from its payload: one that carries an approval or a plan (rather
/// than a plan's name) is `UntrustedInput`, anything else not a request `InvalidInput`.
pub fn parse_request(payload: serde_json::Value) -> Result<GameDayRequest, DrError> {
    crate::run::refuse_untrusted(&payload, "game-day request", true)?;
    crate::error::parse_input(payload, "game-day request {plan, mode: dry-run|drill, requested_by, reason, confirm?}")
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

    if request.round_trip || request.verification_minutes.is_some() {
        return start_round_trip(ctx, request, plan).await;
    }

    let now = time::now();
    let (label, mode) = match (request.mode, request.direction) {
        (GameDayMode::DryRun, _) => ("dryrun", RunMode::DryRun),
        (GameDayMode::Drill, Direction::ToDr) => ("drill", RunMode::Live),
        (GameDayMode::Drill, Direction::ToPrimary) => ("failback", RunMode::Live),
    };
    let run_id = crate::run::run_id(&plan.name, &format!("{label}-{}", time::compact(now)));
    let mut run = RunInfo::new(&run_id, now, format!("game day ({label}) by {}", request.requested_by));
    run.mode = mode;
    // Paris answers during a game day: the drill fences the writer and proves the barrier (its
    // dry run says how it would).
    run.kind = FailoverKind::Planned;
    run.direction = request.direction;
    run.requested_by = Some(Approval { by: request.requested_by.clone(), reason: request.reason.clone() });
    run.game_day = true;
    let mut input = RunbookState::new(plan.clone(), run);
    input.validate()?;

    if request.mode == GameDayMode::Drill {
        // A drill is a real failover: it takes the plan like an incident does, so that an alarm
        // during the drill starts nothing, and the plan stays failed-over until re-armed.
        let by = format!("game-day: {}", request.requested_by);
        ctx.store.take_for_run(&plan, input.run.direction, &run_id, &by, &format!("drill: {}", request.reason)).await?;
        input.run.plan_state = Some(ctx.store.reference());
    }

    let execution_arn = if input.run.plan_state.is_some() {
        ctx.store.start_holding(&ctx.starter, &input, &format!("game-day: {}", request.requested_by)).await?
    } else {
        ctx.starter.start(&input).await?
    };
    tracing::info!(plan = %plan.name, mode = ?request.mode, execution = %execution_arn, by = %request.requested_by, "game day started");
    let what = format!("game day {label}");
    notify_started(ctx, &plan, &what, &request, &run_id, &execution_arn).await;
    Ok(GameDayOutcome { plan: plan.name, mode: request.mode, run_id, execution_arn })
}

/// Tells the topic that a game day started: what, who and why, and the execution.
async fn notify_started(
    ctx: &TriggerContext,
    plan: &Plan,
    what: &str,
    request: &GameDayRequest,
    run_id: &str,
    execution_arn: &str,
) {
    let text = format!("{what} STARTED by {}: {}\nExecution: {execution_arn}", request.requested_by, request.reason);
    let notice =
        Notice::new(NoticeKind::RunStarted, &plan.name, Some(run_id), format!("{}: {what} STARTED", plan.name), text)
            .with_severity(Severity::Info)
            .fact("requested_by", &request.requested_by)
            .fact("execution", execution_arn);
    notify::send(&(ctx.clients_for)(plan), &notice).await;
}

/// Starts a round trip: the failover leg's input made and the plan taken for it first, so that a
/// plan that is busy or failed over is refused here, before anything starts.
async fn start_round_trip(
    ctx: &TriggerContext,
    request: GameDayRequest,
    plan: Plan,
) -> Result<GameDayOutcome, DrError> {
    let invalid = |message: &str| Err(DrError::InvalidInput { message: message.to_string() });
    if !request.round_trip {
        return invalid("verification_minutes is a round trip's (round_trip: true)");
    }
    if request.mode != GameDayMode::Drill || request.direction != Direction::ToDr {
        return invalid(&format!(
            "a round trip is a live drill from {} (mode drill, direction to-dr); its dry run is the failover's (mode dry-run)",
            plan.primary_name()
        ));
    }
    let minutes = request.verification_minutes.unwrap_or(DEFAULT_VERIFICATION_MINUTES);
    if minutes > MAX_VERIFICATION_MINUTES {
        return invalid(&format!("verification_minutes {minutes}: at most {MAX_VERIFICATION_MINUTES}"));
    }
    let Some(starter) = &ctx.round_trip else {
        return invalid("this deployment has no round-trip state machine (ROUND_TRIP_STATE_MACHINE_ARN)");
    };
    let now = time::now();
    // Its legs' run ids add their suffix to it (`round_trip::LONGEST_LEG_SUFFIX`).
    let longest = crate::run::MAX_RUN_ID_LEN - crate::runbook::round_trip::LONGEST_LEG_SUFFIX;
    let run_id = crate::run::run_id_within(&plan.name, &format!("roundtrip-{}", time::compact(now)), longest);
    let mut run = RunInfo::new(&run_id, now, format!("game day (round trip) by {}", request.requested_by));
    run.requested_by = Some(Approval { by: request.requested_by.clone(), reason: request.reason.clone() });
    run.game_day = true;
    run.plan_state = Some(ctx.store.reference());
    let armed = ctx.store.read_state(&plan.name).await?.state.status == PlanStatus::Armed;
    let mut state = RoundTripState::new(plan, run, minutes * 60, armed);
    state.validate()?;
    state.next = Some(prepare_leg(&ctx.store, &state, Leg::Failover).await?);
    let input = serde_json::to_string(&state).map_err(|e| DrError::serialisation("round-trip input", e))?;
    let execution_arn = match starter.start_named(&run_id, input).await {
        Ok(arn) => arn,
        Err(err) => {
            // The failover leg took the plan for a run that never started: given back at once.
            // (A start that may have happened, a timeout, keeps it: the reconciler decides.)
            if let Some(leg) = &state.next
                && !err.is_retryable()
            {
                let why = format!("round trip {run_id} could not be started ({}): given back", err.name());
                let by = format!("game-day: {}", request.requested_by);
                if let Err(release) = ctx.store.release(&state.plan.name, &leg.run.id, &by, &why).await {
                    tracing::error!(plan = %state.plan.name, run = %leg.run.id, "not given back ({release}): the reconciler will");
                }
            }
            return Err(err);
        }
    };
    tracing::info!(plan = %state.plan.name, execution = %execution_arn, by = %request.requested_by, "round trip started");
    notify_started(ctx, &state.plan, "round-trip game day", &request, &run_id, &execution_arn).await;
    Ok(GameDayOutcome { plan: state.plan.name, mode: request.mode, run_id, execution_arn })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_game_day_events_are_requests() {
        let samples = [
            include_str!("../../../events/game-day-dry-run.json"),
            include_str!("../../../events/game-day-drill.json"),
            include_str!("../../../events/game-day-drill-without-confirm.json"),
            include_str!("../../../events/game-day-failback.json"),
            include_str!("../../../events/game-day-round-trip.json"),
        ];
        let requests: Vec<GameDayRequest> =
            samples.iter().map(|text| serde_json::from_str(text).expect("a game-day request")).collect();
        let round_trip = &requests[4];
        assert!(round_trip.round_trip && round_trip.mode == GameDayMode::Drill);
        assert_eq!(round_trip.verification_minutes, Some(15));
    }
}
