//! Lambda `restore-validate`: the logic is `dr_core::restore`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_restore_step(dr_core::restore::RestoreStep::Validate).await
}
