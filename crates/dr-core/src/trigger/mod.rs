//! How the runbook is started: automatically from a health-check alarm, or by hand on a game day.
//!
//! The alarm trigger acts only on a move **to ALARM** of an alarm a published plan names, only
//! when the plan is **armed**, only after the outage is **confirmed** (see [`confirm`]), and only
//! once per incident: the plan's state moves from armed to failing-over by a conditional write
//! (see [`state`]) and the execution name is derived from the alarm's transition time, so that
//! duplicate and concurrent deliveries of the event start exactly one execution. The plan then
//! stays failing-over / failed-over until an operator re-arms it: no ping-pong.
//!
//! A brownout (Paris failing on and off, the alarm staying in ALARM) gives one event, judged a
//! flap; no event follows while the alarm stays in ALARM. So the trigger also runs on a schedule
//! ([`reevaluate`]): every alarm a plan names that is still in ALARM is judged again on the last
//! confirmation window, until the alarm clears or the outage is confirmed. Every decision about a
//! plan is a metric (`DrOrchestrator/Trigger Decisions`, dimensions Plan and Decision) that
//! template.yaml alarms on.
//!
//! An invocation waits for the confirmation window's data at most [`MAX_CONFIRMATION_WAIT`]; what
//! is not decided by then is `pending`, and the schedule decides it. Its longest run is that wait,
//! the probe ([`PROBE_BUDGET`]) and a few plan-store and Step Functions calls (each gives up after
//! 20 s): well within the function's 900 s.

pub mod confirm;
pub mod on_return;
pub mod prepare;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarmData, CloudWatchAlarmStateValue, CloudWatchMetricAlarmConfiguration,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use aws_sdk_cloudwatch::types::{Dimension, MetricAlarm, MetricDatum, StandardUnit, StateValue};

use self::confirm::{Confirmation, LATE_DATA_GRACE, METRIC_SETTLE, check_health_metric};
use crate::aws::lookup::describe_alarm;
use crate::aws::{AwsClients, ROUTE53_CONTROL_REGION};
use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind};
use crate::plan::{Plan, Trigger};
use crate::run::{Incident, RunInfo, RunbookState, Starter};
use crate::store::{PlanStatus, PlanStore, Versioned, WriteOutcome};
use crate::time::{self, Timestamp};

/// The EventBridge event CloudWatch sends when a metric alarm changes state.
pub type AlarmStateChange = EventBridgeEvent<CloudWatchAlarmData<CloudWatchMetricAlarmConfiguration>>;

pub const ALARM_SOURCE: &str = "aws.cloudwatch";
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

/// Builds the AWS clients of a plan (a Lambda caches them; tests hand out the emulator's).
pub type ClientsForPlan = Arc<dyn Fn(&Plan) -> AwsClients + Send + Sync>;

/// Everything the triggers need, built once per Lambda container.
#[derive(Clone)]
pub struct TriggerContext {
    pub store: PlanStore,
    pub starter: Starter,
    /// The round-trip game day's machine (`statemachines/round-trip.asl.json`), where deployed.
    pub round_trip: Option<Starter>,
    /// The published plans the alarm trigger considers.
    pub plan_names: Vec<String>,
    /// The deployment's AWS account (`DEPLOYMENT_ACCOUNT_ID`): an alarm event must come from it.
    pub account_id: String,
    pub clients_for: ClientsForPlan,
    /// How often the alarm trigger looks at the metric again while the window runs.
    pub confirmation_poll: Duration,
    /// How long one invocation waits for the window's data ([`MAX_CONFIRMATION_WAIT`] in Lambda).
    pub confirmation_wait: Duration,
    /// The runbook's fence function (`FENCE_FUNCTION`), which the schedule invokes to fence the
    /// old primary region when it answers again after a failover ([`on_return`]). `None`: never.
    pub fence_function: Option<String>,
}

/// The longest an invocation waits for the confirmation window's data (the window, at most
/// 600 s, plus the minutes Route 53's datapoints take to land, up to 240 s more): then the
/// decision is `pending` and the schedule takes it over. With the probe and the plan-store and
/// Step Functions calls, the invocation stays well within its 900 s timeout.
pub const MAX_CONFIRMATION_WAIT: Duration = Duration::from_secs(660);

/// Namespace of the trigger's decision metric (`Decisions`, dimensions Plan and Decision).
pub const DECISION_NAMESPACE: &str = "DrOrchestrator/Trigger";
pub const DECISION_METRIC: &str = "Decisions";

/// What the alarm trigger decided. Stable names: logs, tests and the Lambda's answer use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// Not a move to ALARM (OK, INSUFFICIENT_DATA).
    Ignored,
    /// No published plan names the alarm.
    UnknownAlarm,
    /// The plan is disarmed, failing over or failed over.
    NotArmed,
    /// The last automatic run started less than `min_seconds_between_runs` ago.
    TooSoon,
    /// Healthy again inside the confirmation window.
    Flap,
    /// The window elapsed with minutes missing, or the probe reached the primary.
    Unconfirmed,
    /// The window's data did not land within this invocation's wait: the schedule decides.
    Pending,
    /// The move to ALARM is older than [`MAX_EVENT_AGE`]: a human decides.
    Stale,
    /// Another delivery of the same incident already started (or is starting) the run.
    AlreadyHandled,
    /// This delivery started the run.
    Started,
    /// The schedule could not judge the alarm (us-east-1 slow or denied, a misconfigured alarm):
    /// counted, and the invocation fails (retried, then the failure queue), so that a trigger that
    /// cannot see is never silent.
    Failed,
    /// The schedule fenced the old primary region, which answered again after a failover
    /// ([`on_return`]).
    FencedOnReturn,
}

impl Decision {
    /// The stable name (the metric's Decision dimension, the Lambda's answer).
    pub fn name(self) -> &'static str {
        match self {
            Decision::Ignored => "ignored",
            Decision::UnknownAlarm => "unknown-alarm",
            Decision::NotArmed => "not-armed",
            Decision::TooSoon => "too-soon",
            Decision::Flap => "flap",
            Decision::Unconfirmed => "unconfirmed",
            Decision::Pending => "pending",
            Decision::Stale => "stale",
            Decision::AlreadyHandled => "already-handled",
            Decision::Started => "started",
            Decision::Failed => "failed",
            Decision::FencedOnReturn => "fenced-on-return",
        }
    }
}

/// The alarm trigger's answer.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct TriggerOutcome {
    pub decision: Decision,
    pub alarm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
}

impl TriggerOutcome {
    fn new(decision: Decision, alarm: &str, plan: Option<&Plan>, detail: impl Into<String>) -> TriggerOutcome {
        TriggerOutcome {
            decision,
            alarm: alarm.to_string(),
            plan: plan.map(|p| p.name.clone()),
            detail: detail.into(),
            execution_arn: None,
        }
    }
}

/// What the alarm trigger is invoked with: an alarm's state change (the EventBridge rule), or
/// its schedule (EventBridge Scheduler's default notification, detail-type `Scheduled Event`).
#[derive(Debug, Clone)]
pub enum TriggerInvocation {
    AlarmStateChange(Box<AlarmStateChange>),
    Schedule(Box<EventBridgeEvent>),
}

impl<'de> Deserialize<'de> for TriggerInvocation {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = serde_json::Value::deserialize(deserializer)?;
        if value.get("detail-type").and_then(|v| v.as_str()) == Some(SCHEDULE_DETAIL_TYPE) {
            serde_json::from_value(value).map(|e| TriggerInvocation::Schedule(Box::new(e))).map_err(D::Error::custom)
        } else {
            serde_json::from_value(value)
                .map(|e| TriggerInvocation::AlarmStateChange(Box::new(e)))
                .map_err(D::Error::custom)
        }
    }
}

pub const SCHEDULE_DETAIL_TYPE: &str = "Scheduled Event";

/// The alarm trigger's answer to an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TriggerAnswer {
    Event(TriggerOutcome),
    Schedule { reevaluated: Vec<TriggerOutcome> },
}

/// Handles one invocation of the alarm trigger.
pub async fn handle_invocation(ctx: &TriggerContext, invocation: TriggerInvocation) -> Result<TriggerAnswer, DrError> {
    match invocation {
        TriggerInvocation::AlarmStateChange(event) => {
            let outcome = handle_alarm_event(ctx, *event).await?;
            if outcome.plan.is_none() {
                // Decisions about a plan are logged (and counted) with it.
                tracing::info!(alarm = %outcome.alarm, decision = outcome.decision.name(), "{}", outcome.detail);
            }
            Ok(TriggerAnswer::Event(outcome))
        }
        TriggerInvocation::Schedule(_) => {
            reevaluate(ctx).await.map(|reevaluated| TriggerAnswer::Schedule { reevaluated })
        }
    }
}

/// The parsed parts of an alarm event the trigger uses.
struct AlarmMove {
    alarm: String,
    region: Option<String>,
    to_alarm: bool,
    new_state: String,
    at: Timestamp,
    reason: String,
    /// The Route 53 health check whose `HealthCheckStatus` the alarm watches, from the alarm's own
    /// metric dimensions: the trigger never asks Route 53's API (us-east-1) on its path.
    health_check_id: Option<String>,
}

/// Checks that the event is an alarm state change of this deployment's account and takes what
/// the trigger needs.
fn alarm_move(event: AlarmStateChange, account_id: &str) -> Result<AlarmMove, DrError> {
    if event.source != ALARM_SOURCE || event.detail_type != ALARM_DETAIL_TYPE {
        return Err(DrError::InvalidInput {
            message: format!(
                "expected {ALARM_SOURCE} / {ALARM_DETAIL_TYPE:?}, got {} / {:?}",
                event.source, event.detail_type
            ),
        });
    }
    let Some(state) = event.detail.state.clone() else {
        return Err(DrError::InvalidInput { message: "alarm event without a state".to_string() });
    };
    let alarm = event.detail.alarm_name.clone();
    if alarm.trim().is_empty() {
        return Err(DrError::InvalidInput { message: "alarm event without an alarm name".to_string() });
    }
    check_origin(&event, &alarm, account_id)?;
    let health_check_id = event.detail.configuration.metrics.iter().find_map(|metric| {
        let watched = &metric.metric_stat.metric;
        (watched.namespace.as_deref() == Some("AWS/Route53") && watched.name == "HealthCheckStatus")
            .then(|| watched.dimensions.get("HealthCheckId").cloned())
            .flatten()
    });
    let new_state = match state.value {
        CloudWatchAlarmStateValue::Ok => "OK",
        CloudWatchAlarmStateValue::Alarm => "ALARM",
        CloudWatchAlarmStateValue::InsufficientData => "INSUFFICIENT_DATA",
        _ => "an unknown state",
    };
    Ok(AlarmMove {
        alarm,
        region: event.region,
        to_alarm: state.value == CloudWatchAlarmStateValue::Alarm,
        new_state: new_state.to_string(),
        at: state.timestamp,
        reason: state.reason,
        health_check_id,
    })
}

/// An alarm event must come from the deployment's own account, and name the alarm by its ARN in
/// that account and in the Route 53 control region: CloudWatch's "Alarm State Change" event
/// carries the account in `account` and the alarm's ARN in `resources`
/// (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/cloudwatch-and-eventbridge.html).
/// The EventBridge rule pins the account on AWS, but anyone allowed to invoke the function
/// directly could hand it an event of another account: `ForeignEvent`, before any call.
fn check_origin(event: &AlarmStateChange, alarm: &str, account_id: &str) -> Result<(), DrError> {
    let refuse = |message: String| Err(DrError::ForeignEvent { alarm: alarm.to_string(), message });
    match event.account.as_deref() {
        Some(account) if account == account_id => {}
        Some(account) => {
            return refuse(format!("the event comes from account {account}, this deployment is {account_id}"));
        }
        None => return refuse(format!("the event names no account (this deployment is {account_id})")),
    }
    let expected = format!(":cloudwatch:{ROUTE53_CONTROL_REGION}:{account_id}:alarm:{alarm}");
    let resources = event.resources.as_deref().unwrap_or_default();
    if resources.iter().any(|arn| {
        arn.starts_with("arn:")
            && arn.split_once(':').is_some_and(|(_, rest)| {
                // arn:<partition>:cloudwatch:<region>:<account>:alarm:<name>
                rest.split_once(':').is_some_and(|(_, tail)| format!(":{tail}") == expected)
            })
    }) {
        return Ok(());
    }
    refuse(format!(
        "the event's resources {resources:?} do not name alarm {alarm} in {ROUTE53_CONTROL_REGION} of account {account_id}"
    ))
}

/// The run id (= execution name) of an incident: the plan and the second the alarm fired.
pub fn incident_run_id(plan: &Plan, alarm_at: Timestamp) -> String {
    format!("{}-{}", plan.name, time::compact(alarm_at))
}

/// The execution input of an automatic run, derived only from the stored state, so that every
/// delivery of the incident builds the same input (Step Functions then treats a second
/// StartExecution of the same name as the same execution).
fn incident_input(plan: &Plan, incident: &Incident, run_id: &str, store: &PlanStore) -> Result<RunbookState, DrError> {
    let mut run = RunInfo::new(run_id, incident.alarm_at, format!("alarm: {}", incident.alarm));
    run.incident = Some(incident.clone());
    run.plan_state = Some(store.reference());
    Ok(RunbookState::new(plan.clone(), run))
}

/// Events older than this are not acted on: EventBridge and the function's asynchronous retries
/// are both capped at an hour (template.yaml); an older alarm is for a human to judge.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(3600);

/// How many times the trigger re-reads and re-decides after losing a conditional write.
const TAKE_ATTEMPTS: u32 = 5;

/// How the trigger came to judge an alarm.
#[derive(Debug, Clone, Copy)]
enum Judged {
    /// Its move to ALARM arrived: the window after the move is waited for until `deadline`.
    OnEvent { deadline: tokio::time::Instant },
    /// The schedule found it still in ALARM: the last whole window is judged, without waiting.
    OnSchedule,
}

/// Handles one "CloudWatch Alarm State Change" event.
pub async fn handle_alarm_event(ctx: &TriggerContext, event: AlarmStateChange) -> Result<TriggerOutcome, DrError> {
    let deadline = tokio::time::Instant::now() + ctx.confirmation_wait;
    let change = alarm_move(event, &ctx.account_id)?;
    if !change.to_alarm {
        return Ok(TriggerOutcome::new(
            Decision::Ignored,
            &change.alarm,
            None,
            format!("moved to {}: only a move to ALARM can start a failover", change.new_state),
        ));
    }
    let now = time::now();
    if change.at > time::after(now, Duration::from_secs(60)) {
        return Err(DrError::InvalidInput {
            message: format!("alarm {} moved to ALARM in the future ({})", change.alarm, time::rfc3339(change.at)),
        });
    }
    if change.region.as_deref().is_some_and(|region| region != ROUTE53_CONTROL_REGION) {
        return Ok(TriggerOutcome::new(
            Decision::UnknownAlarm,
            &change.alarm,
            None,
            format!(
                "alarm in {}: health-check alarms live in {}",
                change.region.as_deref().unwrap_or_default(),
                ROUTE53_CONTROL_REGION
            ),
        ));
    }
    let Some(plan) = plan_for_alarm(ctx, &change.alarm).await? else {
        tracing::warn!(alarm = %change.alarm, "no published plan names this alarm; ignored");
        return Ok(TriggerOutcome::new(
            Decision::UnknownAlarm,
            &change.alarm,
            None,
            "no published plan names this alarm",
        ));
    };
    let outcome = match stale(&plan, &change, now) {
        Some(stale) => stale,
        None => decide(ctx, &plan, &change, Judged::OnEvent { deadline }).await?,
    };
    let clients = (ctx.clients_for)(&plan);
    record_decisions(&clients, &plan, std::slice::from_ref(&outcome)).await;
    if let Some(notice) = decision_notice(&plan, &outcome) {
        notify::send(&clients, &notice).await;
    }
    Ok(outcome)
}

/// What a human must hear of a decision on an alarm's event: a run started, or an alarm in ALARM
/// that did not start one (a flap or unconfirmed outage, a stale event, a plan not armed, too
/// soon after the last run). Nothing for the rest (not a move to ALARM, an unknown alarm, an
/// incident already handled, a decision left to the schedule).
fn decision_notice(plan: &Plan, outcome: &TriggerOutcome) -> Option<Notice> {
    let (kind, headline, next) = match outcome.decision {
        Decision::Started => (
            NoticeKind::RunStarted,
            "unplanned failover STARTED",
            format!("Execution: {}", outcome.execution_arn.as_deref().unwrap_or("?")),
        ),
        Decision::Flap | Decision::Unconfirmed => (
            NoticeKind::TriggerDecision,
            "alarm in ALARM, NOT failed over",
            "The trigger judges it again on its schedule while the alarm stays in ALARM.".to_string(),
        ),
        Decision::Stale | Decision::NotArmed | Decision::TooSoon => (
            NoticeKind::TriggerDecision,
            "alarm in ALARM, NOT failed over: a human decides",
            format!(
                "If Paris is down: drctl failover start <plan {} file> --bucket <plan store> --state-machine <failover> --by YOU --reason WHY",
                plan.name
            ),
        ),
        _ => return None,
    };
    let text = format!("{headline} ({}): alarm {}\n{}\n{next}", outcome.decision.name(), outcome.alarm, outcome.detail);
    let notice = Notice::new(kind, &plan.name, None, format!("{}: {headline}", plan.name), text)
        .fact("decision", outcome.decision.name())
        .fact("alarm", &outcome.alarm)
        .fact("execution", &outcome.execution_arn);
    Some(notice)
}

/// A move to ALARM older than [`MAX_EVENT_AGE`] is not acted on: a human decides (the decision is
/// counted, and the template alarms on it).
fn stale(plan: &Plan, change: &AlarmMove, now: Timestamp) -> Option<TriggerOutcome> {
    if time::elapsed(change.at, now) <= MAX_EVENT_AGE {
        return None;
    }
    tracing::error!(plan = %plan.name, alarm = %change.alarm, at = %time::rfc3339(change.at), "alarm moved to ALARM too long ago to act on");
    Some(TriggerOutcome::new(
        Decision::Stale,
        &change.alarm,
        Some(plan),
        format!(
            "moved to ALARM at {}, more than {} s ago: not failing over automatically",
            time::rfc3339(change.at),
            MAX_EVENT_AGE.as_secs()
        ),
    ))
}

/// The scheduled re-evaluation: every alarm a published plan names that is still in ALARM is
/// judged again on the last whole confirmation window (a brownout that a flap decision left
/// alone, a decision left pending). An alarm that cleared is left alone. One outcome per alarm
/// in ALARM.
pub async fn reevaluate(ctx: &TriggerContext) -> Result<Vec<TriggerOutcome>, DrError> {
    let mut outcomes = Vec::new();
    let mut first_failure = None;
    for name in &ctx.plan_names {
        let plan = ctx.store.load_plan(name).await?;
        let Some(trigger) = plan.trigger.clone() else { continue };
        let clients = (ctx.clients_for)(&plan);
        let mut decided = Vec::new();
        // Every alarm seen OK (each described once per run): the primary region answers.
        let mut every_alarm_ok = !trigger.alarms.is_empty();
        // One alarm that cannot be judged (us-east-1 slow, a misconfigured alarm) does not keep
        // the others from being judged; it is counted (`failed`, which the template alarms on)
        // and fails the invocation once every alarm was judged. So is a fence on return that
        // fails.
        let mut failed = |alarm: &str, what: &str, err: DrError| {
            tracing::error!(plan = %plan.name, alarm, error = err.name(), "{what}: {err}");
            let detail = format!("{what} ({}: {err})", err.name());
            first_failure.get_or_insert(err);
            TriggerOutcome::new(Decision::Failed, alarm, Some(&plan), detail)
        };
        for alarm in &trigger.alarms {
            match reevaluate_alarm(ctx, &plan, &clients, alarm).await {
                Ok((state, outcome)) => {
                    every_alarm_ok &= state == Some(StateValue::Ok);
                    decided.extend(outcome);
                }
                Err(err) => {
                    every_alarm_ok = false;
                    decided.push(failed(alarm, "not re-evaluated", err));
                }
            }
        }
        match on_return::fence_on_return(ctx, &plan, &clients, every_alarm_ok).await {
            Ok(outcome) => decided.extend(outcome),
            Err(err) => {
                let alarm = trigger.alarms.first().cloned().unwrap_or_default();
                decided.push(failed(&alarm, "not fenced on return", err));
            }
        }
        record_decisions(&clients, &plan, &decided).await;
        // The schedule judges an alarm again every run: only a run it starts is news.
        for outcome in decided.iter().filter(|outcome| outcome.decision == Decision::Started) {
            if let Some(notice) = decision_notice(&plan, outcome) {
                notify::send(&clients, &notice).await;
            }
        }
        outcomes.extend(decided);
    }
    match first_failure {
        Some(err) => Err(err),
        None => Ok(outcomes),
    }
}

/// Judges one of a plan's alarms again if it is still in ALARM; its state (`None`: no such
/// alarm), and the outcome when it was judged.
async fn reevaluate_alarm(
    ctx: &TriggerContext,
    plan: &Plan,
    clients: &AwsClients,
    alarm: &str,
) -> Result<(Option<StateValue>, Option<TriggerOutcome>), DrError> {
    let Some(described) = describe_alarm(&clients.route53_metrics, alarm).await? else {
        tracing::warn!(plan = %plan.name, alarm, "a trigger alarm of the plan does not exist in {ROUTE53_CONTROL_REGION}");
        return Ok((None, None));
    };
    let state = described.state_value().cloned();
    if state != Some(StateValue::Alarm) {
        return Ok((state, None));
    }
    let change = alarm_in_alarm(&described)?;
    if let Some(stale) = stale(plan, &change, time::now()) {
        return Ok((state, Some(stale)));
    }
    let outcome = decide(ctx, plan, &change, Judged::OnSchedule).await?;
    Ok((state, Some(outcome)))
}

/// An alarm found in ALARM, as the event of its move would have described it.
fn alarm_in_alarm(alarm: &MetricAlarm) -> Result<AlarmMove, DrError> {
    let name = alarm.alarm_name().unwrap_or_default().to_string();
    // When it moved to ALARM (the incident), not when its state was last refreshed.
    let moved = alarm
        .state_transitioned_timestamp()
        .or(alarm.state_updated_timestamp())
        .ok_or_else(|| DrError::InvalidInput { message: format!("alarm {name} in ALARM without a state timestamp") })?;
    let at = time::from_smithy(moved).ok_or_else(|| DrError::InvalidInput {
        message: format!("alarm {name} in ALARM: its state timestamp is out of range"),
    })?;
    let health_check_id = (alarm.namespace() == Some("AWS/Route53")
        && alarm.metric_name() == Some("HealthCheckStatus"))
    .then(|| alarm.dimensions().iter().find(|d| d.name() == Some("HealthCheckId")).and_then(|d| d.value()))
    .flatten()
    .map(str::to_string);
    Ok(AlarmMove {
        alarm: name,
        region: Some(ROUTE53_CONTROL_REGION.to_string()),
        to_alarm: true,
        new_state: "ALARM".to_string(),
        at,
        reason: alarm.state_reason().unwrap_or_default().to_string(),
        health_check_id,
    })
}

/// Decides on a move to ALARM of one of the plan's alarms: refuses, or confirms the outage and
/// takes the plan.
async fn decide(
    ctx: &TriggerContext,
    plan: &Plan,
    change: &AlarmMove,
    judged: Judged,
) -> Result<TriggerOutcome, DrError> {
    let Some(trigger) = plan.trigger.clone() else {
        return Ok(TriggerOutcome::new(Decision::UnknownAlarm, &change.alarm, Some(plan), "the plan has no [trigger]"));
    };
    let run_id = incident_run_id(plan, change.at);
    let incident_id = format!("{}@{}", change.alarm, time::rfc3339(change.at));

    // Before the (minutes-long) confirmation: most events stop here.
    let read = ctx.store.read_state(&plan.name).await?;
    if let Some(outcome) = refusal(ctx, plan, &trigger, &read, &incident_id, &change.alarm).await? {
        return Ok(outcome);
    }

    let Some(health_check_id) = change.health_check_id.clone() else {
        return Err(DrError::InvalidInput {
            message: format!(
                "alarm {} watches no AWS/Route53 HealthCheckStatus with a HealthCheckId: the trigger's alarms \
                 must watch the detection health check {}",
                change.alarm, trigger.detection_health_check
            ),
        });
    };
    let clients = (ctx.clients_for)(plan);
    // The cheap, reversible half of the failover starts now if the plan says so; the promotion
    // and the routing change wait for the confirmation. Only on the event: the schedule judges a
    // window that is already over, with nothing to wait for (preparing there would start and
    // stop the compute every few minutes of a brownout).
    let waits = matches!(judged, Judged::OnEvent { .. });
    let prepared = if trigger.prepare_while_confirming && waits {
        Some(prepare::prepare(&clients, plan, &run_id).await)
    } else {
        None
    };
    let evidence = match confirm_outage(ctx, &clients, plan, &trigger, &health_check_id, change.at, judged).await? {
        Ok(evidence) => evidence,
        Err(rejected) => {
            let mut outcome = TriggerOutcome { alarm: change.alarm.clone(), ..rejected };
            // No failover: the preparation is undone. Left to the schedule (Pending), it stays:
            // the schedule judges the same incident again and, on a flap, undoes what the event
            // prepared (the stand-down only reads when there is nothing to undo).
            if trigger.prepare_while_confirming && matches!(outcome.decision, Decision::Flap | Decision::Unconfirmed) {
                let undone = prepare::undo(&clients, &ctx.store, plan, &run_id).await;
                outcome.detail = format!("{}; {undone}", outcome.detail);
            }
            return Ok(outcome);
        }
    };
    let incident = Incident {
        id: incident_id.clone(),
        alarm: change.alarm.clone(),
        alarm_at: change.at,
        alarm_reason: change.reason.clone(),
        confirmed_at: time::now(),
        evidence,
    };

    // Take the plan. The state may have changed while the outage was being confirmed (another
    // delivery, an operator): every attempt reads it again and decides again.
    for _ in 0..TAKE_ATTEMPTS {
        let read = ctx.store.read_state(&plan.name).await?;
        if let Some(outcome) = refusal(ctx, plan, &trigger, &read, &incident_id, &change.alarm).await? {
            return Ok(outcome);
        }
        let mut holding = read.state.taken(&run_id, "alarm-trigger", format!("incident {incident_id}"));
        holding.incident = Some(incident.clone());
        holding.last_automatic_run_at = Some(incident.confirmed_at);
        holding.plan_version = Some(plan.version()?);
        if ctx.store.write_state(&read, &holding).await? == WriteOutcome::Won {
            let input = incident_input(plan, &incident, &run_id, &ctx.store)?;
            let arn = ctx.store.start_holding(&ctx.starter, &input, "alarm-trigger").await?;
            tracing::info!(plan = %plan.name, alarm = %change.alarm, execution = %arn, "failover started");
            let detail = match &prepared {
                Some(prepared) => format!("incident {incident_id}; {prepared}"),
                None => format!("incident {incident_id}"),
            };
            let mut outcome = TriggerOutcome::new(Decision::Started, &change.alarm, Some(plan), detail);
            outcome.execution_arn = Some(arn);
            return Ok(outcome);
        }
    }
    Err(DrError::AwsTransient {
        service: "s3",
        operation: "PutObject",
        message: format!("the plan state of {} kept changing: {TAKE_ATTEMPTS} attempts to take it lost", plan.name),
    })
}

/// Publishes one `Decisions` datum per outcome (Plan, Decision), best effort: a decision stands
/// whether or not its metric was written, and the log has it too.
async fn record_decisions(clients: &AwsClients, plan: &Plan, outcomes: &[TriggerOutcome]) {
    for outcome in outcomes {
        tracing::info!(plan = %plan.name, alarm = %outcome.alarm, decision = outcome.decision.name(), "{}", outcome.detail);
    }
    if outcomes.is_empty() {
        return;
    }
    let at = time::to_smithy(time::now());
    let data: Vec<MetricDatum> = outcomes
        .iter()
        .map(|outcome| {
            MetricDatum::builder()
                .metric_name(DECISION_METRIC)
                .dimensions(Dimension::builder().name("Plan").value(&plan.name).build())
                .dimensions(Dimension::builder().name("Decision").value(outcome.decision.name()).build())
                .timestamp(at)
                .value(1.0)
                .unit(StandardUnit::Count)
                .build()
        })
        .collect();
    let sent = clients
        .home
        .cloudwatch
        .put_metric_data()
        .namespace(DECISION_NAMESPACE)
        .set_metric_data(Some(data))
        .send()
        .await;
    if let Err(err) = sent {
        let err = DrError::from_sdk("cloudwatch", "PutMetricData", err);
        tracing::warn!(plan = %plan.name, error = err.name(), "decision metric not published: {err}");
    }
}

/// Why the plan cannot be taken for this incident, if it cannot: already handled, not armed,
/// or too soon after the last automatic run.
async fn refusal(
    ctx: &TriggerContext,
    plan: &Plan,
    trigger: &Trigger,
    read: &Versioned,
    incident_id: &str,
    alarm: &str,
) -> Result<Option<TriggerOutcome>, DrError> {
    if let Some(outcome) = already_handled(ctx, plan, read, incident_id, alarm).await? {
        return Ok(Some(outcome));
    }
    if read.state.status != PlanStatus::Armed {
        return Ok(Some(TriggerOutcome::new(
            Decision::NotArmed,
            alarm,
            Some(plan),
            format!("plan is {} ({}): automatic failover needs it armed", read.state.status.name(), read.state.reason),
        )));
    }
    if read.state.dr_is_primary(plan) {
        // The plan's alarms watch Paris, and a move Ireland -> Paris is a failback: planned, by
        // an operator. No plan allows an automatic one.
        return Ok(Some(TriggerOutcome::new(
            Decision::NotArmed,
            alarm,
            Some(plan),
            format!(
                "{} is primary: the plan's alarms watch {} and it allows no automatic move to it (fail back by hand)",
                plan.dr_region, plan.primary_region
            ),
        )));
    }
    if let Some(last) = read.state.last_automatic_run_at
        && time::now() < time::after(last, trigger.min_between_runs())
    {
        return Ok(Some(TriggerOutcome::new(
            Decision::TooSoon,
            alarm,
            Some(plan),
            format!(
                "the last automatic failover started at {}; the plan allows one every {} s",
                time::rfc3339(last),
                trigger.min_seconds_between_runs
            ),
        )));
    }
    Ok(None)
}

/// When the plan already holds this incident (a repeated delivery), makes sure its run is
/// started (the first delivery may have stopped between the state write and the start).
async fn already_handled(
    ctx: &TriggerContext,
    plan: &Plan,
    read: &Versioned,
    incident_id: &str,
    alarm: &str,
) -> Result<Option<TriggerOutcome>, DrError> {
    let Some(incident) = read.state.incident.as_ref().filter(|incident| incident.id == incident_id) else {
        return Ok(None);
    };
    if read.state.status == PlanStatus::FailingOver
        && let Some(run_id) = &read.state.run_id
    {
        let arn = ctx.starter.start(&incident_input(plan, incident, run_id, &ctx.store)?).await?;
        let mut outcome = TriggerOutcome::new(
            Decision::AlreadyHandled,
            alarm,
            Some(plan),
            format!("incident {incident_id} is being handled by run {run_id}"),
        );
        outcome.execution_arn = Some(arn);
        return Ok(Some(outcome));
    }
    Ok(Some(TriggerOutcome::new(
        Decision::AlreadyHandled,
        alarm,
        Some(plan),
        format!("incident {incident_id} was handled; the plan is {}", read.state.status.name()),
    )))
}

async fn plan_for_alarm(ctx: &TriggerContext, alarm: &str) -> Result<Option<Plan>, DrError> {
    for name in &ctx.plan_names {
        let plan = ctx.store.load_plan(name).await?;
        if plan.trigger.as_ref().is_some_and(|t| t.alarms.iter().any(|a| a == alarm)) {
            return Ok(Some(plan));
        }
    }
    Ok(None)
}

/// Where the schedule's window starts: the last whole window whose datapoints must all have
/// landed by now, Route 53's late ones included ([`METRIC_SETTLE`] and [`LATE_DATA_GRACE`]), and
/// never before the move to ALARM. A window ending later would still be waiting for its last
/// minutes on every run of the schedule, and answer `Pending` for as long as the data is late.
pub fn schedule_anchor(alarm_at: Timestamp, window: Duration, now: Timestamp) -> Timestamp {
    time::before(now, window + METRIC_SETTLE + LATE_DATA_GRACE + Duration::from_secs(60)).max(alarm_at)
}

/// Confirms the outage: on an event, waits out the window after the move to ALARM (at most
/// until the invocation's deadline: then `Pending`); on the schedule, judges the last whole
/// window whose data has landed, without waiting. `Ok(Ok(evidence))`: confirmed; `Ok(Err(outcome))`:
/// not.
async fn confirm_outage(
    ctx: &TriggerContext,
    clients: &AwsClients,
    plan: &Plan,
    trigger: &Trigger,
    health_check_id: &str,
    alarm_at: Timestamp,
    judged: Judged,
) -> Result<Result<Vec<String>, TriggerOutcome>, DrError> {
    let window = trigger.confirmation_window();
    let pending = |why: String| Ok(Err(TriggerOutcome::new(Decision::Pending, "", Some(plan), why)));
    let confirmation = match judged {
        Judged::OnEvent { deadline } => {
            let waited = tokio::time::timeout_at(deadline, async {
                loop {
                    let now = time::now();
                    match check_health_metric(&clients.route53_metrics, health_check_id, alarm_at, window, now).await? {
                        Confirmation::Pending => tokio::time::sleep(ctx.confirmation_poll).await,
                        decided => return Ok::<_, DrError>(decided),
                    }
                }
            })
            .await;
            match waited {
                Ok(decided) => decided?,
                Err(_) => {
                    return pending(format!(
                        "the confirmation window's data had not landed after {} s: the scheduled re-evaluation decides",
                        ctx.confirmation_wait.as_secs()
                    ));
                }
            }
        }
        Judged::OnSchedule => {
            let now = time::now();
            let anchor = schedule_anchor(alarm_at, window, now);
            check_health_metric(&clients.route53_metrics, health_check_id, anchor, window, now).await?
        }
    };
    let mut evidence = match confirmation {
        Confirmation::Confirmed { evidence } => vec![evidence],
        Confirmation::Recovered { evidence } => {
            return Ok(Err(TriggerOutcome::new(Decision::Flap, "", Some(plan), evidence)));
        }
        Confirmation::Unconfirmed { evidence } => {
            tracing::error!(plan = %plan.name, "{evidence}: not failing over automatically");
            return Ok(Err(TriggerOutcome::new(Decision::Unconfirmed, "", Some(plan), evidence)));
        }
        Confirmation::Pending => return pending("the last window's data has not landed yet".to_string()),
    };
    if let Some(url) = &trigger.probe_url {
        match probe(url).await {
            ProbeResult::Answered(status) => {
                let detail =
                    format!("probe of {url} from {} answered HTTP {status}: the primary serves", plan.dr_region);
                return Ok(Err(TriggerOutcome::new(Decision::Unconfirmed, "", Some(plan), detail)));
            }
            ProbeResult::Failed(why) => evidence.push(format!("probe of {url} from {} failed: {why}", plan.dr_region)),
        }
    }
    Ok(Ok(evidence))
}

enum ProbeResult {
    /// The primary answered below 500: it serves.
    Answered(u16),
    /// Every attempt failed (no connection, timeout, 5xx).
    Failed(String),
}

const PROBE_ATTEMPTS: u32 = 3;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_PAUSE: Duration = Duration::from_secs(2);
/// The longest the probe takes: every attempt times out, with a pause between attempts.
pub const PROBE_BUDGET: Duration = Duration::from_secs(
    PROBE_TIMEOUT.as_secs() * PROBE_ATTEMPTS as u64 + PROBE_PAUSE.as_secs() * (PROBE_ATTEMPTS as u64 - 1),
);

async fn probe(url: &str) -> ProbeResult {
    // No redirects: a redirect could lead the probe to Ireland, which answers during the outage.
    let client = match crate::aws::tls::http_client_builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => return ProbeResult::Failed(format!("no HTTP client: {e}")),
    };
    let mut last = String::new();
    for attempt in 1..=PROBE_ATTEMPTS {
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() < 500 => {
                return ProbeResult::Answered(response.status().as_u16());
            }
            Ok(response) => last = format!("HTTP {}", response.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
        if attempt < PROBE_ATTEMPTS {
            tokio::time::sleep(PROBE_PAUSE).await;
        }
    }
    ProbeResult::Failed(format!("{PROBE_ATTEMPTS} attempts, last: {last}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Route 53's minutes landing as late as the documented delay allows: every judgement on the
    /// schedule decides (a sustained outage is confirmed), at any second of the minute; with the
    /// window anchored only one settle time back, the newest minutes were always still missing
    /// and every run answered Pending.
    #[test]
    fn late_data_never_keeps_the_schedule_pending() {
        let window = Duration::from_secs(180);
        let alarm_at = time::from_epoch_seconds(1_000_000_000);
        for offset in 0..60 {
            let now = time::after(alarm_at, Duration::from_secs(1_800 + offset));
            let landed_until = time::epoch_seconds(time::before(now, METRIC_SETTLE + LATE_DATA_GRACE));
            let minutes: Vec<(i64, f64)> = (0..)
                .map(|i| time::epoch_seconds(alarm_at) / 60 * 60 + i * 60)
                .take_while(|minute| minute + 60 <= landed_until)
                .map(|minute| (minute, 0.0))
                .collect();
            let judged = confirm::judge(schedule_anchor(alarm_at, window, now), window, &minutes, now);
            assert!(matches!(judged, Confirmation::Confirmed { .. }), "at +{offset} s: {judged:?}");
        }
    }

    fn event(value: &str, timestamp: &str) -> serde_json::Value {
        serde_json::json!({
            "version": "0",
            "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
            "detail-type": "CloudWatch Alarm State Change",
            "source": "aws.cloudwatch",
            "account": "123456789012",
            "time": "2026-11-23T15:04:05Z",
            "region": "us-east-1",
            "resources": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:paris-down"],
            "detail": {
                "alarmName": "paris-down",
                "state": { "value": value, "reason": "Threshold Crossed", "timestamp": timestamp },
                "previousState": { "value": "OK", "reason": "ok", "timestamp": "2026-11-23T15:00:00.000+0000" },
                "configuration": { "metrics": [{
                    "id": "health",
                    "metricStat": {
                        "metric": { "namespace": "AWS/Route53", "name": "HealthCheckStatus", "dimensions": { "HealthCheckId": "hc-paris" } },
                        "period": 60,
                        "stat": "Minimum"
                    },
                    "returnData": true
                }] }
            }
        })
    }

    fn parse_alarm_event(event: serde_json::Value) -> Result<AlarmMove, DrError> {
        alarm_move(crate::error::parse_input(event, "CloudWatch alarm state change event")?, "123456789012")
    }

    #[test]
    fn a_real_alarm_event_parses_with_its_offset_format() {
        let change = parse_alarm_event(event("ALARM", "2026-11-23T15:04:05.123+0000")).expect("parses");
        assert!(change.to_alarm);
        assert_eq!(change.alarm, "paris-down");
        assert_eq!(change.health_check_id.as_deref(), Some("hc-paris"));
        assert_eq!(time::rfc3339(change.at), "2026-11-23T15:04:05.123Z");
        let ok = parse_alarm_event(event("OK", "2026-11-23T15:04:05.123+0000")).expect("parses");
        assert_eq!((ok.to_alarm, ok.new_state.as_str()), (false, "OK"));
    }

    #[test]
    fn malformed_events_are_invalid_input() {
        let mut wrong_source = event("ALARM", "2026-11-23T15:04:05Z");
        wrong_source["source"] = "aws.ec2".into();
        for bad in [serde_json::json!({"hello": "world"}), wrong_source, event("PANIC", "2026-11-23T15:04:05Z")] {
            assert_eq!(parse_alarm_event(bad).err().map(|e| e.name()), Some("InvalidInput"));
        }
    }

    #[test]
    fn the_sample_events_parse_as_the_trigger_expects() {
        let sample = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("JSON");
        let to_alarm = parse_alarm_event(sample(include_str!("../../../../events/alarm-to-alarm.json"))).expect("ok");
        assert!(to_alarm.to_alarm);
        let to_ok = parse_alarm_event(sample(include_str!("../../../../events/alarm-to-ok.json"))).expect("ok");
        assert!(!to_ok.to_alarm);
        let unknown = parse_alarm_event(sample(include_str!("../../../../events/alarm-unknown.json"))).expect("ok");
        assert_eq!(unknown.alarm, "billing-estimated-charges-high");
        let malformed = parse_alarm_event(sample(include_str!("../../../../events/alarm-malformed.json")));
        assert_eq!(malformed.err().map(|e| e.name()), Some("InvalidInput"));
        let invocation = |text: &str| crate::error::parse_input::<TriggerInvocation>(sample(text), "invocation");
        assert!(matches!(
            invocation(include_str!("../../../../events/alarm-trigger-schedule.json")),
            Ok(TriggerInvocation::Schedule(_))
        ));
        assert!(matches!(
            invocation(include_str!("../../../../events/alarm-to-alarm.json")),
            Ok(TriggerInvocation::AlarmStateChange(_))
        ));
        let malformed = invocation(include_str!("../../../../events/alarm-malformed.json"));
        assert_eq!(malformed.err().map(|e| e.name()), Some("InvalidInput"));
    }

    #[test]
    fn run_ids_are_compact_and_deterministic() {
        let at = time::parse("2026-11-23T15:04:05.123Z").expect("time");
        assert_eq!(time::compact(at), "20261123T150405Z");
    }
}
