//! The restore test's steps: find the snapshot, restore it, wait, validate, clean up.

use std::time::Duration;

use aws_sdk_rds::types::{DbInstance, DbSnapshot, Tag};

use super::probe::{SqlProbeRequest, invoke_probe};
use super::{
    EXPIRES_AT_TAG, RESTORE_TEST_TAG, RUN_TAG, SNAPSHOT_AGE_FACT, SNAPSHOT_CREATED_FACT, SNAPSHOT_FACT,
    delete_restore_test_instance, instance_id, observed, owned_by_run, settings,
};
use crate::aws::lookup::{RDS_TERMINAL_STATES, describe_db_instance, require_db_instance};
use crate::aws::{AwsClients, once};
use crate::error::DrError;
use crate::plan::{RestoreTest, SnapshotSource, hook_timeout};
use crate::run::budget::{Budget, status_record};
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};
use crate::time::{self, Timestamp};

/// The newest available snapshot, if it is recent enough.
pub fn newest_usable<'a>(
    snapshots: &'a [DbSnapshot],
    database: &str,
    test: &RestoreTest,
    region: &str,
    now: Timestamp,
) -> Result<(&'a DbSnapshot, Duration), DrError> {
    // A copy's SnapshotCreateTime is when it was copied; the data is as old as the original.
    let created =
        |s: &DbSnapshot| s.original_snapshot_create_time().or(s.snapshot_create_time()).and_then(time::from_smithy);
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
    let age = time::elapsed(at, now);
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
pub async fn find_snapshot(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let test = settings(state)?;
    let timer = StepTimer::start("find-snapshot", clients);
    // Copies are manual snapshots, or AWS Backup's (which DescribeDBSnapshots lists only when asked).
    let tested = state.plan.database_named(state.run.restore_database.as_deref())?;
    let (database, kinds) = match test.snapshot_source {
        SnapshotSource::Automated => (&tested.replica_instance, &["automated"][..]),
        SnapshotSource::CrossRegionCopy => (&tested.primary_instance, &["manual", "awsbackup"][..]),
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
    let (snapshot, age) = newest_usable(&snapshots, database, test, &state.plan.dr_region, time::now())?;
    let id = snapshot.db_snapshot_identifier().unwrap_or_default().to_string();
    let created =
        snapshot.original_snapshot_create_time().or(snapshot.snapshot_create_time()).and_then(time::from_smithy);
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
    record.facts.insert(SNAPSHOT_CREATED_FACT.to_string(), created.map(time::rfc3339).unwrap_or_default());
    record.facts.insert(SNAPSHOT_AGE_FACT.to_string(), age.as_secs().to_string());
    Ok(record)
}

/// Restores the snapshot into the run's temporary instance: tagged as a restore test with its
/// expiry, not publicly accessible, in the plan's subnet group and class. Already there: no call.
pub async fn restore_instance(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let test = settings(state)?;
    let snapshot = state
        .step(StepKey::Snapshot)
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
    let expires = time::after(time::now(), Duration::from_secs(u64::from(test.expiry_hours) * 3600));
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
        .tags(tag(EXPIRES_AT_TAG, &time::rfc3339(expires)))
        .tags(tag("dr-plan", &state.plan.name))
        .tags(tag(RUN_TAG, &state.run.id))
        .customize()
        .config_override(once::rds())
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
    let db = require_db_instance(&clients.dr.rds, &id, &state.plan.dr_region).await?;
    Ok((id, db))
}

/// Ready when the temporary instance is available; a failed restore (a state RDS does not leave
/// by itself) is `RestoreFailed` at once; not available within the RTO of the restore request is
/// `StepTimedOut`.
pub async fn restore_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("restore-instance-status", clients);
    let (id, db) = restored_instance(clients, state).await?;
    let status = db.db_instance_status().unwrap_or("unknown").to_string();
    if RDS_TERMINAL_STATES.contains(&status.as_str()) {
        return Err(DrError::RestoreFailed { instance: id, status });
    }
    let elapsed = Budget::of(state, StepKey::RestoreStatus, time::now()).elapsed(time::now());
    let detail = format!("{status} after {} s", elapsed.as_secs());
    status_record(timer, state, StepKey::RestoreStatus, status == "available", detail, vec![observed(&db)])
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
pub async fn validate_restore(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
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
        let answer = invoke_probe(clients, hook, &request, hook_timeout(test.hook_timeout_seconds)).await?;
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

/// Deletes the run's temporary instance, without a final snapshot. Runs on every path, failures
/// included: gone already is done; an instance without the restore-test prefix and tag is never
/// deleted (`NotARestoreTestInstance`); one still being created is `InstanceBusy` (retried).
pub async fn cleanup(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
            hook_timeout_seconds: 30,
        }
    }

    fn snapshot(id: &str, age_hours: u64, status: &str, now: Timestamp) -> DbSnapshot {
        DbSnapshot::builder()
            .db_snapshot_identifier(id)
            .status(status)
            .snapshot_create_time(time::to_smithy(time::before(now, Duration::from_secs(age_hours * 3600))))
            .build()
    }

    #[test]
    fn the_newest_available_snapshot_is_chosen_and_an_old_one_refused() {
        let now = time::from_epoch_seconds(10_000_000);
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
}
