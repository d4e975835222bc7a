//! The second example plan, the microservices estate (issue 32, in part): N. Virginia (us-east-1)
//! to Oregon (us-west-2), 15 ECS services and no EC2, two failover records moved together, an RDS
//! PostgreSQL pair on real PostgreSQL,
//! four S3 pairs, custom actions standing for the Redis global datastore and EFS replication
//! (the local stand-in, `dr-custom-action-application`).
//!
//! A dry run changes nothing but telling the actions; a round-trip game day with an application
//! writing throughout fails over to Oregon (every service at its failover count), fails back and
//! reprotects both ways: 0 acknowledged rows lost, every service back at its standby count, and
//! the plan's own region names in every report.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dr_core::readiness::{Scope, check_plan};
use dr_core::run::RunStatus;
use dr_core::run::{RunMode, RunbookState};
use dr_core::runbook::report::RunReport;
use dr_core::runbook::round_trip::Leg;
use dr_emulator::estate::{SeedOptions, publish_replica_lag, seed};
use dr_tests::{
    back_with_real_pair, emulator_clients, failover_input, failover_substitutions, isolated_microservices_plan,
    read_report, run_state_machine_waiting, unique_suffix,
};

use crate::ecs::counts;
use crate::round_trip::{assert_no_row_lost, round_trip_with_writer};

#[tokio::test(flavor = "multi_thread")]
async fn the_microservices_estate_round_trips_to_oregon_on_ecs_with_every_row_and_its_region_names() {
    let plan = isolated_microservices_plan();
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding the microservices estate");
    let pair = back_with_real_pair(&clients, &plan, "microservices").await;
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 1.0).await.expect("lag");
    // Each service's (desired, running) on standby, every task settled.
    let standby: Vec<(i32, i32)> =
        plan.ecs_services.iter().map(|s| (i32::from(s.standby_count), i32::from(s.standby_count))).collect();
    let failover: Vec<i32> = plan.ecs_services.iter().map(|s| i32::from(s.failover_count)).collect();
    assert_eq!(counts(&clients, &plan).await, standby);
    let before = check_plan(&clients, &plan, Scope::Full).await;
    assert!(before.is_ready(), "{before:#?}");
    assert_eq!(before.rows.iter().filter(|r| r.check == dr_core::readiness::Check::EcsService).count(), 15);

    // A dry run: every step says what it would do; only the custom actions are told (dry run).
    let mut dry: RunbookState =
        serde_json::from_value(failover_input(&plan, &format!("ms-dry-{}", unique_suffix())).await).expect("state");
    dry.run.mode = RunMode::DryRun;
    let execution = run_state_machine_waiting(
        "failover.asl.json",
        &failover_substitutions(),
        &serde_json::to_value(&dry).expect("input"),
        Duration::from_millis(200),
    );
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let rehearsed: RunReport = serde_json::from_value(execution.output).expect("report");
    let mutating: Vec<&str> = rehearsed
        .steps
        .iter()
        .flat_map(|s| &s.calls)
        .filter(|c| c.is_mutating())
        .map(|c| c.operation.as_str())
        .collect();
    assert!(mutating.iter().all(|op| *op == "Invoke"), "a dry run only tells the actions: {mutating:?}");
    assert_eq!(counts(&clients, &plan).await, standby, "a dry run raises nothing");

    // The round trip, an application writing to whichever database takes writes throughout.
    let (outcome, report, acknowledged) = round_trip_with_writer(&clients, &plan, &pair).await;
    assert_eq!(report.head.status, RunStatus::Succeeded, "{report:#?}");
    for leg in [Leg::Failover, Leg::Failback] {
        let achieved = report.leg(leg).and_then(|s| s.achieved.clone()).expect("the move's own report");
        assert_eq!(achieved.rpo_seconds, Some(0.0), "{leg:?} proven by its barrier");
    }
    assert_no_row_lost(&clients, &plan, &acknowledged).await;

    // The failover leg raised every service in Oregon, and the failback stood them down again.
    let failover_run = format!("{}-failover", outcome.run_id);
    let moved: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &failover_run, "report.json").await).expect("report");
    let status = moved.steps.iter().find(|s| s.step == "scale-asg-status").expect("the compute branch");
    assert!(status.ready && status.detail.contains("15 of 15 ECS services serve"), "{status:#?}");
    for (service, count) in plan.ecs_services.iter().zip(&failover) {
        let row =
            status.resources.iter().find(|r| r.resource == format!("ECS service {} (us-west-2)", service.label()));
        assert!(row.is_some_and(|r| r.state.contains(&format!("running {count}"))), "{}: {status:#?}", service.label());
    }
    assert_eq!(counts(&clients, &plan).await, standby, "back at their standby count");
    // Both records moved to Oregon together, each answered there before the run went on.
    let dns = moved.steps.iter().find(|s| s.step == "flip-dns-status").expect("the DNS status");
    assert_eq!(plan.dns.records.len(), 2);
    for record in &plan.dns.records {
        let row = dns.resources.iter().find(|r| r.resource == record.record);
        let oregon = &record.secondary.value;
        assert!(row.is_some_and(|r| r.state.contains(oregon.as_str())), "{} on {oregon}: {dns:#?}", record.record);
    }
    // And back: after the failback each answers N. Virginia.
    for record in &plan.dns.records {
        let answers = clients.dns.answer(&record.record, &record.record_type).await.expect("DNS answers");
        assert!(answers.iter().any(|a| a.trim_end_matches('.') == record.primary.value), "{answers:?}");
    }

    // The plan's own names for its regions, in every report.
    let failback_run = format!("{}-failback", outcome.run_id);
    for run in [&failover_run, &failback_run] {
        let markdown = String::from_utf8(read_report(&clients, &plan, run, "report.md").await).expect("markdown");
        assert!(markdown.contains("Oregon") && markdown.contains("N. Virginia"), "{run}: {markdown}");
        assert!(!markdown.contains("Paris") && !markdown.contains("Ireland"), "{run}: {markdown}");
    }
    let whole = String::from_utf8(read_report(&clients, &plan, &outcome.run_id, "report.md").await).expect("markdown");
    assert!(whole.contains("Oregon") && !whole.contains("Ireland"), "{whole}");
}
