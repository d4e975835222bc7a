//! The Lambda layer: what every function's `main` shares. Configuration and clients are built once
//! per execution environment; [`serve`] turns the JSON payload into the function's typed request
//! (anything else is `InvalidInput`), runs the handler, and reports a failure to the runtime under
//! its stable name (the `errorType` Step Functions' Retry/Catch match on), logged with that name.
//! Logs honour `AWS_LAMBDA_LOG_FORMAT` (JSON in AWS, see template.yaml) and `AWS_LAMBDA_LOG_LEVEL`,
//! as the runtime's own subscriber does ([`init_logging`]).
//!
//! The logic is in `dr-core`; nothing here decides anything.

pub mod handlers;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use dr_core::aws::{ApiCallLog, AwsClients, RegionClients};
use dr_core::error::parse_input;
use dr_core::store::PlanStore;
use dr_core::trigger::TriggerContext;
use dr_core::{DrError, Plan};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing_subscriber::filter::LevelFilter;

/// A handler's failure as the runtime reports it: `errorType` is the stable name.
#[derive(Debug)]
pub struct FunctionError(pub DrError);

impl From<DrError> for FunctionError {
    fn from(err: DrError) -> Self {
        FunctionError(err)
    }
}

impl From<FunctionError> for Diagnostic {
    fn from(FunctionError(err): FunctionError) -> Self {
        Diagnostic { error_type: err.name().to_string(), error_message: err.to_string() }
    }
}

/// Sets up logging as the runtime's default subscriber does (`lambda_runtime::tracing`): JSON when
/// `AWS_LAMBDA_LOG_FORMAT=JSON`, the level from `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO;
/// no target, no time (CloudWatch stamps each line). Unlike it, one level for every module and no
/// per-module directives: its `EnvFilter` brings a regex engine into every function's zip.
pub fn init_logging() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .ok()
        .and_then(|level| level.trim().parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let subscriber = tracing_subscriber::fmt().with_target(false).without_time().with_max_level(level);
    // Err only when a subscriber is already set (a second call): that one serves.
    let _ = if json { subscriber.json().try_init() } else { subscriber.try_init() };
}

/// Serves a JSON-in/JSON-out handler of a typed request. `function` names the function in logs;
/// `what` describes the request in the `InvalidInput` message of a payload that is not one.
pub async fn serve<Req, Resp, Handler, Fut>(
    function: &'static str,
    what: &'static str,
    handler: Handler,
) -> Result<(), lambda_runtime::Error>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    Handler: Fn(Req) -> Fut,
    Fut: Future<Output = Result<Resp, DrError>>,
{
    let handler = &handler;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let result = match parse_input::<Req>(event.payload, what) {
            // Boxed: the handlers' futures are large and deeply nested.
            Ok(request) => Box::pin(handler(request)).await,
            Err(err) => Err(err),
        };
        if let Err(err) = &result {
            tracing::warn!(function, error = err.name(), retryable = err.is_retryable(), "{err}");
        }
        result.map_err(FunctionError)
    }))
    .await
}

/// The SDK configuration, loaded once, and the clients of each (primary, DR) region pair.
pub struct ClientCache {
    shared: SdkConfig,
    by_regions: Mutex<HashMap<(String, String), AwsClients>>,
}

impl ClientCache {
    pub async fn load() -> ClientCache {
        ClientCache {
            shared: dr_core::aws::tls::sdk_config_loader().load().await,
            by_regions: Mutex::new(HashMap::new()),
        }
    }

    /// The function's own region (`AWS_REGION`).
    pub fn home_region(&self) -> String {
        self.shared.region().map(ToString::to_string).unwrap_or_default()
    }

    /// The clients of a plan's two regions, built on first use.
    /// A reversed plan (`Plan::facing`) gets its clients faced the same way.
    pub fn for_plan(&self, plan: &Plan) -> AwsClients {
        self.for_session(plan, &plan.name)
    }

    /// The clients of one run's step: a plan with sections in other accounts assumes their roles
    /// with the run's id as the session name (CloudTrail then shows the run).
    pub fn for_run(&self, state: &dr_core::run::RunbookState) -> AwsClients {
        self.for_session(&state.plan, &state.run.id)
    }

    /// A plan with sections in other accounts gets new clients each time: they assume the member
    /// roles for this invocation only and are dropped with it, so that no credentials outlive an
    /// attempt (`dr_core::aws::accounts`). The others are kept for the execution environment.
    fn for_session(&self, plan: &Plan, session: &str) -> AwsClients {
        if !plan.accounts.is_empty() {
            return AwsClients::for_plan_from(&self.shared, plan, session);
        }
        let (primary, dr) = plan.written_regions();
        self.for_regions(primary, dr).facing(plan.move_direction())
    }

    pub fn for_regions(&self, primary: &str, dr: &str) -> AwsClients {
        let key = (primary.to_string(), dr.to_string());
        let build = || AwsClients::from_config(&self.shared, primary, dr);
        match self.by_regions.lock() {
            Ok(mut cache) => cache.entry(key).or_insert_with(build).clone(),
            Err(_) => build(),
        }
    }

    /// Clients of the function's own region only.
    pub fn home(&self) -> RegionClients {
        RegionClients::new(&self.shared, &self.home_region(), &ApiCallLog::default())
    }
}

/// A setting from the function's environment (template.yaml sets it).
pub fn setting(name: &str) -> Result<String, DrError> {
    std::env::var(name)
        .map_err(|_| DrError::InvalidInput { message: format!("environment variable {name} is not set") })
}

/// The published plans a function serves: `PLAN_STATE_BUCKET` (the plan store, in the
/// function's region) and `PLAN_NAMES` (comma-separated).
pub struct Served {
    pub store: PlanStore,
    pub plan_names: Vec<String>,
    pub cache: Arc<ClientCache>,
}

impl Served {
    pub async fn load() -> Result<Served, DrError> {
        let bucket = setting("PLAN_STATE_BUCKET")?;
        let plan_names =
            setting("PLAN_NAMES")?.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_string).collect();
        let cache = Arc::new(ClientCache::load().await);
        let store = PlanStore::new(cache.home().s3, bucket);
        Ok(Served { store, plan_names, cache })
    }

    /// The triggers' configuration, with `STATE_MACHINE_ARN` (the failover runbook) and, for the
    /// game day, `ROUND_TRIP_STATE_MACHINE_ARN` (the round trip) where it is set.
    pub fn trigger_context(&self) -> Result<TriggerContext, DrError> {
        let cache = Arc::clone(&self.cache);
        Ok(TriggerContext {
            store: self.store.clone(),
            starter: dr_core::run::Starter::new(self.cache.home().sfn, setting("STATE_MACHINE_ARN")?),
            round_trip: setting("ROUND_TRIP_STATE_MACHINE_ARN")
                .ok()
                .map(|arn| dr_core::run::Starter::new(self.cache.home().sfn, arn)),
            plan_names: self.plan_names.clone(),
            account_id: setting("DEPLOYMENT_ACCOUNT_ID")?,
            clients_for: Arc::new(move |plan: &Plan| cache.for_plan(plan)),
            confirmation_poll: Duration::from_secs(30),
            confirmation_wait: dr_core::trigger::MAX_CONFIRMATION_WAIT,
            fence_function: setting("FENCE_FUNCTION").ok(),
        })
    }

    /// Every served plan, loaded from the plan store, as its estate stands (reversed while
    /// Ireland is primary: the RPO check then writes its heartbeat in Ireland and reads Paris).
    pub async fn plans(&self) -> Result<Vec<Plan>, DrError> {
        let mut plans = Vec::new();
        for name in &self.plan_names {
            let plan = self.store.load_plan(name).await?;
            let state = self.store.read_state(name).await?.state;
            plans.push(state.current_plan(&plan)?);
        }
        Ok(plans)
    }
}

/// The whole `main` of a state machine's Task Lambda: clients once, then each Task's request
/// (`{action, state}`), handled with the plan's clients.
pub async fn serve_task<Out, Handler, Fut>(
    function: &'static str,
    handler: Handler,
) -> Result<(), lambda_runtime::Error>
where
    Out: Serialize,
    Handler: Fn(dr_core::run::StepAction, AwsClients, dr_core::run::RunbookState) -> Fut,
    Fut: Future<Output = Result<Out, DrError>>,
{
    init_logging();
    let cache = ClientCache::load().await;
    let store = deployment_store(&cache)?;
    let (cache, store, handler) = (&cache, &store, &handler);
    serve(function, TASK_INPUT, move |request: TaskPayload| async move {
        let state = store.load_run(request.state).await?;
        let clients = cache.for_run(&state);
        handler(request.action, clients, state).await
    })
    .await
}

/// A Task's payload as Step Functions sends it: the action, and the run's state, which the plan
/// store turns into a [`dr_core::run::RunbookState`] (refusing a plan or an approval in it, and
/// loading the plan the run took).
#[derive(serde::Deserialize)]
struct TaskPayload {
    #[serde(default)]
    action: dr_core::run::StepAction,
    state: serde_json::Value,
}

/// The deployment's plan store (`PLAN_STATE_BUCKET`, in the function's region): where every run
/// loads the plan it took. Never a bucket an input names.
pub fn deployment_store(cache: &ClientCache) -> Result<PlanStore, DrError> {
    Ok(PlanStore::new(cache.home().s3, setting("PLAN_STATE_BUCKET")?))
}

/// The `main` of a runbook's step handler: each Task's action runs the row of `runbook` that
/// `handler` serves for it (`dr_core::run::table`).
pub async fn serve_steps(
    handler: &'static str,
    runbook: &'static dr_core::run::table::Runbook,
) -> Result<(), lambda_runtime::Error> {
    serve_task(
        handler,
        move |action, clients, state| async move { runbook.run(handler, action, &clients, &state).await },
    )
    .await
}

/// What a state machine's Task sends.
const TASK_INPUT: &str = "state-machine task input {action, state: {run, steps, ...}}";
