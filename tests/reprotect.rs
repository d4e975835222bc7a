//! Reprotect after a failover (issue 14, first part): the real `reprotect.asl.json` with the real
//! `retire-primary` and `create-replica` Lambdas against the emulator. The old Paris primary is
//! snapshotted, renamed and kept; a Paris read replica of the Ireland primary takes its name; a
//! second run changes nothing; before any failover, reprotect is refused with no change; the
//! operator's deletion of the retired primary refuses anything else and keeps the final snapshot.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use dr_core::aws::lookup::describe_db_instance;
use dr_core::run::{Outcome, RunMode, RunbookState, StepKey};
use dr_core::runbook::reprotect::{
    FINAL_SNAPSHOT_TAG, RETIRED_BY_RUN_TAG, delete_retired, final_snapshot_id, retired_id,
};
use dr_emulator::estate::publish_replica_lag;
use dr_tests::{failover_input, local_substitutions, run_failover, run_state_machine, seeded_estate, unique_suffix};

fn run_reprotect(input: &serde_json::Value) -> dr_tests::Execution {
    run_state_machine("reprotect.asl.json", &local_substitutions("reprotect.local.json"), input)
}

#[tokio::test(flavor = "multi_thread")]
async fn reprotect_retires_the_old_primary_with_its_snapshot_and_replicates_ireland_into_paris() {
    let (plan, clients) = seeded_estate().await;
    let failover = run_failover(&failover_input(&plan, &format!("fo-{}", unique_suffix())).await);
    assert_eq!(failover.status, "SUCCEEDED", "{failover:#?}");

    // RDS publishes ReplicaLag for a replica every minute; moto does not.
    publish_replica_lag(&clients.primary, &plan.databases[0].primary_instance, 3.0).await.expect("lag published");
    let input = failover_input(&plan, &format!("reprotect-{}", unique_suffix())).await;
    let state = RunbookState { plan: plan.clone(), ..serde_json::from_value(input.clone()).expect("state") };
    let execution = run_reprotect(&input);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let done: RunbookState = serde_json::from_value(execution.output.clone()).expect("the execution state");
    let outcome = |key: StepKey| done.step(key).map(|record| record.outcome);
    assert_eq!(outcome(StepKey::RetirePrimary), Some(Outcome::Changed));
    assert_eq!(outcome(StepKey::Replica), Some(Outcome::Changed));
    assert_eq!(outcome(StepKey::ReplicaStatus), Some(Outcome::Ready));
    // The snapshot first (the emulator keeps it `creating` for a second, as RDS keeps it for
    // minutes: the step waits), then the tags and the rename; nothing else changed.
    let retire = done.step(StepKey::RetirePrimary).expect("retire record");
    let changes: Vec<&str> = retire.calls.iter().filter(|c| c.is_mutating()).map(|c| c.operation.as_str()).collect();
    assert_eq!(changes, ["CreateDBSnapshot", "AddTagsToResource", "ModifyDBInstance"], "{retire:#?}");

    // The old primary: kept under its retired name, tagged with the run and its final snapshot.
    let retired = describe_db_instance(&clients.primary.rds, &retired_id(&state, &state.plan.databases[0]))
        .await
        .expect("describe")
        .expect("the old primary is kept, renamed");
    let tags: Vec<(String, String)> = retired
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or_default().to_string(), t.value().unwrap_or_default().to_string()))
        .collect();
    assert!(tags.contains(&(RETIRED_BY_RUN_TAG.to_string(), state.run.id.clone())), "{tags:?}");
    assert!(
        tags.contains(&(FINAL_SNAPSHOT_TAG.to_string(), final_snapshot_id(&state, &state.plan.databases[0]))),
        "{tags:?}"
    );
    let snapshots = clients
        .primary
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(final_snapshot_id(&state, &state.plan.databases[0]))
        .send()
        .await
        .expect("the final snapshot exists");
    assert_eq!(snapshots.db_snapshots().first().and_then(|s| s.status()), Some("available"));

    // The plan's Paris name is now a replica of the Ireland primary.
    let ireland = describe_db_instance(&clients.dr.rds, &plan.databases[0].replica_instance)
        .await
        .expect("describe")
        .expect("the Ireland primary");
    let paris = describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance)
        .await
        .expect("describe")
        .expect("the new Paris replica");
    assert_eq!(paris.read_replica_source_db_instance_identifier(), ireland.db_instance_arn());

    // Run again: everything is found done, no mutating call.
    let again = run_reprotect(&input);
    assert_eq!(again.status, "SUCCEEDED", "{again:#?}");
    let again: RunbookState = serde_json::from_value(again.output).expect("the execution state");
    let mutating: usize = StepKey::all().filter_map(|key| again.step(key)).map(|r| r.mutating_calls()).sum();
    assert_eq!(mutating, 0, "{again:#?}");
    assert_eq!(again.step(StepKey::RetirePrimary).map(|r| r.outcome), Some(Outcome::AlreadyDone));
    assert_eq!(again.step(StepKey::Replica).map(|r| r.outcome), Some(Outcome::AlreadyDone));

    // The operator's last step: the new replica is never taken for a retired primary; the
    // retired one goes, its final snapshot stays.
    let refused = delete_retired(&clients, &plan, &plan.databases[0].primary_instance).await.expect_err("refused");
    assert_eq!(refused.name(), "ReprotectRefused", "{refused}");
    assert!(
        describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance)
            .await
            .expect("describe")
            .is_some()
    );
    let deleted =
        delete_retired(&clients, &plan, &retired_id(&state, &state.plan.databases[0])).await.expect("deleted");
    eprintln!("{deleted}");
    let gone = describe_db_instance(&clients.primary.rds, &retired_id(&state, &state.plan.databases[0]))
        .await
        .expect("describe");
    assert!(gone.as_ref().is_none_or(|db| db.db_instance_status() == Some("deleting")), "{gone:?}");
    let kept = clients
        .primary
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(final_snapshot_id(&state, &state.plan.databases[0]))
        .send()
        .await;
    assert!(kept.is_ok_and(|found| !found.db_snapshots().is_empty()), "the final snapshot is kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn reprotect_before_a_failover_is_refused_before_any_change() {
    let (plan, clients) = seeded_estate().await;
    let input = failover_input(&plan, &format!("early-{}", unique_suffix())).await;
    let state = RunbookState { plan: plan.clone(), ..serde_json::from_value(input.clone()).expect("state") };
    let execution = run_reprotect(&input);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    assert_eq!(execution.error.as_deref(), Some("ReprotectRefused"), "{execution:#?}");
    let primary =
        describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance).await.expect("describe");
    assert!(
        primary.is_some_and(|db| db.read_replica_source_db_instance_identifier().is_none()),
        "the primary is as it was"
    );
    assert!(
        describe_db_instance(&clients.primary.rds, &retired_id(&state, &state.plan.databases[0]))
            .await
            .expect("describe")
            .is_none()
    );
    let snapshot = clients
        .primary
        .rds
        .describe_db_snapshots()
        .db_snapshot_identifier(final_snapshot_id(&state, &state.plan.databases[0]))
        .send()
        .await;
    assert!(snapshot.map_or(true, |found| found.db_snapshots().is_empty()), "no snapshot taken");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_of_reprotect_says_what_it_would_do_and_changes_nothing() {
    let (plan, clients) = seeded_estate().await;
    let failover = run_failover(&failover_input(&plan, &format!("fo-{}", unique_suffix())).await);
    assert_eq!(failover.status, "SUCCEEDED", "{failover:#?}");
    let mut state: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("dry-{}", unique_suffix())).await).expect("state");
    state.plan = plan.clone();
    state.run.mode = RunMode::DryRun;
    let execution = run_reprotect(&serde_json::to_value(&state).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let done: RunbookState = serde_json::from_value(execution.output).expect("the execution state");
    let retire = done.step(StepKey::RetirePrimary).expect("retire record");
    let replica = done.step(StepKey::Replica).expect("replica record");
    assert_eq!((retire.outcome, replica.outcome), (Outcome::WouldChange, Outcome::WouldChange));
    assert!(
        retire.detail.contains(&format!("rename it {}", retired_id(&state, &state.plan.databases[0]))),
        "{}",
        retire.detail
    );
    assert!(replica.detail.contains("as a read replica of"), "{}", replica.detail);
    let mutating: usize = StepKey::all().filter_map(|key| done.step(key)).map(|r| r.mutating_calls()).sum();
    assert_eq!(mutating, 0, "{done:#?}");
    let primary =
        describe_db_instance(&clients.primary.rds, &plan.databases[0].primary_instance).await.expect("describe");
    assert!(
        primary.is_some_and(|db| db.read_replica_source_db_instance_identifier().is_none()),
        "the old primary as it was"
    );
}
