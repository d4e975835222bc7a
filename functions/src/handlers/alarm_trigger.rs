//! Handler `alarm-trigger`: a health-check alarm's state change (EventBridge) -> a confirmed,
//! single-flight failover; on its schedule, the alarms still in ALARM judged again
//! (`dr_core::trigger`).

use crate::{Served, init_logging, serve};
use dr_core::trigger::{TriggerInvocation, handle_invocation};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ctx = Served::load().await?.trigger_context()?;
    let ctx = &ctx;
    serve(
        "alarm-trigger",
        "CloudWatch Alarm State Change event or Scheduled Event",
        move |invocation: TriggerInvocation| async move { handle_invocation(ctx, invocation).await },
    )
    .await
}
