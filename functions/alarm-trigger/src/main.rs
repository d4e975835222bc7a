//! Lambda `alarm-trigger`: the logic is `dr_core::trigger`; this binary only serves it.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    dr_core::lambda::serve_alarm_trigger().await
}
