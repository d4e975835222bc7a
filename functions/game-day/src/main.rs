//! Lambda `game-day`: the logic is `dr_core::trigger`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_game_day().await
}
