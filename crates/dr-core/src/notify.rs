//! Notifications: short messages to the deployment's SNS topic (`NOTIFY_TOPIC_ARN`, read by
//! `AwsClients` as [`crate::aws::NOTIFY_TOPIC_ENV`], set by
//! template.yaml; subscriptions are the user's) when a run starts and ends, when the trigger
//! decides something a human must look at, when a restore test ends and when a replicated pair
//! is over the RPO. Each message has a subject and a few lines readable on a phone, and one
//! message attribute, `event`, with the same facts as JSON for chat integrations.
//!
//! Best effort: a notification that cannot be published is logged (`NotificationFailed` in the
//! log) and never fails the run or the check that sent it. The decision metrics and alarms in the
//! template still page through CloudWatch if SNS itself is down.

use std::collections::BTreeMap;

use aws_sdk_sns::types::MessageAttributeValue;
use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::error::DrError;

/// The message attribute that carries the facts as JSON.
pub const EVENT_ATTRIBUTE: &str = "event";
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
}

/// One message.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
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
        Notice { kind, plan: plan.to_string(), run: run.map(str::to_string), subject, text, facts: BTreeMap::new() }
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

/// Publishes `notice` to the clients' topic, if they have one. Never fails the caller.
pub async fn send(clients: &AwsClients, notice: &Notice) {
    let Some(topic) = clients.notify_topic.as_deref() else { return };
    if let Err(err) = publish(clients, topic, notice).await {
        tracing::warn!(plan = %notice.plan, kind = ?notice.kind, error = err.name(), "NotificationFailed: {err}");
    }
}

async fn publish(clients: &AwsClients, topic: &str, notice: &Notice) -> Result<(), DrError> {
    let event = serde_json::to_string(notice).map_err(|e| DrError::serialisation("notification", e))?;
    let attribute = MessageAttributeValue::builder()
        .data_type("String")
        .string_value(event)
        .build()
        .map_err(|e| DrError::Internal { message: format!("notification attribute: {e}") })?;
    clients
        .home
        .sns
        .publish()
        .topic_arn(topic)
        .subject(notice.sns_subject())
        .message(&notice.text)
        .message_attributes(EVENT_ATTRIBUTE, attribute)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sns", "Publish", e))?;
    tracing::info!(plan = %notice.plan, kind = ?notice.kind, "notified: {}", notice.subject);
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
