//! What the alarm trigger decided about an alarm, and its answer to an invocation.

use serde::{Deserialize, Serialize};

use crate::plan::Plan;

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
    /// The move to ALARM is older than [`MAX_EVENT_AGE`](super::MAX_EVENT_AGE): a human decides.
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
    /// ([`on_return`](super::on_return)).
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
    pub(super) fn new(
        decision: Decision,
        alarm: &str,
        plan: Option<&Plan>,
        detail: impl Into<String>,
    ) -> TriggerOutcome {
        TriggerOutcome {
            decision,
            alarm: alarm.to_string(),
            plan: plan.map(|p| p.name.clone()),
            detail: detail.into(),
            execution_arn: None,
        }
    }
}

/// The alarm trigger's answer to an invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TriggerAnswer {
    Event(TriggerOutcome),
    Schedule { reevaluated: Vec<TriggerOutcome> },
}
