//! Failover benchmark on the emulator: end-to-end wall time with waits compressed, AWS calls per
//! step, time spent in AWS, orchestration overhead, and whether the two branches overlapped.
//!
//!   scripts/bench [RUNS]        (starts the emulator and the Lambdas; default 5 runs)

// A benchmark binary: a failed setup step ends it with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use dr_core::runbook::StepRecord;
use dr_core::runbook::report::RunReport;
use dr_tests::{Execution, failover_input, run_failover, seeded_estate, unique_suffix};

/// Milliseconds spent in AWS calls (request sent to response received) by one step.
fn aws_ms(record: Option<&StepRecord>) -> f64 {
    record.map_or(0.0, |r| r.calls.iter().map(|c| c.millis).sum())
}

/// [first entry of `from`, first entry of `to`] in the execution's events, in ms since the epoch.
fn interval(execution: &Execution, from: &str, to: &str) -> (f64, f64) {
    let entered = |state: &str| {
        execution
            .events
            .iter()
            .find(|e| e.kind == "StateEntered" && e.state.as_deref() == Some(state))
            .map(|e| e.timestamp)
            .unwrap_or_else(|| panic!("{state} never entered"))
    };
    (entered(from), entered(to))
}

struct Sample {
    wall_ms: f64,
    aws_critical_ms: f64,
    overlap_ms: f64,
    per_step: BTreeMap<String, (usize, usize, f64)>,
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    let mut samples = Vec::new();
    for run in 0..runs {
        let (plan, _clients) = seeded_estate().await;
        let execution = run_failover(&failover_input(&plan, &format!("bench-{}", unique_suffix()), None));
        assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
        let report: RunReport = serde_json::from_value(execution.output.clone()).expect("run report");
        let steps: BTreeMap<&str, &StepRecord> = report.steps.iter().map(|s| (s.step.as_str(), s)).collect();
        let step = |name: &str| steps.get(name).copied();
        let database = aws_ms(step("promote-replica")) + aws_ms(step("promote-replica-status"));
        let compute = aws_ms(step("start-standby"))
            + aws_ms(step("scale-asg"))
            + aws_ms(step("start-standby-status"))
            + aws_ms(step("scale-asg-status"));
        let aws_critical_ms = aws_ms(step("preflight"))
            + database.max(compute)
            + aws_ms(step("flip-dns"))
            + aws_ms(step("flip-dns-status"));
        let (db_start, db_end) = interval(&execution, "PromoteReplica", "DatabaseDone");
        let (compute_start, compute_end) = interval(&execution, "StartStandby", "ComputeDone");
        let overlap_ms = db_end.min(compute_end) - db_start.max(compute_start);
        let per_step = report
            .steps
            .iter()
            .map(|s| (s.step.clone(), (s.calls.len(), s.mutating_calls(), aws_ms(Some(s)))))
            .collect();
        println!(
            "run {}: wall {:.0} ms, AWS on the critical path {:.0} ms, branches overlap {:.0} ms",
            run + 1,
            execution.wall_ms,
            aws_critical_ms,
            overlap_ms
        );
        samples.push(Sample { wall_ms: execution.wall_ms, aws_critical_ms, overlap_ms, per_step });
    }

    let median = |mut values: Vec<f64>| {
        values.sort_by(f64::total_cmp);
        values[values.len() / 2]
    };
    let wall = median(samples.iter().map(|s| s.wall_ms).collect());
    let aws = median(samples.iter().map(|s| s.aws_critical_ms).collect());
    let overhead = median(samples.iter().map(|s| s.wall_ms - s.aws_critical_ms).collect());
    let overlap = median(samples.iter().map(|s| s.overlap_ms).collect());
    println!("\nfailover end to end on the emulator, waits compressed, median of {runs} runs");
    println!("  wall time                          {wall:8.0} ms");
    println!("  AWS calls on the critical path     {aws:8.0} ms");
    println!("  orchestration overhead             {overhead:8.0} ms  (wall - AWS on the critical path)");
    println!(
        "  database || compute branches       {overlap:8.0} ms of overlap: {}",
        if overlap > 0.0 { "concurrent" } else { "NOT concurrent" }
    );
    println!("\n  {:<24} {:>9} {:>9} {:>11}", "step", "AWS calls", "mutating", "AWS ms");
    if let Some(first) = samples.first() {
        for name in first.per_step.keys() {
            let calls = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.0 as f64).collect());
            let mutating = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.1 as f64).collect());
            let ms = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.2).collect());
            println!("  {name:<24} {calls:>9.0} {mutating:>9.0} {ms:>11.1}");
        }
    }
}
