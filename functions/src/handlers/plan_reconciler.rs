//! Handler `plan-reconciler`: a plan held by a run that ended without ending its hold, or that
//! never started, is given back or kept for a human, and the on-call told (`dr_core::reconcile`).
//! On its schedule and on Step Functions' execution status changes; the event is only a wake-up.

use crate::{Served, init_logging, serve};
use dr_core::reconcile::reconcile;

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ctx = Served::load().await?.trigger_context()?;
    let ctx = &ctx;
    serve(
        "plan-reconciler",
        "Scheduled Event or Step Functions Execution Status Change",
        move |_wake_up: serde_json::Value| async move { reconcile(ctx).await },
    )
    .await
}
