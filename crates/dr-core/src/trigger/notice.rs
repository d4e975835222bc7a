//! What the on-call is told of the alarm trigger's decisions.

use super::incident::incident_run_id;
use super::outcome::{Decision, TriggerOutcome};
use crate::notify::{Notice, NoticeKind, Severity};
use crate::plan::Plan;
use crate::time::Timestamp;

/// What a human must hear of a decision on an alarm's event: a run started, or an alarm in ALARM
/// that did not start one (a flap or unconfirmed outage, a stale event, a plan not armed, too
/// soon after the last run). Nothing for the rest (not a move to ALARM, an unknown alarm, an
/// incident already handled, a decision left to the schedule).
///
/// One incident per outage: the notices of one alarm's move to ALARM (at `alarm_at`) share the
/// key of the run that incident starts or would start ([`incident_run_id`]; the schedule tells
/// only a run it started, `None`), so that a refusal
/// and a later start of the same incident add to one incident, and a new outage opens its own.
pub(super) fn decision_notice(plan: &Plan, outcome: &TriggerOutcome, alarm_at: Option<Timestamp>) -> Option<Notice> {
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
                "If {} is down: drctl failover start <plan {} file> --bucket <plan store> --state-machine <failover> --by YOU --reason WHY",
                plan.primary_name(),
                plan.name
            ),
        ),
        _ => return None,
    };
    let text = format!("{headline} ({}): alarm {}\n{}\n{next}", outcome.decision.name(), outcome.alarm, outcome.detail);
    // A started run is one incident from its start notice to its report's: its execution name is
    // its run id, the incident's. An automatic failover of production needs the on-call now, and
    // so does an outage nothing will fail over unless a human does.
    let started = outcome.execution_arn.as_deref().and_then(|arn| arn.rsplit(':').next());
    let run = started.map(str::to_string).or_else(|| alarm_at.map(|at| incident_run_id(plan, at)));
    let notice = Notice::new(kind, &plan.name, run.as_deref(), format!("{}: {headline}", plan.name), text);
    let needs_a_human =
        matches!(outcome.decision, Decision::Started | Decision::Stale | Decision::NotArmed | Decision::TooSoon);
    let notice = if needs_a_human { notice.with_severity(Severity::Critical) } else { notice };
    let notice = notice
        .fact("decision", outcome.decision.name())
        .fact("alarm", &outcome.alarm)
        .fact("execution", &outcome.execution_arn);
    Some(notice)
}
