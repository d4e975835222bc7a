//! Notifications: short messages to the deployment's SNS topic (`NOTIFY_TOPIC_ARN`, read by
//! `AwsClients` as [`crate::aws::NOTIFY_TOPIC_ENV`], set by
//! template.yaml; subscriptions are the user's) when a run starts and ends, when the trigger
//! decides something a human must look at, when a restore test ends and when a replicated pair
//! is over the RPO. Each message has a subject and a few lines readable on a phone, and one
//! message attribute, `event`, with the same facts as JSON for chat integrations.
//!
//! Each notice also says how an on-call tool should treat it: a severity (PagerDuty's words,
//! `critical|error|warning|info`, and Opsgenie's priority `P1`-`P5`), a deduplication key (one
//! per run, so that a retried step or a repeated notice never opens a second incident; one per
//! plan and condition for the rest) and an action (`trigger`, or `resolve` when the run
//! succeeded or the standby is ready again). They are SNS message attributes (for subscription
//! filter policies) and fields of an EventBridge event per notice on the deployment's bus
//! (`NOTICE_EVENT_BUS`, source [`EVENT_SOURCE`], detail-type [`EVENT_DETAIL_TYPE`]): the form the
//! template's PagerDuty (Events API v2) and Opsgenie (Alert API) API destinations read
//! (docs/operations.md, "Paging the on-call").
//!
//! Best effort: a notification that cannot be published is logged (`NotificationFailed` in the
//! log) and never fails the run or the check that sent it. The decision metrics and alarms in the
//! template still page through CloudWatch if SNS itself is down.

use std::collections::BTreeMap;

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sns::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::DrError;

/// The message attribute that carries the facts as JSON.
pub const EVENT_ATTRIBUTE: &str = "event";
/// The message attributes that carry the severity and the deduplication key.
pub const SEVERITY_ATTRIBUTE: &str = "severity";
pub const DEDUP_KEY_ATTRIBUTE: &str = "dedup_key";
/// The EventBridge event of a notice: its source and detail-type (the template's rules match them,
/// and the publishers' policy allows only this source).
pub const EVENT_SOURCE: &str = "dr-orchestrator";
pub const EVENT_DETAIL_TYPE: &str = "DR notice";
/// SNS subjects are fewer than 100 ASCII characters, with no line break.
const MAX_SUBJECT: usize = 99;

/// What happened. Stable names: subscriptions filter on them (`event.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    RunStarted,
    /// A run waits for a human (its RPO gate refused it), with the commands that answer.
    DecisionNeeded,
    RunFinished,
    RunFailed,
    TriggerDecision,
    RestoreTestResult,
    RpoBreach,
    /// The scheduled plan check found the standby drifted (or ready again).
    ReadinessDrift,
    /// A run ended without ending its hold on the plan: given back, or kept for a human.
    HoldReconciled,
    /// The old primary region answered again after a failover and was fenced (`fence.on_return`).
    FencedOnReturn,
    /// An evacuation of a region ended (`drctl evacuate`): each plan's outcome, critical when one
    /// failed.
    EvacuationFinished,
}

impl NoticeKind {
    /// How urgent a notice of this kind is, unless its sender says otherwise: what needs a human
    /// now is critical (a run waits for a decision, a run failed); a breach or a hold a run left
    /// behind is an error; a run in progress or a drift is a warning; an end is information.
    fn default_severity(self) -> Severity {
        match self {
            NoticeKind::DecisionNeeded | NoticeKind::RunFailed => Severity::Critical,
            NoticeKind::RpoBreach | NoticeKind::HoldReconciled => Severity::Error,
            NoticeKind::RunStarted
            | NoticeKind::TriggerDecision
            | NoticeKind::ReadinessDrift
            | NoticeKind::FencedOnReturn
            | NoticeKind::EvacuationFinished => Severity::Warning,
            NoticeKind::RunFinished | NoticeKind::RestoreTestResult => Severity::Info,
        }
    }

    fn name(self) -> &'static str {
        match self {
            NoticeKind::RunStarted => "run-started",
            NoticeKind::DecisionNeeded => "decision-needed",
            NoticeKind::RunFinished => "run-finished",
            NoticeKind::RunFailed => "run-failed",
            NoticeKind::TriggerDecision => "trigger-decision",
            NoticeKind::RestoreTestResult => "restore-test-result",
            NoticeKind::RpoBreach => "rpo-breach",
            NoticeKind::ReadinessDrift => "readiness-drift",
            NoticeKind::HoldReconciled => "hold-reconciled",
            NoticeKind::FencedOnReturn => "fenced-on-return",
            NoticeKind::EvacuationFinished => "evacuation-finished",
        }
    }
}

/// How urgent a notice is, in PagerDuty's Events API v2 words (`payload.severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub fn name(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// The same urgency as an Opsgenie alert priority.
    pub fn opsgenie_priority(self) -> &'static str {
        match self {
            Severity::Critical => "P1",
            Severity::Error => "P2",
            Severity::Warning => "P3",
            Severity::Info => "P5",
        }
    }
}

/// What an on-call tool does with a notice: open (or add to) the incident of its key, or close it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeAction {
    #[default]
    Trigger,
    Resolve,
}

/// One message.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    pub severity: Severity,
    /// Opsgenie's name for the severity (`P1`-`P5`), so that its Alert API reads it as is.
    pub priority: String,
    /// One incident per run (`dr-orchestrator.<plan>.run.<run>`); one per plan and condition for
    /// a notice of no run (`dr-orchestrator.<plan>.<kind>`). Only letters, digits, '.', '-' and
    /// '_': it is an Opsgenie alias in a URL path too.
    pub dedup_key: String,
    /// PagerDuty's `event_action`: `trigger` or `resolve`.
    pub event_action: NoticeAction,
    /// One line (SNS takes fewer than 100 characters: [`Notice::sns_subject`]).
    pub subject: String,
    /// A few short lines.
    pub text: String,
    /// The facts, for integrations.
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
}

impl Notice {
    pub fn new(kind: NoticeKind, plan: &str, run: Option<&str>, subject: String, text: String) -> Notice {
        let severity = kind.default_severity();
        let dedup_key = match run {
            Some(run) => run_key(plan, run),
            None => key_of(format!("{EVENT_SOURCE}.{plan}.{}", kind.name())),
        };
        Notice {
            kind,
            plan: plan.to_string(),
            run: run.map(str::to_string),
            severity,
            priority: severity.opsgenie_priority().to_string(),
            dedup_key,
            event_action: NoticeAction::Trigger,
            subject,
            text,
            facts: BTreeMap::new(),
        }
    }

    /// The same notice in the incident of another run: a round trip's leg in its round trip's.
    pub fn in_incident_of(mut self, run: &str) -> Notice {
        self.dedup_key = run_key(&self.plan, run);
        self
    }

    /// The same notice with another severity than its kind's.
    pub fn with_severity(mut self, severity: Severity) -> Notice {
        self.severity = severity;
        self.priority = severity.opsgenie_priority().to_string();
        self
    }

    /// The same notice, closing the incident of its key: the run succeeded, the standby is ready
    /// again.
    pub fn resolving(mut self) -> Notice {
        self.event_action = NoticeAction::Resolve;
        self
    }

    /// Adds a fact (anything serialisable; one that is not is left out).
    pub fn fact(mut self, name: &str, value: impl Serialize) -> Notice {
        if let Ok(value) = serde_json::to_value(value) {
            self.facts.insert(name.to_string(), value);
        }
        self
    }

    /// The subject as SNS takes it: `[dr] ` first, ASCII, one line, at most 99 characters.
    pub fn sns_subject(&self) -> String {
        let line: String = format!("[dr] {}", self.subject)
            .chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { ' ' })
            .collect();
        line.chars().take(MAX_SUBJECT).collect()
    }
}

/// The incident key of a run.
fn run_key(plan: &str, run: &str) -> String {
    key_of(format!("{EVENT_SOURCE}.{plan}.run.{run}"))
}

/// Only letters, digits, '.', '-' and '_': a key is an Opsgenie alias in a URL path too.
fn key_of(text: String) -> String {
    text.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') { c } else { '_' }).collect()
}

/// Publishes `notice` to the clients' topic and puts its event on their bus, where they have
/// them. Never fails the caller.
pub async fn send(clients: &AwsClients, notice: &Notice) {
    if let Some(topic) = clients.notify_topic.as_deref()
        && let Err(err) = publish(clients, topic, notice).await
    {
        tracing::warn!(plan = %notice.plan, kind = ?notice.kind, error = err.name(), "NotificationFailed: {err}");
    }
    if let Some(bus) = clients.notice_bus.as_deref()
        && let Err(err) = put_event(clients, bus, notice).await
    {
        tracing::warn!(plan = %notice.plan, kind = ?notice.kind, error = err.name(), "NotificationFailed: {err}");
    }
}

fn string_attribute(value: String) -> Result<MessageAttributeValue, DrError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| DrError::Internal { message: format!("notification attribute: {e}") })
}

async fn publish(clients: &AwsClients, topic: &str, notice: &Notice) -> Result<(), DrError> {
    let event = serde_json::to_string(notice).map_err(|e| DrError::serialisation("notification", e))?;
    clients
        .home
        .sns
        .publish()
        .topic_arn(topic)
        .subject(notice.sns_subject())
        .message(&notice.text)
        .message_attributes(EVENT_ATTRIBUTE, string_attribute(event)?)
        .message_attributes(SEVERITY_ATTRIBUTE, string_attribute(notice.severity.name().to_string())?)
        .message_attributes(DEDUP_KEY_ATTRIBUTE, string_attribute(notice.dedup_key.clone())?)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sns", "Publish", e))?;
    tracing::info!(plan = %notice.plan, kind = ?notice.kind, "notified: {}", notice.subject);
    Ok(())
}

/// One EventBridge event: the notice as its detail. PutEvents answers 200 with a failed entry
/// when the entry is refused, so the entry's own error is checked too.
async fn put_event(clients: &AwsClients, bus: &str, notice: &Notice) -> Result<(), DrError> {
    let detail = serde_json::to_string(notice).map_err(|e| DrError::serialisation("notification", e))?;
    let entry = PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(EVENT_SOURCE)
        .detail_type(EVENT_DETAIL_TYPE)
        .detail(detail)
        .build();
    let answer = clients
        .home
        .events
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("events", "PutEvents", e))?;
    if answer.failed_entry_count() > 0 {
        let refused = answer.entries().iter().find_map(|e| e.error_message()).unwrap_or("refused").to_string();
        return Err(DrError::AwsTransient { service: "events", operation: "PutEvents", message: refused });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_one_ascii_line_of_fewer_than_100_characters() {
        let long = Notice::new(NoticeKind::RunFailed, "p", None, format!("é\n{}", "x".repeat(200)), String::new());
        let subject = long.sns_subject();
        assert_eq!(subject.len(), 99);
        assert!(subject.starts_with("[dr]   x"), "{subject}");
        let facts = Notice::new(NoticeKind::RunStarted, "p", Some("r"), "s".into(), "t".into()).fact("rto", 14400);
        let json = serde_json::to_value(&facts).expect("json");
        assert_eq!(json["kind"], "run-started");
        assert_eq!(json["facts"]["rto"], 14400);
    }
}
