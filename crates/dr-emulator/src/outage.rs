//! A Paris outage as Route 53 and CloudWatch would show it: moto neither runs health checkers,
//! nor evaluates alarms, nor emits alarm events, so this module does what they would.

use std::time::Duration;

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum};
use dr_core::aws::lookup::find_health_check;
use dr_core::aws::{AwsClients, ROUTE53_CONTROL_REGION};
use dr_core::error::DrError;
use dr_core::plan::Plan;
use dr_core::time::{self, Timestamp};
use dr_core::trigger::confirm::window_minutes;
use dr_core::trigger::{ALARM_DETAIL_TYPE, ALARM_SOURCE};

use crate::control::{alarm_moved_at, hold_alarm};
use crate::estate::{EMULATOR_ACCOUNT, missing};
use crate::guard::require_emulator;

/// How the simulated outage ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Paris stays unhealthy.
    Sustained,
    /// Paris answers again inside the confirmation window.
    Flap,
    /// Paris answers once, early (the alarm's event is judged a flap), and is down in every
    /// minute since, for longer than a window: the alarm stays in ALARM and no new event comes.
    Brownout,
}

/// Simulates a Paris outage that began `confirmation window + 3 min` ago (a brownout: twice the
/// window + 4 min): publishes the `HealthCheckStatus` minutes Route53 would have (0 = unhealthy;
/// a 1 in the second minute of the window for a flap or a brownout), moves the trigger's first
/// alarm to ALARM, and returns the EventBridge event CloudWatch sends for that move. Modelled: moto neither runs health checkers nor evaluates alarms nor
/// emits alarm events, so the estate does what they would, back-dated so that the window has
/// already elapsed.
pub async fn simulate_outage(clients: &AwsClients, plan: &Plan, outage: Outage) -> Result<serde_json::Value, DrError> {
    require_emulator(clients)?;
    let trigger = plan.trigger.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: format!("plan {} has no [trigger]: nothing to simulate", plan.name),
    })?;
    let alarm = trigger.alarms.first().cloned().unwrap_or_default();
    let health_check_id = detection_check(clients, &trigger.detection_health_check).await?;
    let now = time::now();
    let lasted = match outage {
        Outage::Brownout => trigger.confirmation_window() * 2 + Duration::from_secs(240),
        Outage::Sustained | Outage::Flap => trigger.confirmation_window() + Duration::from_secs(180),
    };
    let alarm_at = time::before(now, lasted);
    let minutes = window_minutes(alarm_at, trigger.confirmation_window());
    let first = minutes.first().copied().unwrap_or_default();
    // From three minutes before the alarm (what made it fire) to now.
    let status: Vec<(i64, bool)> = (0..)
        .map(|i| first - 180 + i * 60)
        .take_while(|minute| time::from_epoch_seconds(*minute) <= now)
        .map(|minute| (minute, outage != Outage::Sustained && minutes.get(1) == Some(&minute)))
        .collect();
    publish_health_status(clients, &health_check_id, &status).await?;
    let reason = "Threshold Crossed: 3 out of the last 3 datapoints were less than the threshold (1.0)";
    clients
        .route53_metrics
        .set_alarm_state()
        .alarm_name(&alarm)
        .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
        .state_reason(reason)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "SetAlarmState", e))?;
    alarm_moved_at(clients, ROUTE53_CONTROL_REGION, &alarm, alarm_at).await?;
    // Route 53's checkers would go on publishing Paris's minutes, unhealthy, and keep the alarm in
    // ALARM; the minutes above stop at now, and once a minute boundary passes the emulator would
    // evaluate the alarm on a window whose newest minute has no data. The alarm is held where
    // the checkers would keep it until the recovery.
    hold_alarm(clients, ROUTE53_CONTROL_REGION, &alarm, true).await?;
    Ok(alarm_state_change_event(&alarm, &health_check_id, "ALARM", "OK", alarm_at, reason))
}

/// Publishes a health check's `HealthCheckStatus` minutes (minute start, healthy), as Route 53
/// does in us-east-1: 1 healthy, 0 unhealthy.
async fn publish_health_status(
    clients: &AwsClients,
    health_check_id: &str,
    minutes: &[(i64, bool)],
) -> Result<(), DrError> {
    let datapoints: Vec<MetricDatum> = minutes
        .iter()
        .map(|(minute, healthy)| {
            MetricDatum::builder()
                .metric_name("HealthCheckStatus")
                .dimensions(Dimension::builder().name("HealthCheckId").value(health_check_id).build())
                .timestamp(time::to_smithy(time::from_epoch_seconds(*minute)))
                .value(if *healthy { 1.0 } else { 0.0 })
                .build()
        })
        .collect();
    clients
        .route53_metrics
        .put_metric_data()
        .namespace("AWS/Route53")
        .set_metric_data(Some(datapoints))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("cloudwatch", "PutMetricData", e))?;
    Ok(())
}

async fn detection_check(clients: &AwsClients, name: &str) -> Result<String, DrError> {
    // The detection health check is the orchestrator's, wherever the DNS section is.
    find_health_check(&clients.detection_route53, name).await?.ok_or_else(|| missing("health check", name, "global"))
}

/// Paris answers again: the detection health check's `HealthCheckStatus` is healthy from now on
/// (the last minutes included, as the checkers would publish) and the trigger's alarms move to OK;
/// returns the event of the first alarm's move. Modelled, like [`simulate_outage`].
pub async fn simulate_recovery(clients: &AwsClients, plan: &Plan) -> Result<serde_json::Value, DrError> {
    require_emulator(clients)?;
    let trigger = plan.trigger.as_ref().ok_or_else(|| DrError::InvalidInput {
        message: format!("plan {} has no [trigger]: nothing to simulate", plan.name),
    })?;
    let health_check_id = detection_check(clients, &trigger.detection_health_check).await?;
    let now = time::now();
    let current = time::epoch_seconds(now) / 60 * 60;
    let healthy: Vec<(i64, bool)> = (0..3).map(|i| (current - i * 60, true)).collect();
    publish_health_status(clients, &health_check_id, &healthy).await?;
    let reason = "Threshold Crossed: 1 datapoint was not less than the threshold (1.0)";
    for alarm in &trigger.alarms {
        clients
            .route53_metrics
            .set_alarm_state()
            .alarm_name(alarm)
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason(reason)
            .send()
            .await
            .map_err(|e| DrError::from_sdk("cloudwatch", "SetAlarmState", e))?;
        // Held in OK, as the checkers' healthy minutes from now on would keep it (the outage's
        // reasoning, the other way).
        hold_alarm(clients, ROUTE53_CONTROL_REGION, alarm, true).await?;
    }
    let alarm = trigger.alarms.first().cloned().unwrap_or_default();
    Ok(alarm_state_change_event(&alarm, &health_check_id, "OK", "ALARM", now, reason))
}

/// The EventBridge event CloudWatch sends when `alarm` moves from `previous` to `value` at `at`.
pub fn alarm_state_change_event(
    alarm: &str,
    health_check_id: &str,
    value: &str,
    previous: &str,
    at: Timestamp,
    reason: &str,
) -> serde_json::Value {
    // CloudWatch writes alarm times as 2026-11-23T15:04:05.123+0000.
    let cloudwatch_time = at.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string();
    let region = ROUTE53_CONTROL_REGION;
    serde_json::json!({
        "version": "0",
        "id": format!("{:x}", at.timestamp_nanos_opt().unwrap_or_default()),
        "detail-type": ALARM_DETAIL_TYPE,
        "source": ALARM_SOURCE,
        "account": EMULATOR_ACCOUNT,
        "time": time::rfc3339(at),
        "region": region,
        "resources": [format!("arn:aws:cloudwatch:{region}:{EMULATOR_ACCOUNT}:alarm:{alarm}")],
        "detail": {
            "alarmName": alarm,
            "state": { "value": value, "reason": reason, "timestamp": cloudwatch_time },
            "previousState": { "value": previous, "reason": "Threshold Crossed", "timestamp": cloudwatch_time },
            "configuration": {
                "description": "Paris primary unhealthy",
                "metrics": [{
                    "id": "health",
                    "metricStat": {
                        "metric": {
                            "namespace": "AWS/Route53",
                            "name": "HealthCheckStatus",
                            "dimensions": { "HealthCheckId": health_check_id }
                        },
                        "period": 60,
                        "stat": "Minimum"
                    },
                    "returnData": true
                }]
            }
        }
    })
}
