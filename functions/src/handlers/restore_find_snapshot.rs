//! Handler `restore-find-snapshot`: the restore test's snapshot choice (`dr_core::restore::steps`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_restore_step("restore-find-snapshot", dr_core::restore::RestoreStep::FindSnapshot).await
}
