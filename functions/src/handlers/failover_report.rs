//! Handler `failover-report`: the failover runbook's report Tasks (`dr_core::runbook::report_task`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_task("failover-report", |action, clients, state| async move {
        dr_core::runbook::report_task(action, &clients, &state).await
    })
    .await
}
