//! Lambda `rpo-check`: the logic is `dr_core::rpo::check`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_rpo_check().await
}
