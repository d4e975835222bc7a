//! Handler `restore-janitor`: deletes expired restore-test instances in its region, nothing else
//! (`dr_core::restore::janitor`).

use crate::{ClientCache, init_logging, serve};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use dr_core::restore::janitor;

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let cache = ClientCache::load().await;
    // The janitor only talks to its own (the DR) region.
    let region = cache.home_region();
    let clients = cache.for_regions(&region, &region);
    let clients = &clients;
    serve("restore-janitor", "scheduled EventBridge event", move |_schedule: EventBridgeEvent| async move {
        // Leftovers it could not delete fail the invocation, so that its Errors alarm tells a human.
        janitor(clients, dr_core::time::now()).await?.into_result()
    })
    .await
}
