//! Lambda `restore-report`: the restore test's report (`dr_core::restore::report`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_restore_step("restore-report", dr_core::restore::RestoreStep::Report).await
}
