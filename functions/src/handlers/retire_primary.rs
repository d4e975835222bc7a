//! Handler `retire-primary`: reprotect's first step, after a failover: the old Paris primary's
//! final snapshot, then the instance renamed and tagged, kept (`dr_core::runbook::reprotect`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("retire-primary", dr_core::runbook::FailoverStep::RetirePrimary).await
}
