//! Handler `round-trip`: the round-trip game day's legs and report (`dr_core::runbook::round_trip`).

use crate::{ClientCache, init_logging, serve};
use dr_core::runbook::round_trip::{RoundTripRequest, handle};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let cache = ClientCache::load().await;
    let cache = &cache;
    serve(
        "round-trip",
        "round-trip task input {action: leg|report, leg?, state: {plan, run, legs, ...}}",
        move |request: RoundTripRequest| async move {
            let plan = match &request {
                RoundTripRequest::Leg { state, .. } | RoundTripRequest::Report { state } => &state.plan,
            };
            let clients = cache.for_plan(plan);
            handle(&clients, request).await
        },
    )
    .await
}
