//! Handler `failover-report`: the failover report (`dr_core::runbook::report`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("failover-report", dr_core::runbook::FailoverStep::Report).await
}
