//! What the alarm trigger is invoked with, and what it takes from it: the move to ALARM of an
//! alarm of this deployment, from the alarm's event, or from the alarm the schedule finds in
//! ALARM.

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarmData, CloudWatchAlarmStateValue, CloudWatchMetricAlarmConfiguration,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_sdk_cloudwatch::types::MetricAlarm;
use serde::Deserialize;

use crate::aws::ROUTE53_CONTROL_REGION;
use crate::error::DrError;
use crate::time::{self, Timestamp};

/// The EventBridge event CloudWatch sends when a metric alarm changes state.
pub type AlarmStateChange = EventBridgeEvent<CloudWatchAlarmData<CloudWatchMetricAlarmConfiguration>>;

pub const ALARM_SOURCE: &str = "aws.cloudwatch";
pub const ALARM_DETAIL_TYPE: &str = "CloudWatch Alarm State Change";

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

/// The parsed parts of an alarm event the trigger uses.
pub(super) struct AlarmMove {
    pub(super) alarm: String,
    pub(super) region: Option<String>,
    pub(super) to_alarm: bool,
    pub(super) new_state: String,
    pub(super) at: Timestamp,
    pub(super) reason: String,
    /// The Route 53 health check whose `HealthCheckStatus` the alarm watches, from the alarm's own
    /// metric dimensions: the trigger never asks Route 53's API (us-east-1) on its path.
    pub(super) health_check_id: Option<String>,
}

/// Checks that the event is an alarm state change of this deployment's account and takes what
/// the trigger needs.
pub(super) fn alarm_move(event: AlarmStateChange, account_id: &str) -> Result<AlarmMove, DrError> {
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

/// An alarm found in ALARM, as the event of its move would have described it.
pub(super) fn alarm_in_alarm(alarm: &MetricAlarm) -> Result<AlarmMove, DrError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
