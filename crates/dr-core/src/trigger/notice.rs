//! What the on-call is told of the alarm trigger's decisions.

use super::outcome::{Decision, TriggerOutcome};
use crate::notify::{Notice, NoticeKind, Severity};
use crate::plan::Plan;

/// What a human must hear of a decision on an alarm's event: a run started, or an alarm in ALARM
/// that did not start one (a flap or unconfirmed outage, a stale event, a plan not armed, too
/// soon after the last run). Nothing for the rest (not a move to ALARM, an unknown alarm, an
/// incident already handled, a decision left to the schedule).
pub(super) fn decision_notice(plan: &Plan, outcome: &TriggerOutcome) -> Option<Notice> {
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
    // its run id. An automatic failover of production needs the on-call now.
    let run = outcome.execution_arn.as_deref().and_then(|arn| arn.rsplit(':').next());
    let notice = Notice::new(kind, &plan.name, run, format!("{}: {headline}", plan.name), text);
    let notice = if kind == NoticeKind::RunStarted { notice.severity(Severity::Critical) } else { notice };
    let notice = notice
        .fact("decision", outcome.decision.name())
        .fact("alarm", &outcome.alarm)
        .fact("execution", &outcome.execution_arn);
    Some(notice)
}
