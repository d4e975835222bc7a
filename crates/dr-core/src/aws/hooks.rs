//! The plan's own Lambdas (a fencing switch, a barrier hook, the restore test's SQL probe, a
//! custom action), invoked with a JSON request in the region each caller names. A function error is the hook's answer, not a
//! failed call: each caller names what it means.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use serde::Serialize;

use super::{RegionClients, once};
use crate::error::DrError;

/// Whether invoking the hook changes something (no SDK retry: a lost answer is found out on the
/// step's next attempt, see [`once`]) or only reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookEffect {
    Reads,
    Changes,
}

/// A hook that ran and failed: its error type and payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookFailure {
    pub error: String,
    pub body: String,
}

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.body)
    }
}

/// What a synchronous Invoke adds to the function's own run: the call's round trip and Lambda's
/// start of the function.
const INVOKE_OVERHEAD: Duration = Duration::from_secs(5);

/// The client's timeouts for one invocation of a hook allowed `timeout`: the SDK's usual 6 s
/// attempt would cut any slower hook and have it invoked again on every poll.
fn hook_timeouts(timeout: Duration) -> TimeoutConfig {
    let whole = timeout + INVOKE_OVERHEAD;
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(whole)
        .operation_attempt_timeout(whole)
        .operation_timeout(whole)
        .build()
}

/// Invokes `function` in `region` with `request`, allowing it `timeout` (the plan's
/// `hook_timeout_seconds`):
/// `Ok(Ok(payload))` when it answered, `Ok(Err(failure))` when it ran and failed, `Err` when the
/// call itself failed or did not answer in time.
pub async fn invoke_hook(
    region: &RegionClients,
    function: &str,
    request: &impl Serialize,
    effect: HookEffect,
    timeout: Duration,
) -> Result<Result<Vec<u8>, HookFailure>, DrError> {
    let payload = serde_json::to_vec(request).map_err(|e| DrError::serialisation("hook request", e))?;
    let call = region.lambda.invoke().function_name(function).payload(aws_smithy_types::Blob::new(payload));
    let config = match effect {
        HookEffect::Changes => once::lambda(),
        // Within the hook's time: the operation timeout leaves no room for a second attempt.
        HookEffect::Reads => aws_sdk_lambda::config::Builder::default(),
    };
    let sent = call.customize().config_override(config.timeout_config(hook_timeouts(timeout))).send().await;
    let invoked = sent.map_err(|e| DrError::from_sdk("lambda", "Invoke", e))?;
    let body = invoked.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
    Ok(match invoked.function_error() {
        Some(error) => Err(HookFailure { error: error.to_string(), body: String::from_utf8_lossy(&body).to_string() }),
        None => Ok(body),
    })
}
