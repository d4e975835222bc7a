// Test support: a failed setup step is a failed test, so it panics with a message.
#![allow(clippy::expect_used)]

//! Shared setup of the workspace tests: emulator clients and isolated copies of the example plan.
//!
//! Tests run against the moto server that `scripts/test` starts (AWS_ENDPOINT_URL). Each test
//! works on its own copy of the example plan whose every resource name carries a unique suffix,
//! so tests run in parallel without resetting the emulator.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::estate::{SeedOptions, seed};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn example_plan_path() -> PathBuf {
    repo_root().join("plans/paris-ireland.toml")
}

/// A short suffix unique to this process and call: lower-case letters and digits.
pub fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}{:x}{}", std::process::id() % 10_000, nanos % 0x10_0000, n)
}

/// The example plan with every resource renamed so that no other test touches it.
pub fn isolated_plan() -> Plan {
    let mut plan = Plan::load(&example_plan_path()).expect("example plan is valid");
    let s = unique_suffix();
    plan.name = format!("t{s}");
    plan.database.primary_instance = format!("db-paris-{s}");
    plan.database.replica_instance = format!("db-ireland-{s}");
    if let Some(tag) = plan.standby_instances.tag.as_mut() {
        tag.value = format!("standby-{s}");
    }
    plan.auto_scaling.group = format!("web-ireland-{s}");
    plan.dns.hosted_zone = format!("t{s}.example.com.");
    plan.dns.record = format!("app.t{s}.example.com.");
    plan.dns.health_check = format!("paris-primary-{s}");
    for (index, pair) in plan.s3_replication.iter_mut().enumerate() {
        pair.source_bucket = format!("assets{index}-paris-{s}");
        pair.replica_bucket = format!("assets{index}-ireland-{s}");
    }
    plan.reports.bucket = format!("reports-{s}");
    plan.validate().expect("isolated plan stays valid");
    plan
}

/// Clients for the plan's regions, configured from the environment like drctl and the Lambdas.
pub async fn emulator_clients(plan: &Plan) -> AwsClients {
    assert!(
        std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL is not set: run the suite with scripts/test, which starts the emulator"
    );
    AwsClients::for_plan(plan).await
}

/// An isolated plan, its clients, and its estate seeded in standby.
pub async fn seeded_estate() -> (Plan, AwsClients) {
    let plan = isolated_plan();
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding the emulated estate");
    (plan, clients)
}
