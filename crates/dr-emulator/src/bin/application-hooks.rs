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
//! - a `CustomActionRequest` (served as `dr-custom-action-application`, a plan's
//!   `custom_actions`): a stand-in for what the plan does not know (a Redis global datastore's
//!   failover, EFS replication). Its journal is `s3://dr-local-application/custom-actions/<plan>/
//!   <run_id>/<action>.json` (`{"asks": [...every request...], "started", "started_keys",
//!   "started_at"}`), which tests read: it starts its work once per idempotency key (`started`
//!   counts the keys it started under), however often it is asked, and
//!   answers `ready` from its `asks_before_ready`-th live ask on. A dry run is answered at once
//!   and starts nothing. `s3://dr-local-application/action-config/<plan>/<action>` holds
//!   `{"asks_before_ready": n, "fails": "reason"}` (both optional; 1 and none by default): with
//!   `fails`, a live ask is a function error.

use aws_sdk_s3::primitives::ByteStream;
use dr_core::runbook::actions::CustomActionRequest;
use dr_core::runbook::fence::{BarrierHookAnswer, BarrierHookRequest};
use dr_core::time;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::{Value, json};

const BUCKET: &str = "dr-local-application";

#[tokio::main]
async fn main() -> Result<(), Error> {
    let config = dr_core::aws::tls::sdk_config_loader().load().await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&config).force_path_style(true).build());
    // The custom actions' journal is the tests' observer, not part of the estate: it signs with a
    // key of its own, which the fault layer (scoped to the functions' `local-lambda` keys) never
    // touches, so that a throttled journal write is never taken for a failed action.
    let observer =
        aws_sdk_s3::config::Credentials::new("dr-local-observer", "testing", None, None, "application-hooks");
    let journal = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config).credentials_provider(observer).force_path_style(true).build(),
    );
    let (s3, journal) = (&s3, &journal);
    run(service_fn(move |event: LambdaEvent<Value>| async move { handle(s3, journal, event.payload).await })).await
}

async fn handle(s3: &aws_sdk_s3::Client, journal: &aws_sdk_s3::Client, payload: Value) -> Result<Value, Error> {
    if let (Some(plan), Some(probe)) =
        (payload.get("plan").and_then(Value::as_str), payload.get("probe").and_then(Value::as_str))
    {
        return readiness_probe(s3, plan, probe).await;
    }
    if payload.get("idempotency_key").is_some() {
        return custom_action(journal, serde_json::from_value(payload)?).await;
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

async fn read_json(s3: &aws_sdk_s3::Client, key: &str) -> Option<Value> {
    let found = s3.get_object().bucket(BUCKET).key(key).send().await.ok()?;
    serde_json::from_slice(&found.body.collect().await.ok()?.into_bytes()).ok()
}

async fn custom_action(s3: &aws_sdk_s3::Client, request: CustomActionRequest) -> Result<Value, Error> {
    let config = read_json(s3, &format!("action-config/{}/{}", request.plan, request.action)).await.unwrap_or_default();
    let key = format!("custom-actions/{}/{}/{}.json", request.plan, request.run_id, request.action);
    let mut journal = read_json(s3, &key).await.unwrap_or_else(|| json!({ "asks": [], "started": 0 }));
    let mut asked = serde_json::to_value(&request)?;
    asked["at"] = json!(time::rfc3339(time::now()));
    journal["asks"].as_array_mut().ok_or("a journal without asks")?.push(asked);
    let answer = if request.dry_run {
        json!({ "ready": true, "detail": format!("would fail {} over to {}", request.action, request.to_region) })
    } else if let Some(reason) = config.get("fails").and_then(Value::as_str) {
        put_json(s3, &key, &journal).await?;
        return Err(reason.to_string().into());
    } else {
        // Its work starts once per idempotency key: `started` counts the keys it started under.
        let keys = journal["started_keys"].as_array().cloned().unwrap_or_default();
        if !keys.contains(&json!(request.idempotency_key)) {
            let mut keys = keys;
            keys.push(json!(request.idempotency_key));
            journal["started"] = json!(keys.len());
            journal["started_keys"] = json!(keys);
            journal["started_at"] = json!(time::rfc3339(time::now()));
        }
        let live_asks = journal["asks"].as_array().map_or(0, |asks| {
            asks.iter().filter(|ask| ask["dry_run"] == false && ask["point"] == json!(request.point)).count()
        });
        let needed = config.get("asks_before_ready").and_then(Value::as_u64).unwrap_or(1) as usize;
        let ready = live_asks >= needed;
        let detail = if ready {
            format!("{} failed over to {}", request.action, request.to_region)
        } else {
            format!("{} failing over ({live_asks} of {needed})", request.action)
        };
        json!({ "ready": ready, "detail": detail })
    };
    put_json(s3, &key, &journal).await?;
    Ok(answer)
}

async fn put_json(s3: &aws_sdk_s3::Client, key: &str, value: &Value) -> Result<(), Error> {
    ensure_bucket(s3).await?;
    s3.put_object().bucket(BUCKET).key(key).body(ByteStream::from(value.to_string().into_bytes())).send().await?;
    Ok(())
}

/// Creates the stand-in's bucket when it is not there (two actions asked at once may both find it
/// missing: `create_bucket` takes the second's BucketAlreadyOwnedByYou as the bucket there).
async fn ensure_bucket(s3: &aws_sdk_s3::Client) -> Result<(), Error> {
    if s3.head_bucket().bucket(BUCKET).send().await.is_err() {
        let region = s3.config().region().map(|r| r.to_string()).unwrap_or_default();
        dr_emulator::estate::create_bucket(s3, &region, BUCKET).await?;
    }
    Ok(())
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
    put_json(s3, &key, &state).await?;
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
