//! The plan store: the published plans and each plan's single-flight state, in one S3 bucket
//! of the DR region.
//!
//! `plans/<name>.toml` is the plan the Lambdas act on (`drctl plan publish`); `state/<name>.json`
//! is the plan's [`PlanState`]; `decisions/<name>/<run id>.json` is a run's [`Decision`] (a
//! failed RPO gate waiting for a human). Both only change through conditional writes (`If-Match`
//! on the ETag read, or `If-None-Match: *` when there is none yet), so that of any number of
//! concurrent writers exactly one wins; the others re-read and see what the winner did.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::aws::AwsClients;
use crate::aws::objects::{self, Conditional, Precondition};
use crate::error::DrError;
use crate::plan::{Direction, Plan, PlanRef};
use crate::run::{Incident, PlanStateRef, Principal, RunInfo, RunbookState, Starter, refuse_untrusted};
use crate::time::{self, Timestamp};

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
    /// When the state last changed; `None` for a plan never armed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<Timestamp>,
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
    pub last_automatic_run_at: Option<Timestamp>,
    /// The region whose database is primary now, as the last successful live move left it:
    /// the plan's `dr_region` after a failover, its `primary_region` again after a failback.
    /// Absent: the plan's `primary_region`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// While a run holds the plan: the status it took the plan from, which the plan goes back to
    /// when the run gives it back ([`PlanStore::release`]) having changed nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken_from: Option<PlanStatus>,
    /// The published version the holding run was taken for: the run must name it (preflight),
    /// so that an input cannot point a run at an older, laxer version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_version: Option<String>,
    /// When the alarm trigger fenced the old primary region, which answered again after the
    /// failover (`fence.on_return`): once per failover; the next run clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fenced_on_return: Option<Timestamp>,
}

impl PlanState {
    /// A plan that has no state object yet: never armed.
    pub fn never_armed(plan: &str) -> PlanState {
        PlanState {
            plan: plan.to_string(),
            status: PlanStatus::Disarmed,
            changed_at: None,
            changed_by: String::new(),
            reason: "never armed".to_string(),
            incident: None,
            run_id: None,
            last_automatic_run_at: None,
            primary_region: None,
            taken_from: None,
            plan_version: None,
            fenced_on_return: None,
        }
    }

    /// Whether the plan's DR region is primary now (a failover succeeded, no failback since).
    pub fn dr_is_primary(&self, plan: &Plan) -> bool {
        self.primary_region.as_deref() == Some(plan.dr_region.as_str())
    }

    /// The move the estate is ready for: a failover while Paris is primary, a failback while
    /// Ireland is.
    pub fn next_move(&self, plan: &Plan) -> Direction {
        if self.dr_is_primary(plan) { Direction::ToPrimary } else { Direction::ToDr }
    }

    /// The plan as the estate stands: as written while Paris is primary, reversed
    /// ([`Plan::facing`]) while Ireland is. `plan check`, the RPO check and the trigger read it.
    pub fn current_plan(&self, plan: &Plan) -> Result<Plan, DrError> {
        plan.facing(self.next_move(plan))
    }

    /// Whether run `run_id` holds the plan (failing-over, taken by it).
    pub fn is_held_by(&self, run_id: &str) -> bool {
        self.status == PlanStatus::FailingOver && self.run_id.as_deref() == Some(run_id)
    }

    /// The state held by run `run_id`, failing-over, taken by `by` for `reason` (remembering the
    /// status it was taken from).
    pub fn taken(&self, run_id: &str, by: impl Into<String>, reason: impl Into<String>) -> PlanState {
        PlanState {
            run_id: Some(run_id.to_string()),
            taken_from: Some(self.status),
            fenced_on_return: None,
            ..self.moved(PlanStatus::FailingOver, by, reason)
        }
    }

    /// The state a run that changed nothing gives back: the status it took the plan from (a plan
    /// whose taking is not recorded goes back disarmed: a human arms it).
    pub fn given_back(&self, by: impl Into<String>, reason: impl Into<String>) -> PlanState {
        self.moved(self.taken_from.unwrap_or(PlanStatus::Disarmed), by, reason)
    }

    /// The same state moved to `status` by `by`, for `reason`, now.
    pub fn moved(&self, status: PlanStatus, by: impl Into<String>, reason: impl Into<String>) -> PlanState {
        PlanState {
            status,
            changed_at: Some(time::now()),
            changed_by: by.into(),
            reason: reason.into(),
            // Only a run holds the plan with a status to go back to ([`PlanState::taken`]).
            taken_from: None,
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

    /// The plan store's bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The plan store whose state `run` holds (`run.plan_state`), in the deployment's region;
    /// `None` for a run that holds none.
    pub fn of_run(clients: &AwsClients, run: &RunInfo) -> Option<PlanStore> {
        run.plan_state.as_ref().map(|location| PlanStore::new(clients.home.s3.clone(), &location.bucket))
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

    /// Where a version of a plan is kept, for the runs that took it: content-addressed, never
    /// rewritten.
    fn version_key(reference: &PlanRef) -> String {
        format!("plan-versions/{}/{}.toml", reference.name, reference.version)
    }

    /// Validates a plan and stores it where the Lambdas read it: as the plan the next run takes,
    /// and as the version runs name ([`PlanRef`]) for as long as they run.
    pub async fn publish_plan(&self, plan: &Plan) -> Result<PlanRef, DrError> {
        plan.validate()?;
        let text = plan.published_text()?;
        let reference = plan.reference()?;
        let version_key = Self::version_key(&reference);
        objects::put(&self.s3, &self.bucket, &version_key, text.clone().into_bytes(), "application/toml").await?;
        objects::put(&self.s3, &self.bucket, &Self::plan_key(&plan.name), text.into_bytes(), "application/toml")
            .await?;
        Ok(reference)
    }

    /// The published version a run took, parsed, validated, and checked to be that version (its
    /// text's SHA-256): a run acts on nothing else.
    pub async fn load_version(&self, reference: &PlanRef) -> Result<Plan, DrError> {
        let key = Self::version_key(reference);
        let origin = format!("s3://{}/{key}", self.bucket);
        let Some(object) = objects::get(&self.s3, &self.bucket, &key).await? else {
            return Err(DrError::PlanNotFound {
                path: origin,
                message: format!(
                    "plan {} has no published version {} (drctl plan publish)",
                    reference.name, reference.version
                ),
            });
        };
        // The stored bytes are the version: a later release that writes TOML differently must not
        // disown the versions runs in flight took.
        let stored = crate::plan::text_version(&object.body);
        let text = String::from_utf8(object.body)
            .map_err(|e| DrError::PlanParse { path: origin.clone(), message: e.to_string() })?;
        let plan = Plan::parse(&text, &origin)?;
        plan.validate()?;
        if plan.name != reference.name || stored != reference.version {
            return Err(DrError::PlanParse {
                path: origin,
                message: format!("not version {} of plan {}: its text was changed", reference.version, reference.name),
            });
        }
        Ok(plan)
    }

    /// A run's state from a Task's input: refused if it carries a plan or an approval
    /// ([`refuse_untrusted`]), then its plan loaded from this store by the name and version the
    /// run took (`run.plan`).
    pub async fn load_run(&self, input: serde_json::Value) -> Result<RunbookState, DrError> {
        refuse_untrusted(&input, "the run's state", false)?;
        let mut state: RunbookState = crate::error::parse_input(input, "run state {run, steps, ...}")?;
        state.plan = self.plan_of_run(&state.run).await?;
        Ok(state)
    }

    /// The published plan a run names (`run.plan`).
    pub async fn plan_of_run(&self, run: &RunInfo) -> Result<Plan, DrError> {
        match &run.plan {
            Some(reference) => self.load_version(reference).await,
            None => Err(DrError::InvalidInput {
                message: format!("run {} names no published plan (run.plan: its name and version)", run.id),
            }),
        }
    }

    /// The published plan `name`, parsed and validated.
    pub async fn load_plan(&self, name: &str) -> Result<Plan, DrError> {
        let key = Self::plan_key(name);
        let origin = format!("s3://{}/{key}", self.bucket);
        let Some(object) = objects::get(&self.s3, &self.bucket, &key).await? else {
            return Err(DrError::PlanNotFound { path: origin, message: "not published (drctl plan publish)".into() });
        };
        let text = String::from_utf8(object.body)
            .map_err(|e| DrError::PlanParse { path: origin.clone(), message: e.to_string() })?;
        let plan = Plan::parse(&text, &origin)?;
        plan.validate()?;
        Ok(plan)
    }

    /// The plan's state; a plan without one has never been armed.
    pub async fn read_state(&self, plan: &str) -> Result<Versioned, DrError> {
        match objects::get_json(&self.s3, &self.bucket, &Self::state_key(plan), "plan state").await? {
            None => Ok(Versioned { state: PlanState::never_armed(plan), etag: None }),
            Some((state, object)) => Ok(Versioned { state, etag: object.etag }),
        }
    }

    /// Replaces the state read as `read` with `new`, only if nobody changed it in between.
    pub async fn write_state(&self, read: &Versioned, new: &PlanState) -> Result<WriteOutcome, DrError> {
        self.put_if_unchanged(&Self::state_key(&new.plan), new, read.etag.as_deref(), "plan state").await
    }

    /// Writes `value` at `key` only if the object still has the ETag read (`None`: only if there
    /// is none yet). Concurrent conditional writes are waited out; `Lost` when another writer won,
    /// never when the precondition failed on this write's own retried attempt. Every
    /// conditional write of the plan store (the trigger, the game day, drctl, the report, the
    /// decisions) goes through here, so they share that one rule.
    async fn put_if_unchanged<T: Serialize>(
        &self,
        key: &str,
        value: &T,
        etag: Option<&str>,
        what: &str,
    ) -> Result<WriteOutcome, DrError> {
        let body = serde_json::to_vec_pretty(value).map_err(|e| DrError::serialisation(what, e))?;
        let condition = match etag {
            Some(etag) => Precondition::Matches(etag.to_string()),
            None => Precondition::Absent,
        };
        for attempt in 1..=CONFLICT_ATTEMPTS {
            match objects::put_if(&self.s3, &self.bucket, key, body.clone(), "application/json", &condition).await? {
                Conditional::Written => return Ok(WriteOutcome::Won),
                // The ETag no longer matches, or the object now exists: another writer won, or
                // this one did. When S3 applied an attempt and its answer was lost, the SDK's
                // retry of the same request fails the precondition that its first attempt
                // changed. The object then holds exactly these bytes (the run, the time, the
                // reason: no other writer writes them), so it is this write.
                Conditional::PreconditionFailed => {
                    let now = objects::get(&self.s3, &self.bucket, key).await?;
                    let ours = now.is_some_and(|object| object.body == body);
                    if ours {
                        tracing::info!(key, "a conditional write's answer was lost; the object holds this write");
                    }
                    return Ok(if ours { WriteOutcome::Won } else { WriteOutcome::Lost });
                }
                // A concurrent conditional write is in progress; nobody has won yet. Try again:
                // the answer becomes 200 or 412.
                Conditional::Conflict if attempt < CONFLICT_ATTEMPTS => {
                    tokio::time::sleep(conflict_backoff(attempt)).await;
                }
                Conditional::Conflict => {}
            }
        }
        Err(DrError::AwsTransient {
            service: "s3",
            operation: "PutObject",
            message: format!("{CONFLICT_ATTEMPTS} conditional writes of the {what} met concurrent writes"),
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

    /// Takes the plan for a run started by hand (a drill, `drctl failover start`), as an incident
    /// takes it: failing-over, held by `run_id`, so that an alarm meanwhile starts nothing and
    /// the plan stays failed-over until re-armed. A failover (`ToDr`) needs Paris primary and the
    /// plan neither held nor failed over; a failback (`ToPrimary`) needs Ireland primary and the
    /// plan not held. `PlanBusy` otherwise, or when another writer won the race.
    pub async fn take_for_run(
        &self,
        plan: &Plan,
        direction: Direction,
        run_id: &str,
        by: &str,
        reason: &str,
    ) -> Result<PlanState, DrError> {
        let read = self.read_state(&plan.name).await?;
        let busy = |status: String| DrError::PlanBusy { plan: plan.name.clone(), status };
        let status = read.state.status;
        match direction {
            Direction::ToDr if matches!(status, PlanStatus::FailingOver | PlanStatus::FailedOver) => {
                return Err(busy(status.name().to_string()));
            }
            Direction::ToDr if read.state.dr_is_primary(plan) => {
                return Err(busy(format!("{}: {} is primary, fail back first", status.name(), plan.dr_region)));
            }
            Direction::ToPrimary if status == PlanStatus::FailingOver => return Err(busy(status.name().to_string())),
            Direction::ToPrimary if !read.state.dr_is_primary(plan) => {
                return Err(busy(format!(
                    "{}: {} is primary already, nothing to fail back",
                    status.name(),
                    plan.primary_region
                )));
            }
            _ => {}
        }
        let mut holding = read.state.taken(run_id, by, reason);
        holding.incident = None;
        holding.plan_version = Some(plan.version()?);
        match self.write_state(&read, &holding).await? {
            WriteOutcome::Won => Ok(holding),
            WriteOutcome::Lost => {
                let now = self.read_state(&plan.name).await?;
                Err(busy(now.state.status.name().to_string()))
            }
        }
    }

    /// Gives back a plan that run `run_id` holds and that changed nothing (a start that failed
    /// after taking it, a run refused before any change): the status it was taken from, with
    /// why. `None` when the run no longer holds it (it ended, or an operator or another run
    /// changed it since): nothing is written.
    pub async fn release(
        &self,
        plan: &str,
        run_id: &str,
        by: &str,
        reason: &str,
    ) -> Result<Option<PlanState>, DrError> {
        for _ in 0..CONFLICT_ATTEMPTS {
            let read = self.read_state(plan).await?;
            if !read.state.is_held_by(run_id) {
                return Ok(None);
            }
            let released = read.state.given_back(by, reason);
            if self.write_state(&read, &released).await? == WriteOutcome::Won {
                return Ok(Some(released));
            }
        }
        Err(DrError::AwsTransient {
            service: "s3",
            operation: "PutObject",
            message: format!(
                "the plan state of {plan} kept changing: {CONFLICT_ATTEMPTS} attempts to give it back lost"
            ),
        })
    }

    /// Starts the run that has just taken the plan (`input.run.id` holds it); a start that surely
    /// failed (refused, denied) gives the plan back at once (the run changed nothing), so that no
    /// lock outlives a run that never started. One that may have started (a timeout, a lost
    /// answer) keeps it for the reconciler. The trigger, the game day and drctl start here.
    pub async fn start_holding(&self, starter: &Starter, input: &RunbookState, by: &str) -> Result<String, DrError> {
        let err = match starter.start(input).await {
            Ok(arn) => return Ok(arn),
            Err(err) => err,
        };
        let (plan, run) = (&input.plan.name, &input.run.id);
        if err.is_retryable() {
            // A timeout or a lost answer: the execution may have started. It keeps the plan; the
            // reconciler gives it back if it never did (START_GRACE), as a start repeated with
            // the same name finds it.
            tracing::error!(plan = %plan, run = %run, error = err.name(), "run start not confirmed; the plan stays held: {err}");
            return Err(err);
        }
        let why = format!("run {run} could not be started ({}): given back", err.name());
        match self.release(plan, run, by, &why).await {
            Ok(_) => {
                tracing::warn!(plan = %plan, run = %run, error = err.name(), "run not started; plan given back: {err}")
            }
            Err(release) => tracing::error!(
                plan = %plan, run = %run, error = err.name(),
                "run not started, and the plan could not be given back ({release}); the reconciler will: {err}"
            ),
        }
        Err(err)
    }

    fn decision_key(plan: &str, run_id: &str, question: Question) -> String {
        match question {
            Question::RpoGate => format!("decisions/{plan}/{run_id}.json"),
            Question::Capacity => format!("decisions/{plan}/{run_id}/capacity.json"),
            Question::DataTier => format!("decisions/{plan}/{run_id}/data-tier.json"),
        }
    }

    /// A run's decision, as read, with its ETag; `None` when the run never asked for one.
    pub async fn read_decision(
        &self,
        plan: &str,
        run_id: &str,
        question: Question,
    ) -> Result<Option<(Decision, String)>, DrError> {
        let key = Self::decision_key(plan, run_id, question);
        let found = objects::get_json::<Decision>(&self.s3, &self.bucket, &key, "decision").await?;
        Ok(found.map(|(decision, object)| (decision, object.etag.unwrap_or_default())))
    }

    /// Asks for a decision: writes `pending` unless the run asked already. Returns the decision
    /// as it stands.
    pub async fn ask_decision(&self, pending: &Decision) -> Result<Decision, DrError> {
        let key = Self::decision_key(&pending.plan, &pending.run_id, pending.asks);
        if let Some((decision, _)) = self.read_decision(&pending.plan, &pending.run_id, pending.asks).await? {
            return Ok(decision);
        }
        match self.put_if_unchanged(&key, pending, None, "decision").await? {
            WriteOutcome::Won => Ok(pending.clone()),
            WriteOutcome::Lost => match self.read_decision(&pending.plan, &pending.run_id, pending.asks).await? {
                Some((decision, _)) => Ok(decision),
                None => Err(DrError::AwsTransient {
                    service: "s3",
                    operation: "GetObject",
                    message: format!("s3://{}/{key}: lost a race to a write that is not there", self.bucket),
                }),
            },
        }
    }

    fn answer_key(plan: &str, run_id: &str, user_id: &str, question: Question) -> String {
        match question {
            Question::RpoGate => format!("answers/{plan}/{run_id}/{user_id}.json"),
            Question::Capacity => format!("answers/{plan}/{run_id}/capacity/{user_id}.json"),
            Question::DataTier => format!("answers/{plan}/{run_id}/data-tier/{user_id}.json"),
        }
    }

    /// Where who started a run is kept: apart from their answers, so that a starter's own answer
    /// never replaces the record of their start.
    fn start_key(plan: &str, run_id: &str, user_id: &str) -> String {
        format!("starts/{plan}/{run_id}/{user_id}.json")
    }

    /// A person's answer about a run, under their own `aws:userid` (the plan store's bucket
    /// policy lets a principal write only its own: template.yaml `AnswersOnlyInTheWritersOwnName`);
    /// `None` when there is none, or when the record is not that person's.
    pub async fn read_answer(
        &self,
        plan: &str,
        run_id: &str,
        user_id: &str,
        question: Question,
    ) -> Result<Option<Answer>, DrError> {
        self.read_own(&Self::answer_key(plan, run_id, user_id, question), run_id, user_id).await
    }

    /// The record that `user_id` started `run_id`, if they did.
    pub async fn read_start(&self, plan: &str, run_id: &str, user_id: &str) -> Result<Option<Answer>, DrError> {
        let found = self.read_own(&Self::start_key(plan, run_id, user_id), run_id, user_id).await?;
        Ok(found.filter(|record| record.kind == AnswerKind::Started))
    }

    async fn read_own(&self, key: &str, run_id: &str, user_id: &str) -> Result<Option<Answer>, DrError> {
        let found = objects::get_json::<Answer>(&self.s3, &self.bucket, key, "answer").await?;
        Ok(found.map(|(answer, _)| answer).filter(|answer| answer.by.user_id == user_id && answer.run_id == run_id))
    }

    /// Records who started run `run_id` of `plan`, under their own id: the proof a two-person
    /// plan's approvals are checked against.
    pub async fn record_start(&self, plan: &str, run_id: &str, by: &Principal, reason: &str) -> Result<(), DrError> {
        let answer = Answer {
            plan: plan.to_string(),
            run_id: run_id.to_string(),
            kind: AnswerKind::Started,
            by: by.clone(),
            reason: reason.to_string(),
            at: time::now(),
            question_asked_at: None,
        };
        objects::put_json(&self.s3, &self.bucket, &Self::start_key(plan, run_id, &by.user_id), &answer).await
    }

    /// A human's decision on a run waiting at its RPO gate, by the caller's verified identity
    /// (`by`, from STS): their answer under their own id, then the run's decision taken, once
    /// (conditional: of two approvers, or an approval racing a rejection, one wins;
    /// `DecisionAlreadyTaken` for the other). On a plan that requires two people
    /// (`two_person_approval`), whoever started the run may not approve it (`ApproverIsStarter`).
    /// `InvalidInput` when the run is not waiting for one.
    pub async fn decide(
        &self,
        plan: &Plan,
        run: &RunInfo,
        question: Question,
        verdict: DecisionStatus,
        by: &Principal,
        reason: &str,
    ) -> Result<Decision, DrError> {
        let run_id = run.id.as_str();
        if reason.trim().is_empty() {
            return Err(DrError::InvalidInput { message: "a decision needs why (--reason)".into() });
        }
        if verdict == DecisionStatus::Pending {
            return Err(DrError::InvalidInput { message: "a decision approves or rejects".into() });
        }
        let Some((read, etag)) = self.read_decision(&plan.name, run_id, question).await? else {
            return Err(DrError::InvalidInput {
                message: format!("run {run_id} of {} is not waiting for a decision (it asked for none)", plan.name),
            });
        };
        let taken = |decision: &Decision| DrError::DecisionAlreadyTaken {
            run: run_id.to_string(),
            status: decision.status.name().to_string(),
            by: decision.decided_by.clone().unwrap_or_else(|| "nobody".into()),
        };
        // The same answer by the same person again (an answer lost on the way back): done.
        if read.status == verdict && read.decided_by_id.as_deref() == Some(by.user_id.as_str()) {
            return Ok(read);
        }
        if read.status != DecisionStatus::Pending {
            return Err(taken(&read));
        }
        if verdict == DecisionStatus::Approved {
            self.may_approve(plan, run, by).await?;
        }
        let answer = Answer {
            plan: plan.name.clone(),
            run_id: run_id.to_string(),
            kind: if verdict == DecisionStatus::Approved { AnswerKind::Approved } else { AnswerKind::Rejected },
            by: by.clone(),
            reason: reason.to_string(),
            at: time::now(),
            question_asked_at: Some(read.asked_at),
        };
        let answer_key = Self::answer_key(&plan.name, run_id, &by.user_id, question);
        objects::put_json(&self.s3, &self.bucket, &answer_key, &answer).await?;
        let decided = Decision {
            status: verdict,
            decided_by: Some(by.arn.clone()),
            decided_by_id: Some(by.user_id.clone()),
            decided_at: Some(answer.at),
            reason: Some(reason.to_string()),
            ..read
        };
        let decision_key = Self::decision_key(&plan.name, run_id, question);
        match self.put_if_unchanged(&decision_key, &decided, Some(&etag), "decision").await? {
            WriteOutcome::Won => Ok(decided),
            WriteOutcome::Lost => {
                // Another answer won: this one is withdrawn, so that nobody can later point the
                // decision at it.
                let withdrawn = Answer { kind: AnswerKind::Withdrawn, ..answer };
                objects::put_json(&self.s3, &self.bucket, &answer_key, &withdrawn).await?;
                match self.read_decision(&plan.name, run_id, question).await? {
                    Some((now, _)) => Err(taken(&now)),
                    None => Err(DrError::InvalidInput { message: format!("run {run_id}'s decision disappeared") }),
                }
            }
        }
    }

    /// Whether `by` may approve `run`: on a plan that requires two people, not the run's starter,
    /// and a run started by hand must have its starter on record (their own start record) for
    /// anyone to approve it. An automatic run (an incident) has no human starter.
    pub async fn may_approve(&self, plan: &Plan, run: &RunInfo, by: &Principal) -> Result<(), DrError> {
        if !plan.two_person_approval {
            return Ok(());
        }
        // An automatic run has no human starter: the alarm trigger took the plan for this very
        // incident (the plan state says so; a run's input alone does not).
        if let Some(incident) = &run.incident {
            let held = self.read_state(&plan.name).await?.state;
            if held.is_held_by(&run.id) && held.incident.as_ref() == Some(incident) {
                return Ok(());
            }
        }
        let refuse = |why: String| {
            Err(DrError::ApproverIsStarter { run: run.id.clone(), approver: by.arn.clone(), message: why })
        };
        let Some(starter) = &run.started_by else {
            return refuse(
                "plan requires two people and the run's starter is not on record (start it with drctl)".into(),
            );
        };
        if self.read_start(&plan.name, &run.id, &starter.user_id).await?.is_none() {
            return refuse(format!("plan requires two people and {} has no start record for this run", starter.arn));
        }
        if starter.user_id == by.user_id {
            return refuse("plan requires two people: whoever started the run may not approve it".into());
        }
        Ok(())
    }

    /// The run's decision, trusted only as far as it is proven: a taken decision counts when the
    /// decider's own answer record (under their id) says the same. Anything else reads as still
    /// pending (and is logged): a decision record written by anyone else is not an approval.
    pub async fn verified_decision(
        &self,
        plan: &str,
        run_id: &str,
        question: Question,
    ) -> Result<Option<Decision>, DrError> {
        let Some((decision, _)) = self.read_decision(plan, run_id, question).await? else { return Ok(None) };
        if decision.status == DecisionStatus::Pending {
            return Ok(Some(decision));
        }
        let proven = match decision.decided_by_id.as_deref() {
            Some(user_id) => self.read_answer(plan, run_id, user_id, question).await?.is_some_and(|answer| {
                answer.question_asked_at == Some(decision.asked_at)
                    && matches!(
                        (answer.kind, decision.status),
                        (AnswerKind::Approved, DecisionStatus::Approved)
                            | (AnswerKind::Rejected, DecisionStatus::Rejected)
                    )
            }),
            None => false,
        };
        if proven {
            return Ok(Some(decision));
        }
        tracing::warn!(plan, run = run_id, by = ?decision.decided_by, "a decision without its decider's own answer record: ignored");
        Ok(Some(Decision {
            status: DecisionStatus::Pending,
            decided_by: None,
            decided_by_id: None,
            decided_at: None,
            reason: None,
            ..decision
        }))
    }
}

/// Where a run waiting at its RPO gate stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecisionStatus {
    Pending,
    Approved,
    Rejected,
}

impl DecisionStatus {
    pub fn name(self) -> &'static str {
        match self {
            DecisionStatus::Pending => "pending",
            DecisionStatus::Approved => "approved",
            DecisionStatus::Rejected => "rejected",
        }
    }
}

/// What a run asks a human. A run asks each question at most once; each has its own decision and
/// its own answers in the plan store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Question {
    /// An unplanned run's RPO gate refused: promote anyway, or not.
    #[default]
    RpoGate,
    /// After the promotion, fewer compute instances can serve than the plan's minimum: move
    /// traffic on what is healthy, or not (`runbook::compute`).
    Capacity,
    /// Some databases were promoted and another's promotion failed: move traffic with the data
    /// tier split, or stop (`runbook::database::split_data_tier`).
    DataTier,
}

/// A decision a run waits for: asked by the run (`pending`, with the question), taken by a human
/// (`drctl run approve|reject`), read back by the run.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Decision {
    pub plan: String,
    pub run_id: String,
    /// Which question (decisions written before there were two are the RPO gate's).
    #[serde(default)]
    pub asks: Question,
    pub status: DecisionStatus,
    /// What the run asks: the gate's refusal.
    pub question: String,
    pub asked_at: Timestamp,
    /// The execution waiting (for the commands that answer it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_arn: Option<String>,
    /// When the run stops waiting (then `StepTimedOut`).
    pub deadline: Timestamp,
    /// The decider's IAM principal (ARN), as STS verified it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// The decider's `aws:userid`: where their own answer record proves the decision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A person's answer about a run, kept under their own `aws:userid`: a decision on its RPO gate,
/// or the record that they started it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Answer {
    pub plan: String,
    pub run_id: String,
    pub kind: AnswerKind,
    pub by: Principal,
    pub reason: String,
    pub at: Timestamp,
    /// The question answered (its `asked_at`): an answer proves only the decision on that
    /// question.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_asked_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerKind {
    Started,
    Approved,
    Rejected,
    /// An answer that lost to another: it proves nothing.
    Withdrawn,
}
