//! Handler `create-replica`: reprotect's Paris read replica of the Ireland primary (act), and
//! whether it replicates within the RPO (status) (`dr_core::runbook::reprotect`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("create-replica", dr_core::runbook::FailoverStep::CreateReplica).await
}
