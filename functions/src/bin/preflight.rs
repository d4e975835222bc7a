//! Lambda `preflight`: the failover runbook's preflight and RPO gate (`dr_core::runbook::preflight`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("preflight", dr_core::runbook::FailoverStep::Preflight).await
}
