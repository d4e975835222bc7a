//! The plan store: the published plans and each plan's single-flight state, in one S3 bucket
//! of the DR region.
//!
//! `plans/<name>.toml` is the plan the Lambdas act on (`drctl plan publish`); `state/<name>.json`
//! is the plan's [`PlanState`]. The state only changes through conditional writes (`If-Match`
//! on the ETag read, or `If-None-Match: *` when there is none yet), so that of any number of
//! concurrent writers exactly one wins; the others re-read and see what the winner did.

use std::time::{Duration, SystemTime};

use aws_sdk_s3::primitives::ByteStream;
use serde::{Deserialize, Serialize};

use super::Incident;
use crate::error::{DrError, sdk_error_code};
use crate::plan::Plan;
use crate::runbook::format_time;

/// Where a run's plan state lives; carried in the execution input so the report can record
/// the end of the run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PlanStateRef {
    pub bucket: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PlanStatus {
    /// An alarm may start a failover.
    Armed,
    /// A failover (automatic or drill) holds the plan; nothing else may start.
    FailingOver,
    /// The last run succeeded; Ireland serves. Stays so until an operator re-arms (no ping-pong).
    FailedOver,
    /// Automatic failover is off (never armed, or switched off by an operator).
    Disarmed,
}

impl PlanStatus {
    pub fn name(self) -> &'static str {
        match self {
            PlanStatus::Armed => "armed",
            PlanStatus::FailingOver => "failing-over",
            PlanStatus::FailedOver => "failed-over",
            PlanStatus::Disarmed => "disarmed",
        }
    }
}

/// The durable state of one plan.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct PlanState {
    pub plan: String,
    pub status: PlanStatus,
    pub changed_at: String,
    /// Who made the last change: `operator: <name>`, `alarm-trigger`, `game-day: <name>`, `report`.
    pub changed_by: String,
    pub reason: String,
    /// The incident the current or last automatic run answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Incident>,
    /// The run (execution name) holding or last holding the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// When the last automatic failover started: the next waits `min_seconds_between_runs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_automatic_run_at: Option<String>,
}

impl PlanState {
    /// A plan that has no state object yet: never armed.
    pub fn never_armed(plan: &str) -> PlanState {
        PlanState {
            plan: plan.to_string(),
            status: PlanStatus::Disarmed,
            changed_at: String::new(),
            changed_by: String::new(),
            reason: "never armed".to_string(),
            incident: None,
            run_id: None,
            last_automatic_run_at: None,
        }
    }

    /// The same state moved to `status` by `by`, for `reason`, now.
    pub fn moved(&self, status: PlanStatus, by: impl Into<String>, reason: impl Into<String>) -> PlanState {
        PlanState {
            status,
            changed_at: format_time(SystemTime::now()),
            changed_by: by.into(),
            reason: reason.into(),
            ..self.clone()
        }
    }
}

/// A state as read, with the ETag a conditional write must match (`None`: no object yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub state: PlanState,
    pub etag: Option<String>,
}

/// The result of a conditional write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    Won,
    /// Someone else changed the state since it was read: re-read it.
    Lost,
}

const CONFLICT_ATTEMPTS: u32 = 5;

/// 50, 100, 150, ... ms, plus up to 50 ms of jitter so that concurrent writers spread out.
fn conflict_backoff(attempt: u32) -> Duration {
    let jitter = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos() % 50);
    Duration::from_millis(u64::from(50 * attempt + jitter))
}

/// The bucket holding the published plans and their states.
#[derive(Debug, Clone)]
pub struct PlanStore {
    s3: aws_sdk_s3::Client,
    bucket: String,
}

impl PlanStore {
    pub fn new(s3: aws_sdk_s3::Client, bucket: impl Into<String>) -> PlanStore {
        PlanStore { s3, bucket: bucket.into() }
    }

    pub fn reference(&self) -> PlanStateRef {
        PlanStateRef { bucket: self.bucket.clone() }
    }

    fn plan_key(name: &str) -> String {
        format!("plans/{name}.toml")
    }

    fn state_key(name: &str) -> String {
        format!("state/{name}.json")
    }

    /// Validates a plan and stores it where the Lambdas read it.
    pub async fn publish_plan(&self, plan: &Plan) -> Result<(), DrError> {
        plan.validate()?;
        let text = toml::to_string(plan)
            .map_err(|e| DrError::InvalidInput { message: format!("plan {} not serialisable: {e}", plan.name) })?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(Self::plan_key(&plan.name))
            .content_type("application/toml")
            .body(ByteStream::from(text.into_bytes()))
            .send()
            .await
            .map_err(|e| match sdk_error_code(&e) {
                Some("NoSuchBucket") => self.bucket_missing(),
                _ => DrError::from_sdk("s3", "PutObject", e),
            })?;
        Ok(())
    }

    /// The published plan `name`, parsed and validated.
    pub async fn load_plan(&self, name: &str) -> Result<Plan, DrError> {
        let key = Self::plan_key(name);
        let origin = format!("s3://{}/{key}", self.bucket);
        let Some((body, _)) = self.get(&key).await? else {
            return Err(DrError::PlanNotFound { path: origin, message: "not published (drctl plan publish)".into() });
        };
        let text =
            String::from_utf8(body).map_err(|e| DrError::PlanParse { path: origin.clone(), message: e.to_string() })?;
        let plan = Plan::parse(&text, &origin)?;
        plan.validate()?;
        Ok(plan)
    }

    /// The plan's state; a plan without one has never been armed.
    pub async fn read_state(&self, plan: &str) -> Result<Versioned, DrError> {
        let key = Self::state_key(plan);
        match self.get(&key).await? {
            None => Ok(Versioned { state: PlanState::never_armed(plan), etag: None }),
            Some((body, etag)) => {
                let state = serde_json::from_slice(&body).map_err(|e| DrError::InvalidInput {
                    message: format!("s3://{}/{key} is not a plan state: {e}", self.bucket),
                })?;
                Ok(Versioned { state, etag })
            }
        }
    }

    /// Replaces the state read as `read` with `new`, only if nobody changed it in between.
    pub async fn write_state(&self, read: &Versioned, new: &PlanState) -> Result<WriteOutcome, DrError> {
        let body = serde_json::to_vec_pretty(new)
            .map_err(|e| DrError::InvalidInput { message: format!("plan state not serialisable: {e}") })?;
        for attempt in 1..=CONFLICT_ATTEMPTS {
            let request = self
                .s3
                .put_object()
                .bucket(&self.bucket)
                .key(Self::state_key(&new.plan))
                .content_type("application/json")
                .body(ByteStream::from(body.clone()));
            let request = match &read.etag {
                Some(etag) => request.if_match(etag),
                None => request.if_none_match("*"),
            };
            let err = match request.send().await {
                Ok(_) => return Ok(WriteOutcome::Won),
                Err(err) => err,
            };
            match err.raw_response().map(|raw| raw.status().as_u16()) {
                // The ETag no longer matches, or the object now exists: another writer won.
                Some(412) => return Ok(WriteOutcome::Lost),
                // ConditionalRequestConflict: a concurrent conditional write to the key is in
                // progress; nobody has won yet. Try again: the answer becomes 200 or 412.
                Some(409) if attempt < CONFLICT_ATTEMPTS => {
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                    continue;
                }
                _ => {}
            }
            if sdk_error_code(&err) == Some("NoSuchBucket") {
                return Err(self.bucket_missing());
            }
            return Err(DrError::from_sdk("s3", "PutObject", err));
        }
        Err(DrError::AwsTransient {
            service: "s3",
            operation: "PutObject",
            message: format!("{CONFLICT_ATTEMPTS} conditional writes of the plan state met concurrent writes"),
        })
    }

    /// An operator arms or disarms the plan. A plan held by a run (failing-over) is only changed
    /// with `force`: that run may still be changing the estate.
    pub async fn set_armed(
        &self,
        plan: &str,
        armed: bool,
        by: &str,
        reason: &str,
        force: bool,
    ) -> Result<PlanState, DrError> {
        if by.trim().is_empty() || reason.trim().is_empty() {
            return Err(DrError::InvalidInput {
                message: "arming or disarming needs who (by) and why (reason)".into(),
            });
        }
        let read = self.read_state(plan).await?;
        if read.state.status == PlanStatus::FailingOver && !force {
            return Err(DrError::PlanBusy { plan: plan.to_string(), status: read.state.status.name().to_string() });
        }
        let status = if armed { PlanStatus::Armed } else { PlanStatus::Disarmed };
        let new = read.state.moved(status, format!("operator: {by}"), reason);
        match self.write_state(&read, &new).await? {
            WriteOutcome::Won => Ok(new),
            WriteOutcome::Lost => {
                let now = self.read_state(plan).await?;
                Err(DrError::PlanBusy { plan: plan.to_string(), status: now.state.status.name().to_string() })
            }
        }
    }

    fn bucket_missing(&self) -> DrError {
        let region = self.s3.config().region().map(ToString::to_string).unwrap_or_default();
        DrError::bucket_not_found(&self.bucket, &region)
    }

    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Option<String>)>, DrError> {
        match self.s3.get_object().bucket(&self.bucket).key(key).send().await {
            Ok(object) => {
                let etag = object.e_tag().map(str::to_string);
                let body = object.body.collect().await.map_err(|e| DrError::AwsTransient {
                    service: "s3",
                    operation: "GetObject",
                    message: e.to_string(),
                })?;
                Ok(Some((body.to_vec(), etag)))
            }
            Err(err) => {
                let code = sdk_error_code(&err).map(str::to_string);
                match code.as_deref() {
                    Some("NoSuchKey") => Ok(None),
                    Some("NoSuchBucket") => Err(self.bucket_missing()),
                    _ => Err(DrError::from_sdk("s3", "GetObject", err)),
                }
            }
        }
    }
}
