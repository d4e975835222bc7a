//! Handler `restore-sql-probe`: the shipped SQL probe hook of the restore test (the restored
//! endpoint accepts connections; `dr_core::restore::probe`).

use crate::{init_logging, serve};
use dr_core::restore::{SqlProbeRequest, connect_probe};

pub async fn run() -> Result<(), lambda_runtime::Error> {
    init_logging();
    serve("restore-sql-probe", "SQL probe request", |request: SqlProbeRequest| async move {
        let answer = connect_probe(&request).await;
        tracing::info!(plan = %request.plan, resource = %request.instance, ok = answer.ok, "{}", answer.detail);
        Ok(answer)
    })
    .await
}
