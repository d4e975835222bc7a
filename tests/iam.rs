//! Least privilege, proven: every call a local function makes is authorized against its own
//! template role by a real IAM evaluator (crates/dr-emulator/moto/iam.py). These tests show the
//! enforcement itself (a call outside the role is AccessDenied, answered as AWS answers and named
//! by the run) and the paths the review found denied on AWS, each red on the template before the
//! fix: the scheduled RPO check, the readiness check's health checks, and the fence's hooks.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use dr_core::run::{RunInfo, RunbookState};
use dr_emulator::estate::{SeedOptions, seed};
use dr_emulator::iam::report;
use dr_tests::{emulator_clients, example_plan_path, invoke_lambda, repo_root, seeded_estate, unique_suffix};

fn state_for(plan: dr_core::Plan) -> RunbookState {
    RunbookState::new(plan, RunInfo::new(format!("iam-{}", unique_suffix()), dr_core::time::now(), "test"))
}

/// The local Lambda service's environment for a function (`.emulator/functions.json`, written from
/// template.yaml by scripts/lambdas): where its scheduled runs read their plans.
fn function_variable(handler: &str, variable: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join(".emulator/functions.json")).expect("scripts/lambdas wrote it");
    let functions: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    functions[handler]["environment"][variable].as_str().expect("the variable is set").to_string()
}

/// A step's call on a resource its role does not name is refused by IAM as AWS refuses it
/// (AccessDenied, with the action and the resource), the step fails with the stable name
/// `AccessDenied` that Step Functions sees, and the local IAM records the denial against the
/// function.
#[tokio::test]
async fn a_call_outside_the_functions_role_is_access_denied_and_the_run_names_it() {
    let (plan, clients) = seeded_estate().await;
    let mut outside = plan.clone();
    // A replica no deployment's role names.
    outside.databases[0].replica_instance = format!("iam-denied-{}", unique_suffix());
    dr_tests::publish(&outside).await;
    let payload = serde_json::json!({ "action": "act", "state": state_for(outside.clone()) });
    let (answer, function_error) = invoke_lambda("promote-replica", &payload);
    assert_eq!(function_error.as_deref(), Some("Unhandled"), "{answer}");
    assert_eq!(answer["errorType"], "AccessDenied", "{answer}");
    let message = answer["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("rds:DescribeDBInstances"), "{message}");
    assert!(message.contains(&outside.databases[0].replica_instance), "{message}");
    let seen = report(&clients).await.expect("the local IAM's report");
    let denied = &seen.functions["PromoteReplicaFunction"].denied;
    assert!(
        denied
            .iter()
            .any(|d| d.resource.as_deref().is_some_and(|r| r.ends_with(&outside.databases[0].replica_instance))),
        "{denied:?}"
    );
    // The same step on the deployment's own replica is allowed.
    let (answer, function_error) =
        invoke_lambda("promote-replica", &serde_json::json!({ "action": "status", "state": state_for(plan) }));
    assert_eq!(function_error, None, "{answer}");
}

/// The functions a schedule or an operator invokes run as deployed, on the local stack's own plan
/// store and plan (the example plan): the RPO check reads the plan's state and its previous
/// snapshot (S3 answers 403 for a missing object without s3:ListBucket) and publishes its
/// metrics; the readiness check finds both health checks through their tags
/// (route53:ListTagsForResources); the trigger's schedule, the restore-test janitor and start, and
/// a game-day dry run make their calls under their roles. On the template before the fix the RPO
/// check failed and the readiness check's health-check rows were CheckFailed on every run.
#[tokio::test]
async fn the_scheduled_and_operator_functions_run_under_their_roles() {
    let plan = dr_core::Plan::load(&example_plan_path()).expect("the example plan");
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("the example estate");
    let bucket = function_variable("rpo-check", "PLAN_STATE_BUCKET");
    // The deployment's state machines, as the functions' variables name them (stand-ins: what
    // they run is not the point here).
    for variable in [("game-day", "STATE_MACHINE_ARN"), ("restore-test-start", "RESTORE_STATE_MACHINE_ARN")] {
        let arn = function_variable(variable.0, variable.1);
        let name = arn.rsplit(':').next().expect("a state machine ARN");
        dr_tests::register_stand_in(&clients, &plan, &bucket, name).await;
    }
    for (function, event) in [
        ("rpo-check", "rpo-check-schedule.json"),
        ("readiness-check", "rpo-check-schedule.json"),
        ("alarm-trigger", "alarm-trigger-schedule.json"),
        ("restore-janitor", "restore-janitor-schedule.json"),
        ("restore-test-start", "restore-test-start.json"),
        ("game-day", "game-day-dry-run.json"),
    ] {
        let payload: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo_root().join("events").join(event)).expect("the sample event"),
        )
        .expect("JSON");
        let (answer, function_error) = invoke_lambda(function, &payload);
        assert_eq!(function_error, None, "{function}: {answer}");
        let text = answer.to_string();
        assert!(!text.contains("AccessDenied") && !text.contains("not authorized"), "{function}: {text}");
        // A readiness row whose lookup failed (the health checks' tags denied) is CheckFailed.
        assert!(!text.contains("CheckFailed"), "{function}: {text}");
    }
    // The reconciler, on a plan held by a run that never started: it reads the run, gives the plan
    // back, reads the estate and tells.
    let store = dr_core::store::PlanStore::new(clients.dr.s3.clone(), &bucket);
    let read = store.read_state(&plan.name).await.expect("state");
    let mut taken = read.state.taken(&format!("iam-never-started-{}", unique_suffix()), "alarm-trigger", "test");
    taken.changed_at = Some(dr_core::time::before(dr_core::time::now(), std::time::Duration::from_secs(3600)));
    store.write_state(&read, &taken).await.expect("held");
    let payload: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/plan-reconciler-schedule.json")).expect("the sample event"),
    )
    .expect("JSON");
    let (answer, function_error) = invoke_lambda("plan-reconciler", &payload);
    assert_eq!(function_error, None, "plan-reconciler: {answer}");
    assert!(answer.to_string().contains("NEVER_STARTED"), "{answer}");
    let seen = report(&clients).await.expect("the local IAM's report");
    for function in [
        "PlanReconcilerFunction",
        "RpoCheckFunction",
        "ReadinessCheckFunction",
        "AlarmTriggerFunction",
        "RestoreJanitorFunction",
        "RestoreTestStartFunction",
        "GameDayFunction",
    ] {
        let calls = &seen.functions[function];
        assert!(calls.calls > 0, "{function} made no call");
        assert!(calls.denied.is_empty(), "{function}: {:?}", calls.denied);
    }
    assert!(seen.functions["ReadinessCheckFunction"].actions.contains_key("route53:ListTagsForResources"));
    assert!(seen.functions["RpoCheckFunction"].actions.contains_key("cloudwatch:PutMetricData"));
}

/// A standby instance whose EBS volumes use a customer-managed key starts only if its starter may
/// create EC2's grant on the key: start-standby's role has it for the plan's key; a deployment
/// made for another key starts the instance, and EC2 puts it back to stopped (Client.InternalError),
/// as on AWS.
#[tokio::test]
async fn a_standby_instance_on_a_customer_managed_key_starts_only_with_the_grant() {
    for (granted, key_suffix) in [(true, "standby-key"), (false, "iam-denied-key")] {
        let mut plan = dr_tests::isolated_plan();
        let key = format!("arn:aws:kms:eu-west-1:123456789012:key/{key_suffix}-{}", unique_suffix());
        plan.standby_instances[0].ebs_kms_key = Some(key.clone());
        let clients = emulator_clients(&plan).await;
        seed(&clients, &plan, SeedOptions::default()).await.expect("the estate, its volumes on the key");
        if !granted {
            let mut other = plan.clone();
            other.standby_instances[0].ebs_kms_key =
                Some(format!("arn:aws:kms:eu-west-1:123456789012:key/other-{}", unique_suffix()));
            dr_tests::deploy(&clients, &other).await;
        }
        let payload = serde_json::json!({ "action": "act", "state": state_for(plan.clone()) });
        let (answer, function_error) = invoke_lambda("start-standby", &payload);
        assert_eq!(function_error, None, "the start is accepted either way: {answer}");
        let instances = clients
            .dr
            .ec2
            .describe_instances()
            .filters(
                aws_sdk_ec2::types::Filter::builder()
                    .name(format!("tag:{}", "dr-standby"))
                    .values(plan.standby_instances[0].tag.as_ref().map(|t| t.value.clone()).unwrap_or_default())
                    .build(),
            )
            .send()
            .await
            .expect("DescribeInstances");
        let states: Vec<String> = instances
            .reservations()
            .iter()
            .flat_map(|r| r.instances())
            .filter_map(|i| i.state().and_then(|s| s.name()).map(|n| n.as_str().to_string()))
            .collect();
        assert_eq!(states.len(), 2, "{states:?}");
        let wanted = if granted { "running" } else { "stopped" };
        assert!(states.iter().all(|state| state == wanted), "granted {granted}: {states:?}");
        let seen = report(&clients).await.expect("the local IAM's report");
        let grant_denied = seen.functions["StartStandbyFunction"]
            .denied
            .iter()
            .any(|d| d.action.as_deref() == Some("kms:CreateGrant") && d.resource.as_deref() == Some(key.as_str()));
        assert_eq!(grant_denied, !granted, "{:?}", seen.functions["StartStandbyFunction"].denied);
    }
}

/// The alarm trigger's preparation starts the same instances: with prepare_while_confirming and
/// a customer-managed EBS key, its role may create EC2's grant on that key (and only through EC2).
/// On the template before the fix it had no grant: a prepared instance went back to stopped.
#[tokio::test]
async fn the_alarm_triggers_preparation_may_grant_ec2_the_standby_key() {
    let mut plan = dr_tests::isolated_plan();
    let key = format!("arn:aws:kms:eu-west-1:123456789012:key/standby-key-{}", unique_suffix());
    plan.standby_instances[0].ebs_kms_key = Some(key.clone());
    if let Some(trigger) = plan.trigger.as_mut() {
        trigger.prepare_while_confirming = true;
    }
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("the estate");
    let deployment = dr_emulator::iam::deployment_id(&plan, None);
    let through_ec2 = serde_json::json!({
        "kms:ViaService": "ec2.eu-west-1.amazonaws.com", "kms:GrantIsForAWSResource": "true",
        "aws:RequestedRegion": "eu-west-1",
    });
    for function in ["AlarmTriggerFunction", "StartStandbyFunction"] {
        let decision =
            dr_emulator::iam::simulate(&clients, &deployment, function, "kms:CreateGrant", &key, through_ec2.clone())
                .await
                .expect("a decision");
        assert_eq!(decision, "Allowed", "{function}");
    }
    let directly = serde_json::json!({ "aws:RequestedRegion": "eu-west-1" });
    let decision =
        dr_emulator::iam::simulate(&clients, &deployment, "AlarmTriggerFunction", "kms:CreateGrant", &key, directly)
            .await
            .expect("a decision");
    assert_eq!(decision, "ImplicitlyDenied", "a grant not made through EC2");
}

/// With prepare_while_confirming, the alarm trigger raises the plan's ECS services with the DR
/// group and gives them back on a flap: its role may describe, update and read the tags of those
/// services, and tag them with `dr-prepared-desired` only; no other service, no other tag key.
#[tokio::test]
async fn the_alarm_triggers_preparation_may_raise_and_mark_the_plans_ecs_services_only() {
    let mut plan = dr_tests::isolated_plan();
    dr_tests::with_ecs_services(&mut plan);
    if let Some(trigger) = plan.trigger.as_mut() {
        trigger.prepare_while_confirming = true;
    }
    let clients = emulator_clients(&plan).await;
    seed(&clients, &plan, SeedOptions::default()).await.expect("the estate");
    let deployment = dr_emulator::iam::deployment_id(&plan, None);
    let service = &plan.ecs_services[0];
    let arn = format!("arn:aws:ecs:eu-west-1:123456789012:service/{}/{}", service.cluster, service.service);
    let other = format!("arn:aws:ecs:eu-west-1:123456789012:service/{}/someone-elses", service.cluster);
    let decide = |action: &'static str, resource: String, context: serde_json::Value| {
        let clients = clients.clone();
        let deployment = deployment.clone();
        async move {
            dr_emulator::iam::simulate(&clients, &deployment, "AlarmTriggerFunction", action, &resource, context)
                .await
                .expect("a decision")
        }
    };
    let region = serde_json::json!({ "aws:RequestedRegion": "eu-west-1" });
    for action in ["ecs:DescribeServices", "ecs:UpdateService", "ecs:ListTagsForResource"] {
        assert_eq!(decide(action, arn.clone(), region.clone()).await, "Allowed", "{action}");
        assert_eq!(decide(action, other.clone(), region.clone()).await, "ImplicitlyDenied", "{action} elsewhere");
    }
    let mark = serde_json::json!({ "aws:RequestedRegion": "eu-west-1", "aws:TagKeys": ["dr-prepared-desired"] });
    let foreign = serde_json::json!({ "aws:RequestedRegion": "eu-west-1", "aws:TagKeys": ["owner"] });
    for action in ["ecs:TagResource", "ecs:UntagResource"] {
        assert_eq!(decide(action, arn.clone(), mark.clone()).await, "Allowed", "{action}");
        assert_eq!(decide(action, arn.clone(), foreign.clone()).await, "ImplicitlyDenied", "{action} owner");
    }
}

/// Lambda's VPC policy (network interfaces) is attached to the functions that may run in the
/// database's VPC only when the deployment gives them one: SAM attached it whenever a function's
/// `VpcConfig` was present, even as an `!If` with no VPC.
#[tokio::test]
async fn the_vpc_policy_is_attached_only_with_a_vpc() {
    let (plan, clients) = seeded_estate().await;
    let without = dr_emulator::iam::deployment_id(&plan, None);
    dr_emulator::iam::register_deployment_with(&clients, &plan, None, &[("DatabaseSubnetIds", "subnet-0a1b2c3d")])
        .await
        .expect("the VPC deployment registered");
    let with = format!("{without}+DatabaseSubnetIds=subnet-0a1b2c3d");
    let region = serde_json::json!({ "aws:RequestedRegion": "eu-west-1" });
    for function in ["PreflightFunction", "PromoteReplicaFunction", "FenceFunction", "RpoCheckFunction"] {
        for (deployment, wanted) in [(&without, "ImplicitlyDenied"), (&with, "Allowed")] {
            let decision = dr_emulator::iam::simulate(
                &clients,
                deployment,
                function,
                "ec2:CreateNetworkInterface",
                "*",
                region.clone(),
            )
            .await
            .expect("a decision");
            assert_eq!(decision, wanted, "{function} in {deployment}");
        }
    }
}
