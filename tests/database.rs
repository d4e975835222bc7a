//! The database path on real PostgreSQL: two local servers in streaming replication stand for
//! the Paris primary and its Ireland read replica (crates/dr-emulator/src/postgres.rs), and the
//! emulated RDS replica is backed by the standby, so the runbook's PromoteReadReplica (sent to
//! the emulator, as every RDS call) promotes the real standby.
//!
//! And what RDS does that moto does not: a promotion without a backup retention keeps 1 day.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use dr_core::aws::lookup::describe_db_instance;
use dr_core::runbook::report::RunReport;
use dr_emulator::control::back_replica_with;
use dr_emulator::postgres::Pair;
use dr_tests::{failover_input, run_failover, seeded_estate, unique_suffix};

/// Waits until the standby has replayed `rows` rows of `orders`.
fn wait_for_replay(pair: &Pair, rows: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replayed: u64 = pair
            .sql(&pair.standby, "SELECT count(*) FROM orders")
            .ok()
            .and_then(|count| count.parse().ok())
            .unwrap_or(0);
        if replayed >= rows {
            return;
        }
        assert!(Instant::now() < deadline, "the standby replayed {replayed} of {rows} rows in 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_runbooks_promotion_promotes_the_real_standby_with_every_replicated_row() {
    let (plan, clients) = seeded_estate().await;
    let pair = Pair::start(&format!("promote-{}", unique_suffix())).expect("a PostgreSQL primary and standby");
    back_replica_with(&clients, &plan.dr_region, &plan.database.replica_instance, &pair.standby)
        .await
        .expect("replica backed by the standby");

    pair.sql(&pair.primary, "CREATE TABLE orders (id bigserial PRIMARY KEY, placed_at timestamptz DEFAULT now())")
        .expect("table");
    pair.sql(&pair.primary, "INSERT INTO orders SELECT FROM generate_series(1, 500)").expect("rows");
    wait_for_replay(&pair, 500);
    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "t");
    assert!(pair.sql(&pair.standby, "INSERT INTO orders DEFAULT VALUES").is_err(), "a standby refuses writes");

    let execution = run_failover(&failover_input(&plan, &format!("pg-{}", unique_suffix()), None));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output).expect("report");

    assert_eq!(pair.sql(&pair.standby, "SELECT pg_is_in_recovery()").expect("recovery"), "f", "promoted");
    assert_eq!(pair.sql(&pair.standby, "SELECT count(*) FROM orders").expect("count"), "500");
    pair.sql(&pair.standby, "INSERT INTO orders DEFAULT VALUES").expect("the new primary takes writes");
    let promote = report.steps.iter().find(|s| s.step == "promote-replica").expect("promote step");
    assert!(promote.detail.contains("35 days of backups, window 01:00-01:30 UTC"), "{}", promote.detail);
}

#[tokio::test]
async fn a_promotion_without_a_retention_keeps_one_day_of_backups_as_rds_does() {
    let (plan, clients) = seeded_estate().await;
    clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&plan.database.replica_instance)
        .send()
        .await
        .expect("promoted");
    let promoted = describe_db_instance(&clients.dr.rds, &plan.database.replica_instance)
        .await
        .expect("describe")
        .expect("the promoted instance");
    assert_eq!(promoted.backup_retention_period(), Some(1));
}
