//! Handler `readiness-check`: the plan check of every served plan on a schedule, as its estate
//! stands; metrics, a snapshot, a message on drift (`dr_core::readiness::scheduled`).

use crate::{Served, init_logging, serve};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use dr_core::readiness::scheduled::run_scheduled_check;

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let served = Served::load().await?;
    let served = &served;
    serve("readiness-check", "scheduled EventBridge event", move |_schedule: EventBridgeEvent| async move {
        let mut checked = Vec::new();
        for name in &served.plan_names {
            let plan = served.store.load_plan(name).await?;
            checked.push(run_scheduled_check(&served.cache.for_plan(&plan), &served.store, &plan).await?);
        }
        Ok::<_, dr_core::DrError>(checked)
    })
    .await
}
