//! A plan across the accounts of a landing zone (issue 33, the DNS section): the hosted zone, the
//! failover records, the routing health check and the routing alarm in a shared-services account
//! of their own, which the orchestrator reaches through its member role (member-role.yaml). The
//! local stack holds several accounts (moto keeps state per account; assumed credentials select
//! it), and its IAM enforces the member role's trust and policies on every call made through it.

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used)]

use dr_core::Plan;
use dr_core::aws::AwsClients;
use dr_core::aws::lookup::describe_alarm;
use dr_core::plan::MemberAccount;
use dr_core::readiness::{Check, Finding, Scope, check_plan};
use dr_tests::{changing_tasks_entered, clients_signing_as, failover_input, run_failover, seeded_estate_with};

/// The shared-services account of the landing zone the tests' DNS lives in.
const DNS_ACCOUNT: &str = "222233334444";

/// The isolated example plan with its DNS in the DNS account, under a member role of its own
/// (`role_prefix` + the plan's name: a test that refuses the role names it `iam-denied-...`, which
/// the least-privilege report counts as the enforcement's own test).
async fn plan_with_dns_elsewhere(role_prefix: &str) -> (Plan, AwsClients) {
    let prefix = role_prefix.to_string();
    seeded_estate_with(move |plan| {
        let role = format!("{prefix}{}", plan.name);
        plan.accounts.dns = Some(MemberAccount { account: DNS_ACCOUNT.into(), role });
    })
    .await
}

fn member_of(plan: &Plan) -> String {
    let member = plan.accounts.dns.as_ref().expect("the plan's DNS is in another account");
    format!("member:{}:{}", member.account, member.role)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failover_with_its_dns_in_another_account_moves_traffic_there_as_the_member_role() {
    let (plan, clients) = plan_with_dns_elsewhere("dr-member-").await;
    let routing = plan.dns.routing.clone().expect("the example plan routes by health check");
    // The routing alarm is the DNS account's, not the orchestrator's.
    assert!(describe_alarm(&clients.home.cloudwatch, &routing.alarm).await.expect("own account").is_none());
    assert!(describe_alarm(&clients.routing, &routing.alarm).await.expect("DNS account").is_some());

    let run_id = format!("{}-accounts", plan.name);
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");
    let report: dr_core::runbook::report::RunReport =
        serde_json::from_value(execution.output.clone()).expect("the execution output is the run report");

    // Traffic moved: the DNS account's alarm in ALARM, and DNS answers Ireland.
    let alarm = describe_alarm(&clients.routing, &routing.alarm).await.expect("DNS account").expect("the alarm");
    assert_eq!(alarm.state_value().map(|s| s.as_str()), Some("ALARM"));
    let record = &plan.dns.records[0];
    let answer = clients.dns.answer(&record.record, &record.record_type).await.expect("DNS answer");
    assert_eq!(answer, std::slice::from_ref(&record.secondary.value), "DNS answers Ireland");

    // The call log: the routing metric published, and the routing alarm read, by the member role
    // in the DNS account; the estate's changes by the functions' own roles.
    let role_arn = plan.accounts.dns.as_ref().map(MemberAccount::role_arn);
    let calls: Vec<_> = report.steps.iter().flat_map(|step| step.calls.iter()).collect();
    let published: Vec<_> = calls.iter().filter(|call| call.operation == "PutMetricData").collect();
    assert!(
        published.iter().any(|call| call.principal == role_arn && call.region == plan.dr_region),
        "the routing metric is published as the member role: {published:?}"
    );
    for operation in ["PromoteReadReplica", "StartInstances", "UpdateAutoScalingGroup"] {
        let made: Vec<_> = calls.iter().filter(|call| call.operation == operation).collect();
        assert!(!made.is_empty() && made.iter().all(|call| call.principal.is_none()), "{operation}: {made:?}");
    }

    // And the local IAM authorized each of them against the member role, after the functions'
    // own roles were allowed to assume it.
    let seen = dr_emulator::iam::report(&clients).await.expect("the IAM report");
    let member = &seen.functions[&member_of(&plan)];
    assert!(member.denied.is_empty(), "{:?}", member.denied);
    for action in ["cloudwatch:PutMetricData", "cloudwatch:DescribeAlarms"] {
        assert!(member.actions.contains_key(action), "{action} as the member role: {:?}", member.actions);
    }
    for function in ["PreflightFunction", "FlipDnsFunction", "FailoverReportFunction"] {
        assert!(seen.functions[function].actions.contains_key("sts:AssumeRole"), "{function} assumed the member role");
    }

    // The full readiness check (the scheduled one's, signing as its function) reads the zone, the
    // routing health check and the records in the DNS account, and the detection health check in
    // the orchestrator's: every DNS row answers, none failed.
    let as_readiness_check = clients_signing_as("ReadinessCheckFunction", &plan, "readiness-check").await;
    let readiness = check_plan(&as_readiness_check, &plan, Scope::Full).await;
    let failed: Vec<_> = readiness.rows.iter().filter(|row| row.finding == Some(Finding::CheckFailed)).collect();
    assert!(failed.is_empty(), "{failed:#?}");
    for check in
        [Check::RoutingHealthCheck, Check::DetectionHealthCheck, Check::DnsPrimaryRecord, Check::DnsSecondaryRecord]
    {
        assert!(readiness.rows.iter().any(|row| row.check == check), "{check:?} in {:#?}", readiness.rows);
    }
    let seen = dr_emulator::iam::report(&clients).await.expect("the IAM report");
    let member = &seen.functions[&member_of(&plan)];
    for action in ["route53:ListHostedZonesByName", "route53:ListHealthChecks", "route53:ListResourceRecordSets"] {
        assert!(member.actions.contains_key(action), "{action} as the member role: {:?}", member.actions);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_account_whose_role_does_not_trust_the_orchestrator_is_named_before_any_change() {
    let (plan, clients) = plan_with_dns_elsewhere("iam-denied-").await;
    // The member stack deployed for another organization: its trust names no principal of ours.
    dr_emulator::iam::register_dns_member(&clients, &plan, "o-otherorg0001", &[]).await.expect("the member stack");
    let role_arn = plan.accounts.dns.as_ref().map(MemberAccount::role_arn).expect("member");

    let run_id = format!("{}-untrusted", plan.name);
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    let cause = serde_json::to_string(&execution.cause).expect("cause");
    assert!(cause.contains(&role_arn) && cause.contains(DNS_ACCOUNT), "the refusal names the role: {cause}");
    let mutations = changing_tasks_entered(&execution);
    assert!(mutations.is_empty(), "no step ran past preflight: {mutations:?}");
    let record = &plan.dns.records[0];
    let answer = clients.dns.answer(&record.record, &record.record_type).await.expect("DNS answer");
    assert_eq!(answer, std::slice::from_ref(&record.primary.value), "DNS still answers Paris");

    let seen = dr_emulator::iam::report(&clients).await.expect("the IAM report");
    let refused: Vec<_> = seen.functions["PreflightFunction"]
        .denied
        .iter()
        .filter(|denied| denied.resource.as_deref() == Some(role_arn.as_str()))
        .collect();
    assert!(
        refused.iter().any(|denied| denied.action.as_deref() == Some("sts:AssumeRole") && denied.why.contains("trust")),
        "{refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_role_without_a_permission_the_run_needs_is_named_before_any_change() {
    // The routing alarm named `iam-denied-...`: the least-privilege report counts its denial as
    // this test's own.
    let (plan, clients) = seeded_estate_with(|plan| {
        let role = format!("dr-member-{}", plan.name);
        plan.accounts.dns = Some(MemberAccount { account: DNS_ACCOUNT.into(), role });
        if let Some(routing) = plan.dns.routing.as_mut() {
            routing.alarm = format!("iam-denied-{}", plan.name);
        }
    })
    .await;
    let sid = "ReadTheRoutingAlarmAndMetric";
    dr_emulator::iam::register_dns_member(&clients, &plan, dr_emulator::iam::LOCAL_ORGANIZATION_ID, &[sid])
        .await
        .expect("the member stack, less one statement");

    let run_id = format!("{}-unpermitted", plan.name);
    let execution = run_failover(&failover_input(&plan, &run_id).await);
    assert_eq!(execution.status, "FAILED", "{execution:#?}");
    let cause = serde_json::to_string(&execution.cause).expect("cause");
    assert!(cause.contains("AccessDenied") && cause.contains("DescribeAlarms"), "the denial is named: {cause}");
    let mutations = changing_tasks_entered(&execution);
    assert!(mutations.is_empty(), "no step ran past preflight: {mutations:?}");
    let seen = dr_emulator::iam::report(&clients).await.expect("the IAM report");
    let denied = &seen.functions[&member_of(&plan)].denied;
    assert!(denied.iter().any(|d| d.action.as_deref() == Some("cloudwatch:DescribeAlarms")), "{denied:?}");
}
