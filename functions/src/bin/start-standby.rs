//! Lambda `start-standby`: start the standby EC2 instances, and tell when they pass their checks (`dr_core::runbook::compute`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("start-standby", dr_core::runbook::FailoverStep::StartStandby).await
}
