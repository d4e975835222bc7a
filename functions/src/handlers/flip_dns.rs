//! Handler `flip-dns`: move DNS to Ireland, last, and verify it (`dr_core::runbook::dns`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("flip-dns", dr_core::runbook::FailoverStep::FlipDns).await
}
