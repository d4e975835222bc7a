//! The posture page as a person sees it (no service): sample evidence built here, the page
//! rendered by dr-core, then shown by Chromium, headless: the screenshot must show the page (not
//! blank, as wide as a window, the met and MISSED colours of the chart), and the printed PDF must
//! read the plan, the RTO figures, the verdicts, who approved and the readiness drift. Needs
//! /usr/bin/chromium and pdftotext (scripts/lib.sh install_chromium). Outputs under
//! target/posture-page/.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use dr_core::plan::Direction;
use dr_core::posture::page::{MET_COLOUR, MISSED_COLOUR};
use dr_core::posture::{Evidence, Window, build, render_html};
use dr_core::readiness::scheduled::ReadinessSnapshot;
use dr_core::readiness::{Check, CheckRow, Finding};
use dr_core::report::Head;
use dr_core::restore::report::RestoreReport;
use dr_core::run::{Approval, FailoverKind, GateDecision, GateVerdict, Incident, RunInfo, RunStatus};
use dr_core::runbook::report::{Achieved, DataLoss, RunReport};
use dr_core::store::{Decision, DecisionStatus, PlanState, PlanStatus, Question};
use dr_core::time::{self, Timestamp};
use dr_tests::chromium::{RenderedPage, WINDOW_WIDTH, render_page};

const PLAN: &str = "payments-prod";
const APPROVER: &str = "arn:aws:sts::123456789012:assumed-role/DrApprover/bob";
const INCIDENT_RUN: &str = "payments-prod-alarm-20261102T031500Z";

fn at(text: &str) -> Timestamp {
    time::parse(text).expect("time")
}

fn window() -> Window {
    Window { since: at("2026-10-01T00:00:00Z"), until: at("2026-12-01T00:00:00Z") }
}

fn out_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").map_or_else(|_| dr_tests::repo_root().join("target"), PathBuf::from);
    target.join("posture-page")
}

fn head(id: &str, start: &str, run: RunInfo, status: RunStatus) -> Head {
    Head {
        plan: PLAN.into(),
        run,
        status,
        error: None,
        generated_at: at(start),
        locations: vec![format!("s3://dr-reports/{PLAN}/{id}/report.md")],
    }
}

/// A live failover of `PLAN` (RTO target 4 h, RPO 1 h) that took `rto` seconds and lost `rpo`.
fn live_run(id: &str, start: &str, trigger: &str, kind: FailoverKind, rto: f64, rpo: f64) -> RunReport {
    let mut run = RunInfo::new(id, at(start), trigger);
    run.kind = kind;
    RunReport {
        head: head(id, start, run, RunStatus::Succeeded),
        plan_state: Some("failed-over: reprotect, fail back, then re-arm".into()),
        achieved: Achieved {
            rto_target_seconds: 14_400,
            rto_seconds: Some(rto),
            rto_met: Some(rto <= 14_400.0),
            rpo_target_seconds: 3600,
            rpo_seconds: Some(rpo),
            rpo_met: Some(rpo <= 3600.0),
        },
        gate: None,
        timeline: Vec::new(),
        steps: Vec::new(),
        final_state: Vec::new(),
        mutating_calls: 12,
        direction: Direction::ToDr,
        data_loss: Some(DataLoss {
            kind,
            fenced_at: None,
            barrier_confirmed_at: None,
            summary: if rpo == 0.0 {
                "data lost: none (proven by the barrier)".into()
            } else {
                format!("data lost: up to {rpo:.0} s of writes")
            },
            primary: match kind {
                FailoverKind::Planned => "fenced: Paris takes no writes until it is failed back".into(),
                FailoverKind::Unplanned => "not fenced: fence Paris (or keep it down) before it serves again".into(),
            },
            region_left: "Paris".into(),
        }),
        gate_refused: None,
        shortfall: Vec::new(),
        split_data_tier: None,
        rolled_back: Vec::new(),
    }
}

fn snapshot(checked: &str, findings: &[(Finding, &str)]) -> ReadinessSnapshot {
    ReadinessSnapshot {
        plan: PLAN.into(),
        checked_at: at(checked),
        ready: findings.is_empty(),
        not_ready: findings
            .iter()
            .map(|(finding, detail)| CheckRow {
                check: Check::ReadReplica,
                resource: "db-ireland (eu-west-1)".into(),
                finding: Some(*finding),
                error: None,
                detail: detail.to_string(),
            })
            .collect(),
    }
}

/// A live drill that met its RTO, an unplanned failover that MISSED it (its RPO gate approved by
/// bob, as STS verified him), a restore test, and readiness that drifted and came back.
fn sample_evidence() -> Evidence {
    let mut drill = live_run(
        "payments-prod-drill-20261005T090000Z",
        "2026-10-05T09:00:00Z",
        "game day (drill) by alice",
        FailoverKind::Planned,
        900.0,
        0.0,
    );
    drill.head.run.requested_by = Some(Approval { by: "alice".into(), reason: "quarterly game day".into() });
    let mut incident = live_run(
        INCIDENT_RUN,
        "2026-11-02T03:15:00Z",
        "alarm: payments-primary-health",
        FailoverKind::Unplanned,
        18_000.0,
        5400.0,
    );
    incident.head.run.incident = Some(Incident {
        id: "payments-primary-health@2026-11-02T03:15:00Z".into(),
        alarm: "payments-primary-health".into(),
        alarm_at: at("2026-11-02T03:15:00Z"),
        alarm_reason: "Threshold Crossed: 3 of 3 checkers".into(),
        confirmed_at: at("2026-11-02T03:17:00Z"),
        evidence: vec!["probe timed out".into()],
    });
    incident.gate = Some(GateDecision {
        verdict: GateVerdict::Approved,
        lag_seconds: None,
        rpo_seconds: 3600,
        reason: "RpoExceeded: replica 5400 s behind".into(),
        approval: Some(Approval { by: APPROVER.into(), reason: "Paris is gone".into() }),
    });
    let restore_id = "payments-prod-restore-20261015T020000";
    let restore = RestoreReport {
        head: head(
            restore_id,
            "2026-10-15T02:00:00Z",
            RunInfo::new(restore_id, at("2026-10-15T02:00:00Z"), "schedule: monthly restore test"),
            RunStatus::Succeeded,
        ),
        database: "db-paris".into(),
        instance: format!("{restore_id}-db"),
        snapshot: Some("rds:db-paris-2026-10-15-01-00".into()),
        snapshot_created_at: Some(at("2026-10-15T01:00:00Z")),
        snapshot_age_seconds: Some(3000),
        rpo_target_seconds: 3600,
        rpo_met: Some(true),
        restore_seconds: Some(2400.0),
        rto_target_seconds: 14_400,
        rto_met: Some(true),
        validation: Some("42 tables, newest row 50 min old".into()),
        cleaned_up: true,
        steps: Vec::new(),
    };
    Evidence {
        plan: PLAN.into(),
        primary_region_name: "Paris (eu-west-3)".into(),
        dr_region_name: "Ireland (eu-west-1)".into(),
        rto_target_seconds: 14_400,
        rpo_target_seconds: 3600,
        state: Some(PlanState {
            plan: PLAN.into(),
            status: PlanStatus::FailedOver,
            changed_at: Some(at("2026-11-02T08:15:00Z")),
            changed_by: "report".into(),
            reason: format!("run {INCIDENT_RUN} succeeded"),
            incident: None,
            run_id: Some(INCIDENT_RUN.into()),
            last_automatic_run_at: Some(at("2026-11-02T03:15:00Z")),
            primary_region: Some("eu-west-1".into()),
            taken_from: None,
            plan_version: None,
            fenced_on_return: None,
        }),
        runs: vec![drill, incident],
        round_trips: Vec::new(),
        restore_tests: vec![restore],
        readiness: vec![
            snapshot("2026-09-30T12:00:00Z", &[]),
            snapshot("2026-10-20T08:30:00Z", &[(Finding::ReplicaNotReplicating, "replication stopped: IO error")]),
            snapshot("2026-10-21T10:00:00Z", &[]),
            snapshot("2026-11-30T22:00:00Z", &[]),
        ],
        decisions: vec![Decision {
            plan: PLAN.into(),
            run_id: INCIDENT_RUN.into(),
            asks: Question::RpoGate,
            status: DecisionStatus::Approved,
            question: "RpoExceeded: replica 5400 s behind".into(),
            asked_at: at("2026-11-02T03:20:00Z"),
            execution_arn: None,
            deadline: at("2026-11-02T05:20:00Z"),
            decided_by: Some(APPROVER.into()),
            decided_by_id: Some("AROAEXAMPLE:bob".into()),
            decided_at: Some(at("2026-11-02T03:40:00Z")),
            reason: Some("Paris is gone".into()),
        }],
        unreadable: Vec::new(),
    }
}

/// Writes the page (and the posture's JSON beside it) and has Chromium show it.
fn show(name: &str, evidence: &[Evidence]) -> RenderedPage {
    let posture = build(evidence, window());
    let html = render_html(&posture).expect("the page renders");
    let dir = out_dir();
    std::fs::create_dir_all(&dir).expect("target/posture-page");
    let path = dir.join(format!("{name}.html"));
    std::fs::write(&path, html).expect("write the page");
    let json = serde_json::to_vec_pretty(&posture).expect("the posture's JSON");
    std::fs::write(dir.join(format!("{name}.json")), json).expect("write the JSON");
    let page = render_page(&path, &dir);
    eprintln!(
        "{name}: {}x{} screenshot, {} PDF page(s), Chromium and pdftotext in {:.1} s ({})",
        page.width,
        page.height,
        page.pdf_pages,
        page.elapsed.as_secs_f64(),
        page.png.display()
    );
    page
}

/// What every page must look like: drawn, over the window's width, all of it in the window.
fn assert_drawn(page: &RenderedPage) {
    assert_eq!(page.width, WINDOW_WIDTH, "the screenshot is the window's width");
    let total = page.width as usize * page.height as usize;
    assert!(page.non_white_pixels * 200 > total, "the screenshot is nearly blank: {} non-white", page.non_white_pixels);
    assert!(
        page.content_right - page.content_left > 900,
        "the page is narrower than a window: content from x={} to x={}",
        page.content_left,
        page.content_right
    );
    assert!(page.fitted(), "the page is taller than the window ({} px): its end was cut", page.height);
    assert!(page.pdf_pages >= 1, "the PDF has no page");
}

#[test]
fn a_posture_page_of_sample_evidence_reads_as_a_person_sees_it() {
    let page = show("sample-posture", &[sample_evidence()]);
    assert_drawn(&page);
    // The chart's marks (and the verdicts): met in one colour, MISSED in another.
    let (met, missed) = (page.pixels_of(MET_COLOUR, 6), page.pixels_of(MISSED_COLOUR, 6));
    assert!(met > 150, "{met} pixels of the met colour {MET_COLOUR}");
    assert!(missed > 150, "{missed} pixels of the MISSED colour {MISSED_COLOUR}");

    let text = page.pdf_words();
    for wanted in [
        format!("Plan {PLAN}"),
        "900 s (15 min)".to_string(),
        "18000 s (5 h)".to_string(),
        "2400 s (40 min)".to_string(),
        "target 14400 s (4 h)".to_string(),
        "MISSED".to_string(),
        APPROVER.to_string(),
        "verified by STS".to_string(),
        "Paris is gone".to_string(),
        "requested by alice".to_string(),
        "live drill".to_string(),
        "automatic failover".to_string(),
        "restore test".to_string(),
        "Readiness drift".to_string(),
        "drifted: not ready".to_string(),
        "ReplicaNotReplicating".to_string(),
        "ready again".to_string(),
        "Longest without a successful live drill".to_string(),
        "failed-over".to_string(),
    ] {
        assert!(text.contains(&wanted), "the printed page lacks {wanted:?}:\n{}", page.pdf_text);
    }
    assert!(
        !text.contains("No drill, failover or restore test recorded"),
        "a page with a history says none:\n{}",
        page.pdf_text
    );
}

#[test]
fn an_empty_history_gives_a_page_that_says_so() {
    let mut quiet = sample_evidence();
    quiet.runs.clear();
    quiet.restore_tests.clear();
    quiet.decisions.clear();
    let page = show("empty-posture", &[quiet]);
    assert_drawn(&page);
    let text = page.pdf_words();
    assert!(
        text.contains(&format!("No drill, failover or restore test recorded for {PLAN} since 2026-10-01.")),
        "the printed page does not say the history is empty:\n{}",
        page.pdf_text
    );
    assert!(text.contains("none recorded"), "{}", page.pdf_text);
    assert!(!text.contains("RTO achieved over time"), "no chart without a run:\n{}", page.pdf_text);

    let page = show("no-plan-posture", &[]);
    assert!(page.non_white_pixels > 0 && page.fitted());
    assert!(
        page.pdf_words()
            .contains("No plan in this report: no drill, failover or restore test recorded since 2026-10-01."),
        "{}",
        page.pdf_text
    );
}
