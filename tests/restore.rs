//! The monthly restore test end to end: the real `statemachines/restore-test.asl.json` executed by
//! aws-local-stepfunctions, the real Lambda binaries behind its Tasks, the emulated estate behind
//! them (a snapshot of the Paris primary copied to Ireland, as the estate seeds it). And the
//! janitor.
//!
//! moto makes every instance `available` at once and stamps every snapshot with the time it is
//! made: the restore's waiting and a too-old snapshot are covered by unit tests of the guards.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::time::Duration;

use aws_sdk_rds::types::Tag;
use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::describe_db_instance;
use dr_core::plan::SnapshotSource;
use dr_core::restore::{EXPIRES_AT_TAG, RESTORE_TEST_TAG, RestoreReport, instance_id, janitor, start_restore_tests};
use dr_core::run::{RunStatus, RunbookState, StepAction, StepRecord};
use dr_core::time;
use dr_tests::{recorded_executions, restore_input, run_restore_test, seeded_estate, trigger_context, unique_suffix};

async fn stored_report(clients: &AwsClients, plan: &Plan, run_id: &str) -> RestoreReport {
    let key = format!("{}{}/restore-tests/{run_id}/report.json", plan.reports.prefix, plan.name);
    let object = clients.dr.s3.get_object().bucket(&plan.reports.bucket).key(&key).send().await.expect("report");
    serde_json::from_slice(&object.body.collect().await.expect("body").into_bytes()).expect("a restore report")
}

async fn gone(clients: &AwsClients, run_id: &str) -> bool {
    let db = describe_db_instance(&clients.dr.rds, &instance_id(run_id)).await.expect("describe");
    db.is_none_or(|db| db.db_instance_status() == Some("deleting"))
}

#[tokio::test]
async fn a_full_run_restores_validates_deletes_and_reports_the_duration() {
    let (plan, clients) = seeded_estate().await;
    let input = restore_input(&plan).await;
    let execution = run_restore_test(&input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RestoreReport = serde_json::from_value(execution.output).expect("the output is the report");
    assert_eq!(report.head.status, RunStatus::Succeeded);
    assert_eq!(report.snapshot.as_deref(), Some(format!("{}-copy", plan.databases[0].primary_instance).as_str()));
    assert!(report.restore_seconds.is_some() && report.rto_met == Some(true), "{report:#?}");
    assert_eq!(report.rpo_met, Some(true), "a fresh snapshot is within the RPO");
    assert!(report.validation.as_deref().is_some_and(|v| v.contains("encrypted")), "{report:#?}");
    assert!(report.cleaned_up);
    assert!(gone(&clients, &input.run.id).await, "the temporary instance is deleted");
    assert_eq!(stored_report(&clients, &plan, &input.run.id).await.head.status, RunStatus::Succeeded);
    // Only the restore-test instance was touched: the replica is still there.
    assert!(
        describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance).await.expect("describe").is_some()
    );
}

#[tokio::test]
async fn a_failure_after_the_restore_still_deletes_the_instance_and_reports_it() {
    let (mut plan, clients) = seeded_estate().await;
    // Injected: the plan expects a version the restored instance does not run.
    if let Some(test) = plan.restore_test.as_mut() {
        test.engine_version = "99".to_string();
    }
    let input = restore_input(&plan).await;
    let execution = run_restore_test(&input);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("RestoreValidationFailed"));
    assert!(gone(&clients, &input.run.id).await, "the temporary instance is deleted on the failure path");
    let report = stored_report(&clients, &plan, &input.run.id).await;
    assert_eq!((report.head.status, report.cleaned_up), (RunStatus::Failed, true), "{report:#?}");
    assert_eq!(report.head.error.map(|e| e.error).as_deref(), Some("RestoreValidationFailed"));
    assert!(report.restore_seconds.is_some(), "the restore itself was measured");
}

#[tokio::test]
async fn no_snapshot_is_a_named_error_and_nothing_is_restored() {
    let (mut plan, clients) = seeded_estate().await;
    // moto makes no automated snapshot of the replica: there is none to restore.
    if let Some(test) = plan.restore_test.as_mut() {
        test.snapshot_source = SnapshotSource::Automated;
    }
    let input = restore_input(&plan).await;
    let execution = run_restore_test(&input);
    assert_eq!(execution.error.as_deref(), Some("NoSnapshot"), "{execution:#?}");
    let report = stored_report(&clients, &plan, &input.run.id).await;
    assert_eq!(report.snapshot, None);
    let restores: Vec<_> = report
        .steps
        .iter()
        .flat_map(|step| &step.calls)
        .filter(|call| call.operation.starts_with("Restore") || call.operation.starts_with("Delete"))
        .collect();
    assert!(restores.is_empty(), "{restores:?}");
    assert!(describe_db_instance(&clients.dr.rds, &instance_id(&input.run.id)).await.expect("describe").is_none());
}

#[tokio::test]
async fn the_janitor_removes_expired_leftovers_and_nothing_else() {
    let (plan, clients) = seeded_estate().await;
    let snapshot = format!("{}-copy", plan.databases[0].primary_instance);
    let s = unique_suffix();
    let restore = |id: String, tags: Vec<Tag>| {
        let clients = clients.clone();
        let snapshot = snapshot.clone();
        async move {
            clients
                .dr
                .rds
                .restore_db_instance_from_db_snapshot()
                .db_instance_identifier(id)
                .db_snapshot_identifier(snapshot)
                .db_instance_class("db.t4g.medium")
                .db_subnet_group_name("platform-db-ireland")
                .set_tags(Some(tags))
                .send()
                .await
                .expect("leftover restored");
        }
    };
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    let hour = Duration::from_secs(3600);
    let expired = format!("dr-restore-test-leak-{s}");
    let unexpired = format!("dr-restore-test-running-{s}");
    let untagged = format!("dr-restore-test-lookalike-{s}");
    restore(
        expired.clone(),
        vec![tag(RESTORE_TEST_TAG, "true"), tag(EXPIRES_AT_TAG, &time::rfc3339(time::before(time::now(), hour)))],
    )
    .await;
    restore(
        unexpired.clone(),
        vec![tag(RESTORE_TEST_TAG, "true"), tag(EXPIRES_AT_TAG, &time::rfc3339(time::after(time::now(), hour)))],
    )
    .await;
    restore(untagged.clone(), vec![tag(EXPIRES_AT_TAG, &time::rfc3339(time::before(time::now(), hour)))]).await;

    let run = janitor(&clients, time::now()).await.expect("janitor");
    assert!(run.deleted.contains(&expired), "{run:?}");
    assert!(run.kept.contains(&unexpired), "{run:?}");
    for kept in [&unexpired, &untagged, &plan.databases[0].replica_instance] {
        assert!(!run.deleted.contains(kept), "{run:?}");
        assert!(describe_db_instance(&clients.dr.rds, kept).await.expect("describe").is_some(), "{kept} kept");
    }
    assert!(describe_db_instance(&clients.dr.rds, &expired).await.expect("describe").is_none());
}

#[tokio::test]
async fn the_monthly_start_runs_a_restore_test_of_each_published_plan() {
    let (plan, clients) = seeded_estate().await;
    let ctx = trigger_context(&plan, &clients).await;
    let started = start_restore_tests(&ctx.store, &ctx.starter, &ctx.plan_names, time::now()).await.expect("started");
    assert_eq!(started.len(), 1, "{started:?}");
    let executions = recorded_executions(&clients, &plan).await;
    let (_, input) = executions.iter().find(|(name, _)| *name == started[0].run_id).expect("recorded");
    let input: RunbookState = serde_json::from_value(input.clone()).expect("a restore-test input");
    assert!(input.run.id.starts_with(&format!("{}-restore-", plan.name)));
    assert_eq!(input.run.plan, Some(plan.reference().expect("a version")), "the published plan, by name and version");
    // The recorded input runs as is.
    assert_eq!(run_restore_test(&input).status, "SUCCEEDED");
}

/// An estate with two databases: the monthly start restores each in its own run (its own
/// snapshot, instance and report); a run naming a database the plan does not have is refused by
/// name before any restore.
#[tokio::test(flavor = "multi_thread")]
async fn the_monthly_start_restores_each_database_of_an_estate_in_its_own_run() {
    let (plan, clients) = dr_tests::seeded_estate_with(dr_tests::with_second_database).await;
    let ctx = trigger_context(&plan, &clients).await;
    let started = start_restore_tests(&ctx.store, &ctx.starter, &ctx.plan_names, time::now()).await.expect("started");
    let tested: Vec<&str> = started.iter().map(|s| s.database.as_str()).collect();
    let primaries: Vec<&str> = plan.databases.iter().map(|db| db.primary_instance.as_str()).collect();
    assert_eq!(tested, primaries, "{started:#?}");
    let executions = recorded_executions(&clients, &plan).await;
    let mut instances = Vec::new();
    for (run, db) in started.iter().zip(&plan.databases) {
        let (_, input) = executions.iter().find(|(name, _)| *name == run.run_id).expect("recorded");
        let input: RunbookState = serde_json::from_value(input.clone()).expect("a restore-test input");
        assert_eq!(input.run.restore_database.as_deref(), Some(db.primary_instance.as_str()));
        let execution = run_restore_test(&input);
        assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
        let report = stored_report(&clients, &plan, &run.run_id).await;
        assert_eq!(report.database, db.primary_instance);
        let snapshot = report.snapshot.clone().unwrap_or_default();
        assert!(snapshot.starts_with(&db.primary_instance), "its own database's snapshot: {report:#?}");
        assert!(report.cleaned_up && report.rto_met == Some(true), "{report:#?}");
        instances.push(report.instance);
    }
    assert_ne!(instances[0], instances[1], "each run its own temporary instance");

    let mut unknown = restore_input(&plan).await;
    unknown.run.restore_database = Some("db-not-in-the-plan".into());
    let execution = run_restore_test(&unknown);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("InvalidInput"), "{execution:#?}");
    let report = stored_report(&clients, &plan, &unknown.run.id).await;
    let mutating: usize = report.steps.iter().map(StepRecord::mutating_calls).sum();
    assert_eq!(mutating, 0, "nothing restored: {report:#?}");
}

#[tokio::test]
async fn a_run_never_deletes_another_runs_instance_even_under_its_own_name() {
    let (plan, clients) = seeded_estate().await;
    let state = restore_input(&plan).await;
    let name = instance_id(&state.run.id);
    let tag = |key: &str, value: &str| Tag::builder().key(key).value(value).build();
    clients
        .dr
        .rds
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&name)
        .db_snapshot_identifier(format!("{}-copy", plan.databases[0].primary_instance))
        .db_instance_class("db.t4g.medium")
        .db_subnet_group_name("platform-db-ireland")
        .tags(tag(RESTORE_TEST_TAG, "true"))
        .tags(tag("dr-run", "another-run"))
        .send()
        .await
        .expect("another run's instance");
    let mark = clients.calls.mark();
    let refused = Box::pin(dr_core::restore::RESTORE_TEST.run("restore-cleanup", StepAction::Act, &clients, &state))
        .await
        .expect_err("not ours");
    assert_eq!(refused.name(), "NotARestoreTestInstance");
    assert!(clients.calls.since(mark).iter().all(|c| !c.is_mutating()));
    assert!(describe_db_instance(&clients.dr.rds, &name).await.expect("describe").is_some());
}

#[tokio::test]
async fn the_sql_probe_hook_the_plan_names_can_fail_the_validation_and_the_instance_is_still_deleted() {
    let (mut plan, clients) = seeded_estate().await;
    // The shipped probe (a Lambda served next to the steps) connects to the restored endpoint:
    // moto's endpoints do not exist, so it answers ok: false, as it would for an unreachable one.
    if let Some(test) = plan.restore_test.as_mut() {
        test.sql_probe_function = Some("restore-sql-probe".to_string());
    }
    let input = restore_input(&plan).await;
    let execution = run_restore_test(&input);
    assert_eq!(execution.error.as_deref(), Some("RestoreValidationFailed"), "{execution:#?}");
    let cause = execution.cause.map(|c| c.to_string()).unwrap_or_default();
    assert!(cause.contains("SQL probe restore-sql-probe"), "{cause}");
    assert!(gone(&clients, &input.run.id).await);
    let report = stored_report(&clients, &plan, &input.run.id).await;
    assert_eq!((report.head.status, report.cleaned_up), (RunStatus::Failed, true));
}
