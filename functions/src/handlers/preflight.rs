//! Handler `preflight`: the failover runbook's preflight and RPO gate (`dr_core::runbook::preflight`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("preflight", dr_core::runbook::FailoverStep::Preflight).await
}
