//! Handler `promote-replica`: promote the DR read replica, and tell when it is standalone (`dr_core::runbook::database`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("promote-replica", dr_core::runbook::FailoverStep::PromoteReplica).await
}
