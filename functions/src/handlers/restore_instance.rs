//! Handler `restore-instance`: restore the snapshot into the run's instance, and tell when it is available (`dr_core::restore::steps`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_restore_step("restore-instance", dr_core::restore::RestoreStep::RestoreInstance).await
}
