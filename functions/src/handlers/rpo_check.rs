//! Handler `rpo-check`: the periodic RPO check of every served plan (`dr_core::rpo::check`).

use crate::{Served, init_logging, serve};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use dr_core::rpo::check::{DEFAULT_NAMESPACE, run_scheduled};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let served = Served::load().await?;
    let namespace = std::env::var("RPO_METRIC_NAMESPACE").unwrap_or_else(|_| DEFAULT_NAMESPACE.into());
    let (served, namespace) = (&served, namespace.as_str());
    serve("rpo-check", "scheduled EventBridge event", move |_schedule: EventBridgeEvent| async move {
        let plans = served.plans().await?;
        run_scheduled(|plan| served.cache.for_plan(plan), &plans, namespace).await
    })
    .await
}
