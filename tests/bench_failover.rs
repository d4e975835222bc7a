//! Failover benchmark on the emulator: end-to-end wall time with waits compressed, AWS calls per
//! step, time spent in AWS, orchestration overhead, and whether the two branches overlapped.
//!
//!   scripts/bench [RUNS]        (starts the emulator and the Lambdas; default 5 runs)

// A benchmark binary: a failed setup step ends it with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use dr_core::run::StepRecord;
use dr_core::runbook::report::RunReport;
use dr_tests::{failover_input, median, run_failover, seeded_estate, unique_suffix};

/// Milliseconds during which at least one of the step's AWS calls was in flight (concurrent
/// calls count once).
fn step_aws_ms(record: &StepRecord) -> f64 {
    in_flight_ms(record.calls.iter().map(|c| (c.sent_at_ms, c.sent_at_ms + c.millis)).collect())
}

/// Length of the union of intervals.
fn in_flight_ms(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut current: Option<(f64, f64)> = None;
    for (start, end) in intervals {
        current = match current {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + current.map_or(0.0, |(s, e)| e - s)
}

struct Sample {
    wall_ms: f64,
    until_report_ms: f64,
    aws_ms: f64,
    overlap_ms: f64,
    per_step: BTreeMap<String, (usize, usize, f64)>,
}

/// One failover on a fresh estate, measured.
async fn measure() -> Sample {
    let (plan, _clients) = seeded_estate().await;
    let execution = run_failover(&failover_input(&plan, &format!("bench-{}", unique_suffix())).await);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: RunReport = serde_json::from_value(execution.output.clone()).expect("run report");
    let started = execution.events.first().map(|e| e.timestamp).unwrap_or_default();
    let report_entered = execution.entered("Report");
    // Time waiting on AWS up to the report: the union of every call of every step, so that the
    // concurrent branches and the concurrent reads of the preflight count once.
    let aws_ms = in_flight_ms(
        report.steps.iter().flat_map(|s| s.calls.iter().map(|c| (c.sent_at_ms, c.sent_at_ms + c.millis))).collect(),
    );
    let (db_start, db_end) = execution.interval("PromoteReplica", "DatabaseDone");
    let (compute_start, compute_end) = execution.interval("StartStandby", "ComputeDone");
    Sample {
        wall_ms: execution.wall_ms,
        until_report_ms: report_entered - started,
        aws_ms,
        overlap_ms: db_end.min(compute_end) - db_start.max(compute_start),
        per_step: report
            .steps
            .iter()
            .map(|s| (s.step.clone(), (s.calls.len(), s.mutating_calls(), step_aws_ms(s))))
            .collect(),
    }
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5).max(1);
    let cold = measure().await;
    println!("warm-up run (Lambda cold starts included): wall {:.0} ms", cold.wall_ms);
    let mut samples = Vec::new();
    for run in 0..runs {
        let sample = measure().await;
        println!(
            "run {}: wall {:.0} ms, until the report {:.0} ms, AWS in flight {:.0} ms, branches overlap {:.0} ms",
            run + 1,
            sample.wall_ms,
            sample.until_report_ms,
            sample.aws_ms,
            sample.overlap_ms
        );
        samples.push(sample);
    }

    let wall = median(samples.iter().map(|s| s.wall_ms).collect());
    let until_report = median(samples.iter().map(|s| s.until_report_ms).collect());
    let aws = median(samples.iter().map(|s| s.aws_ms).collect());
    let overhead = median(samples.iter().map(|s| s.until_report_ms - s.aws_ms).collect());
    let overlap = median(samples.iter().map(|s| s.overlap_ms).collect());
    println!("\nfailover end to end on the emulator, waits compressed, warm Lambdas, median of {runs} runs");
    println!("  wall time (start to report written) {wall:8.0} ms");
    println!("  start to the Report state           {until_report:8.0} ms");
    println!("  AWS calls in flight in that span    {aws:8.0} ms");
    println!(
        "  orchestration overhead              {overhead:8.0} ms  (span - AWS in flight: engine, Lambda invokes, JSON)"
    );
    println!(
        "  database || compute branches        {overlap:8.0} ms of overlap: {}",
        if overlap > 0.0 { "concurrent" } else { "NOT concurrent" }
    );
    println!("\n  {:<24} {:>9} {:>9} {:>14}", "step", "AWS calls", "mutating", "AWS in flight");
    if let Some(first) = samples.first() {
        for name in first.per_step.keys() {
            let calls = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.0 as f64).collect());
            let mutating = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.1 as f64).collect());
            let ms = median(samples.iter().filter_map(|s| s.per_step.get(name)).map(|v| v.2).collect());
            println!("  {name:<24} {calls:>9.0} {mutating:>9.0} {ms:>11.1} ms");
        }
    }
}
