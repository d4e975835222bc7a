//! Handler `scale-asg`: raise the DR Auto Scaling group, and tell when its instances serve (`dr_core::runbook::compute`).

pub async fn run() -> Result<(), lambda_runtime::Error> {
    crate::serve_failover_step("scale-asg", dr_core::runbook::FailoverStep::ScaleAsg).await
}
