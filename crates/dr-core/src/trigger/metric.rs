//! The decision metric: one datum per decision about a plan, which template.yaml alarms on (a
//! flap, an unconfirmed outage, a stale event, a schedule that could not judge an alarm).

use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};

use super::outcome::TriggerOutcome;
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::plan::Plan;
use crate::time;

/// Namespace of the trigger's decision metric (`Decisions`, dimensions Plan and Decision).
pub const DECISION_NAMESPACE: &str = "DrOrchestrator/Trigger";
pub const DECISION_METRIC: &str = "Decisions";

/// Publishes one `Decisions` datum per outcome (Plan, Decision), best effort: a decision stands
/// whether or not its metric was written, and the log has it too.
pub(super) async fn record_decisions(clients: &AwsClients, plan: &Plan, outcomes: &[TriggerOutcome]) {
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
