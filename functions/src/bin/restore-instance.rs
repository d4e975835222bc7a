//! Lambda `restore-instance`: restore the snapshot into the run's instance, and tell when it is available (`dr_core::restore::steps`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_restore_step("restore-instance", dr_core::restore::RestoreStep::RestoreInstance).await
}
