//! The local stack's control API (crates/dr-emulator/moto/control.py), on the emulator's endpoint:
//! what Route 53 answers and why, holding an alarm's evaluation, the faults of a regional event,
//! and the transient states moto skips (a replica backing up, an instance falling back to stopped).

use dr_core::aws::AwsClients;
use dr_core::error::DrError;
use dr_core::time::{self, Timestamp};
use serde::Deserialize;

use crate::guard::require_emulator;
use crate::lambdas::LAMBDA_ACCESS_KEY;

/// Route 53's answer for a name, as the emulator models it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Answer {
    pub values: Vec<String>,
    pub ttl: u32,
    /// Which record answered and why (the health checks' states).
    pub why: String,
}

fn endpoint(clients: &AwsClients) -> Result<String, DrError> {
    require_emulator(clients)?;
    Ok(clients.endpoint_url().unwrap_or_default().trim_end_matches('/').to_string())
}

fn failed(what: &str, err: impl std::fmt::Display) -> DrError {
    DrError::AwsTransient { service: "emulator", operation: "control", message: format!("{what}: {err}") }
}

/// What Route 53 answers for `name` (`record_type`) now, or at `at` if no new data arrives by then
/// (health checks and alarms judged then; nothing changes), and why.
pub async fn route53_answer(
    clients: &AwsClients,
    name: &str,
    record_type: &str,
    at: Option<Timestamp>,
) -> Result<Answer, DrError> {
    let url = format!("{}/dr-local/dns", endpoint(clients)?);
    let mut query = vec![("name", name.to_string()), ("type", record_type.to_string())];
    query.extend(at.map(|at| ("at", time::rfc3339(at))));
    let response = control_client()?.get(url).query(&query).send().await.map_err(|e| failed("DNS answer", e))?;
    response.json().await.map_err(|e| failed("DNS answer", e))
}

/// Holds (or releases) an alarm's evaluation: CloudWatch has not evaluated it yet, so its state
/// stays where it is whatever the metric says.
pub async fn hold_alarm(clients: &AwsClients, region: &str, alarm: &str, held: bool) -> Result<(), DrError> {
    post(clients, "/dr-local/alarms/hold", serde_json::json!({ "region": region, "alarm": alarm, "held": held })).await
}

/// Route 53's checkers miss the next `count` datapoints of the plan's routing metric (dimension
/// `Plan`) published in `region`: CloudWatch has them (the alarm evaluates them), the health
/// check never sees them.
pub async fn route53_misses_datapoints(
    clients: &AwsClients,
    region: &str,
    routing: &dr_core::plan::Routing,
    plan: &str,
    count: u32,
) -> Result<(), DrError> {
    let body = serde_json::json!({
        "region": region, "namespace": routing.namespace, "metric": routing.metric, "plan": plan, "count": count,
    });
    post(clients, "/dr-local/route53/missed-datapoints", body).await
}

/// Stamps when the alarm moved to its current state (StateTransitionedTimestamp): a simulated
/// outage is back-dated, and SetAlarmState stamps the call's own time.
pub async fn alarm_moved_at(clients: &AwsClients, region: &str, alarm: &str, at: Timestamp) -> Result<(), DrError> {
    post(
        clients,
        "/dr-local/alarms/moved",
        serde_json::json!({ "region": region, "alarm": alarm, "at": time::rfc3339(at) }),
    )
    .await
}

/// Faults the emulator injects into the requests signed with `access_key` (the local Lambdas'
/// is [`LAMBDA_ACCESS_KEY`]) that are about `scope`: see crates/dr-emulator/moto/faults.py.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Faults {
    /// The requests whose path, query or body contain it (an estate's resource-name suffix; empty:
    /// every request). Other scopes' requests go through unfaulted and uncounted.
    pub scope: String,
    pub access_key: String,
    /// Every call to these regions gets no answer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hang_regions: Vec<String>,
    /// Share of calls answered with the service's throttling error.
    pub throttle_share: f64,
    /// Share of calls answered 503.
    pub server_error_share: f64,
    /// Share of mutating calls that take effect and whose answer is then lost.
    pub lose_share: f64,
    /// The first this many conditional S3 writes (`If-Match`, `If-None-Match`) that take effect
    /// lose their answer: the SDK's retry then meets a 412 caused by its own first attempt.
    #[serde(skip_serializing_if = "is_zero")]
    pub lose_conditional_writes: u32,
    pub seed: u64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Faults {
    /// No fault yet, on the local functions' calls about `scope`: the fault layer still counts
    /// every change that takes effect there.
    pub fn for_the_lambdas(scope: &str) -> Faults {
        Faults { scope: scope.to_string(), access_key: LAMBDA_ACCESS_KEY.to_string(), ..Faults::default() }
    }
}

/// What the fault layer did.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FaultReport {
    /// Faults injected, by kind: hung, throttled, server_errors, lost.
    pub injected: std::collections::BTreeMap<String, u64>,
    /// Every mutating call that took effect, with how many times.
    pub applied: Vec<AppliedCall>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AppliedCall {
    pub service: String,
    pub operation: String,
    pub target: String,
    pub times: u32,
}

/// A call to the control API at `path` whose answer is JSON.
async fn control_request<T: serde::de::DeserializeOwned>(
    clients: &AwsClients,
    path: &str,
    method: reqwest::Method,
    body: Option<String>,
) -> Result<T, DrError> {
    let url = format!("{}{path}", endpoint(clients)?);
    let mut request = control_client()?.request(method, url);
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request.send().await.map_err(|e| failed(path, e))?;
    response.json().await.map_err(|e| failed(path, e))
}

/// Starts injecting `faults` in their scope (and forgets what was injected there before).
pub async fn inject_faults(clients: &AwsClients, faults: &Faults) -> Result<(), DrError> {
    let body = serde_json::to_string(faults).map_err(|e| DrError::serialisation("faults", e))?;
    control_request::<FaultReport>(clients, "/dr-local/faults", reqwest::Method::POST, Some(body)).await.map(|_| ())
}

/// Stops injecting faults in `scope` (its hung calls are answered 504); returns what was injected.
pub async fn clear_faults(clients: &AwsClients, scope: &str) -> Result<FaultReport, DrError> {
    control_request(clients, &faults_path(scope), reqwest::Method::DELETE, None).await
}

/// What was injected in `scope` so far, and the mutating calls that took effect there.
pub async fn fault_report(clients: &AwsClients, scope: &str) -> Result<FaultReport, DrError> {
    control_request(clients, &faults_path(scope), reqwest::Method::GET, None).await
}

fn faults_path(scope: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("scope", scope).finish();
    format!("/dr-local/faults?{query}")
}

/// The control API's HTTP client (the product's one TLS stack, though the API is plain HTTP).
fn control_client() -> Result<reqwest::Client, DrError> {
    dr_core::aws::tls::http_client_builder().build().map_err(|e| failed("HTTP client", e))
}

pub(crate) async fn post(clients: &AwsClients, path: &str, body: serde_json::Value) -> Result<(), DrError> {
    let url = format!("{}{path}", endpoint(clients)?);
    let response = control_client()?.post(url).body(body.to_string()).send().await.map_err(|e| failed(path, e))?;
    response.error_for_status().map(|_| ()).map_err(|e| failed(path, e))
}

/// A DELETE of the control API at `path` (a model back to its default).
pub(crate) async fn delete(clients: &AwsClients, path: &str) -> Result<(), DrError> {
    let url = format!("{}{path}", endpoint(clients)?);
    let response = control_client()?.delete(url).send().await.map_err(|e| failed(path, e))?;
    response.error_for_status().map(|_| ()).map_err(|e| failed(path, e))
}

/// A POST of `body` to the control API at `path`, its JSON answer.
pub(crate) async fn control_post_json<T: serde::de::DeserializeOwned>(
    clients: &AwsClients,
    path: &str,
    body: serde_json::Value,
) -> Result<T, DrError> {
    control_request(clients, path, reqwest::Method::POST, Some(body.to_string())).await
}

/// A GET of the control API at `path`, its JSON answer.
pub(crate) async fn control_json<T: serde::de::DeserializeOwned>(
    clients: &AwsClients,
    path: &str,
) -> Result<T, DrError> {
    control_request(clients, path, reqwest::Method::GET, None).await
}

/// The RDS instance shows `status` (e.g. `backing-up`) for `seconds`, and refuses a promotion
/// meanwhile, as RDS does during its backup window.
pub async fn hold_rds_status(
    clients: &AwsClients,
    region: &str,
    instance: &str,
    status: &str,
    seconds: u64,
) -> Result<(), DrError> {
    let body = serde_json::json!({ "region": region, "instance": instance, "status": status, "seconds": seconds });
    post(clients, "/dr-local/rds/status", body).await
}

/// The replica's next promotion is accepted, then ends in `status` (e.g. `incompatible-parameters`)
/// with the instance no longer replicating, as a promotion RDS cannot finish does (moto/rds.py).
pub async fn promotion_fails(clients: &AwsClients, region: &str, instance: &str, status: &str) -> Result<(), DrError> {
    let body = serde_json::json!({ "region": region, "instance": instance, "status": status });
    post(clients, "/dr-local/rds/promotion-fails", body).await
}

/// The emulated RDS `instance` in `region` is backed by the real PostgreSQL `server`: its
/// endpoint is the server's, and promoting the instance (a replica) promotes the server, a
/// standby (moto/rds.py).
pub async fn back_instance_with(
    clients: &AwsClients,
    region: &str,
    instance: &str,
    server: &crate::postgres::Server,
) -> Result<(), DrError> {
    let body = serde_json::json!({ "region": region, "instance": instance, "host": "127.0.0.1", "port": server.port });
    post(clients, "/dr-local/rds/backing", body).await
}

/// The next `times` starts of the EC2 instance fall back to stopped with this state reason, as
/// EC2 does when capacity runs out or the EBS key cannot be used.
pub async fn start_falls_back(
    clients: &AwsClients,
    instance: &str,
    times: u32,
    code: &str,
    message: &str,
) -> Result<(), DrError> {
    let body = serde_json::json!({ "instance": instance, "times": times, "code": code, "message": message });
    post(clients, "/dr-local/ec2/start-fallback", body).await
}

/// The next start of the EC2 instance ends with it terminated, with this state reason: an
/// instance lost while a run brings it up (another actor, a shutdown behaviour of `terminate`).
pub async fn start_terminates(clients: &AwsClients, instance: &str, code: &str, message: &str) -> Result<(), DrError> {
    let body = serde_json::json!({ "instance": instance, "code": code, "message": message, "terminates": true });
    post(clients, "/dr-local/ec2/start-fallback", body).await
}

/// At most `running` tasks of the ECS service can run, the others staying pending (an image that
/// does not pull, a subnet out of addresses); `None`: the cap lifted, the pending tasks start
/// (moto/ecs.py).
pub async fn cap_ecs_tasks(
    clients: &AwsClients,
    region: &str,
    cluster: &str,
    service: &str,
    running: Option<u32>,
) -> Result<(), DrError> {
    let body = serde_json::json!({ "region": region, "cluster": cluster, "service": service, "running": running });
    post(clients, "/dr-local/ecs/task-capacity", body).await
}

/// The RTO model in force (crates/dr-emulator/moto/timing.py): AWS's durations, in AWS seconds,
/// and the scale they are played at (`None`: off, moto's instant changes).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TimingModel {
    pub scale: Option<f64>,
    pub promote_seconds: f64,
    pub boot_seconds: f64,
    pub status_check_seconds: f64,
    pub asg_in_service_seconds: f64,
    /// An ECS task from its start to running (moto/ecs.py).
    pub ecs_task_start_seconds: f64,
    pub dns_propagation_seconds: f64,
    pub routing_alarm_period_seconds: f64,
}

/// Plays AWS's durations at `scale` wall seconds per AWS second (0.02: an AWS minute in 1.2 s).
pub async fn model_aws_durations(clients: &AwsClients, scale: f64) -> Result<TimingModel, DrError> {
    control_request(
        clients,
        "/dr-local/timing",
        reqwest::Method::POST,
        Some(serde_json::json!({ "scale": scale }).to_string()),
    )
    .await
}

/// Back to moto's instant changes.
pub async fn instant_changes(clients: &AwsClients) -> Result<TimingModel, DrError> {
    control_request(clients, "/dr-local/timing", reqwest::Method::DELETE, None).await
}
