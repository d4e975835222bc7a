//! The contract between `statemachines/*.asl.json` and the Rust side, checked on every definition:
//!
//! - every `ResultPath` is `$.steps.<StepKey>` or one of the state's other known paths;
//! - every Choice reads `$.steps.<StepKey>.ready` or `.redo`, fields every step record has;
//! - every Wait waits `$.run.poll_seconds`, which grows with the RTO;
//! - the worst-case execution history of each state machine, at the longest RTO a plan accepts,
//!   stays under Step Functions' 25,000 events, and the execution timeout outlasts every phase;
//! - every name in a `Retry` or `Catch` is one the Rust side produces (a `DrError` name) or one
//!   Step Functions or Lambda produces (`States.*`, `Lambda.*`, `Sandbox.Timedout`,
//!   `Runtime.ExitError`);
//! - every Task retries exactly the retryable `DrError` names (`ErrorName::is_retryable`), and
//!   Lambda's crashes and timeouts.
//!
//! And template.yaml against the code: the dashboard searches only the metrics the code
//! publishes, names no plan, and lists every alarm of the template.
//!
//! No emulator needed.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use std::collections::BTreeMap;
use std::time::Duration;

use dr_core::error::ErrorName;
use dr_core::game_day::MAX_VERIFICATION_MINUTES;
use dr_core::plan::{LONGEST_RTO_MINUTES, MAX_STANDBY_INSTANCES};
use dr_core::run::budget::{FAILOVER_EVENTS_PER_RTO_SECOND, HISTORY_QUOTA, poll_seconds};
use dr_core::run::{STATE_RESULT_PATHS, StepKey};
use dr_core::runbook::compute::MAX_STARTS;
use dr_core::runbook::round_trip::{Leg, ROUND_TRIP_RESULT_PATHS};
use serde_json::Value;

/// The round trip runs the other machines as its legs; its state is `RoundTripState`.
const ROUND_TRIP: &str = "round-trip.asl.json";

/// A Task that runs another machine and waits for it (a round trip's leg).
fn is_leg(state: &Value) -> bool {
    state["Resource"].as_str().is_some_and(|r| r.starts_with("arn:aws:states:::states:startExecution.sync"))
}

/// The round trip's `ResultPath`s: its state's fields, and `$.legs.<Leg>`.
fn round_trip_path(path: &str) -> bool {
    match path.strip_prefix("$.legs.") {
        Some(leg) => serde_json::from_value::<Leg>(Value::String(leg.to_string())).is_ok(),
        None => path.strip_prefix("$.").is_some_and(|top| ROUND_TRIP_RESULT_PATHS.contains(&top)),
    }
}

/// Names Step Functions and Lambda produce themselves.
fn is_platform_error(name: &str) -> bool {
    name.starts_with("States.")
        || name.starts_with("Lambda.")
        || ["Sandbox.Timedout", "Runtime.ExitError", "Runtime.Unknown"].contains(&name)
        || STEP_FUNCTIONS_SERVICE_ERRORS.contains(&name)
}

/// What the Step Functions integration (`startExecution.sync`) raises when Step Functions itself
/// throttles or fails to start or follow a leg: never the leg's own failure (`States.TaskFailed`).
const STEP_FUNCTIONS_SERVICE_ERRORS: &[&str] = &[
    "StepFunctions.AWSStepFunctionsException",
    "StepFunctions.SdkClientException",
    "StepFunctions.ExecutionLimitExceededException",
];

/// What a Lambda's crash or timeout surfaces as: every Task must retry these.
const CRASHES_AND_TIMEOUTS: &[&str] = &["Lambda.Unknown", "Sandbox.Timedout", "Runtime.ExitError"];

fn definitions() -> Vec<(String, Value)> {
    let dir = dr_tests::repo_root().join("statemachines");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("statemachines/") {
        let path = entry.expect("entry").path();
        if path.to_string_lossy().ends_with(".asl.json") {
            let text = std::fs::read_to_string(&path).expect("definition");
            let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            found.push((name, serde_json::from_str(&text).expect("a definition is JSON")));
        }
    }
    assert!(found.len() >= 2, "{found:?}");
    found
}

/// Every state of a definition, Parallel branches and Map iterators included: (name, state).
fn states(definition: &Value) -> Vec<(String, Value)> {
    let mut all = Vec::new();
    let mut pending = vec![definition.clone()];
    while let Some(machine) = pending.pop() {
        for (name, state) in machine["States"].as_object().expect("States").clone() {
            for branch in state["Branches"].as_array().cloned().unwrap_or_default() {
                pending.push(branch);
            }
            for key in ["Iterator", "ItemProcessor"] {
                if state[key].is_object() {
                    pending.push(state[key].clone());
                }
            }
            all.push((name, state));
        }
    }
    all
}

fn step_key(text: &str) -> Option<StepKey> {
    serde_json::from_value(Value::String(text.to_string())).ok()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
}

#[test]
fn result_paths_and_choices_name_what_the_rust_side_produces() {
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            let mut paths: Vec<&str> = state["ResultPath"].as_str().into_iter().collect();
            paths.extend(state["Catch"].as_array().into_iter().flatten().filter_map(|c| c["ResultPath"].as_str()));
            for path in paths {
                let known = match (file.as_str(), path.strip_prefix("$.steps.")) {
                    (ROUND_TRIP, _) => round_trip_path(path),
                    (_, Some(key)) => step_key(key).is_some(),
                    (_, None) => path.strip_prefix("$.").is_some_and(|top| STATE_RESULT_PATHS.contains(&top)),
                };
                assert!(known, "{file} {name}: ResultPath {path} is not produced or read by the Rust side");
            }
            for choice in state["Choices"].as_array().into_iter().flatten() {
                let rules: Vec<&Value> =
                    choice["And"].as_array().map_or_else(|| vec![choice], |and| and.iter().collect());
                for rule in rules {
                    let variable = rule["Variable"].as_str().expect("a Variable");
                    // The local engine (aws-local-stepfunctions 3.0, `IsPresent && value !==
                    // undefined`) answers `IsPresent: false` as never true, where AWS tests for
                    // absence: such a rule would be untested here. Order the rules instead.
                    assert_ne!(rule["IsPresent"], Value::Bool(false), "{file} {name}: IsPresent false on {variable}");
                    let parts: Vec<&str> = variable.split('.').collect();
                    // Steps answer ready/redo; a run's kind (planned or unplanned), direction
                    // (failover or failback), mode (live or dry run) and the plan state it holds
                    // are chosen at start.
                    // Or what a step did (`Outcome`), named as the Rust side writes it.
                    let outcome = rule["StringEquals"].as_str().is_some_and(|value| {
                        serde_json::from_value::<dr_core::run::Outcome>(Value::String(value.into())).is_ok()
                    });
                    let ok = matches!(parts.as_slice(), ["$", "steps", key, "ready" | "redo"] if step_key(key).is_some())
                        || (matches!(parts.as_slice(), ["$", "steps", key, "outcome"] if step_key(key).is_some())
                            && outcome)
                        || matches!(parts.as_slice(), ["$", "run", "kind" | "direction" | "mode" | "plan_state"])
                        // A failover branch that failed ends with its records and its error.
                        || matches!(parts.as_slice(), ["$", "branches[0]" | "branches[1]", "error"])
                        // Which error stopped the compute branch (below the plan's minimum: a
                        // decision or a roll-back).
                        || matches!(parts.as_slice(), ["$", "branches[1]", "error", "Error"]);
                    assert!(
                        ok,
                        "{file} {name}: a Choice reads {variable}; steps answer `$.steps.<key>.ready|redo|outcome`"
                    );
                }
            }
        }
    }
}

#[test]
fn retry_and_catch_name_only_errors_that_exist() {
    let ours: BTreeSet<&str> = ErrorName::all().map(ErrorName::as_str).collect();
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            let blocks = state["Retry"].as_array().into_iter().chain(state["Catch"].as_array()).flatten();
            for error in blocks.flat_map(|block| names(&block["ErrorEquals"])) {
                assert!(
                    ours.contains(error.as_str()) || is_platform_error(&error),
                    "{file} {name}: {error} is neither a DrError name nor a Step Functions / Lambda error"
                );
            }
        }
    }
}

#[test]
fn every_task_retries_exactly_the_retryable_errors_and_lambda_crashes() {
    let retryable: BTreeSet<String> =
        ErrorName::all().filter(|n| n.is_retryable()).map(|n| n.as_str().to_string()).collect();
    let ours: BTreeSet<&str> = ErrorName::all().map(ErrorName::as_str).collect();
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            if state["Type"] != "Task" {
                continue;
            }
            if is_leg(&state) {
                // A leg runs a whole machine with its own retries: a failed leg (States.TaskFailed)
                // is not started again by itself, it stops the round trip (Catch) for a human.
                // Only Step Functions' own errors in starting or following it are retried.
                let retried: BTreeSet<String> =
                    state["Retry"].as_array().into_iter().flatten().flat_map(|r| names(&r["ErrorEquals"])).collect();
                let expected: BTreeSet<String> = STEP_FUNCTIONS_SERVICE_ERRORS.iter().map(|e| e.to_string()).collect();
                assert_eq!(retried, expected, "{file} {name}: a leg retries Step Functions' service errors only");
                assert!(state["Catch"].is_array(), "{file} {name}: a failed leg must reach the failure report");
                continue;
            }
            let retried: BTreeSet<String> =
                state["Retry"].as_array().into_iter().flatten().flat_map(|r| names(&r["ErrorEquals"])).collect();
            let our_retried: BTreeSet<String> = retried.iter().filter(|n| ours.contains(n.as_str())).cloned().collect();
            assert_eq!(
                our_retried, retryable,
                "{file} {name}: retries {our_retried:?}, the retryable names are {retryable:?}"
            );
            for crash in CRASHES_AND_TIMEOUTS {
                assert!(retried.contains(*crash), "{file} {name}: a Lambda {crash} is not retried");
            }
        }
    }
}

#[test]
fn every_wait_waits_the_runs_poll_interval() {
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            if state["Type"] == "Wait" {
                // The round trip's one Wait is its verification window, which the operator sets.
                let wanted = if file == ROUND_TRIP { "$.verification_seconds" } else { "$.run.poll_seconds" };
                assert_eq!(state["SecondsPath"], wanted, "{file} {name}");
                assert!(state["Seconds"].is_null(), "{file} {name}: a fixed wait does not grow with the RTO");
            }
        }
    }
}

/// History events one pass through a state adds: a Task is entered, scheduled, started, succeeded
/// and exited; a Parallel entered, started, succeeded and exited; anything else entered and exited.
fn events_of(state: &Value) -> u64 {
    match state["Type"].as_str() {
        Some("Task") => 5,
        Some("Parallel") => 4,
        _ => 2,
    }
}

/// The step key a Task answers into (`$.steps.<key>`), if any.
fn task_key(state: &Value) -> Option<StepKey> {
    state["ResultPath"].as_str().and_then(|p| p.strip_prefix("$.steps.")).and_then(step_key)
}

/// Where a pass goes next, staying in the loop: a Choice's Default, anything else's Next.
fn next_of(state: &Value) -> Option<&str> {
    if state["Type"] == "Choice" { state["Default"].as_str() } else { state["Next"].as_str() }
}

/// The worst-case history of one (sub)machine's loops, by phase: each Wait starts a loop whose
/// turn (Wait -> ... -> the Choice whose Default is the Wait) takes at least the poll interval,
/// so a phase polls at most `budget / poll` turns of its costliest loop. A Choice rule on `redo`
/// adds the states it passes (each one ready) before reaching a Wait, at most `MAX_STARTS` times
/// per standby instance. Returns (events per turn by phase, events of all redo turns).
fn loop_events(machine: &Value, file: &str) -> (BTreeMap<StepKey, u64>, u64) {
    let states = machine["States"].as_object().expect("States");
    let mut per_turn: BTreeMap<StepKey, u64> = BTreeMap::new();
    let mut redo = 0;
    for (wait_name, wait) in states.iter().filter(|(_, s)| s["Type"] == "Wait") {
        let (mut events, mut phases) = (events_of(wait), BTreeSet::new());
        let mut current = next_of(wait).expect("a Wait has a Next");
        for _ in 0..=states.len() {
            if current == wait_name {
                break;
            }
            let state = &states[current];
            events += events_of(state);
            phases.extend(task_key(state).map(|k| k.phase().first));
            for rule in state["Choices"].as_array().into_iter().flatten() {
                if rule["Variable"].as_str().is_some_and(|v| v.ends_with(".redo")) {
                    let mut extra = 0;
                    let mut at = rule["Next"].as_str().expect("a rule has a Next");
                    // The restart's path goes on when each step is ready: a Choice's first rule.
                    while states[at]["Type"] != "Wait" {
                        let state = &states[at];
                        extra += events_of(state);
                        let ready = state["Choices"][0]["Next"].as_str();
                        at = ready.or_else(|| state["Next"].as_str()).expect("a redo path reaches a Wait");
                    }
                    redo += extra * u64::from(MAX_STARTS) * MAX_STANDBY_INSTANCES as u64;
                }
            }
            current = next_of(state).unwrap_or_else(|| panic!("{file}: the loop of {wait_name} ends at {current}"));
        }
        assert_eq!(current, wait_name, "{file}: the loop of {wait_name} does not come back to it");
        assert_eq!(phases.len(), 1, "{file}: the loop of {wait_name} spans phases {phases:?}");
        let phase = phases.into_iter().next().expect("one phase");
        let worst = per_turn.entry(phase).or_default();
        *worst = (*worst).max(events);
    }
    (per_turn, redo)
}

/// The paths a run takes, by the phases (their first steps) it never enters: an unplanned run is
/// never fenced, never rolled back and is never a failback (which is planned: `RunbookState::
/// validate`), and asks about its data tier only when its compute branch succeeded (about its
/// capacity only when its data tier did); a planned one never waits for a decision, and either moves traffic (then, after a
/// failback, stands down) or rolls back. Another machine's phases are in none of these lists.
const RUN_PATHS: &[(&str, &[StepKey])] = &[
    (
        "unplanned, short of capacity",
        &[StepKey::Fence, StepKey::Unfence, StepKey::Diverged, StepKey::StandDown, StepKey::DataTierDecision],
    ),
    (
        "unplanned, data tier split",
        &[StepKey::Fence, StepKey::Unfence, StepKey::Diverged, StepKey::StandDown, StepKey::CapacityDecision],
    ),
    (
        "planned, moved",
        &[StepKey::Decision, StepKey::CapacityDecision, StepKey::DataTierDecision, StepKey::Unfence, StepKey::Diverged],
    ),
    (
        "planned, rolled back",
        &[
            StepKey::Decision,
            StepKey::CapacityDecision,
            StepKey::DataTierDecision,
            StepKey::FlipDns,
            StepKey::StandDown,
        ],
    ),
];

#[test]
fn the_worst_case_history_fits_the_quota_at_the_longest_rto() {
    let rto = Duration::from_secs(u64::from(LONGEST_RTO_MINUTES) * 60);
    let poll = poll_seconds(rto);
    for (file, definition) in definitions().into_iter().filter(|(file, _)| file != ROUND_TRIP) {
        let mut machines = vec![definition.clone()];
        machines.extend(
            states(&definition).into_iter().flat_map(|(_, s)| s["Branches"].as_array().cloned().unwrap_or_default()),
        );
        let (mut per_turn, mut redo) = (BTreeMap::new(), 0);
        for machine in &machines {
            let (turns, extra) = loop_events(machine, &file);
            for (phase, events) in turns {
                let worst: &mut u64 = per_turn.entry(phase).or_default();
                *worst = (*worst).max(events);
            }
            redo += extra;
        }
        // A run takes one path: the worst of them, each polling for every phase it enters.
        let (mut polling, mut per_rto_second, mut phases_seconds) = (0, 0.0_f64, 0.0_f64);
        for (path, never_entered) in RUN_PATHS {
            let (mut path_polling, mut path_per_rto_second, mut path_seconds) = (0, 0.0, 0.0);
            for (phase, events) in per_turn.iter().filter(|(phase, _)| !never_entered.contains(phase)) {
                let share = phase.phase().share_of_rto;
                let budget = rto.as_secs_f64() * share;
                path_polling += (budget / poll as f64).ceil() as u64 * events + events;
                path_per_rto_second += share * *events as f64;
                path_seconds += budget;
            }
            eprintln!("{file}: {path}: polling {path_polling} events, phases {path_seconds} s");
            polling = polling.max(path_polling);
            per_rto_second = per_rto_second.max(path_per_rto_second);
            phases_seconds = phases_seconds.max(path_seconds);
        }
        // Every state once, and every Task's Retry used up once (scheduled, started, failed).
        let all = states(&definition);
        let straight: u64 = 2 + all.iter().map(|(_, s)| events_of(s)).sum::<u64>();
        let retries: u64 = all
            .iter()
            .flat_map(|(_, s)| s["Retry"].as_array().cloned().unwrap_or_default())
            .map(|r| 3 * r["MaxAttempts"].as_u64().unwrap_or(3))
            .sum();
        let total = polling + redo + straight + retries;
        eprintln!(
            "{file}: RTO {} h, poll {poll} s: polling {polling} + restarts {redo} + states {straight} + retries {retries} = {total} events (quota {HISTORY_QUOTA})",
            rto.as_secs() / 3600
        );
        assert!(total <= HISTORY_QUOTA, "{file}: {total} events in the worst case");
        assert!(
            per_rto_second <= FAILOVER_EVENTS_PER_RTO_SECOND,
            "{file}: {per_rto_second} events per RTO second per poll second; poll_seconds assumes {FAILOVER_EVENTS_PER_RTO_SECOND}"
        );
        let timeout = definition["TimeoutSeconds"].as_f64().expect("an execution timeout");
        assert!(timeout >= phases_seconds, "{file}: TimeoutSeconds {timeout} < the phases' {phases_seconds} s");
    }
}

/// The largest estate the validation accepts (20 databases, 20 records, 20 Auto Scaling groups, 50
/// standby instances in 10 groups, 50 ECS services, 20 custom actions) at the longest RTO. Every
/// phase handles its resources inside its one Task (no Map state: a phase's history is the same
/// for one resource or fifty), so the bound above holds for it as it is; what grows is the work
/// of one function run, one call per resource in turn, within each API's request rate.
#[test]
fn the_largest_plan_the_validation_accepts_runs_in_the_same_bounded_history() {
    use dr_core::plan::{
        AutoScaling, CustomAction, Database, EcsService, InstanceSelector, MAX_AUTO_SCALING_GROUPS, MAX_CUSTOM_ACTIONS,
        MAX_DATABASES, MAX_DNS_RECORDS, MAX_ECS_SERVICES, MAX_STANDBY_GROUPS, TagFilter,
    };
    let mut plan = dr_core::Plan::load(&dr_tests::example_plan_path()).expect("the example plan");
    plan.targets.rto_minutes = LONGEST_RTO_MINUTES;
    plan.targets.rpo_minutes = plan.targets.rpo_minutes.min(LONGEST_RTO_MINUTES);
    plan.tier = 3;
    if let Some(test) = plan.restore_test.as_mut() {
        test.expiry_hours = LONGEST_RTO_MINUTES / 60 + 2;
    }
    let first = plan.databases[0].clone();
    plan.databases = (0..MAX_DATABASES)
        .map(|i| Database {
            primary_instance: format!("db-paris-{i}"),
            replica_instance: format!("db-ireland-{i}"),
            ..first.clone()
        })
        .collect();
    let record = plan.dns.records[0].clone();
    plan.dns.records = (0..MAX_DNS_RECORDS)
        .map(|i| {
            let mut each = record.clone();
            each.record = format!("app{i}.{}", plan.dns.hosted_zone);
            each
        })
        .collect();
    let group = plan.auto_scaling[0].clone();
    plan.auto_scaling = (0..MAX_AUTO_SCALING_GROUPS)
        .map(|i| AutoScaling { group: format!("web-ireland-{i}"), ..group.clone() })
        .collect();
    if let Some(fence) = plan.fence.as_mut() {
        fence.auto_scaling_group = (0..MAX_AUTO_SCALING_GROUPS).map(|i| format!("web-paris-{i}")).collect();
    }
    let per_group = u16::try_from(MAX_STANDBY_INSTANCES / MAX_STANDBY_GROUPS).expect("a count");
    plan.standby_instances = (0..MAX_STANDBY_GROUPS)
        .map(|i| InstanceSelector {
            tag: Some(TagFilter { key: "dr-standby".into(), value: format!("group-{i}") }),
            count: Some(per_group),
            minimum_healthy: 1,
            ..InstanceSelector::default()
        })
        .collect();
    plan.ecs_services = (0..MAX_ECS_SERVICES)
        .map(|i| EcsService {
            cluster: "platform".into(),
            service: format!("service-{i}"),
            failover_count: 10,
            standby_count: 0,
            minimum_healthy: 1,
        })
        .collect();
    let action = |i: usize| CustomAction {
        name: format!("action-{i}"),
        function: format!("dr-custom-action-{i}"),
        point: dr_core::plan::ActionPoint::AfterDataTier,
        timeout_seconds: 600,
    };
    plan.custom_actions = (0..MAX_CUSTOM_ACTIONS).map(action).collect();
    plan.validate().expect("the largest estate the validation accepts");
    // No state of any runbook iterates a plan's resources: each is one Task per phase, asked again
    // per poll, whatever the plan holds.
    for (file, definition) in definitions() {
        for (name, state) in states(&definition) {
            assert_ne!(state["Type"], "Map", "{file}: {name} would grow the history with the estate");
        }
    }
}

#[test]
fn the_round_trip_outlasts_its_legs_and_runs_each_leg_machine() {
    let all: BTreeMap<String, Value> = definitions().into_iter().collect();
    let round_trip = &all[ROUND_TRIP];
    let legs: Vec<(String, Value)> = states(round_trip).into_iter().filter(|(_, state)| is_leg(state)).collect();
    let mut machines_seconds = 0.0;
    for (name, state) in &legs {
        let machine = state["Parameters"]["StateMachineArn"].as_str().expect("a leg names its machine");
        let file = machine
            .strip_prefix("${")
            .and_then(|m| m.strip_suffix("StateMachineArn}"))
            .map(|m| format!("{}.asl.json", m.to_lowercase()))
            .expect("a substitution of a machine's ARN");
        let leg_machine = all.get(&file).unwrap_or_else(|| panic!("{name}: no statemachines/{file}"));
        let leg_timeout = leg_machine["TimeoutSeconds"].as_f64().expect("the leg's machine has a timeout");
        let task_timeout = state["TimeoutSeconds"].as_f64().expect("a leg Task has a timeout");
        assert!(task_timeout > leg_timeout, "{name}: the leg's machine ({leg_timeout} s) must time out first");
        assert_eq!(state["Parameters"]["Input.$"], "$.next", "{name}: a leg runs the input its Prepare step made");
        machines_seconds += task_timeout;
    }
    assert_eq!(legs.len(), Leg::ALL.len(), "one Task per leg");
    let window = (MAX_VERIFICATION_MINUTES * 60) as f64;
    let timeout = round_trip["TimeoutSeconds"].as_f64().expect("an execution timeout");
    assert!(timeout >= machines_seconds + window, "{timeout} s < the legs' {machines_seconds} s and the window");
}

/// The reconciler judges a run by the Tasks it entered: the ones it counts as changing nothing
/// are Tasks of the failover runbook (a renamed state would otherwise count as a change, or, worse,
/// a new state that changes the estate would be taken for one that does not: every Task that is
/// not read-only is listed here as changing).
#[test]
fn the_reconcilers_read_only_tasks_are_the_failover_runbooks() {
    let definition: Value = serde_json::from_str(
        &std::fs::read_to_string(dr_tests::repo_root().join("statemachines/failover.asl.json")).expect("definition"),
    )
    .expect("JSON");
    let mut tasks = Vec::new();
    collect_tasks(&definition["States"], &mut tasks);
    for name in dr_core::reconcile::TASKS_THAT_CHANGE_NOTHING {
        assert!(tasks.contains(&name.to_string()), "{name} is not a Task of failover.asl.json: {tasks:?}");
    }
    let mut changing: Vec<&str> = tasks
        .iter()
        .map(String::as_str)
        .filter(|t| !dr_core::reconcile::TASKS_THAT_CHANGE_NOTHING.contains(t))
        .collect();
    changing.sort_unstable();
    assert_eq!(
        changing,
        [
            "ActionsAfterCompute",
            "ActionsAfterComputeApproved",
            "ActionsAfterDataTier",
            "ActionsAfterDataTierApproved",
            "ActionsAfterTraffic",
            "ActionsBeforeDataTier",
            "AsgStatus",
            "Barrier",
            "DnsStatus",
            "Fence",
            "FlipDns",
            "MarkDiverged",
            "PromoteReplica",
            "ReplicaStatus",
            "ScaleAsg",
            "StandDown",
            "StandbyStatus",
            "StartStandby",
            "Unfence"
        ],
        "a new Task: say whether it changes the estate (dr_core::reconcile::TASKS_THAT_CHANGE_NOTHING)"
    );
}

fn collect_tasks(states: &Value, tasks: &mut Vec<String>) {
    for (name, state) in states.as_object().into_iter().flatten() {
        if state["Type"] == "Task" {
            tasks.push(name.clone());
        }
        for branch in state["Branches"].as_array().into_iter().flatten() {
            collect_tasks(&branch["States"], tasks);
        }
    }
}

/// The `Key: value` lines of every `DefinitionSubstitutions:` block of the template (the YAML
/// read as text: its values are short intrinsic tags, one per line).
fn definition_substitutions(template: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut block_indent = None;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        if line.trim() == "DefinitionSubstitutions:" {
            block_indent = Some(indent);
            continue;
        }
        match block_indent {
            Some(outer) if !line.trim().is_empty() && indent > outer => {
                if let Some((key, value)) = line.trim().split_once(": ") {
                    found.push((key.to_string(), value.to_string()));
                }
            }
            Some(_) if line.trim().is_empty() => {}
            _ => block_indent = None,
        }
    }
    found
}

/// A deployment during a run must not change the run's code: every Task names the function
/// version the deployment published (`AutoPublishAlias` publishes one per deployment; the
/// definition an execution started with keeps naming it), never `$LATEST` (`GetAtt Fn.Arn`) nor
/// the alias, which the next deployment moves.
#[test]
fn the_state_machines_invoke_the_function_versions_the_deployment_published() {
    let template = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let globals = template.split("\nResources:").next().unwrap_or_default();
    assert!(globals.contains("\n    AutoPublishAlias: "), "Globals.Function publishes a version per deployment");
    let substitutions = definition_substitutions(&template);
    let functions: Vec<&(String, String)> =
        substitutions.iter().filter(|(key, _)| key.ends_with("FunctionArn")).collect();
    let used: BTreeSet<String> = definitions()
        .iter()
        .flat_map(|(_, definition)| {
            let text = definition.to_string();
            text.split("${").skip(1).filter_map(|rest| rest.split('}').next().map(str::to_string)).collect::<Vec<_>>()
        })
        .filter(|name| name.ends_with("FunctionArn"))
        .collect();
    assert!(!used.is_empty(), "the definitions invoke functions");
    for name in &used {
        assert!(functions.iter().any(|(key, _)| key == name), "{name} is substituted by the template");
    }
    for (key, value) in functions {
        let function = value.strip_prefix("!Ref ").and_then(|v| v.strip_suffix(".Version"));
        let function = function.unwrap_or_else(|| panic!("{key}: {value} is not a function's published version"));
        assert!(
            template.contains(&format!("\n  {function}:\n    Type: AWS::Serverless::Function")),
            "{key}: {function} is a function of the template"
        );
    }
}

/// The lines of one resource of the template, from its logical id to the next resource.
fn resource_text(template: &str, logical_id: &str) -> String {
    let header = format!("  {logical_id}:");
    let mut lines = template.lines().skip_while(|line| *line != header);
    let first = lines.next().unwrap_or_else(|| panic!("{logical_id} in the template"));
    let body = lines.take_while(|line| line.is_empty() || line.starts_with("   "));
    std::iter::once(first).chain(body).collect::<Vec<_>>().join("\n")
}

/// The functions that invoke the plan's hooks run with the timeout the plan rules bound a hook's
/// by (`MAX_HOOK_TIMEOUT_SECONDS` leaves them the rest): Globals' timeout, not overridden.
#[test]
fn the_functions_that_invoke_hooks_have_the_timeout_the_plan_rules_assume() {
    let template = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let globals = template.split("\nResources:").next().unwrap_or_default();
    let expected = format!("\n    Timeout: {}\n", dr_core::plan::HOOK_CALLER_TIMEOUT_SECONDS);
    assert!(globals.contains(&expected), "Globals.Function.Timeout is {}", dr_core::plan::HOOK_CALLER_TIMEOUT_SECONDS);
    for function in ["FenceFunction", "RestoreValidateFunction"] {
        let text = resource_text(&template, function);
        assert!(text.contains("Type: AWS::Serverless::Function"), "{function}: {text}");
        assert!(!text.contains("\n      Timeout:"), "{function} keeps Globals' timeout");
    }
}

/// The substitutions of the state machine whose definition is `definition` (its
/// `DefinitionSubstitutions` block, from its `DefinitionUri` to the next resource).
fn machine_substitutions(template: &str, definition: &str) -> BTreeMap<String, String> {
    let uri = format!("      DefinitionUri: statemachines/{definition}\n");
    let at = template.find(&uri).unwrap_or_else(|| panic!("a state machine of the template runs {definition}"));
    // The rest of that resource: its lines are indented deeper than a resource's logical id.
    let resource: Vec<&str> =
        template[at..].lines().take_while(|line| line.is_empty() || line.starts_with("   ")).collect();
    definition_substitutions(&resource.join("\n")).into_iter().collect()
}

/// The `Handler` of the template's function `logical_id`.
fn handler_of(template: &str, logical_id: &str) -> String {
    let text = resource_text(template, logical_id);
    assert!(text.contains("Type: AWS::Serverless::Function"), "{logical_id} is a function of the template");
    text.lines()
        .find_map(|line| line.strip_prefix("      Handler: "))
        .unwrap_or_else(|| panic!("{logical_id} names its Handler"))
        .trim()
        .to_string()
}

/// A step is one row of its runbook's table (`dr_core::run::table`), and the table is what the
/// state machine and the template say: every Task whose record lands at `$.steps.<key>` is a
/// row's state, sends the row's action, puts the record at the row's key, and invokes the
/// function whose `Handler` is the row's handler; every row's states are Tasks of the definition;
/// every `StepKey` is one row's.
#[test]
fn every_runbook_step_is_one_row_of_its_table_and_the_table_is_what_the_machine_and_template_say() {
    use dr_core::run::table::Runbook;
    let template = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let runbooks: [&Runbook; 3] =
        [&dr_core::runbook::FAILOVER, &dr_core::runbook::REPROTECT, &dr_core::restore::RESTORE_TEST];
    let mut keys: Vec<StepKey> = Vec::new();
    for runbook in runbooks {
        let text = std::fs::read_to_string(dr_tests::repo_root().join("statemachines").join(runbook.definition))
            .expect("the runbook's definition");
        let definition: Value = serde_json::from_str(&text).expect("JSON");
        let substitutions = machine_substitutions(&template, runbook.definition);
        let tasks: BTreeMap<String, Value> =
            states(&definition).into_iter().filter(|(_, state)| state["Type"] == "Task").collect();
        for (name, task) in &tasks {
            let Some(path) = task["ResultPath"].as_str().filter(|p| p.starts_with("$.steps.")) else { continue };
            let rows: Vec<_> = runbook.steps.iter().filter(|step| step.states.contains(&name.as_str())).collect();
            let [row] = rows.as_slice() else {
                panic!("{}: Task {name} is {} rows of the table (one)", runbook.definition, rows.len());
            };
            let what = format!("{}: Task {name}", runbook.definition);
            assert_eq!(path, row.result_path(), "{what}: ResultPath");
            assert_eq!(
                task["Parameters"]["action"],
                serde_json::to_value(row.action).expect("action"),
                "{what}: action"
            );
            let resource = task["Resource"].as_str().unwrap_or_default();
            let substituted = resource.strip_prefix("${").and_then(|r| r.strip_suffix('}')).unwrap_or(resource);
            let value = substitutions.get(substituted).unwrap_or_else(|| panic!("{what}: {resource} is substituted"));
            let function = value.strip_prefix("!Ref ").and_then(|v| v.strip_suffix(".Version")).unwrap_or(value);
            assert_eq!(handler_of(&template, function), row.handler, "{what}: {function}'s Handler");
        }
        for row in runbook.steps {
            for state in row.states {
                assert!(
                    tasks.contains_key(*state),
                    "{}: the row of {} names Task {state}",
                    runbook.definition,
                    row.name
                );
            }
            assert!(!row.states.is_empty(), "{}: {} is asked by some Task", runbook.definition, row.name);
            keys.push(row.key);
        }
    }
    keys.sort();
    let mut unique = keys.clone();
    unique.dedup();
    assert_eq!(keys, unique, "a key is one row's: two rows would write the same record");
    assert_eq!(unique, StepKey::all().collect::<Vec<_>>(), "every StepKey is a row's");
}

/// Evidence that holds (issue 35, in part): with `ReportRetentionDays`, the report bucket is
/// created with S3 Object Lock and a default retention of that many days in the chosen mode;
/// without it, no lock (cfn-lint and checkov check the rest of the template in `scripts/test`).
#[test]
fn the_report_bucket_is_write_once_for_the_retention_the_deployment_chooses() {
    let template = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    assert!(template.contains("  LocksReports: !Not [!Equals [!Ref ReportRetentionDays, 0]]"), "the condition");
    let bucket =
        template.split("\n  ReportBucket:\n").nth(1).and_then(|rest| rest.split("\n\n").next()).expect("ReportBucket");
    for line in [
        "ObjectLockEnabled: !If [LocksReports, true, !Ref AWS::NoValue]",
        "ObjectLockConfiguration: !If",
        "- LocksReports",
        "Mode: !Ref ReportRetentionMode",
        "Days: !Ref ReportRetentionDays",
        "Status: Enabled",
    ] {
        assert!(bucket.contains(line), "ReportBucket lacks {line:?}:\n{bucket}");
    }
}

/// What the code publishes, as the dashboard may search it: (namespace, metric, dimension names
/// in alphabetical order). The readiness check (`PlanStatus`, `NotReady`, `Finding`), the alarm
/// trigger (`Decisions`), the RPO check (its namespace is the `RpoMetricNamespace` parameter,
/// whose default is the code's) and the report functions (`dr_core::report::run_metrics`).
const PUBLISHED: &[(&str, &str, &[&str])] = &[
    (dr_core::readiness::scheduled::READINESS_NAMESPACE, "PlanStatus", &["Plan", "Status"]),
    (dr_core::readiness::scheduled::READINESS_NAMESPACE, "NotReady", &["Plan"]),
    (dr_core::readiness::scheduled::READINESS_NAMESPACE, "Finding", &["Finding", "Plan"]),
    (dr_core::trigger::DECISION_NAMESPACE, dr_core::trigger::DECISION_METRIC, &["Decision", "Plan"]),
    (dr_core::rpo::check::DEFAULT_NAMESPACE, "ReplicationLagSeconds", &["Pair", "Plan"]),
    (dr_core::rpo::check::DEFAULT_NAMESPACE, "RpoBudgetUsedPercent", &["Pair", "Plan"]),
    (dr_core::rpo::check::DEFAULT_NAMESPACE, "NotReplicating", &["Pair", "Plan"]),
    (dr_core::rpo::check::DEFAULT_NAMESPACE, "MaxRpoBudgetUsedPercent", &["Plan"]),
    (dr_core::rpo::check::DEFAULT_NAMESPACE, "NotReplicatingPairs", &["Plan"]),
    (dr_core::report::RUNS_NAMESPACE, "RunsFinished", &["Kind", "Outcome", "Plan"]),
    (dr_core::report::RUNS_NAMESPACE, "AchievedRtoSeconds", &["Kind", "Plan"]),
    (dr_core::report::RUNS_NAMESPACE, "RtoTargetSeconds", &["Plan"]),
];

/// The region the dashboard is substituted with here.
const SAMPLE_REGION: &str = "eu-west-1";

/// The ARN `${Alarm.Arn}` is substituted with here, and back.
fn sample_alarm_arn(logical_id: &str) -> String {
    format!("arn:aws:cloudwatch:{SAMPLE_REGION}:123456789012:alarm:{logical_id}")
}

fn alarm_of_sample_arn(arn: &str) -> String {
    let prefix = sample_alarm_arn("");
    arn.strip_prefix(&prefix).unwrap_or_else(|| panic!("{arn} is not an alarm's ARN (${{Alarm.Arn}})")).to_string()
}

/// Every `AWS::CloudWatch::Alarm` of the template's Resources, with its `Condition` if it has one.
fn template_alarms(template: &str) -> BTreeMap<String, Option<String>> {
    let resources = template.split("\nResources:\n").nth(1).and_then(|rest| rest.split("\nOutputs:\n").next());
    let resources = resources.expect("the template's Resources");
    let mut alarms = BTreeMap::new();
    for line in resources.lines() {
        let Some(id) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':')) else { continue };
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
            continue;
        }
        let text = resource_text(resources, id);
        if text.contains("\n    Type: AWS::CloudWatch::Alarm\n") {
            let condition = text.lines().find_map(|l| l.strip_prefix("    Condition: ")).map(|c| c.trim().to_string());
            alarms.insert(id.to_string(), condition);
        }
    }
    alarms
}

/// The dashboard's `DashboardBody: !Sub [<literal block>, <variables>]` as written: the JSON with
/// its `${...}` unsubstituted, and each variable's value (its YAML text, one line each).
fn dashboard_source(template: &str) -> (String, BTreeMap<String, String>) {
    let text = resource_text(template, "PostureDashboard");
    assert!(text.contains("\n    Type: AWS::CloudWatch::Dashboard\n"), "PostureDashboard is a dashboard:\n{text}");
    assert!(text.contains("\n      DashboardName: !Sub \"${AWS::StackName}-dr-posture\"\n"), "one per deployment");
    let (_, rest) = text
        .split_once("\n      DashboardBody: !Sub\n        - |\n")
        .expect("DashboardBody: !Sub with a literal block and its variables");
    let mut body = Vec::new();
    let mut variables = BTreeMap::new();
    let mut in_variables = false;
    for line in rest.lines().filter(|line| !line.trim().is_empty()) {
        let entry = if in_variables {
            line.strip_prefix("          ")
        } else if let Some(first) = line.strip_prefix("        - ") {
            in_variables = true;
            Some(first)
        } else {
            body.push(line.strip_prefix("          ").unwrap_or_else(|| panic!("a line of the block: {line:?}")));
            continue;
        };
        let (name, value) = entry.and_then(|e| e.split_once(": ")).unwrap_or_else(|| panic!("a variable: {line:?}"));
        variables.insert(name.to_string(), value.to_string());
    }
    (body.join("\n"), variables)
}

/// A variable that lists a conditional alarm: `!If [Condition, '"<its ARN>", ', ""]` (empty when
/// the alarm does not exist, so the alarm list stays valid JSON): (condition, alarm).
fn conditional_alarm_entry(value: &str) -> Option<(String, String)> {
    let (condition, rest) = value.strip_prefix("!If [")?.split_once(", ")?;
    let alarm = rest.strip_prefix(r#"!Join ["", ['"', !GetAtt "#)?.strip_suffix(r#".Arn, '", ']], ""]"#)?;
    Some((condition.to_string(), alarm.to_string()))
}

/// The body with every `${...}` replaced: `${X.Arn}` by a sample ARN naming X, the others from
/// `values` (a name it lacks fails the test: every substitution is known).
fn substitute(body: &str, values: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some(at) = rest.find("${") {
        out.push_str(&rest[..at]);
        let (name, after) = rest[at + 2..].split_once('}').expect("every ${ is closed");
        match name.strip_suffix(".Arn") {
            Some(id) => out.push_str(&sample_alarm_arn(id)),
            None => out.push_str(values.get(name).unwrap_or_else(|| panic!("${{{name}}} is not a known substitution"))),
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// A search: (namespace, dimension names in alphabetical order, the search terms as written).
fn parse_search(expression: &str) -> (String, Vec<String>, String) {
    let query = expression
        .strip_prefix("SEARCH('{")
        .and_then(|rest| rest.split_once("', '"))
        .map(|(query, _)| query)
        .unwrap_or_else(|| panic!("SEARCH('{{schema}} terms', 'Stat', period): {expression}"));
    let (schema, terms) = query.split_once('}').unwrap_or_else(|| panic!("a metric schema: {expression}"));
    let mut parts = schema.split(',').map(|part| part.trim().trim_matches('"').to_string());
    let namespace = parts.next().unwrap_or_default();
    let mut dimensions: Vec<String> = parts.collect();
    dimensions.sort();
    (namespace, dimensions, terms.trim().to_string())
}

/// The `Name="value"` terms of a search (`NOT` and other words left out).
fn search_filters(terms: &str) -> Vec<(String, String)> {
    terms
        .split_whitespace()
        .filter_map(|term| term.split_once("=\""))
        .map(|(name, value)| (name.to_string(), value.trim_end_matches('"').to_string()))
        .collect()
}

/// Issue 35 (in part): the stack's dashboard. Plans are data, so every metric widget finds the
/// plans by metric search, never by a plan name; each search is of a metric the code publishes,
/// with its dimensions; the alarm widget lists every alarm of the template, a conditional one
/// through a substitution that keeps the body valid JSON whether or not the alarm exists.
#[test]
fn the_dashboard_finds_every_plan_by_metric_search_and_shows_every_alarm() {
    use dr_core::report::RunKind;
    let template = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let (body, variables) = dashboard_source(&template);
    let example = dr_core::Plan::load(&dr_tests::example_plan_path()).expect("the example plan");
    assert!(!body.contains("PlanName"), "the dashboard names no plan (PlanName): plans are found by search");
    assert!(!body.contains(&example.name), "the dashboard names no plan ({})", example.name);
    let namespace_default =
        format!("  RpoMetricNamespace:\n    Type: String\n    Default: {}\n", dr_core::rpo::check::DEFAULT_NAMESPACE);
    assert!(template.contains(&namespace_default), "RpoMetricNamespace defaults to the RPO check's namespace");

    let alarms = template_alarms(&template);
    assert!(alarms.len() >= 5, "the template's alarms: {alarms:?}");
    let mut conditional = BTreeMap::new();
    for (name, value) in &variables {
        let (condition, alarm) = conditional_alarm_entry(value)
            .unwrap_or_else(|| panic!("{name}: {value} is not a conditional alarm's entry"));
        assert_eq!(alarms.get(&alarm), Some(&Some(condition.clone())), "{name}: {alarm} is an alarm under {condition}");
        conditional.insert(name.clone(), (condition, alarm));
    }
    let kinds: Vec<&str> = [
        RunKind::Failover,
        RunKind::Failback,
        RunKind::Drill,
        RunKind::DryRun,
        RunKind::RoundTrip,
        RunKind::RestoreTest,
    ]
    .into_iter()
    .map(RunKind::name)
    .collect();

    // Once with every condition true, once with every one false.
    for holds in [true, false] {
        let mut values: BTreeMap<&str, String> = BTreeMap::from([
            ("AWS::StackName", "dr-orchestrator".to_string()),
            ("AWS::Region", SAMPLE_REGION.to_string()),
            ("RpoMetricNamespace", dr_core::rpo::check::DEFAULT_NAMESPACE.to_string()),
            ("RpoWarningPercent", "50".to_string()),
        ]);
        for (name, (_, alarm)) in &conditional {
            let entry = if holds { format!("\"{}\", ", sample_alarm_arn(alarm)) } else { String::new() };
            values.insert(name.as_str(), entry);
        }
        let json = substitute(&body, &values);
        let dashboard: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("conditions {holds}: the body is not JSON ({e}):\n{json}"));
        let widgets = dashboard["widgets"].as_array().expect("widgets");
        assert_eq!(widgets[0]["type"], "text", "a text widget first");
        let markdown = widgets[0]["properties"]["markdown"].as_str().unwrap_or_default();
        assert!(markdown.contains("docs/operations.md"), "the text points to the runbook: {markdown}");

        let mut listed: Vec<String> = Vec::new();
        let mut namespaces = BTreeSet::new();
        let mut restore_tests = false;
        for widget in widgets {
            let properties = &widget["properties"];
            let title = properties["title"].as_str().unwrap_or_default();
            match widget["type"].as_str() {
                Some("text") => continue,
                Some("alarm") => {
                    assert!(!title.is_empty(), "an alarm widget has a title");
                    let arns = properties["alarms"].as_array().expect("alarms");
                    listed.extend(arns.iter().map(|arn| alarm_of_sample_arn(arn.as_str().expect("an ARN"))));
                    continue;
                }
                Some("metric") => {}
                other => panic!("a widget of type {other:?}"),
            }
            assert!(!title.is_empty(), "every metric widget says what it shows");
            assert_eq!(properties["region"], SAMPLE_REGION, "{title}: the stack's region");
            let mut searched = Vec::new();
            for metric in properties["metrics"].as_array().expect("metrics") {
                let [only] = metric.as_array().map(Vec::as_slice).unwrap_or_default() else {
                    panic!("{title}: {metric} is a literal metric, not a search");
                };
                let expression = only["expression"].as_str().unwrap_or_default();
                assert!(expression.starts_with("SEARCH('"), "{title}: {expression} is a metric search");
                let (namespace, dimensions, terms) = parse_search(expression);
                let name = terms
                    .split("MetricName=\"")
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or_else(|| panic!("{title}: {expression} names its metric exactly"));
                let published = PUBLISHED.iter().any(|(ns, metric, dims)| {
                    *ns == namespace
                        && *metric == name
                        && dims.iter().copied().eq(dimensions.iter().map(String::as_str))
                });
                assert!(published, "{title}: {namespace} {name} {dimensions:?} is not what the code publishes");
                for (filter, value) in search_filters(&terms) {
                    assert_ne!(filter, "Plan", "{title}: {expression} freezes a plan");
                    if filter != "MetricName" {
                        assert!(dimensions.contains(&filter), "{title}: {filter} is a dimension of {name}");
                    }
                    if filter == "Kind" {
                        assert!(kinds.contains(&value.as_str()), "{title}: Kind {value} is a run kind ({kinds:?})");
                    }
                }
                namespaces.insert(namespace);
                searched.push((name.to_string(), terms));
            }
            assert!(!searched.is_empty(), "{title}: a metric widget shows something");
            if title.starts_with("Restore-test durations against the RTO") {
                let restore = format!("Kind=\"{}\"", RunKind::RestoreTest.name());
                restore_tests = searched.iter().any(|(name, terms)| {
                    name == "AchievedRtoSeconds" && terms.contains(&restore) && !terms.contains("NOT")
                }) && searched.iter().any(|(name, _)| name == "RtoTargetSeconds");
            }
        }
        assert!(restore_tests, "a widget shows restore-test durations against the RTO target");
        let expected_namespaces: BTreeSet<String> = PUBLISHED.iter().map(|(ns, _, _)| ns.to_string()).collect();
        assert_eq!(namespaces, expected_namespaces, "the dashboard searches each namespace the code publishes");

        let expected: BTreeSet<String> = alarms
            .iter()
            .filter(|(_, condition)| holds || condition.is_none())
            .map(|(alarm, _)| alarm.clone())
            .collect();
        let unique: BTreeSet<String> = listed.iter().cloned().collect();
        assert_eq!(unique.len(), listed.len(), "an alarm is listed once: {listed:?}");
        assert_eq!(unique, expected, "conditions {holds}: the alarm widget lists every alarm of the template");
        assert!(listed.len() <= 100, "an alarm widget lists at most 100 alarms");
    }
}
