//! Ready on the real account: `drctl doctor` on a deployed stack (IAM's policy simulator on each
//! function's role, the organization's SCPs included), the DR region's dependencies in the
//! readiness check, the customer's probes, and "ready means serving" in the compute branch.
//!
//! The stack is a stand-in CloudFormation stack (`dr_emulator::iam::deploy_stand_in_stack`): its
//! roles are named by CloudFormation and decided by the local IAM with the template's policies,
//! as IAM's simulator decides a deployed role.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use std::collections::BTreeSet;
use std::process::Output;

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::plan::{ReadinessNeeds, ReadinessProbe, Serving};
use dr_core::readiness::{Finding, Readiness, Scope, check_plan};
use dr_core::runbook::report::RunReport;
use dr_emulator::estate::{SeedOptions, ensure_bucket, seed};
use dr_emulator::models::{issue_certificate, set_target_health};
use dr_tests::{
    emulator_clients, failover_input, isolated_plan, plan_file, read_report, run_failover, workspace_binary,
};
use serde_json::Value;

/// The failover size and the instance type of the readiness test's group: 120 x 896 vCPUs (the
/// largest type in moto's EC2 data) is past the emulator's default quota of 100,000 vCPUs.
const LARGE_FAILOVER: u16 = 120;
const LARGEST_INSTANCE_TYPE: &str = "u7in-16tb.224xlarge";

/// The application's readiness probe, as the local Lambda service serves it (application-hooks).
const PROBE_FUNCTION: &str = "dr-readiness-probe-application";

fn drctl(args: &[&str]) -> Output {
    std::process::Command::new(workspace_binary("drctl")).args(args).output().expect("drctl runs")
}

/// An isolated plan served through a DR load balancer, with a probe of the customer's own, and
/// ECS services beside its group.
fn serving_plan() -> Plan {
    let mut plan = isolated_plan();
    plan.serving = Some(Serving {
        load_balancer: format!("alb-{}", plan.name),
        target_group: format!("tg-{}", plan.name),
        certificate_margin_days: 30,
    });
    plan.readiness = Some(ReadinessNeeds {
        kms_keys: Vec::new(),
        probes: vec![ReadinessProbe {
            name: "transit-gateway".into(),
            function: PROBE_FUNCTION.into(),
            region: plan.primary_region.clone(),
        }],
    });
    // Its compute includes ECS services: the doctor simulates their calls too.
    dr_tests::with_ecs_services(&mut plan);
    plan.validate().expect("the serving plan is valid");
    plan
}

async fn seeded(plan: &Plan) -> AwsClients {
    let clients = emulator_clients(plan).await;
    seed(&clients, plan, SeedOptions::default()).await.expect("seeding");
    clients
}

fn not_ready(readiness: &Readiness) -> Vec<String> {
    readiness
        .rows
        .iter()
        .filter(|row| !row.is_ready())
        .map(|row| format!("{:?} {}: {}", row.finding, row.resource, row.detail))
        .collect()
}

fn doctor_json(plan: &Plan, stack: &str) -> (Option<i32>, Value) {
    let out = drctl(&["doctor", &plan_file(plan).to_string_lossy(), "--stack", stack, "--json"]);
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor's JSON: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn denied(report: &Value) -> Vec<&Value> {
    report["calls"].as_array().expect("calls").iter().filter(|c| c["decision"] != "allowed").collect()
}

fn requested_region(call: &Value) -> String {
    call["context"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k[0] == "aws:RequestedRegion"))
        .and_then(|k| k[1].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_is_clean_on_the_template_and_names_a_missing_statement_and_an_organizations_guardrail() {
    let plan = serving_plan();
    let clients = seeded(&plan).await;
    let store = format!("store-{}", plan.name);

    // The stack as the template deploys it: every call allowed, every check ready.
    let clean = format!("dr-{}", plan.name);
    dr_emulator::iam::deploy_stand_in_stack(&clients, &plan, &clean, &store, &[], &[]).await.expect("stack");
    let out = drctl(&["doctor", &plan_file(&plan).to_string_lossy(), "--stack", &clean]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("calls of the stack's functions are allowed"), "{text}");
    assert!(text.contains("READY:"), "{text}");
    let (_, report) = doctor_json(&plan, &clean);
    let functions: BTreeSet<&str> =
        report["calls"].as_array().expect("calls").iter().filter_map(|c| c["function"].as_str()).collect();
    for function in ["PreflightFunction", "PromoteReplicaFunction", "StartStandbyFunction", "ScaleAsgFunction"] {
        assert!(functions.contains(function), "{function} simulated: {functions:?}");
    }
    let scales_services = |call: &&Value| {
        call["function"] == "ScaleAsgFunction"
            && call["action"] == "ecs:UpdateService"
            && call["resource"].as_str().is_some_and(|arn| arn.ends_with(&plan.ecs_services[2].label()))
    };
    let calls = report["calls"].as_array().expect("calls");
    assert!(calls.iter().any(|call| scales_services(&call) && call["decision"] == "allowed"), "{report:#}");

    // One statement lost from the deployed role: that function's call named, as IAM denies it.
    let edited = format!("dr-{}-edited", plan.name);
    let without = [("PromoteReplicaFunction", "PromoteTheReplicaOnly")];
    dr_emulator::iam::deploy_stand_in_stack(&clients, &plan, &edited, &store, &[], &without).await.expect("stack");
    let (code, report) = doctor_json(&plan, &edited);
    assert_eq!(code, Some(1), "{report:#}");
    let named = denied(&report);
    assert!(!named.is_empty());
    assert!(named.iter().all(|c| c["function"] == "PromoteReplicaFunction"), "{named:#?}");
    assert!(
        named.iter().any(|c| c["action"] == "rds:PromoteReadReplica" && c["decision"] == "implicitDeny"),
        "{named:#?}"
    );
    let shown = drctl(&["doctor", &plan_file(&plan).to_string_lossy(), "--stack", &edited]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("rds:PromoteReadReplica") && shown.contains("no statement of the role"), "{shown}");

    // A landing zone's guardrail: an SCP that denies the DR region, beside FullAWSAccess (SCPs
    // allow nothing by themselves: an organization attaches FullAWSAccess to every OU). Every call
    // to eu-west-1 is named as denied by the organization; Paris's and us-east-1's stay allowed.
    let full_access = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "FullAWSAccess", "Effect": "Allow", "Action": "*", "Resource": "*"}],
    });
    let guardrail = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Sid": "DenyIreland", "Effect": "Deny", "Action": "*", "Resource": "*",
                       "Condition": {"StringEquals": {"aws:RequestedRegion": ["eu-west-1"]}}}],
    });
    let guarded = format!("dr-{}-guarded", plan.name);
    dr_emulator::iam::deploy_stand_in_stack(&clients, &plan, &guarded, &store, &[full_access, guardrail], &[])
        .await
        .expect("stack");
    let (code, report) = doctor_json(&plan, &guarded);
    assert_eq!(code, Some(1));
    let calls = report["calls"].as_array().expect("calls");
    let to_ireland: Vec<&Value> = calls.iter().filter(|c| requested_region(c) == plan.dr_region).collect();
    assert!(!to_ireland.is_empty());
    for call in &to_ireland {
        assert_eq!(call["decision"], "explicitDeny", "{call:#}");
        assert_eq!(call["allowed_by_organizations"], false, "{call:#}");
    }
    let elsewhere: Vec<&Value> = calls.iter().filter(|c| requested_region(c) != plan.dr_region).collect();
    assert!(!elsewhere.is_empty() && elsewhere.iter().all(|c| c["decision"] == "allowed"), "{elsewhere:#?}");
    let shown = drctl(&["doctor", &plan_file(&plan).to_string_lossy(), "--stack", &guarded]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("the organization's SCPs"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_readiness_check_names_what_ireland_needs_to_serve() {
    let mut plan = serving_plan();
    // A failover of 120 instances: the example's instance type fits the region's vCPU quota
    // (the emulator's default, 100,000), the largest type does not (below). The quota itself is
    // the region's, read by every other test's readiness: this test leaves it alone.
    dr_tests::dr_group_mut(&mut plan).failover.desired = LARGE_FAILOVER;
    dr_tests::dr_group_mut(&mut plan).failover.max = LARGE_FAILOVER;
    let clients = emulator_clients(&plan).await;
    let key = clients.dr.kms.create_key().send().await.expect("key");
    let key_id = key.key_metadata().map(|m| m.key_id().to_string()).expect("key id");
    plan.readiness.as_mut().expect("readiness").kms_keys.push(key_id.clone());
    seed(&clients, &plan, SeedOptions::default()).await.expect("seeding");
    let ready = check_plan(&clients, &plan, Scope::Full).await;
    assert!(ready.is_ready(), "{:#?}", not_ready(&ready));
    let serving = plan.serving.clone().expect("serving");
    let (dr, region) = (&clients.dr, plan.dr_region.clone());

    // The group launches from a template whose AMI is not in Ireland (AMIs are regional), of the
    // largest instance type: 120 x 896 vCPUs, past the account's quota there.
    let template = format!("lt-{}", plan.name);
    let data = aws_sdk_ec2::types::RequestLaunchTemplateData::builder()
        .image_id("ami-0123456789abcdef0")
        .instance_type(aws_sdk_ec2::types::InstanceType::from(LARGEST_INSTANCE_TYPE))
        .build();
    dr.ec2
        .create_launch_template()
        .launch_template_name(&template)
        .launch_template_data(data)
        .send()
        .await
        .expect("lt");
    let spec =
        aws_sdk_autoscaling::types::LaunchTemplateSpecification::builder().launch_template_name(&template).build();
    dr.autoscaling
        .update_auto_scaling_group()
        .auto_scaling_group_name(&dr_tests::dr_group(&plan).group)
        .launch_template(spec)
        .send()
        .await
        .expect("group on the new template");
    // A listener whose certificate expires within the RTO plus the margin.
    let balancer = dr.elbv2.describe_load_balancers().names(&serving.load_balancer).send().await.expect("lb");
    let balancer = balancer.load_balancers()[0].load_balancer_arn().expect("arn").to_string();
    let groups = dr.elbv2.describe_target_groups().names(&serving.target_group).send().await.expect("tg");
    let group = groups.target_groups()[0].target_group_arn().expect("arn").to_string();
    let expiring = issue_certificate(&clients, &region, "expiring.example.com", 10.0).await.expect("certificate");
    use aws_sdk_elasticloadbalancingv2::types::{Action, ActionTypeEnum, Certificate, ProtocolEnum};
    dr.elbv2
        .create_listener()
        .load_balancer_arn(&balancer)
        .protocol(ProtocolEnum::Https)
        .port(8443)
        .certificates(Certificate::builder().certificate_arn(&expiring).build())
        .default_actions(Action::builder().r#type(ActionTypeEnum::Forward).target_group_arn(&group).build())
        .send()
        .await
        .expect("listener");
    // The group detached from its target group: its instances would serve no one.
    dr.autoscaling
        .detach_load_balancer_target_groups()
        .auto_scaling_group_name(&dr_tests::dr_group(&plan).group)
        .target_group_arns(&group)
        .send()
        .await
        .expect("detached");
    // A key disabled, the database secret gone from Ireland, the probe failing.
    dr.kms.disable_key().key_id(&key_id).send().await.expect("disabled");
    let secret = plan.databases[0].credentials_secret.clone().expect("secret");
    dr.secrets.delete_secret().secret_id(&secret).force_delete_without_recovery(true).send().await.expect("deleted");
    ensure_bucket(dr, "dr-local-application").await.expect("application bucket");
    let reason = "no route to 10.20.0.0/16 through tgw-0a1b2c3d";
    dr.s3
        .put_object()
        .bucket("dr-local-application")
        .key(format!("probe-fails/{}/transit-gateway", plan.name))
        .body(reason.as_bytes().to_vec().into())
        .send()
        .await
        .expect("probe set to fail");
    let readiness = check_plan(&clients, &plan, Scope::Full).await;

    let findings = readiness.findings();
    for expected in [
        Finding::AmiMissing,
        Finding::CertificateExpiring,
        Finding::TargetGroupDetached,
        Finding::VcpuQuotaTooLow,
        Finding::KmsKeyDisabled,
        Finding::SecretNotReplicated,
        Finding::ProbeFailed,
    ] {
        assert!(findings.contains(&expected), "{expected:?} in {:#?}", not_ready(&readiness));
    }
    let row = |finding: Finding| readiness.rows.iter().find(|r| r.finding == Some(finding)).expect("row");
    assert!(row(Finding::ProbeFailed).detail.contains(reason));
    assert!(row(Finding::AmiMissing).detail.contains("ami-0123456789abcdef0"));
    assert!(row(Finding::CertificateExpiring).resource.contains(&expiring));
    let quota = &row(Finding::VcpuQuotaTooLow).detail;
    assert!(quota.contains("quota 100000"), "{quota}");
    // drctl plan check says the same, by name.
    let out = drctl(&["plan", "check", &plan_file(&plan).to_string_lossy()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    for name in ["AmiMissing", "TargetGroupDetached", "KmsKeyDisabled", "SecretNotReplicated", "ProbeFailed"] {
        assert!(text.contains(name), "{name}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_whose_targets_never_turn_healthy_does_not_move_traffic_and_says_why() {
    let mut plan = serving_plan();
    // A short RTO keeps the compute phase's budget short: the run really waits it out.
    plan.targets.rto_minutes = 8;
    if let Some(fence) = plan.fence.as_mut() {
        fence.barrier_timeout_seconds = 60;
    }
    let clients = seeded(&plan).await;
    let target_group = plan.serving.as_ref().map(|s| s.target_group.clone()).expect("serving");
    // The application behind the DR load balancer fails its health checks.
    set_target_health(&clients, &plan.dr_region, &target_group, "unhealthy", Some("Target.FailedHealthChecks"))
        .await
        .expect("unhealthy");
    let run_id = format!("unserved-{}", plan.name);
    let failed = run_failover(&failover_input(&plan, &run_id).await);
    set_target_health(&clients, &plan.dr_region, &target_group, "healthy", None).await.expect("healthy again");
    assert_eq!(failed.status, "FAILED", "{failed:#?}");
    // Not one target serves when the compute budget runs out: below the plan's minimum (an
    // unplanned run without a plan state to wait in stops there; traffic never moves).
    assert_eq!(failed.error.as_deref(), Some("BelowMinimumCapacity"), "{failed:#?}");
    let report: RunReport =
        serde_json::from_slice(&read_report(&clients, &plan, &run_id, "report.json").await).expect("failure report");
    let error = report.head.error.clone().expect("the failure names its error");
    assert!(error.cause.contains("targets healthy") && error.cause.contains("Target.FailedHealthChecks"), "{error:?}");
    // Traffic did not move: no DNS step ran.
    let phases: Vec<&str> = report.timeline.iter().map(|e| e.phase.as_str()).collect();
    assert!(!phases.iter().any(|p| p.contains("DNS") || p.contains("dns")), "{phases:?}");
    let answer = dr_emulator::control::route53_answer(
        &clients,
        &plan.dns.records[0].record,
        &plan.dns.records[0].record_type,
        None,
    )
    .await
    .expect("Route 53's answer");
    assert_eq!(
        answer.values,
        std::slice::from_ref(&plan.dns.records[0].primary.value),
        "DNS still answers Paris: {answer:?}"
    );

    // The application answers its health checks again: the rerun waits for the targets, then
    // moves traffic.
    let served = run_failover(&failover_input(&plan, &format!("served-{}", plan.name)).await);
    assert_eq!(served.status, "SUCCEEDED", "{served:#?}");
    let report: RunReport = serde_json::from_value(served.output.clone()).expect("the run report");
    let compute = report.timeline.iter().find(|e| e.phase.contains("Auto Scaling")).expect("the group's phase");
    assert!(compute.detail.contains("2 of 2 targets healthy"), "{compute:?}");
}
