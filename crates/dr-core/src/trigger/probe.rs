//! The HTTP probe of the primary from the DR region (`trigger.probe_url`): a primary that still
//! answers is not failed over from, whatever its health check says.

use std::time::Duration;

pub(super) enum ProbeResult {
    /// The primary answered below 500: it serves.
    Answered(u16),
    /// Every attempt failed (no connection, timeout, 5xx).
    Failed(String),
}

const PROBE_ATTEMPTS: u32 = 3;
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
const PROBE_PAUSE: Duration = Duration::from_secs(2);
/// The longest the probe takes: every attempt times out, with a pause between attempts.
pub const PROBE_BUDGET: Duration = Duration::from_secs(
    PROBE_TIMEOUT.as_secs() * PROBE_ATTEMPTS as u64 + PROBE_PAUSE.as_secs() * (PROBE_ATTEMPTS as u64 - 1),
);

pub(super) async fn probe(url: &str) -> ProbeResult {
    // No redirects: a redirect could lead the probe to Ireland, which answers during the outage.
    let client = match crate::aws::tls::http_client_builder()
        .timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(e) => return ProbeResult::Failed(format!("no HTTP client: {e}")),
    };
    let mut last = String::new();
    for attempt in 1..=PROBE_ATTEMPTS {
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() < 500 => {
                return ProbeResult::Answered(response.status().as_u16());
            }
            Ok(response) => last = format!("HTTP {}", response.status().as_u16()),
            Err(e) => last = e.to_string(),
        }
        if attempt < PROBE_ATTEMPTS {
            tokio::time::sleep(PROBE_PAUSE).await;
        }
    }
    ProbeResult::Failed(format!("{PROBE_ATTEMPTS} attempts, last: {last}"))
}
