//! The monthly restore test: restore the newest snapshot of the protected database in Ireland
//! into a temporary instance, validate it, measure it against the RTO and RPO, always delete
//! it, and report. The logic behind every Task of `statemachines/restore-test.asl.json`, and the
//! janitor that deletes leaked restore-test instances.
//!
//! The steps share the failover runbook's machinery: the execution state is a [`RunbookState`],
//! each Task returns a [`StepRecord`], status checks are bounded by a share of the RTO. The
//! temporary instance is named after the run (`dr-restore-test-<run id>`) and tagged
//! `dr-restore-test=true` with its expiry; the cleanup and the janitor delete nothing else.

use std::time::{Duration, SystemTime};

use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

use crate::aws::AwsClients;
use crate::error::{DrError, sdk_error_code};
use crate::plan::{Plan, RestoreTest, SnapshotSource};
use crate::readiness::describe_db_instance;
use crate::runbook::report::put_report_files;
use crate::runbook::{
    CaughtError, Outcome, ResourceState, RunInfo, RunbookState, StepAction, StepRecord, StepTimer, format_time,
    parse_time,
};
use crate::trigger::{PlanStore, Starter, compact_time};

pub const INSTANCE_PREFIX: &str = "dr-restore-test-";
pub const RESTORE_TEST_TAG: &str = "dr-restore-test";
pub const EXPIRES_AT_TAG: &str = "dr-restore-test-expires-at";
pub const RUN_TAG: &str = "dr-run";

const SNAPSHOT_FACT: &str = "snapshot";
const SNAPSHOT_CREATED_FACT: &str = "snapshot_created_at";
const SNAPSHOT_AGE_FACT: &str = "snapshot_age_seconds";

/// The Lambdas of the restore test, one per step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestoreStep {
    FindSnapshot,
    RestoreInstance,
    Validate,
    Cleanup,
    Report,
}

fn settings(state: &RunbookState) -> Result<&RestoreTest, DrError> {
    state
        .plan
        .restore_test
        .as_ref()
        .ok_or_else(|| DrError::InvalidInput { message: format!("plan {} has no [restore_test]", state.plan.name) })
}

/// The temporary instance of a run: `dr-restore-test-<run id>`, a valid RDS identifier.
pub fn instance_id(run_id: &str) -> String {
    let mut id = format!("{INSTANCE_PREFIX}{}", run_id.to_ascii_lowercase().replace('_', "-"));
    while id.contains("--") {
        id = id.replace("--", "-");
    }
    id.truncate(63);
    id.trim_end_matches('-').to_string()
}

fn is_restore_test_instance(db: &DbInstance) -> bool {
    db.db_instance_identifier().is_some_and(|id| id.starts_with(INSTANCE_PREFIX))
        && has_tag(db, RESTORE_TEST_TAG, "true")
}

fn has_tag(db: &DbInstance, key: &str, value: &str) -> bool {
    db.tag_list().iter().any(|tag| tag.key() == Some(key) && tag.value() == Some(value))
}

/// A restore-test instance of this very run (its `dr-run` tag): a run never adopts, validates or
/// deletes another run's instance, even one whose name it shares.
fn owned_by_run(db: &DbInstance, state: &RunbookState) -> Result<(), DrError> {
    if is_restore_test_instance(db) && has_tag(db, RUN_TAG, &state.run.id) {
        Ok(())
    } else {
        Err(DrError::NotARestoreTestInstance { instance: db.db_instance_identifier().unwrap_or_default().to_string() })
    }
}

fn observed(db: &DbInstance) -> ResourceState {
    ResourceState {
        resource: db.db_instance_identifier().unwrap_or_default().to_string(),
        state: db.db_instance_status().unwrap_or("unknown").to_string(),
    }
}

/// The newest available snapshot, if it is recent enough.
pub fn newest_usable<'a>(
    snapshots: &'a [DbSnapshot],
    database: &str,
    test: &RestoreTest,
    region: &str,
    now: SystemTime,
) -> Result<(&'a DbSnapshot, Duration), DrError> {
    // A copy's SnapshotCreateTime is when it was copied; the data is as old as the original.
    let created = |s: &DbSnapshot| {
        s.original_snapshot_create_time().or(s.snapshot_create_time()).and_then(|t| SystemTime::try_from(*t).ok())
    };
    let newest = snapshots
        .iter()
        .filter(|s| s.status() == Some("available"))
        .filter_map(|s| created(s).map(|at| (s, at)))
        .max_by_key(|(_, at)| *at);
    let Some((snapshot, at)) = newest else {
        let origin = match test.snapshot_source {
            SnapshotSource::Automated => "automated",
            SnapshotSource::CrossRegionCopy => "cross-region copy",
        };
        return Err(DrError::NoSnapshot {
            database: database.to_string(),
            origin: origin.to_string(),
            region: region.to_string(),
        });
    };
    let age = now.duration_since(at).unwrap_or_default();
    if age > Duration::from_secs(u64::from(test.max_snapshot_age_hours) * 3600) {
        return Err(DrError::SnapshotTooOld {
            snapshot: snapshot.db_snapshot_identifier().unwrap_or_default().to_string(),
            age_hours: age.as_secs_f64() / 3600.0,
            max_hours: test.max_snapshot_age_hours,
        });
    }
    Ok((snapshot, age))
}

/// Finds the newest available snapshot in the DR region, as the plan says where to look.
/// None, or too old: a named error, and nothing is restored.
pub async fn find_snapshot(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let test = settings(state)?;
    let timer = StepTimer::start("find-snapshot", clients);
    // Copies are manual snapshots, or AWS Backup's (which DescribeDBSnapshots lists only when asked).
    let (database, kinds) = match test.snapshot_source {
        SnapshotSource::Automated => (&state.plan.database.replica_instance, &["automated"][..]),
        SnapshotSource::CrossRegionCopy => (&state.plan.database.primary_instance, &["manual", "awsbackup"][..]),
    };
    let mut snapshots = Vec::new();
    for kind in kinds {
        let mut pages = clients
            .dr
            .rds
            .describe_db_snapshots()
            .db_instance_identifier(database)
            .snapshot_type(*kind)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| DrError::from_sdk("rds", "DescribeDBSnapshots", e))?;
            snapshots.extend(page.db_snapshots().iter().cloned());
        }
    }
    let (snapshot, age) = newest_usable(&snapshots, database, test, &state.plan.dr_region, SystemTime::now())?;
    let id = snapshot.db_snapshot_identifier().unwrap_or_default().to_string();
    let created = snapshot
        .original_snapshot_create_time()
        .or(snapshot.snapshot_create_time())
        .and_then(|t| SystemTime::try_from(*t).ok());
    let resources = vec![ResourceState { resource: id.clone(), state: format!("available, {} s old", age.as_secs()) }];
    let mut record = timer.finish(
        Outcome::Checked,
        true,
        format!(
            "newest of {} snapshot(s) of {database}: {id}, {:.1} h old",
            snapshots.len(),
            age.as_secs_f64() / 3600.0
        ),
        resources,
    );
    record.facts.insert(SNAPSHOT_FACT.to_string(), id);
    record.facts.insert(SNAPSHOT_CREATED_FACT.to_string(), created.map(format_time).unwrap_or_default());
    record.facts.insert(SNAPSHOT_AGE_FACT.to_string(), age.as_secs().to_string());
    Ok(record)
}

/// Restores the snapshot into the run's temporary instance: tagged as a restore test with its
/// expiry, not publicly accessible, in the plan's subnet group and class. Already there: no call.
pub async fn restore_instance(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let test = settings(state)?;
    let snapshot = state
        .steps
        .get("snapshot")
        .and_then(|record| record.facts.get(SNAPSHOT_FACT))
        .cloned()
        .ok_or_else(|| DrError::InvalidInput { message: "no snapshot chosen (the find-snapshot step)".into() })?;
    let timer = StepTimer::start("restore-instance", clients);
    let id = instance_id(&state.run.id);
    if let Some(existing) = describe_db_instance(&clients.dr.rds, &id).await? {
        owned_by_run(&existing, state)?;
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("{id} already restored"),
            vec![observed(&existing)],
        ));
    }
    let expires = SystemTime::now() + Duration::from_secs(u64::from(test.expiry_hours) * 3600);
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let restored = clients
        .dr
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&id)
        .db_snapshot_identifier(&snapshot)
        .db_instance_class(&test.instance_class)
        .db_subnet_group_name(&test.subnet_group)
        .publicly_accessible(false)
        .multi_az(false)
        .deletion_protection(false)
        .tags(tag(RESTORE_TEST_TAG, "true"))
        .tags(tag(EXPIRES_AT_TAG, &format_time(expires)))
        .tags(tag("dr-plan", &state.plan.name))
        .tags(tag(RUN_TAG, &state.run.id))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "RestoreDBInstanceFromDBSnapshot", e))?;
    tracing::info!(plan = %state.plan.name, step = "restore-instance", resource = %id, snapshot = %snapshot, "restore started");
    let resources = restored.db_instance().map(observed).into_iter().collect();
    Ok(timer.finish(Outcome::Changed, true, format!("restoring {snapshot} into {id}"), resources))
}

/// The run's temporary instance, which must exist (`ResourceNotFound` otherwise).
async fn restored_instance(clients: &AwsClients, state: &RunbookState) -> Result<(String, DbInstance), DrError> {
    let id = instance_id(&state.run.id);
    let db = describe_db_instance(&clients.dr.rds, &id).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "RDS instance",
        id: id.clone(),
        region: state.plan.dr_region.clone(),
    })?;
    Ok((id, db))
}

/// RDS states from which a restore never becomes available.
const FAILED_RESTORE_STATES: &[&str] = &[
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "storage-full",
    "inaccessible-encryption-credentials",
];

/// Ready when the temporary instance is available; a failed restore is `RestoreFailed` at once;
/// not available within the RTO of the restore request is `StepTimedOut`.
pub async fn restore_status(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("restore-instance-status", clients);
    let (id, db) = restored_instance(clients, state).await?;
    let status = db.db_instance_status().unwrap_or("unknown").to_string();
    if FAILED_RESTORE_STATES.contains(&status.as_str()) {
        return Err(DrError::RestoreFailed { instance: id, status });
    }
    let ready = status == "available";
    let attempt = state.next_attempt("restore_status");
    let requested = state.steps.get("restore").and_then(|r| parse_time(&r.started_at).ok());
    let elapsed = requested.and_then(|at| SystemTime::now().duration_since(at).ok()).unwrap_or_default();
    if !ready && elapsed > state.plan.targets.rto() {
        return Err(DrError::StepTimedOut { step: "restore_status".into(), attempts: attempt, last_state: status });
    }
    let outcome = if ready { Outcome::Ready } else { Outcome::NotReady };
    let mut record =
        timer.finish(outcome, ready, format!("{status} after {} s", elapsed.as_secs()), vec![observed(&db)]);
    record.attempt = attempt;
    Ok(record)
}

/// What is wrong with the restored instance, if anything.
pub fn validation_failures(db: &DbInstance, test: &RestoreTest) -> Vec<String> {
    let mut failures = Vec::new();
    if db.db_instance_status() != Some("available") {
        failures.push(format!("status {}", db.db_instance_status().unwrap_or("unknown")));
    }
    if db.engine() != Some(test.engine.as_str()) {
        failures.push(format!("engine {} (expected {})", db.engine().unwrap_or("unknown"), test.engine));
    }
    if !db.engine_version().unwrap_or_default().starts_with(&test.engine_version) {
        failures.push(format!(
            "engine version {} (expected {}.*)",
            db.engine_version().unwrap_or("unknown"),
            test.engine_version
        ));
    }
    if db.storage_encrypted() != Some(true) {
        failures.push("storage not encrypted".to_string());
    }
    if db.endpoint().and_then(|e| e.address()).is_none_or(str::is_empty) {
        failures.push("no endpoint".to_string());
    }
    if db.publicly_accessible() == Some(true) {
        failures.push("publicly accessible".to_string());
    }
    failures
}

/// Status, engine and version, encryption, endpoint, not public: `RestoreValidationFailed` otherwise.
pub async fn validate_restore(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let test = settings(state)?;
    let timer = StepTimer::start("validate-restore", clients);
    let (id, db) = restored_instance(clients, state).await?;
    let failures = validation_failures(&db, test);
    if !failures.is_empty() {
        return Err(DrError::RestoreValidationFailed { instance: id, failures });
    }
    let endpoint =
        db.endpoint().map(|e| format!("{}:{}", e.address().unwrap_or_default(), e.port().unwrap_or_default()));
    let mut detail = format!(
        "{id}: available, {} {}, encrypted, private, endpoint {}",
        db.engine().unwrap_or_default(),
        db.engine_version().unwrap_or_default(),
        endpoint.unwrap_or_default()
    );
    if let Some(hook) = &test.sql_probe_function {
        let request = SqlProbeRequest {
            plan: state.plan.name.clone(),
            run_id: state.run.id.clone(),
            instance: id.clone(),
            address: db.endpoint().and_then(|e| e.address()).unwrap_or_default().to_string(),
            port: db.endpoint().and_then(|e| e.port()).unwrap_or_default(),
            engine: db.engine().unwrap_or_default().to_string(),
            engine_version: db.engine_version().unwrap_or_default().to_string(),
        };
        let answer = invoke_probe(clients, hook, &request).await?;
        if !answer.ok {
            return Err(DrError::RestoreValidationFailed {
                instance: id,
                failures: vec![format!("SQL probe {hook}: {}", answer.detail)],
            });
        }
        detail.push_str(&format!("; SQL probe {hook}: {}", answer.detail));
    }
    Ok(timer.finish(Outcome::Checked, true, detail, vec![observed(&db)]))
}

/// What the SQL probe hook receives.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SqlProbeRequest {
    pub plan: String,
    pub run_id: String,
    pub instance: String,
    pub address: String,
    pub port: i32,
    pub engine: String,
    pub engine_version: String,
}

/// What the SQL probe hook answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SqlProbeAnswer {
    pub ok: bool,
    pub detail: String,
}

async fn invoke_probe(clients: &AwsClients, hook: &str, request: &SqlProbeRequest) -> Result<SqlProbeAnswer, DrError> {
    let payload = serde_json::to_vec(request)
        .map_err(|e| DrError::InvalidInput { message: format!("probe request not serialisable: {e}") })?;
    let invoked = clients
        .dr
        .lambda
        .invoke()
        .function_name(hook)
        .payload(aws_smithy_types::Blob::new(payload))
        .send()
        .await
        .map_err(|e| DrError::from_sdk("lambda", "Invoke", e))?;
    let body = invoked.payload().map(|p| p.as_ref().to_vec()).unwrap_or_default();
    if let Some(error) = invoked.function_error() {
        return Ok(SqlProbeAnswer {
            ok: false,
            detail: format!("the probe failed ({error}): {}", String::from_utf8_lossy(&body)),
        });
    }
    serde_json::from_slice(&body).map_err(|e| DrError::InvalidInput {
        message: format!("the SQL probe {hook} answered something other than {{ok, detail}}: {e}"),
    })
}

/// The shipped SQL probe hook: the restored endpoint accepts a connection within 5 s. (Running a
/// query needs the database's credentials and a driver: a plan that wants one names its own hook.)
pub async fn connect_probe(request: &SqlProbeRequest) -> SqlProbeAnswer {
    let target = format!("{}:{}", request.address, request.port);
    match tokio::time::timeout(Duration::from_secs(5), tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => SqlProbeAnswer { ok: true, detail: format!("{target} accepts connections") },
        Ok(Err(e)) => SqlProbeAnswer { ok: false, detail: format!("{target}: {e}") },
        Err(_) => SqlProbeAnswer { ok: false, detail: format!("{target}: no answer within 5 s") },
    }
}

/// Deletes the run's temporary instance, without a final snapshot. Runs on every path, failures
/// included: gone already is done; an instance without the restore-test prefix and tag is never
/// deleted (`NotARestoreTestInstance`); one still being created is `InstanceBusy` (retried).
pub async fn cleanup(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("cleanup", clients);
    let id = instance_id(&state.run.id);
    let Some(db) = describe_db_instance(&clients.dr.rds, &id).await? else {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("{id} does not exist: nothing to delete"),
            Vec::new(),
        ));
    };
    owned_by_run(&db, state)?;
    delete_restore_test_instance(clients, &db).await?;
    tracing::info!(plan = %state.plan.name, step = "cleanup", resource = %id, "restore-test instance deleted");
    let outcome = if db.db_instance_status() == Some("deleting") { Outcome::AlreadyDone } else { Outcome::Changed };
    Ok(timer.finish(outcome, true, format!("{id} deleted (no final snapshot)"), vec![observed(&db)]))
}

/// The one delete of a restore-test instance: guarded by the prefix and the tag.
async fn delete_restore_test_instance(clients: &AwsClients, db: &DbInstance) -> Result<(), DrError> {
    let id = db.db_instance_identifier().unwrap_or_default().to_string();
    if !is_restore_test_instance(db) {
        return Err(DrError::NotARestoreTestInstance { instance: id });
    }
    if db.db_instance_status() == Some("deleting") {
        return Ok(());
    }
    let deleted = clients
        .dr
        .rds
        .delete_db_instance()
        .db_instance_identifier(&id)
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await;
    match deleted {
        Ok(_) => Ok(()),
        Err(err) => match sdk_error_code(&err) {
            Some("DBInstanceNotFound" | "DBInstanceNotFoundFault") => Ok(()),
            Some("InvalidDBInstanceState" | "InvalidDBInstanceStateFault") => Err(DrError::InstanceBusy {
                instance: id,
                state: db.db_instance_status().unwrap_or("unknown").to_string(),
            }),
            _ => Err(DrError::from_sdk("rds", "DeleteDBInstance", err)),
        },
    }
}

/// The restore test's report: what was restored, how long it took against the RTO, how old the
/// data was against the RPO, what validation found and whether the instance is gone.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RestoreReport {
    pub plan: String,
    pub run: RunInfo,
    /// "succeeded" or "failed".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    pub instance: String,
    pub snapshot: Option<String>,
    pub snapshot_created_at: Option<String>,
    /// Snapshot age against the RPO: the data a restore from backup would lose.
    pub snapshot_age_seconds: Option<u64>,
    pub rpo_target_seconds: u64,
    pub rpo_met: Option<bool>,
    /// From the restore request until the instance was available.
    pub restore_seconds: Option<f64>,
    pub rto_target_seconds: u64,
    pub rto_met: Option<bool>,
    pub validation: Option<String>,
    /// Whether the temporary instance was deleted.
    pub cleaned_up: bool,
    pub steps: Vec<StepRecord>,
    pub generated_at: String,
    pub locations: Vec<String>,
}

pub fn build_restore_report(state: &RunbookState) -> RestoreReport {
    let steps = &state.steps;
    let fact = |key: &str| steps.get("snapshot").and_then(|r| r.facts.get(key)).cloned();
    let snapshot_age_seconds = fact(SNAPSHOT_AGE_FACT).and_then(|age| age.parse().ok());
    let restore_seconds = match (steps.get("restore"), steps.get("restore_status").filter(|s| s.ready)) {
        (Some(start), Some(ready)) => {
            let (from, to) = (parse_time(&start.started_at).ok(), parse_time(&ready.finished_at).ok());
            from.zip(to).map(|(from, to)| to.duration_since(from).map(|d| d.as_secs_f64()).unwrap_or(0.0))
        }
        _ => None,
    };
    let (rto, rpo) = (state.plan.targets.rto().as_secs(), state.plan.targets.rpo().as_secs());
    let validation = steps.get("validate").map(|r| r.detail.clone());
    let cleaned_up = steps.get("cleanup").is_some();
    let succeeded = state.error.is_none() && validation.is_some() && cleaned_up;
    RestoreReport {
        plan: state.plan.name.clone(),
        run: state.run.clone(),
        status: if succeeded { "succeeded" } else { "failed" }.to_string(),
        error: state.error.clone(),
        instance: instance_id(&state.run.id),
        snapshot: fact(SNAPSHOT_FACT),
        snapshot_created_at: fact(SNAPSHOT_CREATED_FACT),
        snapshot_age_seconds,
        rpo_target_seconds: rpo,
        rpo_met: snapshot_age_seconds.map(|age| age <= rpo),
        restore_seconds,
        rto_target_seconds: rto,
        rto_met: restore_seconds.map(|s| s <= rto as f64),
        validation,
        cleaned_up,
        steps: steps.values().cloned().collect(),
        generated_at: format_time(SystemTime::now()),
        locations: Vec::new(),
    }
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "MISSED",
        None => "not measured",
    }
}

pub fn render_restore_markdown(report: &RestoreReport) -> String {
    let mut md = String::new();
    let seconds = |s: Option<f64>| s.map_or("n/a".to_string(), |s| format!("{s:.0} s"));
    let _ = writeln!(md, "# Restore test report: {} / run {}\n", report.plan, report.run.id);
    let _ = writeln!(md, "- **Status:** {}", report.status.to_uppercase());
    if let Some(error) = &report.error {
        let _ = writeln!(md, "- **Stopped by:** `{}`: {}", error.error, error.cause);
    }
    let _ = writeln!(md, "- **Trigger:** {} at {}", report.run.trigger, report.run.triggered_at);
    let snapshot = report.snapshot.as_deref().unwrap_or("none");
    let created = report.snapshot_created_at.as_deref().unwrap_or("n/a");
    let _ = writeln!(md, "- **Snapshot:** {snapshot} (created {created})");
    let _ = writeln!(
        md,
        "- **Temporary instance:** {} ({})",
        report.instance,
        if report.cleaned_up { "deleted" } else { "NOT confirmed deleted" }
    );
    let _ = writeln!(md, "- **Validation:** {}", report.validation.as_deref().unwrap_or("not reached"));
    let _ = writeln!(md, "- **Report generated:** {}\n", report.generated_at);
    let _ = writeln!(md, "| objective | target | measured | verdict |\n|---|---|---|---|");
    let _ = writeln!(
        md,
        "| RTO (restore until available) | {} s | {} | {} |",
        report.rto_target_seconds,
        seconds(report.restore_seconds),
        verdict(report.rto_met)
    );
    let _ = writeln!(
        md,
        "| RPO (snapshot age) | {} s | {} | {} |\n",
        report.rpo_target_seconds,
        seconds(report.snapshot_age_seconds.map(|s| s as f64)),
        verdict(report.rpo_met)
    );
    let _ = writeln!(
        md,
        "## Steps\n\n| step | start | end | outcome | AWS calls (mutating) | detail |\n|---|---|---|---|---|---|"
    );
    for step in &report.steps {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {:?} | {} ({}) | {} |",
            step.step,
            step.started_at,
            step.finished_at,
            step.outcome,
            step.calls.len(),
            step.mutating_calls(),
            step.detail.replace('|', "/")
        );
    }
    md
}

/// Writes the report (JSON and Markdown) to `s3://<reports.bucket>/<prefix><plan>/restore-tests/<run>/`.
pub async fn write_restore_report(clients: &AwsClients, state: &RunbookState) -> Result<RestoreReport, DrError> {
    state.validate()?;
    let mut report = build_restore_report(state);
    let reports = &state.plan.reports;
    let base = format!("{}{}/restore-tests/{}/", reports.prefix, state.plan.name, state.run.id);
    let (json_key, md_key) = (format!("{base}report.json"), format!("{base}report.md"));
    report.locations = [&json_key, &md_key].iter().map(|key| format!("s3://{}/{key}", reports.bucket)).collect();
    let json = serde_json::to_vec_pretty(&report)
        .map_err(|e| DrError::InvalidInput { message: format!("report not serialisable: {e}") })?;
    let files = [
        (json_key.as_str(), json, "application/json"),
        (md_key.as_str(), render_restore_markdown(&report).into_bytes(), "text/markdown; charset=utf-8"),
    ];
    put_report_files(clients, &reports.bucket, files).await?;
    tracing::info!(plan = %state.plan.name, step = "restore-report", status = %report.status, "restore test report written");
    Ok(report)
}

/// Runs one restore-test step and returns the Task output.
pub async fn run_restore_step(
    step: RestoreStep,
    action: StepAction,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<serde_json::Value, DrError> {
    let output = match (step, action) {
        (RestoreStep::FindSnapshot, _) => serde_json::to_value(Box::pin(find_snapshot(clients, state)).await?),
        (RestoreStep::RestoreInstance, StepAction::Act) => {
            serde_json::to_value(Box::pin(restore_instance(clients, state)).await?)
        }
        (RestoreStep::RestoreInstance, StepAction::Status) => {
            serde_json::to_value(Box::pin(restore_status(clients, state)).await?)
        }
        (RestoreStep::Validate, _) => serde_json::to_value(Box::pin(validate_restore(clients, state)).await?),
        (RestoreStep::Cleanup, _) => serde_json::to_value(Box::pin(cleanup(clients, state)).await?),
        (RestoreStep::Report, _) => serde_json::to_value(Box::pin(write_restore_report(clients, state)).await?),
    };
    output.map_err(|e| DrError::InvalidInput { message: format!("output not serialisable: {e}") })
}

/// The execution input of a restore test of `plan`, started now: run id `restore-<time>`.
pub fn restore_test_input(plan: &Plan, now: SystemTime, trigger: &str) -> Result<RunbookState, DrError> {
    if plan.restore_test.is_none() {
        return Err(DrError::InvalidInput { message: format!("plan {} has no [restore_test]", plan.name) });
    }
    // `<plan>-restore-<time to the second>`: at most 64 characters, unique per plan and second.
    let run_id = format!("{}-restore-{}", plan.name, compact_time(now).trim_end_matches('Z'));
    let run = RunInfo::new(run_id, now, trigger);
    let state = RunbookState { plan: plan.clone(), run, approval: None, steps: Default::default(), error: None };
    state.validate()?;
    Ok(state)
}

/// A restore test the scheduled start began.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StartedRestoreTest {
    pub plan: String,
    pub run_id: String,
    pub execution_arn: String,
}

/// The monthly start: a restore test of every served plan that has a `[restore_test]`.
pub async fn start_restore_tests(
    store: &PlanStore,
    starter: &Starter,
    plan_names: &[String],
    now: SystemTime,
) -> Result<Vec<StartedRestoreTest>, DrError> {
    let mut started = Vec::new();
    for name in plan_names {
        let plan = store.load_plan(name).await?;
        if plan.restore_test.is_none() {
            tracing::info!(plan = %plan.name, "no [restore_test]: skipped");
            continue;
        }
        let input = restore_test_input(&plan, now, "schedule: monthly restore test")?;
        let execution_arn = starter.start(&input).await?;
        started.push(StartedRestoreTest { plan: plan.name, run_id: input.run.id, execution_arn });
    }
    Ok(started)
}

/// What the janitor did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct JanitorRun {
    /// Restore-test instances past their expiry, deleted.
    pub deleted: Vec<String>,
    /// Restore-test instances not expired yet.
    pub kept: Vec<String>,
    /// Expired ones the delete failed for (named error), tried again next run.
    #[serde(default)]
    pub failed: Vec<String>,
}

/// Deletes the restore-test instances (prefix and tag) of the DR region whose expiry has passed,
/// and nothing else. An instance with the prefix and the tag but no readable expiry is kept and
/// reported: deleting by guess is worse than a leftover.
pub async fn janitor(clients: &AwsClients, now: SystemTime) -> Result<JanitorRun, DrError> {
    let mut run = JanitorRun::default();
    let mut pages = clients.dr.rds.describe_db_instances().into_paginator().send();
    let mut candidates = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("rds", "DescribeDBInstances", e))?;
        candidates.extend(page.db_instances().iter().filter(|db| is_restore_test_instance(db)).cloned());
    }
    for db in candidates {
        let id = db.db_instance_identifier().unwrap_or_default().to_string();
        let expires = db
            .tag_list()
            .iter()
            .find(|tag| tag.key() == Some(EXPIRES_AT_TAG))
            .and_then(|tag| tag.value())
            .and_then(|value| parse_time(value).ok());
        match expires {
            Some(at) if at <= now => match delete_restore_test_instance(clients, &db).await {
                Ok(()) => {
                    tracing::info!(resource = %id, expired_at = %format_time(at), "expired restore-test instance deleted");
                    run.deleted.push(id);
                }
                // One stuck instance must not keep the janitor from the others.
                Err(err) => {
                    tracing::error!(resource = %id, error = err.name(), "{err}");
                    run.failed.push(format!("{id}: {}", err.name()));
                }
            },
            Some(_) => run.kept.push(id),
            None => {
                tracing::warn!(resource = %id, "restore-test instance without a readable expiry: kept");
                run.kept.push(id);
            }
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_types::DateTime;

    fn test_settings() -> RestoreTest {
        RestoreTest {
            snapshot_source: SnapshotSource::CrossRegionCopy,
            max_snapshot_age_hours: 26,
            instance_class: "db.t4g.medium".into(),
            subnet_group: "g".into(),
            engine: "postgres".into(),
            engine_version: "15".into(),
            expiry_hours: 6,
            sql_probe_function: None,
        }
    }

    fn snapshot(id: &str, age_hours: u64, status: &str, now: SystemTime) -> DbSnapshot {
        DbSnapshot::builder()
            .db_snapshot_identifier(id)
            .status(status)
            .snapshot_create_time(DateTime::from(now - Duration::from_secs(age_hours * 3600)))
            .build()
    }

    #[test]
    fn the_newest_available_snapshot_is_chosen_and_an_old_one_refused() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        let snapshots = [
            snapshot("old", 30, "available", now),
            snapshot("new", 2, "available", now),
            snapshot("copying", 0, "creating", now),
        ];
        let (chosen, age) = newest_usable(&snapshots, "db", &test_settings(), "eu-west-1", now).expect("usable");
        assert_eq!((chosen.db_snapshot_identifier(), age.as_secs()), (Some("new"), 7200));
        // moto stamps every snapshot with the time it is made: age is only testable here.
        let too_old = newest_usable(&snapshots[..1], "db", &test_settings(), "eu-west-1", now);
        assert_eq!(too_old.map(|_| ()).map_err(|e| e.name()), Err("SnapshotTooOld"));
        let none = newest_usable(&snapshots[2..], "db", &test_settings(), "eu-west-1", now);
        assert_eq!(none.map(|_| ()).map_err(|e| e.name()), Err("NoSnapshot"));
    }

    #[tokio::test]
    async fn the_connect_probe_tells_an_open_endpoint_from_a_closed_one() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("listener");
        let open = listener.local_addr().expect("address");
        let request = |port: u16| SqlProbeRequest {
            plan: "p".into(),
            run_id: "r".into(),
            instance: "i".into(),
            address: "127.0.0.1".into(),
            port: i32::from(port),
            engine: "postgres".into(),
            engine_version: "15.7".into(),
        };
        assert!(connect_probe(&request(open.port())).await.ok);
        drop(listener);
        assert!(!connect_probe(&request(open.port())).await.ok);
    }

    #[test]
    fn instance_ids_are_valid_rds_identifiers_with_the_prefix() {
        assert_eq!(instance_id("restore-20261123T150405Z"), "dr-restore-test-restore-20261123t150405z");
        let long = instance_id(&format!("{}__x-", "a".repeat(60)));
        assert!(long.len() <= 63 && long.starts_with(INSTANCE_PREFIX) && !long.ends_with('-') && !long.contains("--"));
    }
}
