//! Lambda `failover-report`: the failover report (`dr_core::runbook::report`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("failover-report", dr_core::runbook::FailoverStep::Report).await
}
