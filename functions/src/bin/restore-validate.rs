//! Lambda `restore-validate`: validate the restored instance (`dr_core::restore::steps`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_restore_step("restore-validate", dr_core::restore::RestoreStep::Validate).await
}
