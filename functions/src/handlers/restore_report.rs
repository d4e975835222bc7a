//! Handler `restore-report`: the restore test's report Tasks (`dr_core::restore::report_task`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_task("restore-report", |action, clients, state| async move {
        dr_core::restore::report_task(action, &clients, &state).await
    })
    .await
}
