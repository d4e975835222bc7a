//! Lambda `restore-find-snapshot`: the restore test's snapshot choice (`dr_core::restore::steps`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_restore_step("restore-find-snapshot", dr_core::restore::RestoreStep::FindSnapshot).await
}
