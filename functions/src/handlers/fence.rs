//! Handler `fence`: a planned move's fence (act), barrier (status) and the fence's undo (undo)
//! (`dr_core::runbook::fence`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("fence", dr_core::runbook::FailoverStep::Fence).await
}
