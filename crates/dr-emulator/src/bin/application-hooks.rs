//! The protected application's own Lambda in the local stack, as a plan names it (not shipped,
//! not in template.yaml; `scripts/lambdas` serves it beside the real functions):
//!
//! - `{"action": "fence" | "unfence", "plan", "run_id"}`: the application's maintenance switch
//!   (`[fence].lambda`). Its state is an object in the emulator's S3, `s3://dr-local-application/
//!   maintenance/<plan>.json` (`{"maintenance", "run_id", "switched"}`), which tests read. It fails
//!   (a function error) while `s3://dr-local-application/broken/<plan>` exists, and takes as many
//!   seconds as `s3://dr-local-application/slow/<plan>` says before it answers (a slow switch).
//! - a `BarrierHookRequest` (`fence.barrier_function`): the application's own proof that its
//!   writes reached Ireland: a marker row in its table `app_barrier`, written once on the Paris
//!   primary (through a read-only fence) and looked for on the Ireland replica, with psql (the
//!   local PostgreSQL pair trusts loopback connections).
//! - `{"plan", "probe", "region"}` (served as `dr-readiness-probe-application`, a plan's
//!   `readiness.probes`): the customer's own readiness probe. It answers `{"ready": true}` unless
//!   `s3://dr-local-application/probe-fails/<plan>/<probe>` exists, whose content is then the
//!   reason it answers `{"ready": false, "detail"}` (a Transit Gateway route gone, a directory
//!   login refused).

use aws_sdk_s3::primitives::ByteStream;
use dr_core::runbook::fence::{BarrierHookAnswer, BarrierHookRequest};
use dr_core::time;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

const BUCKET: &str = "dr-local-application";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = dr_core::aws::tls::sdk_config_loader().load().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    let s3 = &s3;
    run(service_fn(move |event: LambdaEvent<Value>| async move { handle(s3, event.payload).await })).await
}

async fn handle(s3: &aws_sdk_s3::Client, payload: Value) -> Result<Value, Error> {
    if let (Some(plan), Some(probe)) =
        (payload.get("plan").and_then(Value::as_str), payload.get("probe").and_then(Value::as_str))
    {
        return readiness_probe(s3, plan, probe).await;
    }
    match payload.get("action").and_then(Value::as_str) {
        Some("barrier") => barrier(serde_json::from_value(payload)?).await,
        Some(action @ ("fence" | "unfence")) => {
            let plan = payload.get("plan").and_then(Value::as_str).ok_or("no plan")?;
            let run_id = payload.get("run_id").and_then(Value::as_str).unwrap_or_default();
            switch(s3, plan, run_id, action == "fence").await
        }
        other => Err(format!("unknown action {other:?}").into()),
    }
}

async fn readiness_probe(s3: &aws_sdk_s3::Client, plan: &str, probe: &str) -> Result<Value, Error> {
    match s3.get_object().bucket(BUCKET).key(format!("probe-fails/{plan}/{probe}")).send().await {
        Ok(found) => {
            let reason = String::from_utf8_lossy(&found.body.collect().await?.into_bytes()).to_string();
            Ok(json!({ "ready": false, "detail": reason }))
        }
        Err(_) => Ok(json!({ "ready": true, "detail": format!("{probe}: reachable") })),
    }
}

async fn switch(s3: &aws_sdk_s3::Client, plan: &str, run_id: &str, maintenance: bool) -> Result<Value, Error> {
    if s3.head_object().bucket(BUCKET).key(format!("broken/{plan}")).send().await.is_ok() {
        return Err("the maintenance switch is broken".into());
    }
    if let Ok(found) = s3.get_object().bucket(BUCKET).key(format!("slow/{plan}")).send().await {
        let text = String::from_utf8_lossy(&found.body.collect().await?.into_bytes()).to_string();
        let seconds: u64 = text.trim().parse()?;
        tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
    }
    let key = format!("maintenance/{plan}.json");
    let switched = match s3.get_object().bucket(BUCKET).key(&key).send().await {
        Ok(found) => {
            let body: Value = serde_json::from_slice(&found.body.collect().await?.into_bytes())?;
            body.get("switched").and_then(Value::as_u64).unwrap_or(0)
        }
        Err(_) => 0,
    };
    let state = json!({ "maintenance": maintenance, "run_id": run_id, "switched": switched + 1 });
    if s3.head_bucket().bucket(BUCKET).send().await.is_err() {
        let region = s3.config().region().map(|r| r.to_string()).unwrap_or_default();
        let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
            .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(region.as_str()))
            .build();
        s3.create_bucket().bucket(BUCKET).create_bucket_configuration(location).send().await?;
    }
    s3.put_object().bucket(BUCKET).key(&key).body(ByteStream::from(state.to_string().into_bytes())).send().await?;
    Ok(state)
}

async fn barrier(request: BarrierHookRequest) -> Result<Value, Error> {
    let marker = request.marker.replace('\'', "''");
    let written = tokio::task::spawn_blocking(move || -> Result<(String, bool), Error> {
        let written = dr_emulator::postgres::psql(
            request.primary.port,
            &format!(
                "SET default_transaction_read_only = off; \
                 CREATE TABLE IF NOT EXISTS app_barrier (marker text PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now()); \
                 INSERT INTO app_barrier (marker) VALUES ('{marker}') ON CONFLICT DO NOTHING; \
                 SELECT to_char(written_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') FROM app_barrier WHERE marker = '{marker}'"
            ),
        )?;
        // No table yet on the replica: the marker's first write has not been replayed.
        let replayed = dr_emulator::postgres::psql(
            request.replica.port,
            &format!("SELECT count(*) FROM app_barrier WHERE marker = '{marker}'"),
        )
        .is_ok_and(|count| count == "1");
        Ok((written, replayed))
    })
    .await??;
    let (written_at, replayed) = written;
    let written_at = time::parse(&written_at)?;
    let answer = BarrierHookAnswer {
        written_at,
        replayed,
        detail: Some(format!(
            "app_barrier row {}",
            if replayed { "replayed in Ireland" } else { "not in Ireland yet" }
        )),
    };
    Ok(serde_json::to_value(answer)?)
}
