//! Lambda `promote-replica`: the logic is `dr_core::runbook`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_step(dr_core::runbook::FailoverStep::PromoteReplica).await
}
