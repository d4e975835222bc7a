//! Handler `restore-validate`: validate the restored instance (`dr_core::restore::steps`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_restore_step("restore-validate", dr_core::restore::RestoreStep::Validate).await
}
