//! The RTO on a model of AWS: the failover runbook, with the real Lambdas and state machine, run
//! against the emulator playing AWS's durations on a compressed clock (promotion, boot and status
//! checks, Auto Scaling launches, the routing alarm and Route 53's propagation: figures and
//! sources in crates/dr-emulator/moto/timing.py). Reports the RTO achieved from the outage to the
//! clients' resolvers answering Ireland, phase by phase and its critical path; the same runbook
//! run with its branches one after another, as layered runbooks run them; the physical limit;
//! and the same failover with the compute prepared while the trigger confirms
//! (`trigger.prepare_while_confirming`: the trigger's own `prepare`, the confirmation window
//! waited out on the same clock).
//!
//!   scripts/bench                 (starts the emulator and the Lambdas)
//!   bench-rto [SCALE]             wall seconds per AWS second, default 0.1 (an AWS minute in 6 s)

// A benchmark binary: a failed setup step ends it with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dr_emulator::control::{TimingModel, instant_changes, model_aws_durations, route53_answer};
use dr_emulator::estate::{SeedOptions, seed};
use dr_tests::{
    Execution, failover_input, failover_substitutions, isolated_microservices_plan, isolated_plan, repo_root,
    run_state_machine_waiting,
};
use serde_json::{Value, json};

/// The detection stack (template-us-east-1.yaml) as deployed with its defaults: the health
/// check's interval and failure threshold, and the alarm's minutes of unhealthy data.
struct Detection {
    request_interval: f64,
    failure_threshold: f64,
    alarm_period: f64,
    alarm_periods: f64,
}

impl Detection {
    fn from_template() -> Detection {
        let text =
            std::fs::read_to_string(repo_root().join("template-us-east-1.yaml")).expect("template-us-east-1.yaml");
        let value = |key: &str| -> f64 {
            text.lines()
                .find_map(|line| line.trim().strip_prefix(key).and_then(|v| v.trim().parse().ok()))
                .unwrap_or_else(|| panic!("{key} in template-us-east-1.yaml"))
        };
        let unhealthy_minutes = text
            .lines()
            .skip_while(|line| line.trim() != "UnhealthyMinutes:")
            .find_map(|line| line.trim().strip_prefix("Default:").and_then(|v| v.trim().parse().ok()))
            .expect("UnhealthyMinutes' default");
        Detection {
            request_interval: value("RequestInterval:"),
            failure_threshold: value("FailureThreshold:"),
            alarm_period: value("Period:"),
            alarm_periods: unhealthy_minutes,
        }
    }

    /// From the outage to the alarm: Route 53 calls the endpoint unhealthy after the failure
    /// threshold's consecutive failed checks; the alarm needs that many minutes of unhealthy data.
    fn seconds(&self) -> f64 {
        self.request_interval * self.failure_threshold + self.alarm_period * self.alarm_periods
    }
}

/// One run's phases, in AWS seconds (wall time / scale).
struct Phases {
    preflight: f64,
    database: f64,
    compute: f64,
    dns: f64,
}

impl Phases {
    fn of(execution: &Execution, scale: f64) -> Phases {
        let modelled = |(from, to): (f64, f64)| (to - from) / 1000.0 / scale;
        Phases {
            preflight: modelled(execution.interval("Preflight", "FailOver")),
            database: modelled(execution.interval("PromoteReplica", "DatabaseDone")),
            compute: modelled(execution.interval("StartStandby", "ComputeDone")),
            // From the change to Route 53's name servers answering Ireland (the runbook's DNS
            // check asks them), when the run moves on to its report.
            dns: modelled(execution.interval("FlipDns", "Report")),
        }
    }
}

/// The failover runbook as layered runbooks run it, one step after another: its Parallel state
/// `FailOver` becomes two one-branch Parallel states in a row (the database branch, then the
/// compute branch), and the two Pass states that merge the branches' steps read them from where
/// those now land. Every other state, Task and Retry is the shipped definition's. Written next to
/// the system's temporary files; the path is returned.
fn one_after_another() -> std::path::PathBuf {
    let path = repo_root().join("statemachines/failover.asl.json");
    let text = std::fs::read_to_string(&path).expect("failover.asl.json");
    let mut definition: Value = serde_json::from_str(&text).expect("failover.asl.json is JSON");
    let states = definition["States"].as_object_mut().expect("States");
    let parallel = states.remove("FailOver").expect("the FailOver Parallel state");
    let branches = parallel["Branches"].as_array().expect("its Branches").clone();
    assert_eq!(branches.len(), 2, "the database branch and the compute branch");
    assert_eq!(parallel["Next"], "CollectDatabaseSteps", "the branches' steps are merged next");
    let leg = |branch: &Value, result_path: &str, next: &str| {
        let mut state = parallel.clone();
        state["Branches"] = json!([branch]);
        state["ResultPath"] = json!(result_path);
        state["Next"] = json!(next);
        state
    };
    states.insert("FailOver".into(), leg(&branches[0], "$.database_branch", "FailOverCompute"));
    states.insert("FailOverCompute".into(), leg(&branches[1], "$.compute_branch", "CollectDatabaseSteps"));
    // Where the merges read the branches' outputs: `$.branches[i]` becomes the leg's only output.
    for (state, from, to) in [
        ("CollectDatabaseSteps", "$.branches[0]", "$.database_branch[0]"),
        ("CollectComputeSteps", "$.branches[1]", "$.compute_branch[0]"),
    ] {
        let parameters = states[state]["Parameters"].as_object_mut().expect("the merge's Parameters");
        let merge = parameters["steps.$"].as_str().expect("steps.$").to_string();
        assert!(merge.contains(from), "{state} merges {from}: {merge}");
        parameters.insert("steps.$".into(), json!(merge.replace(from, to)));
        // The database merge passed the branches on to the compute merge; now the compute leg's.
        if parameters.remove("branches.$").is_some() {
            parameters.insert("compute_branch.$".into(), json!("$.compute_branch"));
        }
    }
    let sequential = std::env::temp_dir().join(format!("failover-one-after-another-{}.asl.json", std::process::id()));
    std::fs::write(&sequential, definition.to_string()).expect("the sequential definition written");
    sequential
}

/// A failover of a fresh estate with AWS's durations played at `scale` (`None`: moto's instant
/// changes); the execution. `prepared_for`: the compute prepared that long (AWS seconds, the
/// confirmation window) before the run starts, as the trigger prepares it. `definition`: a path
/// under statemachines/ or an absolute one (the sequential variant).
async fn failover(
    definition: &str,
    scale: Option<f64>,
    prepared_for: Option<f64>,
) -> (Execution, Option<TimingModel>, u64) {
    failover_of(isolated_plan(), definition, scale, prepared_for).await
}

/// [`failover`] of `plan`'s estate, seeded fresh.
async fn failover_of(
    plan: dr_core::Plan,
    definition: &str,
    scale: Option<f64>,
    prepared_for: Option<f64>,
) -> (Execution, Option<TimingModel>, u64) {
    let clients = dr_tests::emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding the estate");
    let model = match scale {
        Some(scale) => Some(model_aws_durations(&clients, scale).await.expect("the timing model")),
        None => None,
    };
    // The name servers' answer before the run: a change from it is what propagates.
    route53_answer(&clients, &plan.dns.records[0].record, &plan.dns.records[0].record_type, None)
        .await
        .expect("Route 53's answer");
    let run_id = format!("rto-{}", dr_tests::unique_suffix());
    if let Some(seconds) = prepared_for {
        let prepared = dr_core::trigger::prepare::prepare(&clients, &plan, &run_id).await;
        assert!(prepared.contains("started"), "{prepared}");
        tokio::time::sleep(Duration::from_secs_f64(seconds * scale.unwrap_or(0.0))).await;
    }
    let input = failover_input(&plan, &run_id).await;
    let poll_seconds = input["run"]["poll_seconds"].as_u64().expect("the run's poll interval");
    let wait = Duration::from_secs_f64(poll_seconds as f64 * scale.unwrap_or(0.0));
    let execution = run_state_machine_waiting(definition, &failover_substitutions(), &input, wait);
    instant_changes(&clients).await.expect("the model off");
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    (execution, model, poll_seconds)
}

fn minutes(seconds: f64) -> String {
    format!("{:>6.0} s  {:>5.1} min", seconds, seconds / 60.0)
}

#[tokio::main]
async fn main() {
    let scale: f64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(0.1);
    // The example plan's settings (each run seeds its own copy under unique names).
    let plan = dr_core::Plan::load(&dr_tests::example_plan_path()).expect("the example plan");
    let detection = Detection::from_template();
    let confirmation = plan.trigger.as_ref().map_or(0, |t| t.confirmation_window_seconds) as f64;
    let ttl = plan.dns.records[0].ttl_seconds as f64;

    let shipped = "failover.asl.json";
    let (instant, _, _) = failover(shipped, None, None).await;
    let local_overhead = (instant.entered("Report") - instant.entered("Preflight")) / 1000.0;
    let (execution, model, poll_seconds) = failover(shipped, Some(scale), None).await;
    let model = model.expect("the model was on");
    let phases = Phases::of(&execution, scale);
    let (prepared, _, _) = failover(shipped, Some(scale), Some(confirmation)).await;
    let prepared = Phases::of(&prepared, scale);
    let sequential_definition = one_after_another();
    let (one_by_one, _, _) =
        failover(sequential_definition.to_str().expect("a UTF-8 temporary path"), Some(scale), None).await;
    let _ = std::fs::remove_file(&sequential_definition);
    let one_by_one = Phases::of(&one_by_one, scale);

    let (branch, slowest) = if phases.database >= phases.compute {
        ("database (promote the replica)", phases.database)
    } else {
        ("compute (standby EC2, Auto Scaling)", phases.compute)
    };
    let achieved = detection.seconds() + confirmation + phases.preflight + slowest + phases.dns + ttl;
    let sequential = detection.seconds()
        + confirmation
        + one_by_one.preflight
        + one_by_one.database
        + one_by_one.compute
        + one_by_one.dns
        + ttl;
    let slowest_aws =
        model.promote_seconds.max(model.boot_seconds + model.status_check_seconds).max(model.asg_in_service_seconds);
    let route53_change = model.routing_alarm_period_seconds + model.dns_propagation_seconds;
    let limit = detection.seconds() + slowest_aws + route53_change + ttl;
    let with_preparation = detection.seconds()
        + confirmation
        + prepared.preflight
        + prepared.database.max(prepared.compute)
        + prepared.dns
        + ttl;

    println!(
        "\nRTO on a model of AWS: plan {} (RTO target {} min), AWS's durations at scale {scale} (an AWS minute in {:.1} s)",
        plan.name,
        plan.targets.rto_minutes,
        60.0 * scale
    );
    println!(
        "  model (crates/dr-emulator/moto/timing.py): promotion {:.0} s, boot {:.0} s + status checks {:.0} s, \
         Auto Scaling InService {:.0} s, routing alarm period {:.0} s + Route 53 propagation {:.0} s; runbook polls every {poll_seconds} s",
        model.promote_seconds,
        model.boot_seconds,
        model.status_check_seconds,
        model.asg_in_service_seconds,
        model.routing_alarm_period_seconds,
        model.dns_propagation_seconds
    );
    println!(
        "  detection (template-us-east-1.yaml): health check every {:.0} s x {:.0} failures + alarm {:.0} x {:.0} s periods",
        detection.request_interval, detection.failure_threshold, detection.alarm_periods, detection.alarm_period
    );
    println!("\n  {:<50} {:>17}", "phase (AWS time)", "");
    println!("  {:<50} {}", "detection: outage -> alarm", minutes(detection.seconds()));
    println!("  {:<50} {}", "trigger's confirmation window", minutes(confirmation));
    println!("  {:<50} {}", "preflight and RPO gate", minutes(phases.preflight));
    let mark = |this: f64| if this == slowest { "  <- critical path" } else { "" };
    println!("  {:<50} {}{}", "  database branch: promote, available", minutes(phases.database), mark(phases.database));
    println!(
        "  {:<50} {}{}",
        "  compute branch: EC2 checks ok, ASG InService",
        minutes(phases.compute),
        mark(phases.compute)
    );
    println!("  {:<50} {}", "DNS: routing changed -> Route 53 answers Ireland", minutes(phases.dns));
    println!("  {:<50} {}", "clients' resolvers: the record's TTL", minutes(ttl));
    println!("\n  {:<50} {}", "achieved RTO (branches in parallel)", minutes(achieved));
    println!(
        "  {:<50} {}  (+{:.0} s: a run of the same runbook with its branches in a row; database {:.0} s, then compute {:.0} s)",
        "the same steps one after another",
        minutes(sequential),
        sequential - achieved,
        one_by_one.database,
        one_by_one.compute
    );
    println!(
        "  {:<50} {}  (detection + the slowest branch's AWS time, {branch}: {:.0} s\n  {:<50} {:>17}   + the Route 53 change {:.0} s + TTL; no confirmation, no polling)",
        "physical limit",
        minutes(limit),
        slowest_aws,
        "",
        "",
        route53_change
    );
    println!(
        "  {:<50} {}  ({:+.0} s: the compute branch then took {:.0} s, the database branch {:.0} s)",
        "preparing the compute while confirming",
        minutes(with_preparation),
        with_preparation - achieved,
        prepared.compute,
        prepared.database
    );
    println!(
        "  runbook overhead over the limit: {:.0} s (confirmation, polling every {poll_seconds} s, Lambda and state transitions);\n  \
         the local stack's own time counts x{:.0} on this clock: the same run with instant changes took {:.1} s wall, i.e. up to {:.0} s of the figures above",
        achieved - limit,
        1.0 / scale,
        local_overhead,
        local_overhead / scale
    );

    // The second example: no EC2, 15 ECS services; the same model, the same detection.
    let microservices = isolated_microservices_plan();
    let services = microservices.ecs_services.len();
    let tasks: u32 = microservices.ecs_services.iter().map(|s| u32::from(s.failover_count)).sum();
    let ms_confirmation = microservices.trigger.as_ref().map_or(0, |t| t.confirmation_window_seconds) as f64;
    let ms_ttl = microservices.dns.records[0].ttl_seconds as f64;
    let (ms_execution, _, _) = failover_of(microservices, shipped, Some(scale), None).await;
    let ms = Phases::of(&ms_execution, scale);
    let ms_achieved =
        detection.seconds() + ms_confirmation + ms.preflight + ms.database.max(ms.compute) + ms.dns + ms_ttl;
    println!(
        "\nThe microservices plan (plans/us-east-west-microservices.toml: {services} ECS services, {tasks} tasks; \
         an ECS task starts in {:.0} s), the same model:",
        model.ecs_task_start_seconds
    );
    println!("  {:<50} {}", "preflight and RPO gate", minutes(ms.preflight));
    println!("  {:<50} {}", "  database branch: promote, custom actions", minutes(ms.database));
    println!("  {:<50} {}", "  compute branch: every ECS service's tasks run", minutes(ms.compute));
    println!("  {:<50} {}", "DNS: routing changed -> Route 53 answers Oregon", minutes(ms.dns));
    println!(
        "  {:<50} {}  (the example plan: {}; detection, confirmation and TTL as above)",
        "achieved RTO (branches in parallel)",
        minutes(ms_achieved),
        minutes(achieved).trim()
    );
}
