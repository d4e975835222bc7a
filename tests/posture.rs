//! The posture page (issue 35) from what a stack really stores, on the local stack: an estate's
//! readiness checked on its schedule, an unplanned failover over the RPO that waits for a human
//! and is rejected (`drctl run reject`: a failed failover, a decision with a verified identity),
//! a live drill once the replica caught up (a game day's planned move), and a restore test. Then
//! `drctl report posture` reads the report bucket and the plan store and writes the page and its
//! JSON; Chromium shows it, headless, and the printed page reads what an auditor asks. The
//! screenshot in docs/images/posture.png is this test's (target/posture/posture.png).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use dr_core::posture::{EventKind, Posture};
use dr_core::readiness::scheduled::run_scheduled_check;
use dr_core::rpo::check::{DEFAULT_NAMESPACE, run_check};
use dr_core::run::RunStatus;
use dr_tests::chromium::render_page;
use dr_tests::{back_with_real_pair, repo_root, restore_input, run_restore_test};

use crate::operator::{drctl, drctl_on, lagging_estate, start_failover, stdout, wait_for_question, watch};

#[tokio::test(flavor = "multi_thread")]
async fn the_posture_page_after_a_refused_failover_a_drill_and_a_restore_test_reads_as_an_auditor_needs() {
    let (plan, clients, file, store, runbook) = lagging_estate().await;
    let bucket = store.reference().bucket;
    let plan_path = file.to_str().expect("utf-8");
    run_scheduled_check(&clients, &store, &plan).await.expect("readiness checked");

    // Paris "down", the replica two RPOs behind: the run waits at its gate; a human rejects it.
    let (failover, failover_id) = start_failover(&file, &store, &runbook);
    let watcher = watch(&failover);
    wait_for_question(&store, &plan, &failover_id).await;
    let rejected = drctl(&["run", "reject", &failover, "--reason", "the lag is real: wait for Paris"]);
    assert!(rejected.status.success(), "{rejected:?}");
    let watched = watcher.wait_with_output().expect("the watch ends");
    assert_eq!(watched.status.code(), Some(1), "{}", stdout(&watched));

    // The replica caught up: the database pair is real PostgreSQL from here (a planned move
    // fences the writer and proves the barrier over SQL), and a game day's live drill moves to
    // Ireland with nothing lost.
    let _pair = back_with_real_pair(&clients, &plan, "posture").await;
    // The scheduled RPO check writes the database heartbeat in Paris; the gate finds it replayed
    // in Ireland (the heartbeat, not ReplicaLag, is its reading where the plan has credentials).
    run_check(&clients, std::slice::from_ref(&plan), DEFAULT_NAMESPACE).await.expect("RPO check");
    let rest = ["--live", "--confirm", &plan.name, "--by", "alice", "--reason", "quarterly drill"];
    let drill = drctl_on(&["drill", "start"], plan_path, &bucket, &runbook, &rest);
    assert!(drill.status.success(), "{drill:?}");
    let drill: serde_json::Value = serde_json::from_slice(&drill.stdout).expect("JSON");
    let drill_arn = drill["execution_arn"].as_str().expect("execution ARN");
    let watched = watch(drill_arn).wait_with_output().expect("the watch ends");
    assert_eq!(watched.status.code(), Some(0), "{}", stdout(&watched));

    // The monthly restore test.
    assert_eq!(run_restore_test(&restore_input(&plan).await).status, "SUCCEEDED");

    let out = repo_root().join("target/posture");
    let written = drctl(&[
        "report",
        "posture",
        plan_path,
        "--bucket",
        &bucket,
        "--since",
        "12mo",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(written.status.success(), "{written:?}");
    let html = out.join("posture.html");
    assert_eq!(stdout(&written).lines().next(), html.to_str());

    let posture: Posture =
        serde_json::from_slice(&std::fs::read(out.join("posture.json")).expect("posture.json")).expect("a posture");
    let [page] = posture.plans.as_slice() else { panic!("one plan: {posture:#?}") };
    let kinds: Vec<(EventKind, RunStatus)> = page.events.iter().map(|e| (e.kind, e.status)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::RestoreTest, RunStatus::Succeeded),
            (EventKind::LiveDrill, RunStatus::Succeeded),
            (EventKind::ManualFailover, RunStatus::Failed),
        ],
        "newest first: {posture:#?}"
    );
    let me = dr_core::aws::identity::caller(&clients.dr.sts).await.expect("who the tests are");
    let rejection = page.approvals.iter().find(|a| a.run_id == failover_id).expect("the decision on the failover");
    assert_eq!((rejection.by.as_deref(), rejection.verified), (Some(me.arn.as_str()), true), "{rejection:?}");
    assert!(page.last_successful_drill.is_some() && page.last_successful_restore_test.is_some(), "{page:#?}");
    let drill_event = &page.events[1];
    assert_eq!(drill_event.rto.met, Some(true), "{drill_event:?}");
    assert_eq!(drill_event.data_loss.achieved_seconds, Some(0.0), "a planned move loses nothing: {drill_event:?}");
    assert!(page.readiness.is_some() && !page.drift.is_empty(), "{page:#?}");
    assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);

    // As a person sees it: the screenshot shows the page, the printed page reads the facts.
    let rendered = render_page(&html, &out);
    assert!(rendered.non_white_pixels > 10_000 && rendered.fitted(), "{rendered:?}");
    let text = rendered.pdf_words();
    for expected in [
        plan.name.as_str(),
        "live drill",
        "failover by hand",
        "restore test",
        "DecisionRejected",
        me.arn.as_str(),
        "the lag is real:",
    ] {
        assert!(text.contains(expected), "the printed page reads {expected:?}:\n{text}");
    }
    eprintln!(
        "posture page: {} ({} x {} px, {} PDF pages), screenshot {}",
        html.display(),
        rendered.width,
        rendered.height,
        rendered.pdf_pages,
        rendered.png.display()
    );
}
