//! Handler `restore-report`: the restore test's report (`dr_core::restore::report`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_restore_step("restore-report", dr_core::restore::RestoreStep::Report).await
}
