//! Lambda `alarm-trigger`: a health-check alarm's state change (EventBridge) -> a confirmed,
//! single-flight failover (`dr_core::trigger`).

use dr_core::trigger::{AlarmStateChange, handle_alarm_event};
use dr_functions::{Served, init_logging, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ctx = Served::load().await?.trigger_context()?;
    let ctx = &ctx;
    serve("alarm-trigger", "CloudWatch Alarm State Change event", move |event: AlarmStateChange| async move {
        let outcome = handle_alarm_event(ctx, event).await?;
        tracing::info!(alarm = %outcome.alarm, plan = ?outcome.plan, decision = ?outcome.decision, "{}", outcome.detail);
        Ok(outcome)
    })
    .await
}
