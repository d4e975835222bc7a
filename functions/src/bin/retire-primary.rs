//! Lambda `retire-primary`: reprotect's first step, after a failover: the old Paris primary's
//! final snapshot, then the instance renamed and tagged, kept (`dr_core::runbook::reprotect`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("retire-primary", dr_core::runbook::FailoverStep::RetirePrimary).await
}
