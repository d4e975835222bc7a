//! Handler `game-day`: a dry run, a confirmed live drill or a round trip, invoked by hand (`dr_core::game_day`).

use crate::{Served, init_logging, serve};
use dr_core::game_day::{handle_game_day, parse_request};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let ctx = Served::load().await?.trigger_context()?;
    let ctx = &ctx;
    serve(
        "game-day",
        "game-day request {plan, mode: dry-run|drill, requested_by, reason, confirm?}",
        move |payload: serde_json::Value| async move { handle_game_day(ctx, parse_request(payload)?).await },
    )
    .await
}
