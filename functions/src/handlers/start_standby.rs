//! Handler `start-standby`: start the standby EC2 instances, and tell when they pass their checks (`dr_core::runbook::compute`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("start-standby", dr_core::runbook::FailoverStep::StartStandby).await
}
