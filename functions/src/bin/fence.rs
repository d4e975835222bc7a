//! Lambda `fence`: a planned move's fence (act), barrier (status) and the fence's undo (undo)
//! (`dr_core::runbook::fence`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("fence", dr_core::runbook::FailoverStep::Fence).await
}
