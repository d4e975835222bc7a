//! Evacuating a region (issue 33, in part): `drctl evacuate eu-west-3` over an inventory of five
//! plans (five stacks: each its own plan store and failover state machine in the local Step
//! Functions, with the real Lambdas), in one account.
//!
//! - Its dry run runs each plan's dry run: every one completes, nothing is taken or changed.
//! - Live, two at a time: Tier 1 first; a plan already failing over (waiting at its RPO gate) is
//!   joined, never started twice; a plan whose promotion fails ends FAILED and the others
//!   complete; the report gives each plan's outcome, RTO and data loss against its targets.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::manual::evacuation::{EvacuationReport, Part};
use dr_core::notify::{NoticeKind, Severity};
use dr_core::run::RunMode;
use dr_core::runbook::report::RunReport;
use dr_core::store::{PlanStatus, PlanStore};
use dr_emulator::control::promotion_fails;
use dr_emulator::estate::publish_replica_lag;

use crate::operator::{drctl, start_failover, wait_for_question};
use dr_tests::{
    notices, of_kind, plan_file, read_report, register_runbook, seeded_estate_with, subscribe, unique_suffix,
    workspace_binary,
};

/// One stack of the inventory: its plan, clients, store and failover state machine.
struct Stack {
    plan: Plan,
    clients: AwsClients,
    store: PlanStore,
    runbook: String,
}

async fn stack(tier: u8) -> Stack {
    let (plan, clients) = seeded_estate_with(|plan| plan.tier = tier).await;
    dr_tests::publish(&plan).await;
    let bucket = format!("plans-{}", plan.name);
    let runbook = register_runbook(&clients, &plan, &bucket).await;
    let store = PlanStore::new(clients.dr.s3.clone(), &bucket);
    store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    Stack { plan, clients, store, runbook }
}

/// The inventory file of `stacks`.
fn inventory(stacks: &[&Stack]) -> PathBuf {
    let mut text = String::new();
    for stack in stacks {
        text.push_str(&format!(
            "[[plans]]\nplan = {:?}\nbucket = {:?}\nstate_machine = {:?}\n\n",
            plan_file(&stack.plan).display().to_string(),
            stack.store.reference().bucket,
            stack.runbook
        ));
    }
    let path = std::env::temp_dir().join(format!("inventory-{}.toml", unique_suffix()));
    std::fs::write(&path, text).expect("inventory written");
    path
}

const WHO: [&str; 4] = ["--by", "alice@example.com", "--reason", "Paris region outage, AWS Health event 1234"];

fn report_of(stdout: &[u8]) -> EvacuationReport {
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(stdout)))
}

async fn status(stack: &Stack) -> PlanStatus {
    stack.store.read_state(&stack.plan.name).await.expect("state").state.status
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evacuation_moves_every_plan_in_tier_order_joins_one_under_way_and_survives_one_failing() {
    // Tier 1: a and the one already failing over; tier 2: b, c; tier 3: the one that fails.
    let (a, joined, b, c, failing) = (stack(1).await, stack(1).await, stack(2).await, stack(2).await, stack(3).await);
    let stacks = [&a, &joined, &b, &c, &failing];
    let file = inventory(&stacks);
    let path = file.to_str().expect("utf-8");

    // The dry run: each plan's dry run, nothing taken.
    let dry = drctl(
        &[&["evacuate", "eu-west-3", "--inventory", path, "--dry-run", "--poll-seconds", "0.3"], &WHO[..]].concat(),
    );
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    let rehearsed = report_of(&dry.stdout);
    assert_eq!(rehearsed.mode, RunMode::DryRun);
    assert_eq!(rehearsed.plans.len(), 5, "{rehearsed:#?}");
    for plan in &rehearsed.plans {
        let stack = stacks.iter().find(|s| s.plan.name == plan.plan).expect("a plan of the inventory");
        assert_eq!((plan.part, plan.status.as_deref()), (Part::Started, Some("SUCCEEDED")), "{plan:#?}");
        let run_id = plan.run_id.as_deref().expect("a run");
        let report: RunReport =
            serde_json::from_slice(&read_report(&stack.clients, &stack.plan, run_id, "report.json").await)
                .expect("the dry run's report");
        assert_eq!(report.mutating_calls, 0, "{}: {report:#?}", stack.plan.name);
        assert_eq!(status(stack).await, PlanStatus::Armed, "a dry run takes nothing");
    }

    // One plan already failing over: waiting at its RPO gate for a human.
    let lag = 2.0 * joined.plan.targets.rpo().as_secs_f64();
    publish_replica_lag(&joined.clients.dr, &joined.plan.databases[0].replica_instance, lag).await.expect("lag");
    let (joined_arn, joined_run) = start_failover(&plan_file(&joined.plan), &joined.store, &joined.runbook);
    wait_for_question(&joined.store, &joined.plan, &joined_run).await;
    // One plan whose promotion RDS accepts and cannot finish.
    let replica = &failing.plan.databases[0].replica_instance;
    promotion_fails(&failing.clients, &failing.plan.dr_region, replica, "incompatible-parameters").await.expect("set");

    let markdown = std::env::temp_dir().join(format!("evacuation-{}.md", unique_suffix()));
    // The on-call's topic, heard through a queue.
    let mut on_call = a.clients.clone();
    let (sqs, queue) = subscribe(&mut on_call).await;
    let topic = on_call.notify_topic.clone().expect("the topic");
    let mut child = Command::new(workspace_binary("drctl"))
        .args(["evacuate", "eu-west-3", "--inventory", path, "--concurrency", "2", "--poll-seconds", "0.3"])
        .args(["--markdown", markdown.to_str().expect("utf-8"), "--topic", &topic])
        .args(WHO)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drctl evacuate runs");
    // Once the evacuation has joined the run under way, the human answers its question.
    let mut told = Vec::new();
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    for line in lines.by_ref() {
        let line = line.expect("a line");
        told.push(line.clone());
        if line.starts_with("joined") && line.contains(&joined.plan.name) {
            let approved = drctl(&["run", "approve", &joined_arn, "--reason", "evacuating: the lag is accepted"]);
            assert!(approved.status.success(), "{approved:?}");
            break;
        }
    }
    told.extend(lines.map(|line| line.expect("a line")));
    let out = child.wait_with_output().expect("the evacuation ends");
    eprintln!("what the operator saw:\n{}", told.join("\n"));
    assert_eq!(out.status.code(), Some(1), "one plan failed: {}", String::from_utf8_lossy(&out.stdout));
    let report = report_of(&out.stdout);

    let names: Vec<&str> = report.plans.iter().map(|p| p.plan.as_str()).collect();
    let mut by_tier: Vec<(u8, &str)> = stacks.iter().map(|s| (s.plan.tier, s.plan.name.as_str())).collect();
    by_tier.sort_unstable();
    assert_eq!(names, by_tier.iter().map(|(_, name)| *name).collect::<Vec<_>>(), "by tier, then name");
    let outcome = |stack: &Stack| report.plans.iter().find(|p| p.plan == stack.plan.name).expect("in the report");
    // Joined, not started twice: its own run, and the only execution of its state machine.
    let joined_outcome = outcome(&joined);
    assert_eq!(joined_outcome.part, Part::Joined, "{joined_outcome:#?}");
    assert_eq!(joined_outcome.run_id.as_deref(), Some(joined_run.as_str()));
    let executions = joined.clients.dr.sfn.list_executions().state_machine_arn(&joined.runbook).send().await;
    let live: Vec<_> = executions
        .expect("executions listed")
        .executions()
        .iter()
        .filter(|e| !e.name().contains("dryrun"))
        .map(|e| e.name().to_string())
        .collect();
    assert_eq!(live, std::slice::from_ref(&joined_run), "one live execution of the joined plan");
    // The failing plan failed by name; the others moved, each within its targets.
    let failed = outcome(&failing);
    assert_eq!(
        (failed.status.as_deref(), failed.error.as_deref()),
        (Some("FAILED"), Some("ReplicaFailed")),
        "{failed:#?}"
    );
    for stack in [&a, &joined, &b, &c] {
        let moved = outcome(stack);
        assert_eq!(moved.status.as_deref(), Some("SUCCEEDED"), "{moved:#?}");
        assert_eq!((moved.rto_met, moved.rpo_met.is_some()), (Some(true), true), "{moved:#?}");
        assert_eq!(status(stack).await, PlanStatus::FailedOver, "{}", stack.plan.name);
    }
    assert_eq!((report.succeeded, report.failed), (4, 1), "{report:#?}");
    // Tier order: no tier-2 plan before a tier-1 one, nor the tier-3 one before a tier-2 one.
    let started = |stack: &Stack| outcome(stack).started_at.expect("taken");
    let first_tier_1 = started(&a).min(started(&joined));
    assert!(started(&b) >= first_tier_1 && started(&c) >= first_tier_1, "{report:#?}");
    assert!(started(&failing) >= started(&b).max(started(&c)), "{report:#?}");
    let written = std::fs::read_to_string(&markdown).expect("the Markdown report");
    assert!(stacks.iter().all(|s| written.contains(&s.plan.name)), "{written}");
    // One notice for the evacuation: critical (a plan failed), the report as its text.
    let seen = notices(&sqs, &queue, &report.evacuation_name(), &mut Vec::new()).await;
    let finished = of_kind(&seen, NoticeKind::EvacuationFinished);
    assert_eq!(finished.len(), 1, "{seen:#?}");
    assert_eq!(finished[0].severity, Severity::Critical, "{:#?}", finished[0]);
    assert!(finished[0].subject.contains("4 of 5 plans succeeded, 1 failed"), "{:#?}", finished[0]);
    assert!(stacks.iter().all(|s| finished[0].text.contains(&s.plan.name)), "{:#?}", finished[0]);
    eprintln!("{written}");
}
