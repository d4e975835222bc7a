//! The record of every AWS call: an SDK interceptor that each client carries, so that a step
//! reports exactly which calls it made and tests can prove that a path made no mutating call.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use aws_config::Region;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::{Deserialize, Serialize};

/// One request sent to AWS.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ApiCall {
    pub service: String,
    pub operation: String,
    pub region: String,
    /// When the request was sent, in milliseconds since the Unix epoch.
    #[serde(default)]
    pub sent_at_ms: f64,
    /// Time on the wire and in AWS, request sent to response received (the last attempt).
    #[serde(default)]
    pub millis: f64,
    /// The member role the call was made as, for a plan section in another account
    /// (`[accounts]`); absent: the orchestrator's own role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
}

impl ApiCall {
    /// Whether the call can change the estate. Reads are Describe*, List*, Get* and Head*;
    /// everything else (Create, Start, Promote, Update, Put, Change, ...) counts as mutating.
    pub fn is_mutating(&self) -> bool {
        !["Describe", "List", "Get", "Head"].iter().any(|read| self.operation.starts_with(read))
    }
}

/// Records every request the clients send (an SDK interceptor), so that each step can report
/// exactly which AWS calls it made and tests can prove that a path made no mutating call.
#[derive(Debug, Clone, Default)]
pub struct ApiCallLog {
    calls: Arc<Mutex<Vec<ApiCall>>>,
    /// What this handle's calls are recorded as made by ([`ApiCall::principal`]).
    principal: Option<Arc<str>>,
}

impl ApiCallLog {
    /// The same log, for the clients that call as `role_arn` (a member role): their calls are
    /// recorded with it.
    pub fn as_role(&self, role_arn: &str) -> ApiCallLog {
        ApiCallLog { calls: Arc::clone(&self.calls), principal: Some(Arc::from(role_arn)) }
    }

    /// Everything recorded so far.
    pub fn all(&self) -> Vec<ApiCall> {
        self.calls.lock().map(|calls| calls.clone()).unwrap_or_default()
    }

    /// Position to pass to [`ApiCallLog::since`] later.
    pub fn mark(&self) -> usize {
        self.calls.lock().map(|calls| calls.len()).unwrap_or_default()
    }

    /// The calls recorded after `mark`.
    pub fn since(&self, mark: usize) -> Vec<ApiCall> {
        self.calls
            .lock()
            .map(|calls| calls.get(mark..).map(<[ApiCall]>::to_vec).unwrap_or_default())
            .unwrap_or_default()
    }
}

/// The request being transmitted: its place in the log and when it was sent.
#[derive(Debug, Clone)]
struct InFlight {
    index: usize,
    sent: Instant,
}

impl Storable for InFlight {
    type Storer = StoreReplace<Self>;
}

impl Intercept for ApiCallLog {
    fn name(&self) -> &'static str {
        "ApiCallLog"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) =
            cfg.load::<Metadata>().map(|m| (m.service().to_string(), m.name().to_string())).unwrap_or_default();
        let region = cfg.load::<Region>().map(|r| r.to_string()).unwrap_or_default();
        if let Ok(mut calls) = self.calls.lock() {
            cfg.interceptor_state().store_put(InFlight { index: calls.len(), sent: Instant::now() });
            let sent_at_ms =
                SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or_default();
            let principal = self.principal.as_deref().map(str::to_string);
            calls.push(ApiCall { service, operation, region, sent_at_ms, millis: 0.0, principal });
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        _context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let (Some(in_flight), Ok(mut calls)) = (cfg.load::<InFlight>(), self.calls.lock())
            && let Some(call) = calls.get_mut(in_flight.index)
        {
            call.millis = in_flight.sent.elapsed().as_secs_f64() * 1000.0;
        }
        Ok(())
    }
}
