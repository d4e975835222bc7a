// Test support: a failed setup step is a failed test, so it panics with a message.
#![allow(clippy::expect_used, clippy::panic)]

//! Shared setup of the workspace tests: emulator clients and isolated copies of the example plan.
//!
//! Tests run against the moto server that `scripts/test` starts (AWS_ENDPOINT_URL). Each test
//! works on its own copy of the example plan whose every resource name carries a unique suffix,
//! so tests run in parallel without resetting the emulator; even the faults a test injects are
//! scoped to its estate ([`estate_suffix`]).

pub mod chromium;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::notify::{
    DEDUP_KEY_ATTRIBUTE, EVENT_ATTRIBUTE, EVENT_DETAIL_TYPE, EVENT_SOURCE, Notice, NoticeKind, SEVERITY_ATTRIBUTE,
};
use dr_core::run::{RunInfo, RunbookState, Starter};
use dr_core::store::PlanStore;
use dr_core::time;
use dr_core::trigger::TriggerContext;
use dr_emulator::estate::{SeedOptions, seed};
use dr_emulator::executions::{TriggerSeed, seed_triggers, substitute};
use dr_emulator::lambdas::LAMBDA_ACCESS_KEY;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary of the workspace's build (`target/debug/<name>`, or under `CARGO_TARGET_DIR`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| repo_root().join("target"), PathBuf::from);
    let path = target.join("debug").join(name);
    assert!(path.exists(), "{} is not built: scripts/test builds it (cargo build --workspace --bins)", path.display());
    path
}

pub fn example_plan_path() -> PathBuf {
    repo_root().join("plans/paris-ireland.toml")
}

/// A short suffix unique to this process and call: lower-case letters and digits, always 13 of
/// them, so that no suffix is part of another (the emulator scopes faults by suffix).
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{:04}{:05x}{:04x}", std::process::id() % 10_000, nanos % 0x10_0000, n % 0x1_0000)
}

/// The example plan with every resource renamed so that no other test touches it.
pub fn isolated_plan() -> Plan {
    let mut plan = Plan::load(&example_plan_path()).expect("example plan is valid");
    let s = unique_suffix();
    plan.name = format!("t{s}");
    plan.databases[0].primary_instance = format!("db-paris-{s}");
    plan.databases[0].replica_instance = format!("db-ireland-{s}");
    for (index, tag) in plan.standby_instances.iter_mut().filter_map(|group| group.tag.as_mut()).enumerate() {
        tag.value = if index == 0 { format!("standby-{s}") } else { format!("standby{index}-{s}") };
    }
    dr_group_mut(&mut plan).group = format!("web-ireland-{s}");
    if let Some(fence) = plan.fence.as_mut() {
        fence.auto_scaling_group = vec![format!("web-paris-{s}")];
    }
    plan.databases[0].credentials_secret = Some(format!("db-credentials-{s}"));
    plan.dns.hosted_zone = format!("t{s}.example.com.");
    plan.dns.records[0].record = format!("app.t{s}.example.com.");
    if let Some(routing) = plan.dns.routing.as_mut() {
        routing.health_check = format!("route-to-ireland-{s}");
        routing.alarm = format!("route-to-ireland-{s}");
    }
    for (index, pair) in plan.s3_replication.iter_mut().enumerate() {
        pair.source_bucket = format!("assets{index}-paris-{s}");
        pair.replica_bucket = format!("assets{index}-ireland-{s}");
    }
    plan.reports.bucket = format!("reports-{s}");
    if let Some(trigger) = plan.trigger.as_mut() {
        trigger.alarms = vec![format!("paris-down-{s}")];
        trigger.detection_health_check = format!("paris-primary-{s}");
    }
    plan.validate().expect("isolated plan stays valid");
    plan
}

/// The microservices example plan (us-east-1 -> us-west-2, ECS only) with every resource renamed
/// so that no other test touches it; its custom actions are the local stand-in
/// (`dr-custom-action-application`).
pub fn isolated_microservices_plan() -> Plan {
    let mut plan = Plan::load(&repo_root().join("plans/us-east-west-microservices.toml")).expect("the plan is valid");
    let s = unique_suffix();
    plan.name = format!("t{s}");
    plan.databases[0].primary_instance = format!("db-virginia-{s}");
    plan.databases[0].replica_instance = format!("db-oregon-{s}");
    plan.databases[0].credentials_secret = Some(format!("db-credentials-{s}"));
    for service in &mut plan.ecs_services {
        service.cluster = format!("{}-{s}", service.cluster);
    }
    plan.dns.hosted_zone = format!("t{s}.example.com.");
    for record in &mut plan.dns.records {
        let host = record.record.split('.').next().unwrap_or("app").to_string();
        record.record = format!("{host}.t{s}.example.com.");
    }
    if let Some(routing) = plan.dns.routing.as_mut() {
        routing.health_check = format!("route-to-oregon-{s}");
        routing.alarm = format!("route-to-oregon-{s}");
    }
    for (index, pair) in plan.s3_replication.iter_mut().enumerate() {
        pair.source_bucket = format!("media{index}-virginia-{s}");
        pair.replica_bucket = format!("media{index}-oregon-{s}");
    }
    plan.reports.bucket = format!("reports-{s}");
    if let Some(trigger) = plan.trigger.as_mut() {
        trigger.alarms = vec![format!("virginia-down-{s}")];
        trigger.detection_health_check = format!("virginia-primary-{s}");
    }
    for action in &mut plan.custom_actions {
        action.function = "dr-custom-action-application".into();
    }
    plan.validate().expect("the isolated microservices plan stays valid");
    plan
}

/// A failover of `plan` (run `run_id`, its input published) under 20 % throttling and half of
/// the mutating calls' answers lost (drawn from `seed`), run again from where it stopped, at most
/// twice, as an operator would (same run, same keys): the last execution, the errors the earlier
/// ones stopped with, and what the fault layer injected and let through.
pub async fn failover_under_faults(
    clients: &AwsClients,
    plan: &Plan,
    seed: u64,
    run_id: &str,
    run: impl Fn(&serde_json::Value) -> Execution,
) -> (Execution, Vec<String>, dr_emulator::control::FaultReport) {
    use dr_emulator::control::{Faults, clear_faults, fault_report, inject_faults};
    let faults = Faults { throttle_share: 0.2, lose_share: 0.5, seed, ..Faults::for_the_lambdas(estate_suffix(plan)) };
    inject_faults(clients, &faults).await.expect("faults injected");
    let input = published_failover_input(plan, run_id);
    let mut execution = run(&input);
    let mut stopped = Vec::new();
    while execution.status != "SUCCEEDED" && stopped.len() < 2 {
        stopped.push(execution.error.clone().unwrap_or_default());
        execution = run(&input);
    }
    let injected = fault_report(clients, estate_suffix(plan)).await.expect("fault report");
    clear_faults(clients, estate_suffix(plan)).await.expect("faults cleared");
    (execution, stopped, injected)
}

/// The plan's DR Auto Scaling group: the example plan has one.
pub fn dr_group(plan: &Plan) -> &dr_core::plan::AutoScaling {
    plan.auto_scaling.first().expect("the plan has an Auto Scaling group")
}

/// [`dr_group`], to change.
pub fn dr_group_mut(plan: &mut Plan) -> &mut dr_core::plan::AutoScaling {
    plan.auto_scaling.first_mut().expect("the plan has an Auto Scaling group")
}

/// The suffix every resource name of an [`isolated_plan`] carries (the plan itself is named
/// `t<suffix>`): the scope of the faults a test injects into the calls about its estate.
pub fn estate_suffix(plan: &Plan) -> &str {
    plan.name.strip_prefix('t').unwrap_or(&plan.name)
}

/// Clients for the plan's regions, configured from the environment like drctl and the Lambdas.
pub async fn emulator_clients(plan: &Plan) -> AwsClients {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test, which starts the emulator"
    );
    AwsClients::for_plan(plan, "dr-tests").await
}

/// Clients that sign as the local functions do ([`LAMBDA_ACCESS_KEY`]): the emulator's fault layer
/// treats their calls as the functions' own, for code a test runs in-process.
pub async fn clients_as_the_lambdas(plan: &Plan) -> AwsClients {
    let shared = config_signing_with(LAMBDA_ACCESS_KEY, &plan.dr_region).await;
    AwsClients::from_config(&shared, &plan.primary_region, &plan.dr_region)
}

/// The plan's clients as one local function signs (`local-lambda-<function>`): the local IAM
/// authorizes its calls against that function's role, its `sts:AssumeRole` into a member role
/// too.
pub async fn clients_signing_as(function: &str, plan: &Plan, session: &str) -> AwsClients {
    let shared = config_signing_with(&format!("{LAMBDA_ACCESS_KEY}-{function}"), &plan.dr_region).await;
    AwsClients::for_plan_from(&shared, plan, session)
}

/// The SDK configuration of `region` signing with the access key `key`.
async fn config_signing_with(key: &str, region: &str) -> aws_config::SdkConfig {
    let credentials = aws_sdk_s3::config::Credentials::new(key, "testing", None, None, "dr-tests");
    dr_core::aws::tls::sdk_config_loader()
        .region(aws_config::Region::new(region.to_string()))
        .credentials_provider(credentials)
        .load()
        .await
}

/// The stack deployed again for `plan` changed after seeding (its hooks, its options), as an
/// operator redeploys with `drctl deploy params`: the local IAM then authorizes the functions'
/// calls for it against the roles of that deployment.
pub async fn deploy(clients: &AwsClients, plan: &Plan) {
    dr_emulator::iam::register_deployment(clients, plan, None).await.expect("the deployment registered");
}

/// An isolated plan, its clients, and its estate seeded in standby.
pub async fn seeded_estate() -> (Plan, AwsClients) {
    seeded_estate_with(|_| {}).await
}

/// [`seeded_estate`] of the isolated plan as `shape` changes it (what it adds is seeded, and the
/// local stack's IAM authorizes the functions for it).
pub async fn seeded_estate_with(shape: impl FnOnce(&mut Plan)) -> (Plan, AwsClients) {
    let mut plan = isolated_plan();
    shape(&mut plan);
    plan.validate().expect("the shaped plan is valid");
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding the emulated estate");
    (plan, clients)
}

/// Three ECS services in the DR region, in two clusters named for the plan's estate: `api`
/// (standby 1, failover 4), `worker` (0 to 3) and `batch/jobs` (0 to 2).
pub fn with_ecs_services(plan: &mut Plan) {
    let suffix = estate_suffix(plan).to_string();
    let service = |cluster: &str, service: &str, standby: u16, failover: u16| dr_core::plan::EcsService {
        cluster: format!("{cluster}-{suffix}"),
        service: service.into(),
        failover_count: failover,
        standby_count: standby,
        minimum_healthy: 1,
    };
    plan.ecs_services =
        vec![service("platform", "api", 1, 4), service("platform", "worker", 0, 3), service("batch", "jobs", 0, 2)];
}

/// A seeded estate whose primary and replica are backed by a real PostgreSQL pair (the emulated
/// RDS instances answer with the pair's endpoints, and promote, rename and replicate it).
pub async fn backed_estate(name: &str) -> (Plan, AwsClients, dr_emulator::postgres::Pair) {
    backed_estate_with(name, |_| {}).await
}

/// [`backed_estate`] of the isolated plan as `shape` changes it.
pub async fn backed_estate_with(
    name: &str,
    shape: impl FnOnce(&mut Plan),
) -> (Plan, AwsClients, dr_emulator::postgres::Pair) {
    let (plan, clients) = seeded_estate_with(shape).await;
    let pair = back_with_real_pair(&clients, &plan, name).await;
    (plan, clients, pair)
}

/// A real PostgreSQL pair (`<name>-<suffix>`) behind the plan's emulated primary and replica,
/// from here on: kept running while the pair lives.
pub async fn back_with_real_pair(clients: &AwsClients, plan: &Plan, name: &str) -> dr_emulator::postgres::Pair {
    back_database_with_real_pair(clients, plan, &plan.databases[0], name).await
}

/// [`back_with_real_pair`] for one of the plan's databases.
pub async fn back_database_with_real_pair(
    clients: &AwsClients,
    plan: &Plan,
    db: &dr_core::plan::Database,
    name: &str,
) -> dr_emulator::postgres::Pair {
    let pair = dr_emulator::postgres::Pair::start(&format!("{name}-{}", unique_suffix())).expect("a PostgreSQL pair");
    use dr_emulator::control::back_instance_with;
    back_instance_with(clients, &plan.primary_region, &db.primary_instance, &pair.primary)
        .await
        .expect("primary backed");
    back_instance_with(clients, &plan.dr_region, &db.replica_instance, &pair.standby).await.expect("replica backed");
    pair
}

/// A second database in the estate, named for it: `db-orders-paris-<suffix>` and its Ireland
/// replica, with the first one's settings and credentials.
pub fn with_second_database(plan: &mut Plan) {
    let suffix = estate_suffix(plan).to_string();
    let mut orders = plan.databases[0].clone();
    orders.primary_instance = format!("db-orders-paris-{suffix}");
    orders.replica_instance = format!("db-orders-ireland-{suffix}");
    plan.databases.push(orders);
}

/// One execution of a state machine in aws-local-stepfunctions, as `tests/sfn/run.mjs` prints it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Execution {
    pub status: String,
    #[serde(default)]
    pub output: serde_json::Value,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub cause: Option<serde_json::Value>,
    pub wall_ms: f64,
    pub events: Vec<ExecutionEvent>,
    /// The executions a Task started and waited for (startExecution.sync), run in the same engine.
    #[serde(default)]
    pub children: Vec<ChildExecution>,
}

impl Execution {
    /// When `state` was first entered, in milliseconds since the epoch.
    pub fn entered(&self, state: &str) -> f64 {
        self.events
            .iter()
            .find(|e| e.kind == "StateEntered" && e.state.as_deref() == Some(state))
            .map(|e| e.timestamp)
            .unwrap_or_else(|| panic!("{state} never entered"))
    }

    /// [first entry of `from`, first entry of `to`], in milliseconds since the epoch.
    pub fn interval(&self, from: &str, to: &str) -> (f64, f64) {
        (self.entered(from), self.entered(to))
    }
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ChildExecution {
    /// The machine's local name (`failover`, `reprotect`).
    pub machine: String,
    pub name: String,
    pub status: String,
    pub events: usize,
}

#[derive(Debug, Clone, serde::Deserialize)]
pub struct ExecutionEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub state: Option<String>,
    /// Milliseconds since the Unix epoch.
    pub timestamp: f64,
    /// The error name of a `StateFailed` or `ExecutionFailed` event.
    #[serde(default)]
    pub error: Option<String>,
}

/// The Task states an execution entered that can change the estate (every one but
/// `dr_core::reconcile::TASKS_THAT_CHANGE_NOTHING`): empty for a run stopped before any change.
pub fn changing_tasks_entered(execution: &Execution) -> Vec<String> {
    execution
        .events
        .iter()
        .filter(|e| e.kind == "TaskStateEntered")
        .filter_map(|e| e.state.clone())
        .filter(|state| !dr_core::reconcile::TASKS_THAT_CHANGE_NOTHING.contains(&state.as_str()))
        .collect()
}

/// The DefinitionSubstitutions of failover.asl.json for local runs (`tests/sfn/failover.local.json`):
/// the function names the local Lambda service serves, where SAM fills in the function ARNs.
pub fn failover_substitutions() -> serde_json::Value {
    local_substitutions("failover.local.json")
}

/// The DefinitionSubstitutions of a state machine for local runs, from `tests/sfn/<file>`.
pub fn local_substitutions(file: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("tests/sfn").join(file)).expect("substitutions file");
    serde_json::from_str(&text).expect("substitutions are JSON")
}

/// The failover's execution input for `plan`, triggered now: `plan` as it is now published to
/// the local deployment's plan store, where the run's steps load it.
pub async fn failover_input(plan: &Plan, run_id: &str) -> serde_json::Value {
    publish(plan).await;
    published_failover_input(plan, run_id)
}

/// [`failover_input`] of a plan already published as it is.
pub fn published_failover_input(plan: &Plan, run_id: &str) -> serde_json::Value {
    let run = RunInfo::new(run_id, time::now(), "test: simulated Paris outage");
    serde_json::to_value(RunbookState::new(plan.clone(), run)).expect("the input serialises")
}

/// Publishes `plan` as it is now to the local deployment's plan store (`drctl plan publish`): the
/// local functions load the version a run names from there.
pub async fn publish(plan: &Plan) {
    // Boxed: a test awaits it among many other large futures (debug builds keep them on the
    // test thread's stack).
    Box::pin(async {
        let clients = emulator_clients(plan).await;
        dr_emulator::estate::publish_to_the_local_deployment(&clients, plan).await.expect("the plan published");
    })
    .await;
}

/// Executes a state machine of `statemachines/` with the real Lambdas (AWS_ENDPOINT_URL_LAMBDA:
/// the local Lambda service).
pub fn run_state_machine(definition: &str, substitutions: &serde_json::Value, input: &serde_json::Value) -> Execution {
    run_state_machine_waiting(definition, substitutions, input, std::time::Duration::ZERO)
}

/// As [`run_state_machine`], with every Wait state lasting `wait` (instead of none): for runs
/// that wait out something that takes real time in the emulator. An absolute `definition` is
/// run from where it is (a variant a benchmark wrote).
pub fn run_state_machine_waiting(
    definition: &str,
    substitutions: &serde_json::Value,
    input: &serde_json::Value,
    wait: std::time::Duration,
) -> Execution {
    use std::io::Write;
    use std::process::{Command, Stdio};
    assert!(
        std::env::var("AWS_ENDPOINT_URL_LAMBDA").is_ok(),
        "AWS_ENDPOINT_URL_LAMBDA is not set: run the suite with scripts/test, which starts the local Lambda service"
    );
    let substitutions_file = std::env::temp_dir().join(format!("sfn-substitutions-{}.json", unique_suffix()));
    std::fs::write(&substitutions_file, substitutions.to_string()).expect("substitutions written");
    let mut child = Command::new("node")
        .arg("--no-warnings")
        .arg(repo_root().join("tests/sfn/run.mjs"))
        .arg(repo_root().join("statemachines").join(definition))
        .arg(&substitutions_file)
        .env("SFN_WAIT_MS", wait.as_millis().to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs tests/sfn/run.mjs");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("input written");
    let out = child.wait_with_output().expect("runner finished");
    let _ = std::fs::remove_file(&substitutions_file);
    assert!(out.status.success(), "runner failed: {}", String::from_utf8_lossy(&out.stderr));
    let execution: Execution = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("runner output is not an execution ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    // Shown with a failing test's output: how long each run of it took.
    eprintln!(
        "{definition}: {} after {:.1} s, {} events, {} Task retries",
        execution.status,
        execution.wall_ms / 1000.0,
        execution.events.len(),
        execution.events.iter().filter(|e| e.kind == "StateRetried").count()
    );
    execution
}

/// The restore test's execution input for `plan`, started now (`plan` published as it is now).
pub async fn restore_input(plan: &Plan) -> RunbookState {
    publish(plan).await;
    published_restore_input(plan)
}

/// [`restore_input`] of a plan already published as it is.
pub fn published_restore_input(plan: &Plan) -> RunbookState {
    RunbookState::new(
        plan.clone(),
        RunInfo::new(format!("restore-{}", unique_suffix()), time::now(), "test: monthly restore test"),
    )
}

/// Runs the monthly restore test (`statemachines/restore-test.asl.json`) on `input`.
pub fn run_restore_test(input: &RunbookState) -> Execution {
    let input = serde_json::to_value(input).expect("the input serialises");
    run_state_machine("restore-test.asl.json", &local_substitutions("restore-test.local.json"), &input)
}

/// Runs the failover runbook on `input`.
pub fn run_failover(input: &serde_json::Value) -> Execution {
    run_state_machine("failover.asl.json", &failover_substitutions(), input)
}

/// [`run_failover`] with its Wait states lasting 200 ms: a run that polls (compute coming up,
/// custom actions answering) takes seconds, not the plan's poll interval.
pub fn run_failover_polling(input: &serde_json::Value) -> Execution {
    run_state_machine_waiting("failover.asl.json", &failover_substitutions(), input, Duration::from_millis(200))
}

/// A report the runbook wrote to S3, read back.
pub async fn read_report(clients: &AwsClients, plan: &Plan, run_id: &str, file: &str) -> Vec<u8> {
    let key = format!("{}{}/{run_id}/{file}", plan.reports.prefix, plan.name);
    let object = clients.dr.s3.get_object().bucket(&plan.reports.bucket).key(&key).send().await.expect("report object");
    object.body.collect().await.expect("report body").into_bytes().to_vec()
}

/// A state machine that ends at once: registered where a test is about what starts an execution
/// (the triggers, the game day), which then runs the execution's input in the ASL engine itself
/// ([`run_state_machine`]) when it needs the run. The local Step Functions runs what is started,
/// so the real definition registered there would run beside the test's own run.
pub const STAND_IN_MACHINE: &str = r#"{"Comment":"stand-in: the test runs the input itself","StartAt":"Started","States":{"Started":{"Type":"Succeed"}}}"#;

/// Registers [`STAND_IN_MACHINE`] under `name`, the plan published to `bucket`; its ARN.
pub async fn register_stand_in(clients: &AwsClients, plan: &Plan, bucket: &str, name: &str) -> String {
    let seed = TriggerSeed {
        plan_state_bucket: bucket.to_string(),
        state_machine_name: name.to_string(),
        state_machine_definition: STAND_IN_MACHINE.to_string(),
    };
    seed_triggers(clients, plan, &seed).await.expect("plan published, state machine registered")
}

/// The triggers of a seeded isolated plan: the plan published to its own plan store (left
/// disarmed), a stand-in failover state machine registered in Step Functions under the plan's
/// name, and a context that hands out `clients`, so that their call log holds every call the
/// trigger makes.
pub async fn trigger_context(plan: &Plan, clients: &AwsClients) -> TriggerContext {
    // The runs it starts are the local deployment's: their steps load the plan from its store.
    publish(plan).await;
    let bucket = format!("plans-{}", plan.name);
    let arn = register_stand_in(clients, plan, &bucket, &plan.name).await;
    let for_plan = clients.clone();
    TriggerContext {
        store: PlanStore::new(clients.dr.s3.clone(), bucket),
        starter: Starter::new(clients.dr.sfn.clone(), arn),
        round_trip: None,
        plan_names: vec![plan.name.clone()],
        account_id: dr_emulator::estate::EMULATOR_ACCOUNT.to_string(),
        clients_for: Arc::new(move |_| for_plan.clone()),
        confirmation_poll: Duration::from_millis(200),
        confirmation_wait: dr_core::trigger::MAX_CONFIRMATION_WAIT,
        fence_function: None,
    }
}

/// The ARN of the state machine registered under `name`, looked for on every page (the suite
/// registers more machines than the first page of ListStateMachines holds).
pub async fn registered_machine(clients: &AwsClients, name: &str) -> Option<String> {
    let mut pages = clients.dr.sfn.list_state_machines().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.expect("ListStateMachines");
        if let Some(found) = page.state_machines().iter().find(|m| m.name() == name) {
            return Some(found.state_machine_arn().to_string());
        }
    }
    None
}

/// The executions Step Functions has of the plan's state machine: (name, input).
pub async fn recorded_executions(clients: &AwsClients, plan: &Plan) -> Vec<(String, serde_json::Value)> {
    let arn = registered_machine(clients, &plan.name).await.expect("the plan's state machine is registered");
    let listed = clients.dr.sfn.list_executions().state_machine_arn(arn).send().await.expect("ListExecutions");
    let mut executions = Vec::new();
    for execution in listed.executions() {
        let described = clients
            .dr
            .sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .expect("DescribeExecution");
        let input = serde_json::from_str(described.input().unwrap_or("{}")).expect("execution input is JSON");
        executions.push((execution.name().to_string(), input));
    }
    executions
}

/// Invokes a local function through the Invoke API, as `aws lambda invoke` does: its answer, and
/// the `X-Amz-Function-Error` header when it failed.
pub fn invoke_lambda(function: &str, payload: &serde_json::Value) -> (serde_json::Value, Option<String>) {
    use std::process::Command;
    let lambda = std::env::var("AWS_ENDPOINT_URL_LAMBDA").expect("AWS_ENDPOINT_URL_LAMBDA is set by scripts/test");
    let headers = std::env::temp_dir().join(format!("invoke-{}.headers", unique_suffix()));
    let out = Command::new("curl")
        .args(["-sS", "-X", "POST", "-D"])
        .arg(&headers)
        .args(["--data-binary", &payload.to_string()])
        .arg(format!("{lambda}/2015-03-31/functions/{function}/invocations"))
        .output()
        .expect("curl runs");
    let header_text = std::fs::read_to_string(&headers).unwrap_or_default();
    let _ = std::fs::remove_file(&headers);
    let function_error = header_text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.eq_ignore_ascii_case("x-amz-function-error").then(|| value.trim().to_string())
    });
    let answer = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{function} answered something other than JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    (answer, function_error)
}

/// Whether a recorded call went to Route 53's API (the SDK names the service "Route 53").
/// `tests/routing.rs` proves it matches by finding the record-upsert flip with it.
pub fn is_route53_api(call: &dr_core::aws::ApiCall) -> bool {
    call.service == "Route 53"
}

/// The topic the local Lambda service hands the functions (scripts/lib.sh).
const TOPIC_NAME: &str = "dr-notifications";

/// A queue of its own in the DR region, named `<kind>-<suffix>`: the SQS client, its URL and its
/// ARN.
async fn test_queue(clients: &AwsClients, kind: &str) -> (aws_sdk_sqs::Client, String, String) {
    let config =
        dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(clients.dr.region.clone())).load().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = sqs.create_queue().queue_name(format!("{kind}-{}", unique_suffix())).send().await.expect("queue");
    let url = queue.queue_url().expect("queue URL").to_string();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("queue ARN");
    let queue_arn = attributes
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("queue ARN")
        .clone();
    (sqs, url, queue_arn)
}

/// A queue subscribed to the deployment's topic; the topic's ARN. The clients publish to it too.
pub async fn subscribe(clients: &mut AwsClients) -> (aws_sdk_sqs::Client, String) {
    let topic = clients.dr.sns.create_topic().name(TOPIC_NAME).send().await.expect("CreateTopic");
    let topic_arn = topic.topic_arn().expect("topic ARN").to_string();
    let (sqs, url, queue_arn) = test_queue(clients, "notes").await;
    clients
        .dr
        .sns
        .subscribe()
        .topic_arn(&topic_arn)
        .protocol("sqs")
        .endpoint(queue_arn)
        .send()
        .await
        .expect("Subscribe");
    clients.notify_topic = Some(topic_arn);
    (sqs, url)
}

/// Every notice about `plan` delivered so far (the SNS envelope's `event` attribute).
pub async fn notices(sqs: &aws_sdk_sqs::Client, url: &str, plan: &str, seen: &mut Vec<Notice>) -> Vec<Notice> {
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages();
        if messages.is_empty() {
            break;
        }
        for message in messages {
            let envelope: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("an SNS envelope");
            let event = envelope["MessageAttributes"][EVENT_ATTRIBUTE]["Value"].as_str().expect("the event attribute");
            let notice: Notice = serde_json::from_str(event).expect("a notice");
            // What an SNS subscription filter policy routes on: the same as the notice says.
            let attribute = |name: &str| envelope["MessageAttributes"][name]["Value"].as_str().map(str::to_string);
            assert_eq!(attribute(SEVERITY_ATTRIBUTE).as_deref(), Some(notice.severity.name()), "{envelope}");
            assert_eq!(attribute(DEDUP_KEY_ATTRIBUTE), Some(notice.dedup_key.clone()), "{envelope}");
            assert!(envelope["Subject"].as_str().is_some_and(|s| s.starts_with("[dr] ") && s.len() < 100));
            assert_eq!(envelope["Message"].as_str(), Some(notice.text.as_str()), "the text is the message");
            if notice.plan == plan {
                seen.push(notice);
            }
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.expect("DeleteMessage");
            }
        }
    }
    seen.clone()
}

/// An SQS queue that a rule on the DR region's default bus fills with the notices' events about
/// `plan`, as the template's PagerDuty and Opsgenie rules match them (source and detail-type).
/// The test's own clients put their notices' events on that bus too, as the functions do
/// (template.yaml's `NOTICE_EVENT_BUS`).
pub async fn subscribe_events(clients: &mut AwsClients, plan: &str) -> (aws_sdk_sqs::Client, String) {
    let (sqs, url, queue_arn) = test_queue(clients, "events").await;
    let config =
        dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(clients.dr.region.clone())).load().await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let rule = format!("notices-{}", unique_suffix());
    let pattern = serde_json::json!({
        "source": [EVENT_SOURCE],
        "detail-type": [EVENT_DETAIL_TYPE],
        "detail": {"plan": [plan]},
    });
    events.put_rule().name(&rule).event_pattern(pattern.to_string()).send().await.expect("PutRule");
    let target = aws_sdk_eventbridge::types::Target::builder().id("queue").arn(queue_arn).build().expect("target");
    events.put_targets().rule(&rule).targets(target).send().await.expect("PutTargets");
    clients.notice_bus = Some("default".into());
    (sqs, url)
}

/// Every notice event delivered so far (the event's detail), with the event's source and
/// detail-type checked.
pub async fn notice_events(sqs: &aws_sdk_sqs::Client, url: &str) -> Vec<Notice> {
    let mut seen = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage");
        let messages = received.messages();
        if messages.is_empty() {
            return seen;
        }
        for message in messages {
            let event: serde_json::Value =
                serde_json::from_str(message.body().unwrap_or_default()).expect("an EventBridge event");
            assert_eq!(
                (event["source"].as_str(), event["detail-type"].as_str()),
                (Some(EVENT_SOURCE), Some(EVENT_DETAIL_TYPE))
            );
            seen.push(serde_json::from_value(event["detail"].clone()).expect("a notice as the detail"));
            if let Some(handle) = message.receipt_handle() {
                sqs.delete_message().queue_url(url).receipt_handle(handle).send().await.expect("DeleteMessage");
            }
        }
    }
}

pub fn of_kind(seen: &[Notice], kind: NoticeKind) -> Vec<&Notice> {
    seen.iter().filter(|notice| notice.kind == kind).collect()
}

/// The failover runbook registered in Step Functions as the stack deploys it (the local function
/// names substituted), under a name of its own for the plan; its ARN. The local Step Functions
/// runs what is started on it, with the real Lambdas.
pub async fn register_runbook(clients: &AwsClients, plan: &Plan, bucket: &str) -> String {
    let definition =
        std::fs::read_to_string(repo_root().join("statemachines/failover.asl.json")).expect("failover definition");
    let values = failover_substitutions();
    let definition = substitute(&definition, values.as_object().expect("an object")).expect("substituted");
    let seed = TriggerSeed {
        plan_state_bucket: bucket.to_string(),
        state_machine_name: format!("failover-{}", plan.name),
        state_machine_definition: definition,
    };
    seed_triggers(clients, plan, &seed).await.expect("plan published, runbook registered")
}

/// The plan written to a file, as an operator's drctl reads it.
pub fn plan_file(plan: &Plan) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", plan.name));
    std::fs::write(&path, toml::to_string(plan).expect("the plan serialises")).expect("plan file written");
    path
}

/// The median of a benchmark's samples (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// A person with their own IAM user and access key in the emulator (moto's IAM): drctl signed with
/// it is that person, as STS answers (`sts:GetCallerIdentity`). The key id and secret.
pub async fn iam_person(name: &str) -> (String, String) {
    let config = dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new("us-east-1")).load().await;
    let iam = aws_sdk_iam::Client::new(&config);
    iam.create_user().user_name(name).send().await.expect("CreateUser");
    let key = iam.create_access_key().user_name(name).send().await.expect("CreateAccessKey");
    let key = key.access_key().expect("an access key");
    (key.access_key_id().to_string(), key.secret_access_key().to_string())
}
