//! Operating a failover from a terminal (issue 16) on the local stack: the failover runbook
//! registered in the local Step Functions (`tests/sfn/server.mjs`, which runs what is started,
//! with the real Lambdas), started, followed, approved, rejected, listed, shown and stopped with
//! drctl as an operator runs it. An unplanned run whose replica lags past the RPO waits for a
//! human instead of failing; the decision needed is told on the notification topic with the
//! commands that answer it.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::notify::{Notice, NoticeAction, NoticeKind, Severity};
use dr_core::readiness::{Scope, check_plan};
use dr_core::run::GateVerdict;
use dr_core::runbook::report::RunReport;
use dr_core::store::{DecisionStatus, PlanStore, Question};
use dr_emulator::estate::publish_replica_lag;
use dr_tests::{
    iam_person, notice_events, notices, of_kind, plan_file, read_report, register_runbook, seeded_estate, subscribe,
    subscribe_events, workspace_binary,
};

pub(crate) fn drctl(args: &[&str]) -> Output {
    Command::new(workspace_binary("drctl")).args(args).output().expect("drctl runs")
}

/// drctl signed with another person's access key.
fn drctl_as(key: &str, secret: &str, args: &[&str]) -> Output {
    Command::new(workspace_binary("drctl"))
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .output()
        .expect("drctl runs")
}

/// `drctl <command> PLAN --bucket BUCKET --state-machine RUNBOOK <rest>`.
pub(crate) fn drctl_on(command: &[&str], plan: &str, bucket: &str, runbook: &str, rest: &[&str]) -> Output {
    let mut args = command.to_vec();
    args.extend([plan, "--bucket", bucket, "--state-machine", runbook]);
    args.extend(rest);
    drctl(&args)
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `drctl run watch` following `arn` in the background; its output once it ends.
pub(crate) fn watch(arn: &str) -> Child {
    Command::new(workspace_binary("drctl"))
        .args(["run", "watch", arn, "--poll-seconds", "0.3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("drctl run watch runs")
}

/// An estate whose replica lags twice the RPO, its plan published to its own store with the real
/// runbook registered and the plan armed; the plan file, the store and the runbook's ARN.
pub(crate) async fn lagging_estate() -> (Plan, AwsClients, PathBuf, PlanStore, String) {
    lagging_estate_of(|_| {}).await
}

/// [`lagging_estate`] of a plan edited first.
async fn lagging_estate_of(edit: impl FnOnce(&mut Plan)) -> (Plan, AwsClients, PathBuf, PlanStore, String) {
    let (mut plan, clients) = seeded_estate().await;
    edit(&mut plan);
    dr_tests::publish(&plan).await;
    let lag = 2.0 * plan.targets.rpo().as_secs_f64();
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, lag).await.expect("lag published");
    let bucket = format!("plans-{}", plan.name);
    let runbook = register_runbook(&clients, &plan, &bucket).await;
    let store = PlanStore::new(clients.dr.s3.clone(), &bucket);
    store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    (plan.clone(), clients, plan_file(&plan), store, runbook)
}

/// `drctl failover start` of an unplanned failover; the execution ARN and run id it prints.
pub(crate) fn start_failover(plan_file: &Path, store: &PlanStore, runbook: &str) -> (String, String) {
    let bucket = store.reference().bucket;
    let plan = plan_file.to_str().expect("utf-8 path");
    let rest = ["--unplanned", "--by", "alice@example.com", "--reason", "Paris unreachable since 03:10"];
    let out = drctl_on(&["failover", "start"], plan, &bucket, runbook, &rest);
    assert!(out.status.success(), "{out:?}");
    let started: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let arn = started["execution_arn"].as_str().expect("execution ARN").to_string();
    (arn, started["run_id"].as_str().expect("run id").to_string())
}

/// Waits until the run has asked for a decision at its RPO gate.
pub(crate) async fn wait_for_question(store: &PlanStore, plan: &Plan, run_id: &str) {
    wait_for_decision(store, plan, run_id, Question::RpoGate).await;
}

/// Waits until the run has asked `question`; the question, pending.
pub(crate) async fn wait_for_decision(
    store: &PlanStore,
    plan: &Plan,
    run_id: &str,
    question: Question,
) -> dr_core::store::Decision {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some((decision, _)) = store.read_decision(&plan.name, run_id, question).await.expect("decision read") {
            assert_eq!(decision.status, DecisionStatus::Pending);
            return decision;
        }
        assert!(Instant::now() < deadline, "run {run_id} never asked its {question:?} question");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn readiness_rows(readiness: &dr_core::readiness::Readiness) -> Vec<(String, String, Option<String>)> {
    readiness
        .rows
        .iter()
        .map(|row| (row.check.label().to_string(), row.resource.clone(), row.finding.map(|f| f.name().to_string())))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unplanned_run_over_the_rpo_waits_is_approved_with_drctl_and_completes() {
    let (plan, mut clients, file, store, runbook) = lagging_estate().await;
    let (sqs, queue) = subscribe(&mut clients).await;
    let (arn, run_id) = start_failover(&file, &store, &runbook);
    let watcher = watch(&arn);
    wait_for_question(&store, &plan, &run_id).await;

    // The approval is the caller's, as STS verifies them: no name is typed. A second answer, by
    // anyone, is refused by name.
    let approved = drctl(&["run", "approve", &arn, "--reason", "Paris down for 2 h; accepting the loss"]);
    assert!(approved.status.success(), "{approved:?}");
    let decision: serde_json::Value = serde_json::from_slice(&approved.stdout).expect("the decision");
    let me = dr_core::aws::identity::caller(&clients.dr.sts).await.expect("who the tests are");
    assert_eq!(decision["status"], "approved", "{decision}");
    assert_eq!(decision["decided_by"].as_str(), Some(me.arn.as_str()), "{decision}");
    assert_eq!(decision["decided_by_id"].as_str(), Some(me.user_id.as_str()), "{decision}");
    let (key, secret) = iam_person(&format!("bob-{}", plan.name)).await;
    let again = drctl_as(&key, &secret, &["run", "reject", &arn, "--reason", "too late"]);
    assert_eq!(again.status.code(), Some(2), "{again:?}");
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains("DecisionAlreadyTaken") && said.contains(&format!("already approved by {}", me.arn)),
        "{said}"
    );

    let watched = watcher.wait_with_output().expect("the watch ends");
    let shown = stdout(&watched);
    eprintln!("drctl run watch {arn}:\n{shown}");
    assert_eq!(watched.status.code(), Some(0), "{shown}\n{}", String::from_utf8_lossy(&watched.stderr));
    assert!(shown.contains("started  Decision: the RPO gate refused the run"), "{shown}");
    assert!(shown.contains(&format!("drctl run approve {arn}")), "{shown}");
    assert!(shown.contains("decided  DecisionMade -> ApplyDecision"), "{shown}");
    assert!(shown.contains("started  FlipDns (budget 30 min 00 s)"), "{shown}");
    assert!(shown.contains("SUCCEEDED"), "{shown}");
    assert!(shown.contains(&format!("Human approval recorded:** by {}", me.arn)), "{shown}");

    let report: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("report");
    let gate = report.gate.expect("gate");
    assert_eq!(gate.verdict, GateVerdict::Approved);
    let approval = gate.approval.expect("approval");
    assert_eq!(approval.by, me.arn);
    assert_eq!(approval.reason, "Paris down for 2 h; accepting the loss");
    assert_eq!(report.achieved.rpo_met, Some(false));

    let mut seen = Vec::new();
    let seen = notices(&sqs, &queue, &plan.name, &mut seen).await;
    let asked = of_kind(&seen, NoticeKind::DecisionNeeded);
    assert_eq!(asked.len(), 1, "told once, however often the run asks: {seen:#?}");
    assert!(asked[0].text.contains(&format!("Approve: drctl run approve {arn} --reason WHY")));
    assert!(asked[0].text.contains("RpoExceeded"), "{}", asked[0].text);
    eprintln!("what the phone shows:\n{}\n{}", asked[0].subject, asked[0].text);
    assert_eq!(of_kind(&seen, NoticeKind::RunFinished).len(), 1, "{seen:#?}");

    // The runs of the plan, and one shown.
    let table = drctl(&["run", "list", &plan.name, "--state-machine", &runbook]);
    assert!(table.status.success(), "{table:?}");
    eprintln!("{}", stdout(&table));
    let listed = drctl(&["run", "list", &plan.name, "--state-machine", &runbook, "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).expect("JSON rows");
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!((rows[0]["name"].as_str(), rows[0]["status"].as_str()), (Some(run_id.as_str()), Some("SUCCEEDED")));
    assert_eq!(rows[0]["data_loss"].as_str(), Some("data loss 7200 s (target 3600 s, MISSED)"), "{rows:#?}");
    let shown = drctl(&["run", "show", &arn]);
    assert!(shown.status.success(), "{shown:?}");
    assert!(stdout(&shown).starts_with(&format!("run {run_id} SUCCEEDED")), "{}", stdout(&shown));
    assert!(stdout(&shown).contains("# Failover report"), "{}", stdout(&shown));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_run_stops_with_a_named_error_having_changed_nothing_and_a_waiting_one_can_be_stopped() {
    let (plan, mut clients, file, store, runbook) = lagging_estate().await;
    let (event_sqs, event_url) = subscribe_events(&mut clients, &plan.name).await;
    let before = readiness_rows(&check_plan(&clients, &plan, Scope::Full).await);
    let (arn, run_id) = start_failover(&file, &store, &runbook);
    let watcher = watch(&arn);
    wait_for_question(&store, &plan, &run_id).await;
    let rejected = drctl(&["run", "reject", &arn, "--reason", "the lag is a bad metric"]);
    assert!(rejected.status.success(), "{rejected:?}");

    let watched = watcher.wait_with_output().expect("the watch ends");
    let shown = stdout(&watched);
    eprintln!("drctl run watch {arn}:\n{shown}");
    assert_eq!(watched.status.code(), Some(1), "a failed run exits 1: {shown}");
    assert!(shown.contains("FAILED (DecisionRejected)"), "{shown}");
    let me = dr_core::aws::identity::caller(&clients.dr.sts).await.expect("who the tests are");
    assert!(shown.contains(&format!("rejected by {}: the lag is a bad metric", me.arn)), "{shown}");
    let tasks: Vec<&str> = shown
        .lines()
        .filter_map(|line| line.split("started  ").nth(1))
        .map(|rest| rest.split([' ', ':']).next().unwrap_or_default())
        .collect();
    assert_eq!(tasks, ["Preflight", "Decision", "RefusalReport"], "no step past the decision ran: {shown}");
    let failure: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("report");
    assert_eq!(failure.head.error.as_ref().map(|e| e.error.as_str()), Some("DecisionRejected"));
    // The one write is the question, in the plan store: nothing in the estate was called to change.
    let writes: Vec<(String, String)> = failure
        .steps
        .iter()
        .flat_map(|step| step.calls.iter().filter(|c| c.is_mutating()))
        .map(|c| (c.service.clone(), c.operation.clone()))
        .collect();
    assert!(writes.iter().all(|(service, operation)| service == "S3" && operation == "PutObject"), "{writes:?}");
    assert!(shown.contains("RPO gate: **refused**: RpoExceeded: replica"), "{shown}");
    assert_eq!(readiness_rows(&check_plan(&clients, &plan, Scope::Full).await), before, "nothing changed");

    // The on-call tools see one incident for the run: the decision asked (critical), then the
    // run failed (critical), under the run's one deduplication key.
    let events = notice_events(&event_sqs, &event_url).await;
    let of_run: Vec<&Notice> = events.iter().filter(|n| n.run.as_deref() == Some(run_id.as_str())).collect();
    let kinds: Vec<(NoticeKind, Severity, NoticeAction)> =
        of_run.iter().map(|n| (n.kind, n.severity, n.event_action)).collect();
    assert!(kinds.contains(&(NoticeKind::DecisionNeeded, Severity::Critical, NoticeAction::Trigger)), "{kinds:?}");
    assert!(kinds.contains(&(NoticeKind::RunFailed, Severity::Critical, NoticeAction::Trigger)), "{kinds:?}");
    let keys: std::collections::BTreeSet<&str> = of_run.iter().map(|n| n.dedup_key.as_str()).collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), [format!("dr-orchestrator.{}.run.{run_id}", plan.name)]);

    // The rejected run changed nothing: it gave the plan back armed, and said so in its report; a
    // second run, left waiting, is stopped by hand.
    let state = store.read_state(&plan.name).await.expect("state").state;
    assert_eq!(state.status, dr_core::store::PlanStatus::Armed, "{state:?}");
    assert!(state.reason.contains("given back"), "{state:?}");
    assert!(failure.plan_state.as_deref().is_some_and(|said| said.contains("given back")), "{:?}", failure.plan_state);
    let (second, second_id) = start_failover(&file, &store, &runbook);
    wait_for_question(&store, &plan, &second_id).await;
    let stopped = drctl(&["run", "stop", &second, "--by", "alice@example.com", "--reason", "Paris is back"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(stdout(&stopped).contains("ABORTED"), "{}", stdout(&stopped));
    let shown = drctl(&["run", "show", &second]);
    assert_eq!(shown.status.code(), Some(1), "{shown:?}");
    assert!(stdout(&shown).contains("error StoppedByOperator: alice@example.com: Paris is back"), "{}", stdout(&shown));
    let late = drctl(&["run", "approve", &second, "--reason", "too late"]);
    assert_eq!(late.status.code(), Some(2), "a stopped run takes no decision: {late:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_game_day_dry_run_starts_from_drctl_and_is_followed_to_its_report_and_a_failback_needs_ireland_primary() {
    let (plan, clients) = seeded_estate().await;
    let bucket = format!("plans-{}", plan.name);
    let runbook = register_runbook(&clients, &plan, &bucket).await;
    let file = plan_file(&plan);
    let file = file.to_str().expect("utf-8");
    let refused =
        drctl_on(&["drill", "start"], file, &bucket, &runbook, &["--live", "--by", "alice", "--reason", "game day"]);
    assert_eq!(refused.status.code(), Some(2), "a live drill of a production plan needs --confirm: {refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("DrillNotConfirmed"), "{refused:?}");
    // Paris is primary: there is nothing to fail back, and nothing is taken or started.
    let failback =
        drctl_on(&["failback", "start"], file, &bucket, &runbook, &["--by", "alice", "--reason", "Paris is back"]);
    assert_eq!(failback.status.code(), Some(2), "{failback:?}");
    assert!(String::from_utf8_lossy(&failback.stderr).contains("nothing to fail back"), "{failback:?}");
    let started = drctl_on(
        &["drill", "start"],
        file,
        &bucket,
        &runbook,
        &["--dry-run", "--by", "alice", "--reason", "quarterly game day"],
    );
    assert!(started.status.success(), "{started:?}");
    let outcome: serde_json::Value = serde_json::from_slice(&started.stdout).expect("JSON");
    let arn = outcome["execution_arn"].as_str().expect("execution ARN");
    let watched = watch(arn).wait_with_output().expect("the watch ends");
    let shown = stdout(&watched);
    assert_eq!(watched.status.code(), Some(0), "{shown}");
    assert!(shown.contains("(DRY RUN)") && shown.contains("nothing was changed"), "{shown}");
}

/// A plan that requires two people: whoever started the run may not approve it
/// (`ApproverIsStarter`, nothing written); a second person's approval, verified by STS and proven
/// by their own answer record, lets the run go on, and the report names them.
#[tokio::test(flavor = "multi_thread")]
async fn a_two_person_plan_refuses_the_starters_approval_and_goes_on_with_a_second_persons() {
    let (plan, clients, file, store, runbook) = lagging_estate_of(|plan| plan.two_person_approval = true).await;
    let bucket = store.reference().bucket;
    let (alice_key, alice_secret) = iam_person(&format!("alice-{}", plan.name)).await;
    let (bob_key, bob_secret) = iam_person(&format!("bob-{}", plan.name)).await;

    let started = drctl_as(
        &alice_key,
        &alice_secret,
        &[
            "failover",
            "start",
            file.to_str().expect("utf-8"),
            "--bucket",
            &bucket,
            "--state-machine",
            &runbook,
            "--unplanned",
            "--by",
            "alice",
            "--reason",
            "Paris unreachable",
        ],
    );
    assert!(started.status.success(), "{started:?}");
    let started: serde_json::Value = serde_json::from_slice(&started.stdout).expect("JSON");
    let (arn, run_id) = (started["execution_arn"].as_str().expect("arn"), started["run_id"].as_str().expect("id"));
    let watcher = watch(arn);
    wait_for_question(&store, &plan, run_id).await;

    let own = drctl_as(&alice_key, &alice_secret, &["run", "approve", arn, "--reason", "I started it, I approve it"]);
    assert_eq!(own.status.code(), Some(2), "{own:?}");
    assert!(String::from_utf8_lossy(&own.stderr).contains("ApproverIsStarter"), "{own:?}");
    let (still, _) = store.read_decision(&plan.name, run_id, Question::RpoGate).await.expect("read").expect("asked");
    assert_eq!(still.status, DecisionStatus::Pending, "the starter's approval wrote nothing");

    let second = drctl_as(&bob_key, &bob_secret, &["run", "approve", arn, "--reason", "second pair of eyes: go"]);
    assert!(second.status.success(), "{second:?}");
    let decision: serde_json::Value = serde_json::from_slice(&second.stdout).expect("the decision");
    let bob_arn = decision["decided_by"].as_str().expect("who").to_string();
    assert!(bob_arn.ends_with(&format!(":user/bob-{}", plan.name)), "{decision}");

    let watched = watcher.wait_with_output().expect("the watch ends");
    assert_eq!(watched.status.code(), Some(0), "{}", stdout(&watched));
    let report: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, run_id, "report.json").await).expect("report");
    let approval = report.gate.and_then(|gate| gate.approval).expect("the approval recorded");
    assert_eq!(approval.by, bob_arn);
}
