//! The plan's custom actions (`[[custom_actions]]`): its own Lambdas, invoked at four points of
//! every failover and failback, which is how what the plan does not know (a Redis global
//! datastore, EFS replication, a cache) takes part in a run.
//!
//! One Task per point (`ActionsBeforeDataTier`, ...). Each ask invokes every action of the point
//! that has not answered ready yet, all at once, each with the run's facts and the same
//! idempotency key on every ask. An action answers `{"ready": bool, "detail": "..."}`: not ready,
//! it is asked again after the poll interval, until its `timeout_seconds` (from the point's first
//! ask) is spent (`StepTimedOut`, naming it). A function error, an answer that is not that
//! shape, or `"failed": true` is `CustomActionFailed`: the run stops as a failure of the step at
//! that point (after the data tier, a failure of the data tier: a planned move rolls back). A
//! throttled call or a lost answer leaves the action not ready, asked again with the same key:
//! an action must be idempotent, and nothing here takes a repeated ask for a second action.
//!
//! A dry run invokes each action once with `dry_run: true` (it says what it would do and changes
//! nothing): the only call of a dry run that is not a read.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::aws::hooks::{HookEffect, invoke_hook};
use crate::error::DrError;
use crate::plan::{ActionPoint, CUSTOM_ACTION_CALL_SECONDS, CustomAction, Direction};
use crate::run::table::Step;
use crate::run::{FailoverKind, Outcome, ResourceState, StepAction, StepRecord, StepTimer, ValidState};
use crate::time;

/// What a custom action receives, on every ask.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CustomActionRequest {
    /// The action's name in the plan.
    pub action: String,
    pub point: ActionPoint,
    pub plan: String,
    pub run_id: String,
    /// The same on every ask of this action in this run (`<run_id>/<action>`): the action's own
    /// record of what it started.
    pub idempotency_key: String,
    /// `planned` (a drill, a planned move, a failback: the primary answers) or `unplanned`.
    pub kind: FailoverKind,
    /// `to-dr` (a failover) or `to-primary` (a failback).
    pub direction: Direction,
    /// The region the run leaves and the one it moves to (where the action runs), as codes.
    pub from_region: String,
    pub to_region: String,
    pub dry_run: bool,
    /// 1 on the first ask of this action in this run.
    pub ask: u32,
}

/// What a custom action answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct CustomActionAnswer {
    /// Done: the run may go on past it.
    pub ready: bool,
    #[serde(default)]
    pub detail: String,
    /// The action cannot be done: the run stops (`CustomActionFailed`).
    #[serde(default)]
    pub failed: bool,
}

/// The fact of a point's record that keeps an action's answer: `action:<name>` = `ready (ask
/// <n>)` or `asked <n>: <detail>`.
fn answer_fact(action: &CustomAction) -> String {
    format!("action:{}", action.name)
}

/// The handler that serves every point (template.yaml's CustomActionsFunction).
pub const HANDLER: &str = "custom-actions";

/// The row of the failover table that runs `point`: its Task's key and record name.
fn point_row(point: ActionPoint) -> Result<&'static Step, DrError> {
    let action = match point {
        ActionPoint::BeforeDataTier => StepAction::BeforeDataTier,
        ActionPoint::AfterDataTier => StepAction::AfterDataTier,
        ActionPoint::AfterCompute => StepAction::AfterCompute,
        ActionPoint::AfterTraffic => StepAction::AfterTraffic,
    };
    super::FAILOVER.step(HANDLER, action)
}

/// One action's state after this ask.
enum Asked {
    Ready(String),
    NotReady(String),
}

/// Runs the plan's custom actions at `point`: ready once every one of them has answered ready.
pub async fn run_point(clients: &AwsClients, state: &ValidState, point: ActionPoint) -> Result<StepRecord, DrError> {
    let row = point_row(point)?;
    let (key, name) = (row.key, row.name);
    let timer = StepTimer::start(name, clients);
    let actions: Vec<&CustomAction> = state.plan.custom_actions_at(point).collect();
    if actions.is_empty() {
        return Ok(timer.finish(Outcome::Checked, true, format!("no custom action at {point}"), Vec::new()));
    }
    let earlier = state.step(key);
    let first_ask = earlier.map_or_else(time::now, |record| record.started_at);
    let ask = earlier.map_or(0, |record| record.attempt) + 1;
    let done = |action: &CustomAction| {
        earlier
            .and_then(|record| record.facts.get(&answer_fact(action)))
            .is_some_and(|answer| answer.starts_with("ready"))
    };
    let pending: Vec<&CustomAction> = actions.iter().copied().filter(|action| !done(action)).collect();
    let answers =
        futures_util::future::join_all(pending.iter().map(|action| ask_action(clients, state, action, ask))).await;

    let (mut facts, mut resources, mut waiting) = (Vec::new(), Vec::new(), Vec::new());
    for action in actions.iter().filter(|action| done(action)) {
        resources.push(ResourceState::new(resource_name(action), "ready (an earlier ask)"));
    }
    for (action, answer) in pending.iter().zip(answers) {
        match answer? {
            Asked::Ready(detail) => {
                facts.push((answer_fact(action), format!("ready (ask {ask})")));
                resources.push(ResourceState::new(resource_name(action), format!("ready: {detail}")));
            }
            Asked::NotReady(detail) => {
                let waited = time::elapsed(first_ask, time::now());
                let allowed = Duration::from_secs(u64::from(action.timeout_seconds));
                if waited > allowed && !state.is_dry_run() {
                    return Err(DrError::StepTimedOut {
                        step: format!("{key} ({})", action.name),
                        waited_seconds: waited.as_secs(),
                        budget_seconds: allowed.as_secs(),
                        last_state: detail,
                    });
                }
                facts.push((answer_fact(action), format!("asked {ask}: {detail}")));
                resources.push(ResourceState::new(resource_name(action), format!("not ready: {detail}")));
                waiting.push(action.name.clone());
            }
        }
    }
    // The report's timeline shows a step's detail: every action is named there, with its answer.
    let answers: Vec<String> = resources.iter().map(|r| format!("{}: {}", r.resource, r.state)).collect();
    let answers = answers.join("; ");
    let mut record = if state.is_dry_run() {
        timer.finish(Outcome::WouldChange, true, format!("dry run, at {point}: {answers}"), resources)
    } else if waiting.is_empty() {
        timer.finish(Outcome::Changed, true, format!("done at {point}: {answers}"), resources)
    } else {
        let detail = format!("not done yet at {point} ({}): {answers}", waiting.join(", "));
        let mut record = timer.finish(Outcome::NotReady, false, detail, resources);
        // Each ask's invocations would be carried into the next ask's record (an act step keeps
        // its changes): up to 20 actions asked every poll for an eighth of the RTO would outgrow
        // Step Functions' 256 KiB state. The facts count the asks; the record keeps the calls of
        // the ask that finished the point.
        record.calls.retain(|call| call.operation != "Invoke");
        record
    };
    record.facts.extend(facts);
    record.attempt = ask;
    Ok(record)
}

/// How the readiness table and the reports name an action.
fn resource_name(action: &CustomAction) -> String {
    format!("custom action {} ({})", action.name, action.function)
}

/// Asks one action once. A throttled or unanswered call leaves it not ready (asked again);
/// any other failed call is the step's error.
async fn ask_action(
    clients: &AwsClients,
    state: &ValidState,
    action: &CustomAction,
    ask: u32,
) -> Result<Asked, DrError> {
    let (plan, run) = (&state.plan, &state.run);
    let request = CustomActionRequest {
        action: action.name.clone(),
        point: action.point,
        plan: plan.name.clone(),
        run_id: run.id.clone(),
        idempotency_key: format!("{}/{}", run.id, action.name),
        kind: run.kind,
        direction: run.direction,
        from_region: plan.primary_region.clone(),
        to_region: plan.dr_region.clone(),
        dry_run: state.is_dry_run(),
        ask,
    };
    let effect = if state.is_dry_run() { HookEffect::Reads } else { HookEffect::Changes };
    let call = Duration::from_secs(u64::from(CUSTOM_ACTION_CALL_SECONDS.min(action.timeout_seconds)));
    let failed = |reason: String| DrError::CustomActionFailed {
        action: action.name.clone(),
        point: action.point.to_string(),
        reason,
    };
    // Where the run moves to: the DR region for a failover, the primary for a failback (the
    // clients are faced to the run).
    let body = match invoke_hook(&clients.dr, &action.function, &request, effect, call).await {
        Ok(Ok(body)) => body,
        Ok(Err(failure)) => return Err(failed(format!("{} answered a function error ({failure})", action.function))),
        Err(err) if err.is_retryable() => {
            tracing::info!(plan = %plan.name, action = %action.name, error = err.name(), "custom action not answered: {err}");
            return Ok(Asked::NotReady(format!("no answer yet ({}: {err})", err.name())));
        }
        Err(err) => return Err(err),
    };
    let answer: CustomActionAnswer = serde_json::from_slice(&body).map_err(|e| {
        failed(format!(
            "{} answered {:?}, not {{\"ready\": bool, \"detail\": \"...\"}} ({e})",
            action.function,
            String::from_utf8_lossy(&body)
        ))
    })?;
    if answer.failed {
        return Err(failed(answer.detail));
    }
    tracing::info!(plan = %plan.name, action = %action.name, ready = answer.ready, "custom action answered: {}", answer.detail);
    Ok(if answer.ready { Asked::Ready(answer.detail) } else { Asked::NotReady(answer.detail) })
}
