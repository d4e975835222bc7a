//! Lambda `restore-cleanup`: delete the run's restore-test instance, on every path (`dr_core::restore::steps`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_restore_step("restore-cleanup", dr_core::restore::RestoreStep::Cleanup).await
}
