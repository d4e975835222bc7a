//! What every Lambda of the project shares (feature `lambda`): configuration and clients built
//! once per container, JSON logs, and errors reported to the runtime under their stable name
//! (the `errorType` Step Functions Retry/Catch match on).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};

use crate::aws::{ApiCallLog, AwsClients, RegionClients};
use crate::error::DrError;
use crate::plan::Plan;
use crate::restore::{RestoreStep, SqlProbeRequest, connect_probe, janitor, run_restore_step, start_restore_tests};
use crate::rpo;
use crate::runbook::{FailoverStep, RunbookState, StepAction, StepRequest, parse_time, run_step};
use crate::trigger::game_day::handle_game_day;
use crate::trigger::{PlanStore, Starter, TriggerContext, handle_alarm_event};

impl From<DrError> for Diagnostic {
    fn from(err: DrError) -> Self {
        Diagnostic { error_type: err.name().to_string(), error_message: err.to_string() }
    }
}

/// JSON logs to stdout (CloudWatch Logs), level from `RUST_LOG` (default info).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_ansi(false)
        .without_time()
        .init();
}

/// The SDK configuration loaded once, and the clients of each (primary, DR) region pair.
pub struct ClientCache {
    shared: SdkConfig,
    by_regions: Mutex<HashMap<(String, String), AwsClients>>,
}

impl ClientCache {
    pub async fn load() -> ClientCache {
        ClientCache {
            shared: aws_config::load_defaults(BehaviorVersion::latest()).await,
            by_regions: Mutex::new(HashMap::new()),
        }
    }

    pub fn for_plan(&self, plan: &Plan) -> AwsClients {
        let key = (plan.primary_region.clone(), plan.dr_region.clone());
        let build = || AwsClients::from_config(&self.shared, &plan.primary_region, &plan.dr_region);
        match self.by_regions.lock() {
            Ok(mut cache) => cache.entry(key).or_insert_with(build).clone(),
            Err(_) => build(),
        }
    }
}

/// Serves one runbook step: the whole `main` of a failover step Lambda.
pub async fn serve_step(step: FailoverStep) -> Result<(), lambda_runtime::Error> {
    serve_task(format!("{step:?}"), move |action, clients, state| async move {
        run_step(step, action, &clients, &state).await
    })
    .await
}

/// Serves one restore-test step: the whole `main` of a restore-test step Lambda.
pub async fn serve_restore_step(step: RestoreStep) -> Result<(), lambda_runtime::Error> {
    serve_task(format!("{step:?}"), move |action, clients, state| async move {
        run_restore_step(step, action, &clients, &state).await
    })
    .await
}

/// A Task Lambda of a state machine: parses the [`StepRequest`], hands it the plan's clients,
/// logs a failure with its stable name.
async fn serve_task<F, Fut>(step: String, handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(StepAction, AwsClients, RunbookState) -> Fut,
    Fut: Future<Output = Result<serde_json::Value, DrError>>,
{
    init_tracing();
    let clients = ClientCache::load().await;
    let (clients, handler, step) = (&clients, &handler, step.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let request: StepRequest = serde_json::from_value(event.payload)
            .map_err(|e| DrError::InvalidInput { message: format!("not a runbook task input: {e}") })?;
        let aws = clients.for_plan(&request.state.plan);
        let plan = request.state.plan.name.clone();
        let result = handler(request.action, aws, request.state).await;
        if let Err(err) = &result {
            tracing::warn!(plan = %plan, step, error = err.name(), retryable = err.is_retryable(), "{err}");
        }
        result
    }))
    .await
}

/// The whole `main` of the restore-test-start Lambda (monthly schedule, or by hand): starts a
/// restore test of every served plan with a `[restore_test]` on `RESTORE_STATE_MACHINE_ARN`.
pub async fn serve_restore_test_start() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let served = served_plans().await?;
    let starter = Starter::new(served.home.sfn.clone(), setting("RESTORE_STATE_MACHINE_ARN")?);
    let (served, starter) = (&served, &starter);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        // The schedule's time, not the clock: a retried invocation names the same runs, and
        // Step Functions starts each once.
        let scheduled = event.payload.get("time").and_then(|t| t.as_str()).and_then(|t| parse_time(t).ok());
        let now = scheduled.unwrap_or_else(std::time::SystemTime::now);
        log_failure("restore-test-start", start_restore_tests(&served.store, starter, &served.plan_names, now).await)
    }))
    .await
}

/// The whole `main` of the restore-sql-probe Lambda: the shipped SQL probe hook.
pub async fn serve_restore_sql_probe() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let request: SqlProbeRequest = serde_json::from_value(event.payload)
            .map_err(|e| DrError::InvalidInput { message: format!("not a SQL probe request: {e}") })?;
        let answer = connect_probe(&request).await;
        tracing::info!(plan = %request.plan, resource = %request.instance, ok = answer.ok, "{}", answer.detail);
        Ok::<_, DrError>(answer)
    }))
    .await
}

/// The whole `main` of the restore-janitor Lambda (EventBridge schedule): deletes expired
/// restore-test instances in the function's region.
pub async fn serve_restore_janitor() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let cache = ClientCache::load().await;
    let region = cache.shared.region().map(ToString::to_string).unwrap_or_default();
    // The janitor only talks to the DR region (its own): both sides of the clients are it.
    let clients = AwsClients::from_config(&cache.shared, &region, &region);
    let clients = &clients;
    lambda_runtime::run(service_fn(move |_event: LambdaEvent<EventBridgeEvent>| async move {
        let run = log_failure("restore-janitor", janitor(clients, std::time::SystemTime::now()).await)?;
        tracing::info!(deleted = ?run.deleted, kept = ?run.kept, failed = ?run.failed, "janitor done");
        if !run.failed.is_empty() {
            // An error, so that the janitor's Errors alarm tells a human about the leftovers.
            return Err(DrError::AwsCallFailed {
                service: "rds",
                operation: "DeleteDBInstance",
                message: format!("expired restore-test instances not deleted: {}", run.failed.join(", ")),
            });
        }
        Ok::<_, DrError>(run)
    }))
    .await
}

fn setting(name: &str) -> Result<String, DrError> {
    std::env::var(name)
        .map_err(|_| DrError::InvalidInput { message: format!("environment variable {name} is not set") })
}

/// The published plans a function serves, from its environment (set by template.yaml):
/// `PLAN_STATE_BUCKET` (the plan store, in the function's region) and `PLAN_NAMES`
/// (comma-separated); with the client cache.
struct Served {
    store: PlanStore,
    home: RegionClients,
    plan_names: Vec<String>,
    cache: Arc<ClientCache>,
}

async fn served_plans() -> Result<Served, DrError> {
    let bucket = setting("PLAN_STATE_BUCKET")?;
    let plan_names =
        setting("PLAN_NAMES")?.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect();
    let cache = Arc::new(ClientCache::load().await);
    let region = cache.shared.region().map(ToString::to_string).unwrap_or_default();
    let home = RegionClients::new(&cache.shared, &region, &ApiCallLog::default());
    Ok(Served { store: PlanStore::new(home.s3.clone(), bucket), home, plan_names, cache })
}

/// The triggers' configuration: the served plans and `STATE_MACHINE_ARN` (the failover runbook).
async fn trigger_context() -> Result<TriggerContext, lambda_runtime::Error> {
    let served = served_plans().await?;
    let cache = served.cache;
    Ok(TriggerContext {
        store: served.store,
        starter: Starter::new(served.home.sfn.clone(), setting("STATE_MACHINE_ARN")?),
        plan_names: served.plan_names,
        clients_for: Arc::new(move |plan: &Plan| cache.for_plan(plan)),
        confirmation_poll: Duration::from_secs(30),
    })
}

fn log_failure<T>(function: &str, result: Result<T, DrError>) -> Result<T, DrError> {
    if let Err(err) = &result {
        tracing::warn!(function, error = err.name(), retryable = err.is_retryable(), "{err}");
    }
    result
}

/// The whole `main` of the alarm-trigger Lambda (EventBridge: CloudWatch Alarm State Change).
pub async fn serve_alarm_trigger() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ctx = trigger_context().await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let outcome = log_failure("alarm-trigger", handle_alarm_event(ctx, event.payload).await)?;
        tracing::info!(alarm = %outcome.alarm, plan = ?outcome.plan, decision = ?outcome.decision, "{}", outcome.detail);
        Ok::<_, DrError>(outcome)
    }))
    .await
}

/// The whole `main` of the game-day Lambda (invoked by hand, IAM only).
pub async fn serve_game_day() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let ctx = trigger_context().await?;
    let ctx = &ctx;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        log_failure("game-day", handle_game_day(ctx, event.payload).await)
    }))
    .await
}

/// The whole `main` of the rpo-check Lambda (EventBridge schedule): checks every pair of the
/// served plans, publishes the metrics to `RPO_METRIC_NAMESPACE` and writes the snapshots.
pub async fn serve_rpo_check() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let served = served_plans().await?;
    let namespace = std::env::var("RPO_METRIC_NAMESPACE").unwrap_or_else(|_| rpo::check::DEFAULT_NAMESPACE.into());
    let (served, namespace) = (&served, namespace.as_str());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| async move {
        tracing::debug!(detail_type = %event.payload.detail_type, "scheduled RPO check");
        let mut plans = Vec::new();
        for name in &served.plan_names {
            plans.push(log_failure("rpo-check", served.store.load_plan(name).await)?);
        }
        // Plans of the same region pair share clients and one batched check.
        let mut by_regions: BTreeMap<(String, String), Vec<Plan>> = BTreeMap::new();
        for plan in plans {
            by_regions.entry((plan.primary_region.clone(), plan.dr_region.clone())).or_default().push(plan);
        }
        let mut runs = Vec::new();
        for group in by_regions.values() {
            let Some(first) = group.first() else { continue };
            let clients = served.cache.for_plan(first);
            let run = log_failure("rpo-check", rpo::check::run_check(&clients, group, namespace).await)?;
            tracing::info!(
                pairs = run.pairs,
                within_rpo = run.within_rpo,
                rpo_exceeded = run.rpo_exceeded,
                not_replicating = run.not_replicating,
                "RPO check done"
            );
            runs.push(run);
        }
        Ok::<_, DrError>(runs)
    }))
    .await
}
