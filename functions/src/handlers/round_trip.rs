//! Handler `round-trip`: the round-trip game day's legs and report (`dr_core::runbook::round_trip`).

use crate::{ClientCache, deployment_store, init_logging, serve};
use dr_core::runbook::round_trip::{RoundTripRequest, handle, load_request};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let cache = ClientCache::load().await;
    let store = deployment_store(&cache)?;
    let (cache, store) = (&cache, &store);
    serve(
        "round-trip",
        "round-trip task input {action: leg|report, leg?, state: {run, legs, ...}}",
        move |payload: serde_json::Value| async move {
            let request = load_request(store, payload).await?;
            let plan = match &request {
                RoundTripRequest::Leg { state, .. } | RoundTripRequest::Report { state } => &state.plan,
            };
            let clients = cache.for_plan(plan);
            handle(&clients, request).await
        },
    )
    .await
}
