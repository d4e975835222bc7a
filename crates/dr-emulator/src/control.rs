//! The local stack's control API (crates/dr-emulator/moto/control.py), on the emulator's endpoint:
//! what Route 53 answers and why, and holding an alarm's evaluation.

use dr_core::aws::AwsClients;
use dr_core::error::DrError;
use dr_core::time::{self, Timestamp};
use serde::Deserialize;

use crate::guard::require_emulator;

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
    let response = reqwest::Client::new().get(url).query(&query).send().await.map_err(|e| failed("DNS answer", e))?;
    response.json().await.map_err(|e| failed("DNS answer", e))
}

/// Holds (or releases) an alarm's evaluation: CloudWatch has not evaluated it yet, so its state
/// stays where it is whatever the metric says.
pub async fn hold_alarm(clients: &AwsClients, region: &str, alarm: &str, held: bool) -> Result<(), DrError> {
    let url = format!("{}/dr-local/alarms/hold", endpoint(clients)?);
    let body = serde_json::json!({ "region": region, "alarm": alarm, "held": held });
    let response =
        reqwest::Client::new().post(url).body(body.to_string()).send().await.map_err(|e| failed("hold alarm", e))?;
    response.error_for_status().map(|_| ()).map_err(|e| failed("hold alarm", e))
}
