//! Lambda `promote-replica`: promote the DR read replica, and tell when it is standalone (`dr_core::runbook::database`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("promote-replica", dr_core::runbook::FailoverStep::PromoteReplica).await
}
