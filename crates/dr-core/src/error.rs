//! The one error type of the project.
//!
//! Every variant has a stable name ([`DrError::name`]): Step Functions `Retry` and `Catch`
//! blocks match on it (the Lambda runtime reports it as the `errorType`), operators grep logs
//! for it, and reports print it. Renaming a variant's name is a breaking change of the runbook.
//! [`DrError::is_retryable`] says whether trying the same call again later can succeed.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::plan::PlanProblem;

#[derive(Debug, thiserror::Error)]
pub enum DrError {
    /// The plan file could not be read.
    #[error("plan {path}: cannot be read: {message}")]
    PlanNotFound { path: String, message: String },

    /// The plan file is not a well-formed plan document (syntax, unknown or missing field).
    #[error("plan {path}: cannot be parsed: {message}")]
    PlanParse { path: String, message: String },

    /// The plan parsed but breaks one or more rules; every problem is listed.
    #[error("plan {plan}: {} problem(s): {}", problems.len(), PlanProblem::summary(problems))]
    InvalidPlan { plan: String, problems: Vec<PlanProblem> },

    /// A resource the plan names does not exist.
    #[error("{kind} {id} not found in {region}")]
    ResourceNotFound { kind: &'static str, id: String, region: String },

    /// The replica is further behind than the plan's RPO allows.
    #[error("replica {replica} lags {lag_seconds:.0} s, over the RPO of {rpo_seconds} s")]
    RpoExceeded { replica: String, lag_seconds: f64, rpo_seconds: u64 },

    /// The replica is not replicating: ReplicaLag is -1, missing, or older than the freshness window.
    #[error("replica {replica} is not replicating: {reason}")]
    ReplicaNotReplicating { replica: String, reason: String },

    /// A task or event input is malformed (empty run id, bad time, approval without a name).
    #[error("invalid input: {message}")]
    InvalidInput { message: String },

    /// Preflight found a resource that is neither in standby nor already failed over.
    #[error("preflight: {} resource(s) not ready: {}", findings.len(), findings.join("; "))]
    PreflightFailed { findings: Vec<String> },

    /// The replica is in a state that cannot be promoted yet (e.g. modifying, backing-up).
    #[error("replica {replica} cannot be promoted while {status}")]
    ReplicaNotPromotable { replica: String, status: String },

    /// A standby instance is between states (stopping, shutting down) and cannot be started yet.
    #[error("instance {instance} cannot be started while {state}")]
    InstanceBusy { instance: String, state: String },

    /// A status check ran out of attempts: the change did not take effect within its RTO share.
    #[error("{step} not ready after {attempts} checks: {last_state}")]
    StepTimedOut { step: String, attempts: u32, last_state: String },

    /// A live drill of a production plan without `confirm` equal to the plan's name.
    #[error("a live drill of production plan {plan} needs confirm = {plan:?}")]
    DrillNotConfirmed { plan: String },

    /// The plan is failing over or failed over: a new run needs an operator to re-arm it first.
    #[error("plan {plan} is {status}: re-arm it (drctl trigger arm) before another run")]
    PlanBusy { plan: String, status: String },

    /// The restore test found no available snapshot of the protected database.
    #[error("no available {origin} snapshot of {database} in {region}")]
    NoSnapshot { database: String, origin: String, region: String },

    /// The newest snapshot is older than the plan allows: restoring it would prove little.
    #[error("newest snapshot {snapshot} is {age_hours:.1} h old, over the {max_hours} h the plan allows")]
    SnapshotTooOld { snapshot: String, age_hours: f64, max_hours: u32 },

    /// The restore ended in a state it never leaves for available (incompatible-*, failed, ...).
    #[error("restore into {instance} failed: {status}")]
    RestoreFailed { instance: String, status: String },

    /// The restored instance is not what the plan expects (status, engine, version, encryption, endpoint).
    #[error("restored instance {instance} failed validation: {}", failures.join("; "))]
    RestoreValidationFailed { instance: String, failures: Vec<String> },

    /// A delete was asked for an instance that is not a restore-test instance: refused.
    #[error("{instance} is not a restore-test instance (name prefix and tag): refusing to delete it")]
    NotARestoreTestInstance { instance: String },

    /// The estate builder was pointed at something other than a local emulator.
    #[error("refusing to build an emulated estate against {endpoint}: only a loopback AWS_ENDPOINT_URL is allowed")]
    EmulatorOnly { endpoint: String },

    /// An AWS call failed in a way that may succeed if tried again (throttling, 5xx, timeout, network).
    #[error("{service}:{operation} failed, retryable: {message}")]
    AwsTransient { service: &'static str, operation: &'static str, message: String },

    /// An AWS call was rejected (permissions, validation, conflict); trying again will not help.
    #[error("{service}:{operation} failed: {message}")]
    AwsCallFailed { service: &'static str, operation: &'static str, message: String },
}

impl DrError {
    /// `ResourceNotFound` for an S3 bucket (S3 answered NoSuchBucket).
    pub fn bucket_not_found(bucket: &str, region: &str) -> DrError {
        DrError::ResourceNotFound { kind: "S3 bucket", id: bucket.to_string(), region: region.to_string() }
    }

    /// The stable name Step Functions `Retry`/`Catch` and the reports use.
    pub fn name(&self) -> &'static str {
        match self {
            DrError::PlanNotFound { .. } => "PlanNotFound",
            DrError::PlanParse { .. } => "PlanParseError",
            DrError::InvalidPlan { .. } => "InvalidPlan",
            DrError::ResourceNotFound { .. } => "ResourceNotFound",
            DrError::RpoExceeded { .. } => "RpoExceeded",
            DrError::ReplicaNotReplicating { .. } => "ReplicaNotReplicating",
            DrError::InvalidInput { .. } => "InvalidInput",
            DrError::PreflightFailed { .. } => "PreflightFailed",
            DrError::ReplicaNotPromotable { .. } => "ReplicaNotPromotable",
            DrError::InstanceBusy { .. } => "InstanceBusy",
            DrError::StepTimedOut { .. } => "StepTimedOut",
            DrError::DrillNotConfirmed { .. } => "DrillNotConfirmed",
            DrError::PlanBusy { .. } => "PlanBusy",
            DrError::NoSnapshot { .. } => "NoSnapshot",
            DrError::SnapshotTooOld { .. } => "SnapshotTooOld",
            DrError::RestoreFailed { .. } => "RestoreFailed",
            DrError::RestoreValidationFailed { .. } => "RestoreValidationFailed",
            DrError::NotARestoreTestInstance { .. } => "NotARestoreTestInstance",
            DrError::EmulatorOnly { .. } => "EmulatorOnly",
            DrError::AwsTransient { .. } => "AwsTransient",
            DrError::AwsCallFailed { .. } => "AwsCallFailed",
        }
    }

    /// Whether the same call may succeed later without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            DrError::AwsTransient { .. } | DrError::ReplicaNotPromotable { .. } | DrError::InstanceBusy { .. }
        )
    }

    /// Classifies an SDK error of any service into [`DrError::AwsTransient`] or
    /// [`DrError::AwsCallFailed`].
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service_err) => {
                service_err.raw().status().is_server_error()
                    || service_err.err().code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
            }
            _ => false,
        };
        let message = describe_sdk_error(&err);
        if transient {
            DrError::AwsTransient { service, operation, message }
        } else {
            DrError::AwsCallFailed { service, operation, message }
        }
    }
}

impl DrError {
    /// A request the SDK refused to build (a required field missing): a bug, never retryable.
    pub fn request_build(service: &'static str, operation: &'static str, err: impl std::fmt::Display) -> Self {
        DrError::AwsCallFailed { service, operation, message: format!("request could not be built: {err}") }
    }
}

/// AWS error codes that mean "slow down or try again", across the services we call.
const TRANSIENT_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "RequestThrottled",
    "RequestThrottledException",
    "PriorRequestNotComplete",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    // EC2 out of capacity in an Availability Zone: likely while a whole region fails over, and it
    // clears as capacity frees up.
    "InsufficientInstanceCapacity",
];

/// "Code: message" of an SDK error, or its display chain when the service said nothing.
pub fn describe_sdk_error<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if let SdkError::ServiceError(service_err) = err {
        let inner = service_err.err();
        if let Some(code) = inner.code() {
            return format!("{code}: {}", inner.message().unwrap_or(""));
        }
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The code of a service error, e.g. `DBInstanceNotFound`, to branch on "does not exist".
pub fn sdk_error_code<E>(err: &SdkError<E, HttpResponse>) -> Option<&str>
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::ServiceError(service_err) => service_err.err().code(),
        _ => None,
    }
}
