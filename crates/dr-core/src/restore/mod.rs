//! The monthly restore test: restore the newest snapshot of a protected database in Ireland
//! into a temporary instance (each database of an estate in its own run: [`restore_test_inputs`]), validate it, measure it against the RTO and RPO, always delete
//! it, and report. The logic behind every Task of `statemachines/restore-test.asl.json`, and the
//! janitor that deletes leaked restore-test instances.
//!
//! The steps share the failover runbook's machinery: the execution state is a [`RunbookState`],
//! each Task returns a [`StepRecord`], status checks are bounded by a share of the RTO. The
//! temporary instance is named after the run (`dr-restore-test-<run id>`) and tagged
//! `dr-restore-test=true` with its expiry; the cleanup and the janitor delete nothing else.

pub mod janitor;
pub mod probe;
pub mod report;
pub mod steps;

use aws_sdk_rds::types::DbInstance;
use serde::{Deserialize, Serialize};

pub use janitor::{JanitorRun, janitor};
pub use probe::{SqlProbeAnswer, SqlProbeRequest, connect_probe};
pub use report::RestoreReport;
pub use steps::cleanup;

use crate::aws::{AwsClients, once};
use crate::error::{DrError, sdk_error_code};
use crate::plan::{Plan, RestoreTest};
use crate::run::StepAction::{self, Act, Status};
use crate::run::table::Kind::{Changes, Checks, Waits};
use crate::run::table::{Runbook, step};
use crate::run::{ResourceState, RunInfo, RunbookState, Starter, StepKey};
use crate::store::PlanStore;
use crate::time::{self, Timestamp};

pub const INSTANCE_PREFIX: &str = "dr-restore-test-";
pub const RESTORE_TEST_TAG: &str = "dr-restore-test";
pub const EXPIRES_AT_TAG: &str = "dr-restore-test-expires-at";
pub const RUN_TAG: &str = "dr-run";

pub(crate) const SNAPSHOT_FACT: &str = "snapshot";
pub(crate) const SNAPSHOT_CREATED_FACT: &str = "snapshot_created_at";
pub(crate) const SNAPSHOT_AGE_FACT: &str = "snapshot_age_seconds";

/// The restore test (`statemachines/restore-test.asl.json`), one row per Task; its report is
/// served by `restore-report` ([`report::write_restore_report`]).
#[rustfmt::skip]
pub const RESTORE_TEST: Runbook = Runbook {
    definition: "restore-test.asl.json",
    steps: &[
        //   handler                  action  kind     Task state(s)                         $.steps.<key>           record name
        step("restore-find-snapshot", Act,    Checks,  &["FindSnapshot"],                     StepKey::Snapshot,      "find-snapshot",
             |c, s| Box::pin(steps::find_snapshot(c, s))),
        step("restore-instance",      Act,    Changes, &["RestoreInstance"],                  StepKey::Restore,       "restore-instance",
             |c, s| Box::pin(steps::restore_instance(c, s))),
        step("restore-instance",      Status, Waits,   &["RestoreStatus"],                    StepKey::RestoreStatus, "restore-instance-status",
             |c, s| Box::pin(steps::restore_status(c, s))),
        step("restore-validate",      Act,    Checks,  &["Validate"],                         StepKey::Validate,      "validate-restore",
             |c, s| Box::pin(steps::validate_restore(c, s))),
        // Deletes the run's instance, after the report's figures or after a failure.
        step("restore-cleanup",       Act,    Changes, &["Cleanup", "CleanupAfterFailure"],   StepKey::Cleanup,       "cleanup",
             |c, s| Box::pin(steps::cleanup(c, s))),
    ],
};

pub(crate) fn settings(state: &RunbookState) -> Result<&RestoreTest, DrError> {
    state
        .plan
        .restore_test
        .as_ref()
        .ok_or_else(|| DrError::InvalidInput { message: format!("plan {} has no [restore_test]", state.plan.name) })
}

/// The temporary instance of a run: `dr-restore-test-<run id>`, a valid RDS identifier (63
/// characters at most). A longer run id keeps its end, the time and the database's number that
/// tell runs apart; its start (the plan's name) is in the instance's tags.
pub fn instance_id(run_id: &str) -> String {
    let mut run = run_id.to_ascii_lowercase().replace('_', "-");
    while run.contains("--") {
        run = run.replace("--", "-");
    }
    let room = 63 - INSTANCE_PREFIX.len();
    let kept = &run[run.len().saturating_sub(room)..];
    format!("{INSTANCE_PREFIX}{}", kept.trim_matches('-'))
}

pub(crate) fn is_restore_test_instance(db: &DbInstance) -> bool {
    db.db_instance_identifier().is_some_and(|id| id.starts_with(INSTANCE_PREFIX))
        && has_tag(db, RESTORE_TEST_TAG, "true")
}

fn has_tag(db: &DbInstance, key: &str, value: &str) -> bool {
    db.tag_list().iter().any(|tag| tag.key() == Some(key) && tag.value() == Some(value))
}

/// A restore-test instance of this very run (its `dr-run` tag): a run never adopts, validates or
/// deletes another run's instance, even one whose name it shares.
pub(crate) fn owned_by_run(db: &DbInstance, state: &RunbookState) -> Result<(), DrError> {
    if is_restore_test_instance(db) && has_tag(db, RUN_TAG, &state.run.id) {
        Ok(())
    } else {
        Err(DrError::NotARestoreTestInstance { instance: db.db_instance_identifier().unwrap_or_default().to_string() })
    }
}

pub(crate) fn observed(db: &DbInstance) -> ResourceState {
    ResourceState {
        resource: db.db_instance_identifier().unwrap_or_default().to_string(),
        state: db.db_instance_status().unwrap_or("unknown").to_string(),
    }
}

/// The one delete of a restore-test instance: guarded by the prefix and the tag.
pub(crate) async fn delete_restore_test_instance(clients: &AwsClients, db: &DbInstance) -> Result<(), DrError> {
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
        .customize()
        .config_override(once::rds())
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

/// The report Tasks of the restore test (`restore-report`), after the cleanup or after a failure.
pub async fn report_task(
    action: StepAction,
    clients: &AwsClients,
    state: &RunbookState,
) -> Result<RestoreReport, DrError> {
    if action != Act {
        return Err(DrError::InvalidInput { message: format!("restore-report has no {action:?}: act") });
    }
    Box::pin(report::write_restore_report(clients, &state.clone().validated()?)).await
}

/// The execution inputs of a restore test of `plan` started now, one per database (each its own
/// run, instance and report). One database: run id `<plan>-restore-<time to the second>`, as
/// before estates; several: `<plan>-restore<n>-<time to the minute>` (n from 1, in the plan's
/// order). Either is at most 64 characters (a plan's name has 40 at most, n 2 digits).
pub fn restore_test_inputs(plan: &Plan, now: Timestamp, trigger: &str) -> Result<Vec<RunbookState>, DrError> {
    if plan.restore_test.is_none() {
        return Err(DrError::InvalidInput { message: format!("plan {} has no [restore_test]", plan.name) });
    }
    let second = time::compact(now);
    let second = second.trim_end_matches('Z');
    let several = plan.databases.len() > 1;
    let mut inputs = Vec::with_capacity(plan.databases.len());
    for (index, db) in plan.databases.iter().enumerate() {
        let run_id = if several {
            crate::run::run_id(
                &plan.name,
                &format!("restore{}-{}", index + 1, &second[..second.len().saturating_sub(2)]),
            )
        } else {
            crate::run::run_id(&plan.name, &format!("restore-{second}"))
        };
        let mut run = RunInfo::new(run_id, now, trigger);
        run.restore_database = several.then(|| db.primary_instance.clone());
        let state = RunbookState::new(plan.clone(), run);
        state.validate()?;
        inputs.push(state);
    }
    Ok(inputs)
}

/// The input of a restore test of one database of `plan` (its primary instance; the first when
/// `None`), started now.
pub fn restore_test_input(
    plan: &Plan,
    database: Option<&str>,
    now: Timestamp,
    trigger: &str,
) -> Result<RunbookState, DrError> {
    let tested = plan.database_named(database)?;
    let inputs = restore_test_inputs(plan, now, trigger)?;
    let index = plan.databases.iter().position(|db| db.primary_instance == tested.primary_instance).unwrap_or(0);
    inputs.into_iter().nth(index).ok_or_else(|| DrError::Internal { message: "no restore-test input".into() })
}

/// A restore test the scheduled start began.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct StartedRestoreTest {
    pub plan: String,
    pub run_id: String,
    /// The database it restores (its primary instance).
    pub database: String,
    pub execution_arn: String,
}

/// The monthly start: a restore test of each database of every served plan that has a
/// `[restore_test]`.
pub async fn start_restore_tests(
    store: &PlanStore,
    starter: &Starter,
    plan_names: &[String],
    now: Timestamp,
) -> Result<Vec<StartedRestoreTest>, DrError> {
    let mut started = Vec::new();
    for name in plan_names {
        let plan = store.load_plan(name).await?;
        if plan.restore_test.is_none() {
            tracing::info!(plan = %plan.name, "no [restore_test]: skipped");
            continue;
        }
        for input in restore_test_inputs(&plan, now, "schedule: monthly restore test")? {
            let database = plan.database_named(input.run.restore_database.as_deref())?.primary_instance.clone();
            let execution_arn = starter.start(&input).await?;
            started.push(StartedRestoreTest { plan: plan.name.clone(), run_id: input.run.id, database, execution_arn });
        }
    }
    Ok(started)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_valid_rds_identifiers_with_the_prefix() {
        assert_eq!(instance_id("restore-20261123T150405Z"), "dr-restore-test-restore-20261123t150405z");
        let long = instance_id(&format!("{}__x-", "a".repeat(60)));
        assert!(long.len() <= 63 && long.starts_with(INSTANCE_PREFIX) && !long.ends_with('-') && !long.contains("--"));
        // The longest plan name: each database's run keeps its own instance.
        let plan = "p".repeat(40);
        let (first, twentieth) = (format!("{plan}-restore1-20261207T2256"), format!("{plan}-restore20-20261207T2256"));
        assert!(first.len() <= 64 && twentieth.len() <= 64);
        assert_ne!(instance_id(&first), instance_id(&twentieth));
        assert!(instance_id(&twentieth).ends_with("restore20-20261207t2256"), "{}", instance_id(&twentieth));
    }
}
