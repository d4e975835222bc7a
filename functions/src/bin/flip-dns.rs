//! Lambda `flip-dns`: move DNS to Ireland, last, and verify it (`dr_core::runbook::dns`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("flip-dns", dr_core::runbook::FailoverStep::FlipDns).await
}
