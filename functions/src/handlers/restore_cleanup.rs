//! Handler `restore-cleanup`: delete the run's restore-test instance, on every path (`dr_core::restore::steps`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_restore_step("restore-cleanup", dr_core::restore::RestoreStep::Cleanup).await
}
