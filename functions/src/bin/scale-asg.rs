//! Lambda `scale-asg`: raise the DR Auto Scaling group, and tell when its instances serve (`dr_core::runbook::compute`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_functions::serve_failover_step("scale-asg", dr_core::runbook::FailoverStep::ScaleAsg).await
}
