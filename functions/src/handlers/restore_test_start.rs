//! Handler `restore-test-start`: the monthly restore test of every served plan (`dr_core::restore`).

use crate::{Served, init_logging, serve, setting};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use dr_core::restore::start_restore_tests;
use dr_core::run::Starter;

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let served = Served::load().await?;
    let starter = Starter::new(served.cache.home().sfn, setting("RESTORE_STATE_MACHINE_ARN")?);
    let (served, starter) = (&served, &starter);
    serve("restore-test-start", "scheduled EventBridge event", move |schedule: EventBridgeEvent| async move {
        // The schedule's time, not the clock: a retried invocation names the same runs, and Step
        // Functions starts each once. (An event without a time, by hand: now.)
        let at = schedule.time.unwrap_or_else(dr_core::time::now);
        start_restore_tests(&served.store, starter, &served.plan_names, at).await
    })
    .await
}
