//! The one place SDK clients are built.
//!
//! Configuration (credentials, retry, `AWS_ENDPOINT_URL`) is loaded from the environment once;
//! each region's clients are derived from it. When an endpoint override is set (the emulator),
//! S3 uses path-style addressing, since `bucket.127.0.0.1` does not resolve.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde::{Deserialize, Serialize};

use crate::plan::Plan;

/// Route53's control plane (records, health checks) and its health-check metrics live here.
pub const ROUTE53_CONTROL_REGION: &str = "us-east-1";

/// Clients for one region.
#[derive(Debug, Clone)]
pub struct RegionClients {
    pub region: String,
    pub autoscaling: aws_sdk_autoscaling::Client,
    pub cloudwatch: aws_sdk_cloudwatch::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// Invokes hooks a plan names (the restore test's SQL probe).
    pub lambda: aws_sdk_lambda::Client,
    pub rds: aws_sdk_rds::Client,
    pub s3: aws_sdk_s3::Client,
    pub sfn: aws_sdk_sfn::Client,
}

/// Everything a plan's steps talk to: the primary region, the DR region and Route53.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub primary: RegionClients,
    pub dr: RegionClients,
    /// Route53 is global; its API is served from us-east-1.
    pub route53: aws_sdk_route53::Client,
    /// CloudWatch in us-east-1, where Route53 publishes `AWS/Route53 HealthCheckStatus`.
    pub route53_metrics: aws_sdk_cloudwatch::Client,
    endpoint_url: Option<String>,
    /// Every request any of these clients sent, in order.
    pub calls: ApiCallLog,
}

impl AwsClients {
    /// Loads the shared configuration from the environment and builds the clients of a plan.
    pub async fn for_plan(plan: &Plan) -> AwsClients {
        AwsClients::for_regions(&plan.primary_region, &plan.dr_region).await
    }

    pub async fn for_regions(primary_region: &str, dr_region: &str) -> AwsClients {
        // Each client gets its region from the plan: no region lookup (env, profile, IMDS) needed.
        let shared =
            aws_config::defaults(BehaviorVersion::latest()).region(Region::new(dr_region.to_string())).load().await;
        AwsClients::from_config(&shared, primary_region, dr_region)
    }

    /// Builds the clients from an already loaded configuration (a Lambda loads it once at start).
    pub fn from_config(shared: &SdkConfig, primary_region: &str, dr_region: &str) -> AwsClients {
        let calls = ApiCallLog::default();
        let control = in_region(shared, ROUTE53_CONTROL_REGION);
        AwsClients {
            primary: RegionClients::new(shared, primary_region, &calls),
            dr: RegionClients::new(shared, dr_region, &calls),
            route53: aws_sdk_route53::Client::from_conf(
                aws_sdk_route53::config::Builder::from(&control).interceptor(calls.clone()).build(),
            ),
            route53_metrics: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&control).interceptor(calls.clone()).build(),
            ),
            endpoint_url: shared.endpoint_url().map(str::to_string),
            calls,
        }
    }

    /// The endpoint override in force (`AWS_ENDPOINT_URL`), if any.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }
}

impl RegionClients {
    pub fn new(shared: &SdkConfig, region: &str, calls: &ApiCallLog) -> RegionClients {
        let config = in_region(shared, region);
        let s3_config = aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(config.endpoint_url().is_some())
            .interceptor(calls.clone())
            .build();
        RegionClients {
            region: region.to_string(),
            autoscaling: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            cloudwatch: aws_sdk_cloudwatch::Client::from_conf(
                aws_sdk_cloudwatch::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            lambda: aws_sdk_lambda::Client::from_conf(
                aws_sdk_lambda::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            sfn: aws_sdk_sfn::Client::from_conf(
                aws_sdk_sfn::config::Builder::from(&config).interceptor(calls.clone()).build(),
            ),
        }
    }
}

/// Every call gives up after this long, each attempt sooner: a region that accepts connections
/// and never answers (Paris, during the outage) must not hold a step until the Lambda times out.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(20);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(6);

fn in_region(shared: &SdkConfig, region: &str) -> SdkConfig {
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_timeout(OPERATION_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .build();
    shared.to_builder().region(Region::new(region.to_string())).timeout_config(timeouts).build()
}

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
}

impl ApiCallLog {
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
            calls.push(ApiCall { service, operation, region, sent_at_ms, millis: 0.0 });
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
