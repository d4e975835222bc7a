//! Lambda `create-replica`: reprotect's Paris read replica of the Ireland primary (act), and
//! whether it replicates within the RPO (status) (`dr_core::runbook::reprotect`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("create-replica", dr_core::runbook::FailoverStep::CreateReplica).await
}
