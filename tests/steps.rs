//! Runbook steps called directly (no state machine) against the emulated estate: the guards.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use dr_core::run::table::run_step;
use dr_core::run::{GateVerdict, RunInfo, RunbookState, StepAction};
use dr_core::runbook::{FAILOVER, REPROTECT, report_task};
use dr_core::store::{Decision, DecisionStatus, PlanStore, Question};
use dr_emulator::estate::ensure_bucket;
use dr_tests::{failover_input, invoke_lambda, seeded_estate, unique_suffix};

fn state_for(plan: dr_core::Plan) -> RunbookState {
    RunbookState::new(plan, RunInfo::new(format!("steps-{}", unique_suffix()), dr_core::time::now(), "test"))
}

#[tokio::test]
async fn every_step_refuses_bad_input_before_any_aws_call() {
    let (plan, clients) = seeded_estate().await;
    let mut bad_run_id = state_for(plan.clone());
    bad_run_id.run.id = "not a run id!".to_string();
    let mut bad_plan = state_for(plan);
    dr_tests::dr_group_mut(&mut bad_plan.plan).failover.desired = 0;
    for (state, expected) in [(bad_run_id, "InvalidInput"), (bad_plan, "InvalidPlan")] {
        for runbook in [FAILOVER, REPROTECT] {
            for step in runbook.steps {
                let mark = clients.calls.mark();
                let err = Box::pin(run_step(step, &clients, &state)).await.expect_err("bad input is refused");
                assert_eq!(err.name(), expected, "{} {:?}", step.handler, step.action);
                assert!(clients.calls.since(mark).is_empty(), "{} {:?} called AWS", step.handler, step.action);
            }
        }
        for action in [StepAction::Act, StepAction::GiveBack] {
            let mark = clients.calls.mark();
            let err = Box::pin(report_task(action, &clients, &state)).await.expect_err("bad input is refused");
            assert_eq!(err.name(), expected, "the report, {action:?}");
            assert!(clients.calls.since(mark).is_empty(), "the report {action:?} called AWS");
        }
    }
}

#[tokio::test]
async fn a_replica_promoted_outside_the_runbook_needs_a_human_approval() {
    let (plan, clients) = seeded_estate().await;
    // Someone promoted the replica by hand, days ago: its data age is unknown to the runbook.
    clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&plan.databases[0].replica_instance)
        .send()
        .await
        .expect("PromoteReadReplica");
    let state = state_for(plan);
    let err = Box::pin(FAILOVER.run("preflight", StepAction::Act, &clients, &state))
        .await
        .expect_err("no approval, no failover");
    assert_eq!(err.name(), "ReplicaNotReplicating", "{err}");

    // A human approves it: a decision recorded in the plan store for this run, which the gate
    // reads (nothing in the run's state carries an approval).
    let store = PlanStore::new(clients.dr.s3.clone(), format!("plans-{}", state.plan.name));
    dr_emulator::estate::ensure_bucket(&clients.dr, &store.reference().bucket).await.expect("plan store");
    let mut approved = state;
    approved.run.plan_state = Some(store.reference());
    let now = dr_core::time::now();
    let question = Decision {
        plan: approved.plan.name.clone(),
        run_id: approved.run.id.clone(),
        asks: Question::RpoGate,
        status: DecisionStatus::Pending,
        question: err.to_string(),
        asked_at: now,
        execution_arn: None,
        deadline: dr_core::time::after(now, std::time::Duration::from_secs(600)),
        decided_by: None,
        decided_by_id: None,
        decided_at: None,
        reason: None,
    };
    let direction = dr_core::plan::Direction::ToDr;
    store
        .take_for_run(&approved.plan, direction, &approved.run.id, "test", "a run holding the plan")
        .await
        .expect("taken");
    store.ask_decision(&question).await.expect("asked");
    let dba =
        dr_core::run::Principal { arn: "arn:aws:iam::123456789012:user/dba".into(), user_id: "AIDAEXAMPLEDBA".into() };
    store
        .decide(
            &approved.plan,
            &approved.run,
            Question::RpoGate,
            DecisionStatus::Approved,
            &dba,
            "checked the data by hand",
        )
        .await
        .expect("approved");
    let record =
        Box::pin(FAILOVER.run("preflight", StepAction::Act, &clients, &approved)).await.expect("approved preflight");
    let gate = record.gate.expect("gate decision");
    assert_eq!(gate.verdict, GateVerdict::Approved);
    assert_eq!(gate.approval.map(|a| a.by), Some(dba.arn));
}

/// A task input the Lambda cannot parse (a time that is not RFC 3339) is refused with
/// `InvalidInput`, one carrying a plan with `UntrustedInput`, before the handler runs, so before
/// any AWS call.
#[tokio::test]
async fn a_malformed_task_input_gets_invalid_input_from_the_lambda() {
    let (plan, _) = seeded_estate().await;
    let mut bad_time = serde_json::json!({ "action": "act", "state": state_for(plan) });
    bad_time["state"]["run"]["triggered_at"] = "yesterday".into();
    // A plan in the state is refused by its own name: a run acts on the published plan it names.
    let half_plan = serde_json::json!({"action": "act", "state": {"plan": {"name": "x"}}});
    for (payload, error) in [(half_plan, "UntrustedInput"), (bad_time, "InvalidInput")] {
        for function in ["preflight", "promote-replica", "start-standby", "scale-asg", "flip-dns", "failover-report"] {
            let (answer, function_error) = dr_tests::invoke_lambda(function, &payload);
            assert_eq!(function_error.as_deref(), Some("Unhandled"), "{function}: {answer}");
            assert_eq!(answer["errorType"], error, "{function}: {answer}");
        }
    }
}

/// A hook is given the plan's own time, not the SDK's 6 s attempt: the fence function invokes a
/// maintenance switch that takes 30 s (the application's, `application-hooks` in the local
/// Lambda service) and the fence holds on its first attempt, the switch turned once.
#[tokio::test(flavor = "multi_thread")]
async fn a_hook_that_takes_30_s_is_answered_and_invoked_once() {
    let (mut plan, clients) = seeded_estate().await;
    let fence = plan.fence.as_mut().expect("the plan has a [fence]");
    fence.auto_scaling_group.clear();
    fence.database_read_only = false;
    fence.lambda = Some("application-hooks".to_string());
    fence.barrier_function = Some("application-hooks".to_string());
    fence.hook_timeout_seconds = 40;
    assert!(plan.validate().is_ok(), "{:?}", plan.validate());
    // The deployment of this plan (its FenceFunctionName), as `sam deploy` with its parameters
    // would make it: without it the fence's role may not invoke the switch, unless another test
    // happened to register a deployment that names it (the local IAM allows what any registered
    // deployment allows).
    dr_emulator::iam::register_deployment(&clients, &plan, None).await.expect("the plan's deployment");
    ensure_bucket(&clients.dr, "dr-local-application").await.expect("application bucket");
    let slow = clients.dr.s3.put_object().bucket("dr-local-application").key(format!("slow/{}", plan.name));
    slow.body(aws_sdk_s3::primitives::ByteStream::from_static(b"30")).send().await.expect("a slow switch");

    let input = failover_input(&plan, &format!("slow-hook-{}", unique_suffix())).await;
    let started = std::time::Instant::now();
    let (answer, error) = invoke_lambda("fence", &serde_json::json!({ "action": "act", "state": input }));
    assert_eq!(error, None, "{answer}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(30), "the switch took its time");
    assert_eq!(answer["outcome"], "changed", "{answer}");
    assert_eq!(answer["ready"], true, "{answer}");

    let switch =
        clients.dr.s3.get_object().bucket("dr-local-application").key(format!("maintenance/{}.json", plan.name));
    let object = switch.send().await.expect("the switch was used");
    let state: serde_json::Value =
        serde_json::from_slice(&object.body.collect().await.expect("body").into_bytes()).expect("json");
    assert_eq!((state["maintenance"].as_bool(), state["switched"].as_u64()), (Some(true), Some(1)), "{state}");
}

/// A hook may take at most its caller's timeout less the rest of the step: a plan asking more is
/// refused by name.
#[test]
fn a_hook_timeout_beyond_its_callers_is_refused_by_the_plan_rules() {
    let mut plan = dr_core::Plan::load(&dr_tests::example_plan_path()).expect("the example plan");
    if let Some(fence) = plan.fence.as_mut() {
        fence.hook_timeout_seconds = dr_core::plan::MAX_HOOK_TIMEOUT_SECONDS + 1;
    }
    let problems = plan.validate().expect_err("refused");
    assert!(problems.to_string().contains("fence.hook_timeout_seconds"), "{problems}");
}
