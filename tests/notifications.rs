//! Notifications (issue 16, part 3) on the emulator: the deployment's topic (the one the local
//! Lambdas publish to, `NOTIFY_TOPIC_ARN` from template.yaml) delivers to an SQS queue the test
//! subscribes, as a user's subscription would. A confirmed outage tells that the failover
//! started, a second alarm on the held plan that a human decides, the run's end its RTO and data
//! loss; a run stopped by the RPO gate is told as failed with its error; the restore test tells
//! its result; the RPO check tells a breach once, when the pair leaves the RPO, not every run
//! while it lasts.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dr_core::error::parse_input;
use dr_core::notify::{Notice, NoticeAction, NoticeKind, Severity};
use dr_core::rpo::check::{DEFAULT_NAMESPACE, run_check};
use dr_core::trigger::{Decision, handle_alarm_event};
use dr_emulator::estate::publish_replica_lag;
use dr_emulator::executions::execution_input;
use dr_emulator::outage::{Outage, alarm_state_change_event, simulate_outage};
use dr_tests::{
    failover_input, notice_events, notices, of_kind, restore_input, run_failover, run_restore_test, seeded_estate,
    subscribe, subscribe_events, trigger_context, unique_suffix,
};

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_is_told_when_it_starts_when_a_human_must_decide_and_when_it_ends() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let (event_sqs, event_url) = subscribe_events(&mut clients, &plan.name).await;
    let ctx = trigger_context(&plan, &clients).await;
    ctx.store.set_armed(&plan.name, true, "test", "armed", false).await.expect("armed");
    let event = simulate_outage(&clients, &plan, Outage::Sustained).await.expect("outage");
    let outcome = handle_alarm_event(&ctx, parse_input(event.clone(), "alarm").expect("event")).await.expect("handled");
    assert_eq!(outcome.decision, Decision::Started, "{outcome:?}");
    // A second incident while the plan is held: not failed over, a human decides.
    let alarm = event["detail"]["alarmName"].as_str().expect("alarm");
    let later_at = dr_core::time::now();
    let later = alarm_state_change_event(alarm, "hc", "ALARM", "OK", later_at, "Threshold Crossed");
    let second = handle_alarm_event(&ctx, parse_input(later, "alarm").expect("event")).await.expect("handled");
    assert_eq!(second.decision, Decision::NotArmed);

    let execution_arn = outcome.execution_arn.expect("started");
    let input: serde_json::Value =
        serde_json::from_str(&execution_input(&clients, &execution_arn).await.expect("input")).expect("JSON");
    assert_eq!(run_failover(&input).status, "SUCCEEDED");

    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    let started = of_kind(&seen, NoticeKind::RunStarted);
    assert_eq!(started.len(), 1, "{seen:#?}");
    assert!(started[0].text.contains(&execution_arn), "{}", started[0].text);
    let decided = of_kind(&seen, NoticeKind::TriggerDecision);
    assert_eq!(decided.len(), 1, "{seen:#?}");
    assert!(decided[0].subject.contains("NOT failed over") && decided[0].text.contains("drctl failover start"));
    let finished = of_kind(&seen, NoticeKind::RunFinished);
    assert_eq!(finished.len(), 1, "{seen:#?}");
    let text = &finished[0].text;
    assert!(finished[0].subject.ends_with("unplanned failover SUCCEEDED"), "{}", finished[0].subject);
    assert!(
        text.contains("RTO ") && text.contains("(target 14400 s, met)") && text.contains("Report: s3://"),
        "{text}"
    );
    assert_eq!(finished[0].facts["rto_met"], serde_json::json!(true));
    eprintln!("what the phone shows:\n{}\n{text}", finished[0].subject);

    // For the on-call tools: one incident per run, opened critical by the automatic start and
    // resolved by the run's report; a decision of no run is the plan's trigger incident.
    let run_id = execution_arn.rsplit(':').next().expect("the run id");
    let run_key = format!("dr-orchestrator.{}.run.{run_id}", plan.name);
    assert_eq!(
        (started[0].dedup_key.as_str(), started[0].severity, started[0].event_action, started[0].priority.as_str()),
        (run_key.as_str(), Severity::Critical, NoticeAction::Trigger, "P1")
    );
    assert_eq!(
        (finished[0].dedup_key.as_str(), finished[0].severity, finished[0].event_action),
        (run_key.as_str(), Severity::Info, NoticeAction::Resolve)
    );
    // The second alarm is another incident, which nothing fails over: a human decides, now.
    let later_key = format!("dr-orchestrator.{}.run.{}", plan.name, dr_core::trigger::incident_run_id(&plan, later_at));
    assert_eq!(
        (decided[0].dedup_key.clone(), decided[0].severity, decided[0].event_action),
        (later_key, Severity::Critical, NoticeAction::Trigger)
    );
    // The same notices, as the events the template's PagerDuty and Opsgenie rules read.
    let key = |n: &Notice| (n.dedup_key.clone(), n.subject.clone());
    let mut events = notice_events(&event_sqs, &event_url).await;
    let mut told = seen.clone();
    events.sort_by_key(key);
    told.sort_by_key(key);
    assert_eq!(events, told);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_run_a_restore_test_and_an_rpo_breach_are_told_once() {
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;

    // The RPO check's first run sets the baseline: the database pair within the RPO.
    let check = || run_check(&clients, std::slice::from_ref(&plan), DEFAULT_NAMESPACE);
    check().await.expect("RPO check");

    // The replica falls two hours behind. The RPO gate refuses an unplanned run: told as failed,
    // with the error.
    publish_replica_lag(&clients.dr, &plan.databases[0].replica_instance, 7200.0).await.expect("lag");
    let refused = run_failover(&failover_input(&plan, &format!("refused-{}", unique_suffix())).await);
    assert_eq!(refused.status, "FAILED");

    // The RPO check tells the breach on its first run over the RPO, not on the next.
    check().await.expect("RPO check");
    check().await.expect("RPO check");

    // The restore test tells its result.
    assert_eq!(run_restore_test(&restore_input(&plan).await).status, "SUCCEEDED");

    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut seen = Vec::new();
    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    let failed = of_kind(&seen, NoticeKind::RunFailed);
    assert_eq!(failed.len(), 1, "{seen:#?}");
    assert!(failed[0].text.contains("Stopped by RpoExceeded"), "{}", failed[0].text);
    assert_eq!(failed[0].facts["error"], serde_json::json!("RpoExceeded"));
    let breaches = of_kind(&seen, NoticeKind::RpoBreach);
    assert_eq!(breaches.len(), 1, "once, while it lasts: {seen:#?}");
    assert!(breaches[0].subject.ends_with("RPO BREACHED"));
    let restore: Vec<&Notice> =
        of_kind(&seen, NoticeKind::RunFinished).into_iter().filter(|n| n.subject.contains("restore test")).collect();
    assert_eq!(restore.len(), 1, "{seen:#?}");
    assert!(restore[0].text.contains("Temporary instance deleted"), "{}", restore[0].text);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scheduled_readiness_check_tells_a_drifted_standby_once_and_its_recovery() {
    use dr_core::aws::lookup::describe_standby_instances;
    use dr_core::readiness::scheduled::{READINESS_NAMESPACE, run_scheduled_check};
    let (plan, mut clients) = seeded_estate().await;
    let (sqs, url) = subscribe(&mut clients).await;
    let ctx = trigger_context(&plan, &clients).await;
    let mut seen = Vec::new();

    let first = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("checked");
    assert_eq!((first.ready, first.notified), (Some(true), false), "{first:?}");
    // Someone starts a standby instance by hand: the standby drifted.
    let instances = describe_standby_instances(&clients.dr.ec2, &plan).await.expect("instances");
    clients.dr.ec2.start_instances().instance_ids(&instances[0].id).send().await.expect("StartInstances");
    let drifted = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("checked");
    assert_eq!((drifted.ready, drifted.notified), (Some(false), true), "{drifted:?}");
    assert_eq!(drifted.findings, ["StandbyInstanceRunning"]);
    let again = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("checked");
    assert!(!again.notified, "the same findings are not told twice (the alarm pages while it lasts)");
    clients.dr.ec2.stop_instances().instance_ids(&instances[0].id).send().await.expect("StopInstances");
    let recovered = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("checked");
    assert_eq!((recovered.ready, recovered.notified), (Some(true), true), "{recovered:?}");

    let seen = notices(&sqs, &url, &plan.name, &mut seen).await;
    let told = of_kind(&seen, NoticeKind::ReadinessDrift);
    assert_eq!(told.len(), 2, "{seen:#?}");
    assert!(told[0].subject.ends_with("standby NOT READY (1 finding)"), "{}", told[0].subject);
    assert!(told[0].text.contains("StandbyInstanceRunning") && told[0].text.contains(&instances[0].id));
    assert_eq!(told[0].facts["findings"], serde_json::json!(["StandbyInstanceRunning"]));
    assert!(told[1].subject.ends_with("standby READY again"), "{}", told[1].subject);
    // One incident for the drift, closed by the recovery.
    assert_eq!((told[0].severity, told[0].event_action), (Severity::Warning, NoticeAction::Trigger));
    assert_eq!((told[1].severity, told[1].event_action), (Severity::Info, NoticeAction::Resolve));
    assert_eq!(told[0].dedup_key, told[1].dedup_key);
    eprintln!("what the phone shows:\n{}\n{}", told[0].subject, told[0].text);

    // The metric the template's NotReadyAlarm watches, and the finding by name.
    let listed = clients
        .home
        .cloudwatch
        .list_metrics()
        .namespace(READINESS_NAMESPACE)
        .dimensions(aws_sdk_cloudwatch::types::DimensionFilter::builder().name("Plan").value(&plan.name).build())
        .send()
        .await
        .expect("ListMetrics");
    let mut names: Vec<String> = listed
        .metrics()
        .iter()
        .map(|m| {
            let detail =
                m.dimensions().iter().find(|d| matches!(d.name(), Some("Finding" | "Status"))).and_then(|d| d.value());
            format!("{}{}", m.metric_name().unwrap_or_default(), detail.map(|f| format!(":{f}")).unwrap_or_default())
        })
        .collect();
    names.sort();
    // moto lists a metric once per datapoint; ListMetrics on AWS, once.
    names.dedup();
    // The plan's state for the dashboard (never armed here: disarmed).
    assert_eq!(names, ["Finding:StandbyInstanceRunning", "NotReady", "PlanStatus:disarmed"]);

    // A plan a run holds is not checked: the run is changing it. Its state is still published.
    ctx.store.take_for_run(&plan, dr_core::plan::Direction::ToDr, "held-run", "test", "a drill").await.expect("taken");
    let held = run_scheduled_check(&clients, &ctx.store, &plan).await.expect("not checked");
    assert_eq!((held.outcome.as_str(), held.ready), ("not checked: held by run held-run", None));
    let statuses = clients
        .home
        .cloudwatch
        .list_metrics()
        .namespace(READINESS_NAMESPACE)
        .metric_name("PlanStatus")
        .dimensions(aws_sdk_cloudwatch::types::DimensionFilter::builder().name("Plan").value(&plan.name).build())
        .send()
        .await
        .expect("ListMetrics");
    let seen: Vec<&str> = statuses
        .metrics()
        .iter()
        .filter_map(|m| m.dimensions().iter().find(|d| d.name() == Some("Status")).and_then(|d| d.value()))
        .collect();
    assert!(seen.contains(&"failing-over"), "{seen:?}");

    // The history of the changes, for the posture page: the first check, the drift, the recovery.
    let history = clients
        .home
        .s3
        .list_objects_v2()
        .bucket(&plan.reports.bucket)
        .prefix(dr_core::readiness::scheduled::history_prefix(&plan.name))
        .send()
        .await
        .expect("ListObjectsV2");
    assert_eq!(history.contents().len(), 3, "{history:?}");
}
