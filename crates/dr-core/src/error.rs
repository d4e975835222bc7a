//! The one error type of the project, and the named problems a plan can have.
//!
//! Every variant has a stable name ([`DrError::name`], from [`ErrorName`]): Step Functions `Retry`
//! and `Catch` blocks match on it (the Lambda runtime reports it as the `errorType`), operators
//! grep logs for it, and reports print it. Renaming is a breaking change of the state machines;
//! `tests/contract.rs` checks every `statemachines/*.asl.json` against [`ErrorName::iter`].
//! [`ErrorName::is_retryable`] says whether trying the same call again later can succeed.

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use serde::{Deserialize, Serialize};
use strum::{EnumDiscriminants, EnumIter, IntoEnumIterator, IntoStaticStr};

/// Every failure of the project. [`ErrorName`] is derived from it (one field-less variant per
/// variant here), so a new variant has its stable name without a second list to keep in step.
#[derive(Debug, thiserror::Error, EnumDiscriminants)]
#[strum_discriminants(
    name(ErrorName),
    doc = "The stable names of [`DrError`]'s variants, without their details.",
    derive(Hash, EnumIter, IntoStaticStr, strum::Display, Serialize, Deserialize)
)]
pub enum DrError {
    /// The plan file could not be read.
    #[error("plan {path}: cannot be read: {message}")]
    PlanNotFound { path: String, message: String },

    /// The plan file is not a well-formed plan document (syntax, unknown or missing field).
    #[error("plan {path}: cannot be parsed: {message}")]
    // Its stable name is `PlanParseError` (the docs and the error tables say so), not the
    // variant's: the string and the JSON forms must both keep it.
    #[strum_discriminants(strum(serialize = "PlanParseError"))]
    #[strum_discriminants(serde(rename = "PlanParseError"))]
    PlanParse { path: String, message: String },

    /// The plan parsed but breaks one or more rules; every problem is listed.
    #[error("plan {plan}: {} problem(s): {}", problems.len(), PlanProblem::summary(problems))]
    InvalidPlan { plan: String, problems: Vec<PlanProblem> },

    /// The deployed stack's parameters are not the ones the plan determines (`drctl deploy
    /// params`): its IAM scopes and names would not fit the plan being published.
    #[error(
        "plan {plan} does not fit stack {stack}: {}; deploy the stack with `drctl deploy params` first",
        disagreements.join("; ")
    )]
    PlanStackMismatch { plan: String, stack: String, disagreements: Vec<String> },

    /// A resource the plan names does not exist.
    #[error("{kind} {id} not found in {region}")]
    ResourceNotFound { kind: &'static str, id: String, region: String },

    /// The data a failover would lose is more than the plan's RPO allows.
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

    /// The replica is in a state it does not leave by itself (failed, incompatible-*, storage-full,
    /// inaccessible-encryption-credentials): it cannot be promoted.
    #[error("replica {replica} is {status}: it will not become available by itself")]
    ReplicaFailed { replica: String, status: String },

    /// A standby instance is between states (stopping, shutting down) and cannot be started yet.
    #[error("instance {instance} cannot be started while {state}")]
    InstanceBusy { instance: String, state: String },

    /// A step's change did not take effect within its time budget (its phase's share of the RTO,
    /// counted from the phase's first attempt).
    #[error("{step} not done after {waited_seconds} s (budget {budget_seconds} s): {last_state}")]
    StepTimedOut { step: String, waited_seconds: u64, budget_seconds: u64, last_state: String },

    /// Fewer of a compute group's instances can serve than the plan's `minimum_healthy`: lost
    /// (terminated, or not starting after the bounded starts), or not healthy within the
    /// compute phase's budget. After a promotion, a planned move rolls back and an unplanned one
    /// asks a human.
    #[error("{group}: {serving} can serve, the plan's minimum is {minimum}: {why}")]
    BelowMinimumCapacity { group: String, serving: usize, minimum: u16, why: String },

    /// A planned move could not fence the writer (no `[fence]`, the fencing Lambda failed, the
    /// primary refused): nothing was promoted; the fence is undone.
    #[error("the writer in {region} was not fenced: {reason}")]
    FenceFailed { region: String, reason: String },

    /// A plan's custom action failed (a function error, or an answer that is not `{ready,
    /// detail}`) or said it failed: the run stops there, as a failure of the step at that point.
    #[error("custom action {action} ({point}) failed: {reason}")]
    CustomActionFailed { action: String, point: String, reason: String },

    /// The database server's certificate is not one the RDS CA bundle (or `DR_DB_CA_BUNDLE`)
    /// vouches for, or does not name the endpoint: nothing is sent to it, credentials included.
    #[error("database {instance} at {address}: its TLS certificate is not trusted ({reason})")]
    DatabaseNotTrusted { instance: String, address: String, reason: String },

    /// The barrier marker written in Paris after the fence did not reach the Ireland replica within
    /// the plan's `fence.barrier_timeout_seconds`: the replica may lack acknowledged writes, so
    /// nothing is promoted and the fence is undone.
    #[error("barrier {marker} not replayed on {replica} after {waited_seconds} s (timeout {timeout_seconds} s)")]
    BarrierNotReached { replica: String, marker: String, waited_seconds: u64, timeout_seconds: u64 },

    /// Reprotect cannot proceed (before any change): the Ireland instance is still a replica
    /// (no failover happened), or the plan's Paris name is held by an instance that is neither the
    /// old primary nor a replica of Ireland, or no retired primary gives the replica's settings.
    #[error("reprotect refused: {reason}")]
    ReprotectRefused { reason: String },

    /// A live drill of a production plan without `confirm` equal to the plan's name.
    #[error("a live drill of production plan {plan} needs confirm = {plan:?}")]
    DrillNotConfirmed { plan: String },

    /// An event that does not come from this deployment: another account in the event or in the
    /// alarm's ARN, or an alarm outside the Route 53 control region. Nothing is called.
    #[error("alarm {alarm}: not an event of this deployment: {message}")]
    ForeignEvent { alarm: String, message: String },

    /// An input carries what no input may: a plan (a run acts on the published plan it names) or
    /// an approval (approvals are recorded, authenticated decisions). Nothing is called.
    #[error("{what} carries {field:?}, which no input may: {message}")]
    UntrustedInput { what: String, field: String, message: String },

    /// The plan is failing over or failed over: a new run needs an operator to re-arm it first.
    #[error("plan {plan} is {status}: re-arm it (drctl trigger arm) before another run")]
    PlanBusy { plan: String, status: String },

    /// A human rejected going on past the run's failed RPO gate (`drctl run reject`).
    #[error("rejected by {by}: {reason}")]
    DecisionRejected { by: String, reason: String },

    /// A second approve or reject of a run whose decision is already taken.
    #[error("run {run} was already {status} by {by}")]
    DecisionAlreadyTaken { run: String, status: String, by: String },

    /// On a plan that requires two people, the run's starter tried to approve it (or the starter
    /// is not on record, so nobody can be told apart from them).
    #[error("run {run}: {approver} may not approve it: {message}")]
    ApproverIsStarter { run: String, approver: String, message: String },

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

    /// The local stack was pointed at something other than a loopback emulator.
    #[error("refusing to act on {endpoint}: only a loopback AWS_ENDPOINT_URL is allowed")]
    EmulatorOnly { endpoint: String },

    /// An AWS call failed in a way that may succeed if tried again (throttling, 5xx, timeout, network).
    #[error("{service}:{operation} failed, retryable: {message}")]
    AwsTransient { service: &'static str, operation: &'static str, message: String },

    /// The function's role (or the organization's SCPs, or the resource's policy) does not allow
    /// the call: a deployment defect, never retried; the message names the action and resource.
    #[error("{service}:{operation} denied: {message}")]
    AccessDenied { service: &'static str, operation: &'static str, message: String },

    /// An AWS call was rejected (validation, conflict); trying again will not help.
    #[error("{service}:{operation} failed: {message}")]
    AwsCallFailed { service: &'static str, operation: &'static str, message: String },

    /// A bug of ours, not of the input or of AWS (an output that cannot be serialised).
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl ErrorName {
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether the same call may succeed later without anyone changing anything: the state
    /// machines retry exactly these (checked by `tests/contract.rs`).
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorName::AwsTransient | ErrorName::ReplicaNotPromotable | ErrorName::InstanceBusy)
    }

    /// Every name, in declaration order.
    pub fn all() -> impl Iterator<Item = ErrorName> {
        ErrorName::iter()
    }
}

impl DrError {
    /// The stable name Step Functions `Retry`/`Catch` and the reports use.
    pub fn kind(&self) -> ErrorName {
        ErrorName::from(self)
    }

    /// The stable name, as a string.
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    pub fn is_retryable(&self) -> bool {
        self.kind().is_retryable()
    }

    /// `ResourceNotFound` for an S3 bucket (S3 answered NoSuchBucket).
    pub fn bucket_not_found(bucket: &str, region: &str) -> DrError {
        DrError::ResourceNotFound { kind: "S3 bucket", id: bucket.to_string(), region: region.to_string() }
    }

    /// A value of ours that could not be serialised: a bug, reported as `Internal`.
    pub fn serialisation(what: &str, err: impl std::fmt::Display) -> DrError {
        DrError::Internal { message: format!("{what} not serialisable: {err}") }
    }

    /// A request the SDK refused to build (a required field missing): a bug, never retryable.
    pub fn request_build(service: &'static str, operation: &'static str, err: impl std::fmt::Display) -> Self {
        DrError::AwsCallFailed { service, operation, message: format!("request could not be built: {err}") }
    }

    /// Classifies an SDK error of any service into [`DrError::AwsTransient`], [`DrError::AccessDenied`] or
    /// [`DrError::AwsCallFailed`].
    pub fn from_sdk<E>(service: &'static str, operation: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        // A plan section's member role refused (`aws::accounts`): the call never left; its trust or
        // the orchestrator's own role is missing something, which no retry mends.
        if let Some(refused) = refusal_in(&err) {
            let message = refused.to_string();
            return if refused.denied {
                DrError::AccessDenied { service, operation, message }
            } else {
                DrError::AwsCallFailed { service, operation, message }
            };
        }
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service_err) => {
                service_err.raw().status().is_server_error()
                    || service_err.err().code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
            }
            _ => false,
        };
        let denied = match &err {
            SdkError::ServiceError(service_err) => {
                service_err.err().code().is_some_and(|code| ACCESS_DENIED_CODES.contains(&code))
            }
            _ => false,
        };
        let message = describe_sdk_error(&err);
        if denied {
            DrError::AccessDenied { service, operation, message }
        } else if transient {
            DrError::AwsTransient { service, operation, message }
        } else {
            DrError::AwsCallFailed { service, operation, message }
        }
    }
}

/// STS refused a plan section's member role (`aws::accounts`): the trust does not name the caller,
/// or the caller's own role may not `sts:AssumeRole` it. Carried inside the SDK's credentials
/// error, where [`DrError::from_sdk`] finds it.
#[derive(Debug, thiserror::Error)]
#[error("the orchestrator's role could not assume {role_arn} (account {account}): {message}")]
pub struct AssumeRoleRefused {
    pub account: String,
    pub role_arn: String,
    pub message: String,
    /// STS said AccessDenied (a trust or a permission missing), rather than another error that no
    /// retry mends either (STS disabled in the region, an invalid token).
    pub denied: bool,
}

/// The refusal inside an error's chain of sources, if the error is that a member role could not
/// be assumed.
fn refusal_in<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a AssumeRoleRefused> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(refused) = err.downcast_ref::<AssumeRoleRefused>() {
            return Some(refused);
        }
        current = err.source();
    }
    None
}

/// Parses a Lambda's JSON input into its typed request; anything else is `InvalidInput`, named
/// with what was expected.
pub fn parse_input<T: serde::de::DeserializeOwned>(input: serde_json::Value, what: &str) -> Result<T, DrError> {
    serde_json::from_value(input).map_err(|e| DrError::InvalidInput { message: format!("not a {what}: {e}") })
}

/// AWS error codes that mean "your role may not", across the services we call (EC2 says
/// UnauthorizedOperation, SNS AuthorizationError, the JSON protocols AccessDeniedException).
const ACCESS_DENIED_CODES: &[&str] =
    &["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"];

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

/// Stable names of the rules a plan can break (`docs/plan.md` lists each).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, IntoStaticStr, EnumIter)]
pub enum ProblemCode {
    InvalidPlanName,
    UnknownTier,
    UnknownRegion,
    ReplicaInPrimaryRegion,
    InvalidTarget,
    TargetExceedsTier,
    InvalidIdentifier,
    InvalidFreshnessWindow,
    BackupRetentionOutOfRange,
    BackupRetentionBelowTier,
    InvalidBackupWindow,
    FenceWithoutMethod,
    FenceWithoutCredentials,
    InvalidBarrierTimeout,
    InvalidHookTimeout,
    EmptyInstanceSelector,
    AmbiguousInstanceSelector,
    MissingStandbyCount,
    TooManyStandbyInstances,
    CapacityMinAboveMax,
    DesiredOutsideMinMax,
    FailoverCapacityZero,
    InvalidMinimumHealthy,
    TtlTooHighForTier,
    RecordOutsideZone,
    UnsupportedRecordType,
    SameDnsTarget,
    DuplicateSetIdentifier,
    MissingRouting,
    DetectionCheckOnRecord,
    UnusedRouting,
    BucketPairSameBucket,
    DuplicateBucketPair,
    MissingTriggerAlarm,
    InvalidConfirmationWindow,
    InvalidProbeUrl,
    MissingReplicationRule,
    InvalidRestoreTest,
    InvalidNetwork,
    NoRouteToPrimaryRegion,
    InvalidServing,
    InvalidReadinessProbe,
    InvalidCustomAction,
    InvalidEcsService,
    InvalidDatabase,
    InvalidDnsRecord,
    InvalidAutoScalingGroup,
    InvalidAccount,
}

impl ProblemCode {
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// One broken rule: which, where in the plan, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanProblem {
    pub code: ProblemCode,
    /// Dotted path of the offending field, e.g. `auto_scaling.failover.desired`.
    pub field: String,
    pub message: String,
}

impl PlanProblem {
    /// "Code (field); Code (field)" for one-line error messages.
    pub fn summary(problems: &[PlanProblem]) -> String {
        problems.iter().map(|p| format!("{} ({})", p.code.name(), p.field)).collect::<Vec<_>>().join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_retryable_ones_are_the_transient_three() {
        let names: Vec<&str> = ErrorName::all().map(ErrorName::as_str).collect();
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(names.contains(&"PlanParseError"), "the parse error keeps its published name");
        let retryable: Vec<&str> = ErrorName::all().filter(|n| n.is_retryable()).map(ErrorName::as_str).collect();
        assert_eq!(retryable, ["ReplicaNotPromotable", "InstanceBusy", "AwsTransient"]);
    }

    #[test]
    fn a_variant_reports_its_kind() {
        let err = DrError::InstanceBusy { instance: "i-1".into(), state: "stopping".into() };
        assert_eq!((err.name(), err.is_retryable()), ("InstanceBusy", true));
        assert_eq!(DrError::serialisation("report", "boom").name(), "Internal");
    }

    #[test]
    fn a_name_in_json_is_its_stable_name_and_reads_back() {
        for name in ErrorName::all() {
            let json = serde_json::to_value(name).unwrap();
            assert_eq!(json, name.as_str(), "{name:?}");
            assert_eq!(serde_json::from_value::<ErrorName>(json).unwrap(), name);
            assert_eq!(name.to_string(), name.as_str());
        }
    }
}
