//! The operator's and the developer's command-line tools as they are run: exit status and output.
//! The binaries are the workspace's own build (`target/debug`, built by `scripts/lambdas start`).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use dr_tests::{example_plan_path, workspace_binary};

fn run(binary: &PathBuf, args: &[&str]) -> Output {
    Command::new(binary).args(args).output().unwrap_or_else(|e| panic!("{} runs: {e}", binary.display()))
}

fn drctl(args: &[&str]) -> Output {
    run(&workspace_binary("drctl"), args)
}

fn example_plan() -> PathBuf {
    example_plan_path()
}

/// The example plan with every resource name made unique, written to a temporary file.
fn isolated_plan_file(tag: &str) -> PathBuf {
    let suffix = format!("{tag}{}", std::process::id());
    let mut text = std::fs::read_to_string(example_plan()).expect("example plan");
    for name in [
        "paris-ireland-prod",
        "platform-db-paris",
        "platform-db-ireland",
        "platform-web-ireland",
        "platform-paris-primary",
        "platform-assets-paris",
        "platform-assets-ireland",
        "platform-dr-reports-ireland",
    ] {
        text = text.replace(name, &format!("{name}-{suffix}"));
    }
    text = text.replace("platform.example.com", &format!("{suffix}.example.com"));
    let path = std::env::temp_dir().join(format!("drctl-cli-{suffix}.toml"));
    std::fs::write(&path, text).expect("temporary plan written");
    path
}

#[test]
fn check_exits_1_until_the_estate_is_seeded_then_0() {
    if std::env::var("AWS_ENDPOINT_URL").is_err() {
        panic!("AWS_ENDPOINT_URL is not set: run the suite with scripts/test, which starts the emulator");
    }
    let plan = isolated_plan_file("chk");
    let plan = plan.to_str().expect("utf-8 path");

    let before = drctl(&["plan", "check", plan]);
    assert_eq!(before.status.code(), Some(1), "{before:?}");
    let table = String::from_utf8_lossy(&before.stdout);
    assert!(table.contains("ReplicaMissing") && table.contains("NOT READY"), "{table}");

    let seeded = run(&workspace_binary("dr-emulator"), &["seed", plan]);
    assert!(seeded.status.success(), "{seeded:?}");

    let after = drctl(&["plan", "check", plan, "--json"]);
    assert_eq!(after.status.code(), Some(0), "{after:?}");
    let json: serde_json::Value = serde_json::from_slice(&after.stdout).expect("JSON table");
    let rows = json["rows"].as_array().expect("rows");
    assert!(rows.len() >= 10 && rows.iter().all(|row| row["finding"].is_null()), "{json:#}");
}

/// The parameters `template.yaml` declares (its `Parameters:` section, two-space keys), with
/// their types.
fn template_parameter_types() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let section: Vec<&str> = text
        .lines()
        .skip_while(|line| *line != "Parameters:")
        .skip(1)
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .collect();
    let mut parameters = Vec::new();
    for (index, line) in section.iter().enumerate() {
        let Some(name) =
            line.strip_prefix("  ").filter(|l| !l.starts_with([' ', '#'])).and_then(|l| l.strip_suffix(':'))
        else {
            continue;
        };
        let kind = section[index + 1..]
            .iter()
            .find_map(|l| l.trim().strip_prefix("Type:"))
            .map(|t| t.trim().to_string())
            .unwrap_or_default();
        parameters.push((name.to_string(), kind));
    }
    parameters
}

/// The parameter names `template.yaml` declares.
fn template_parameters() -> Vec<String> {
    template_parameter_types().into_iter().map(|(name, _)| name).collect()
}

#[test]
fn deploy_params_are_the_templates_parameters_that_the_plan_determines_normalised() {
    // What the deployment chooses (or looks up), not the plan: everything else comes from it.
    const DEPLOYMENT_CHOICES: [&str; 21] = [
        "Architecture",
        "PlanReconcilerSchedule",
        "HostedZoneId",
        "PlanStateBucketName",
        "TriggerReevaluationSchedule",
        "RpoCheckSchedule",
        "ReadinessCheckSchedule",
        "RpoMetricNamespace",
        "RpoWarningPercent",
        "RestoreTestSchedule",
        "RestoreProbeSubnetIds",
        "RestoreProbeSecurityGroupIds",
        "DatabaseCredentialsSecretArn",
        "NotificationKmsKeyId",
        "FailoverReservedConcurrency",
        "LogRetentionDays",
        "ReportRetentionDays",
        "ReportRetentionMode",
        "PagerDutyRoutingKey",
        "OpsgenieApiKey",
        "OpsgenieApiUrl",
    ];
    let out = drctl(&["deploy", "params", example_plan().to_str().expect("utf-8"), "--json"]);
    assert!(out.status.success(), "{out:?}");
    let printed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let mut from_plan_and_choices: Vec<String> =
        printed.keys().cloned().chain(DEPLOYMENT_CHOICES.iter().map(|s| s.to_string())).collect();
    from_plan_and_choices.sort();
    let mut declared = template_parameters();
    declared.sort();
    assert_eq!(from_plan_and_choices, declared, "every printed name is declared, and only the choices are left out");
    assert!(DEPLOYMENT_CHOICES.iter().all(|choice| !printed.contains_key(*choice)));
    assert_eq!(printed["PlanName"], "paris-ireland-prod");
    assert_eq!(printed["SourceBucketArns"], "arn:aws:s3:::platform-assets-paris");
    assert_eq!(printed["ReplicaBucketArns"], "arn:aws:s3:::platform-assets-ireland");

    // A record written with upper case and its trailing dot is what IAM's condition compares:
    // lower case, no dot. The standby tag's key is the plan's, whatever it is.
    let text = std::fs::read_to_string(example_plan()).expect("example plan");
    let shouted = text.replace("record = \"app.platform.example.com.\"", "record = \"App.Platform.Example.COM.\"");
    assert_ne!(shouted, text, "the example plan's record line");
    let printed = deploy_params_of(&shouted);
    assert!(printed.contains("\nFailoverRecordName=app.platform.example.com\n"), "{printed}");
    assert!(!printed.contains("FenceFunctionName"), "empty values are left out");
    let other_key = text.replace("key = \"dr-standby\"", "key = \"standby\"");
    assert_ne!(other_key, text, "the example plan's tag key line");
    let printed = deploy_params_of(&other_key);
    assert!(printed.contains("\nStandbyTagKey=standby\n"), "{printed}");
    // Fence hooks named by ARN reach the policies' `function:<name>` resources by name.
    let hooks = text.replace(
        "[fence]\n",
        "[fence]\nlambda = \"arn:aws:lambda:eu-west-1:123456789012:function:platform-maintenance:live\"\nbarrier_function = \"platform-barrier\"\n",
    );
    assert_ne!(hooks, text, "the example plan's [fence] line");
    let printed = deploy_params_of(&hooks);
    assert!(printed.contains("\nFenceFunctionName=platform-maintenance\n"), "{printed}");
    assert!(printed.contains("\nFenceBarrierFunctionName=platform-barrier\n"), "{printed}");
    // The database's VPC is the plan's: its subnets and security groups reach the stack.
    let printed = deploy_params_of(&format!(
        "{text}\n[network]\ndatabase_subnets = [\"subnet-0a1b\", \"subnet-0c2d\"]\n\
         database_security_groups = [\"sg-0e3f\"]\nprimary_region_egress = \"nat\"\n"
    ));
    assert!(printed.contains("\nDatabaseSubnetIds=subnet-0a1b,subnet-0c2d\n"), "{printed}");
    assert!(printed.contains("\nDatabaseSecurityGroupIds=sg-0e3f\n"), "{printed}");
}

/// What `drctl deploy params` prints for a plan written as `text` (it must succeed).
fn deploy_params_of(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("deploy-params-{}-{}.toml", std::process::id(), text.len()));
    std::fs::write(&path, text).expect("plan written");
    let out = drctl(&["deploy", "params", path.to_str().expect("utf-8")]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The standby tag's key reaches IAM: the start and stop policies are JSON documents substituted
/// whole (a YAML condition key cannot take a parameter), and they stay valid JSON whose condition
/// names `aws:ResourceTag/${StandbyTagKey}` with the list of each group's value
/// (`${StandbyTagValues}`, the `StandbyTagValue` list joined as a JSON array).
#[test]
fn the_standby_policies_scope_to_the_tag_key_parameter_in_valid_json() {
    let text = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let mut documents = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line.trim() == "PolicyDocument: !Sub" && lines.next_if(|l| l.trim() == "- |").is_some() {
            let indent = line.len() - line.trim_start().len() + 2;
            let mut body = String::new();
            while let Some(next) = lines.next_if(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent) {
                if next.trim_start().starts_with("- StandbyTagValues:") {
                    break;
                }
                body.push_str(next);
                body.push('\n');
            }
            documents.push(body);
        }
    }
    assert_eq!(documents.len(), 3, "the start, the stop and the preparation's marking policy");
    for body in documents {
        let substituted = body
            .replace("${StandbyTagKey}", "dr-standby")
            .replace("${StandbyTagValues}", r#"["prod", "prod-workers"]"#);
        let substituted = substituted
            .replace("${AWS::Partition}", "aws")
            .replace("${AWS::Region}", "eu-west-1")
            .replace("${AWS::AccountId}", "123456789012");
        let document: serde_json::Value = serde_json::from_str(&substituted).expect("valid JSON");
        assert_eq!(
            document["Statement"][0]["Condition"]["StringEquals"]["aws:ResourceTag/dr-standby"],
            serde_json::json!(["prod", "prod-workers"]),
            "{document}"
        );
    }
}

/// `drctl plan publish --stack`: a plan is published for a deployed stack only when the stack
/// holds the parameters the plan determines; one that disagrees is refused with
/// `PlanStackMismatch`, naming the parameter with both values, and nothing is written.
#[tokio::test]
async fn publishing_a_plan_to_a_stack_whose_parameters_disagree_is_refused() {
    use aws_sdk_cloudformation::types::Parameter;

    let path = isolated_plan_file("pub");
    let path_text = path.to_str().expect("utf-8 path");
    let plan = dr_core::Plan::load(&path).expect("the plan");
    let clients = dr_tests::emulator_clients(&plan).await;
    let bucket = format!("plan-store-{}", std::process::id());
    dr_emulator::estate::ensure_bucket(&clients.home, &bucket).await.expect("the plan store");

    // The stack as `sam deploy` leaves it with the plan's parameters: the template's parameters
    // the plan determines, with their types (list parameters answered as given, comma-separated).
    let out = drctl(&["deploy", "params", path_text, "--json"]);
    assert!(out.status.success(), "{out:?}");
    let printed: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    let types: std::collections::BTreeMap<String, String> = template_parameter_types().into_iter().collect();
    let declared: serde_json::Map<String, serde_json::Value> =
        printed.keys().map(|name| (name.clone(), serde_json::json!({ "Type": types[name], "Default": "" }))).collect();
    let template = serde_json::json!({
        "Parameters": declared,
        "Resources": { "StandIn": { "Type": "AWS::CloudFormation::WaitConditionHandle" } },
    });
    let stack = format!("dr-orchestrator-{}", std::process::id());
    let cloudformation = aws_sdk_cloudformation::Client::new(
        &dr_core::aws::tls::sdk_config_loader().region(aws_config::Region::new(plan.dr_region.clone())).load().await,
    );
    cloudformation
        .create_stack()
        .stack_name(&stack)
        .template_body(template.to_string())
        .set_parameters(Some(
            printed
                .iter()
                .map(|(k, v)| {
                    Parameter::builder().parameter_key(k).parameter_value(v.as_str().unwrap_or_default()).build()
                })
                .collect(),
        ))
        .send()
        .await
        .expect("the stand-in stack");

    let published = drctl(&["plan", "publish", path_text, "--bucket", &bucket, "--stack", &stack]);
    assert!(published.status.success(), "{published:?}");
    assert!(String::from_utf8_lossy(&published.stdout).contains(&format!("stack {stack} holds the parameters")));
    let key = format!("plans/{}.toml", plan.name);
    let stored = || async {
        let object = clients.home.s3.get_object().bucket(&bucket).key(&key).send().await.expect("the published plan");
        String::from_utf8(object.body.collect().await.expect("its body").to_vec()).expect("utf-8")
    };
    assert!(stored().await.contains("key = \"dr-standby\""));

    // The same plan with another standby tag key: the stack's IAM would not let it start them.
    let text = std::fs::read_to_string(&path).expect("the plan");
    std::fs::write(&path, text.replace("key = \"dr-standby\"", "key = \"standby\"")).expect("plan written");
    let refused = drctl(&["plan", "publish", path_text, "--bucket", &bucket, "--stack", &stack]);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("PlanStackMismatch"), "{stderr}");
    assert!(stderr.contains("StandbyTagKey is \"dr-standby\" in the stack, \"standby\" in the plan"), "{stderr}");
    assert!(stored().await.contains("key = \"dr-standby\""), "nothing published");
    let _ = std::fs::remove_file(&path);
}

/// samconfig.toml deploys both stacks without a parameter list on the command line: the
/// parameters it holds for the example plan are exactly those `drctl deploy params` derives from
/// it (the main stack, and the detection stack with `--detection`), plus the deployment's choices.
#[test]
fn samconfig_holds_the_example_plans_parameters_for_both_stacks() {
    let text = std::fs::read_to_string(dr_tests::repo_root().join("samconfig.toml")).expect("samconfig.toml");
    let config: toml::Table = toml::from_str(&text).expect("samconfig.toml is TOML");
    let overrides = |environment: &str| -> std::collections::BTreeMap<String, String> {
        config[environment]["deploy"]["parameters"]["parameter_overrides"]
            .as_array()
            .unwrap_or_else(|| panic!("{environment}: parameter_overrides is a list"))
            .iter()
            .map(|item| {
                let (name, value) = item.as_str().and_then(|i| i.split_once('=')).expect("Name=Value");
                (name.to_string(), value.to_string())
            })
            .collect()
    };
    let derived = |extra: &[&str]| -> std::collections::BTreeMap<String, String> {
        let plan = example_plan();
        let mut args = vec!["deploy", "params", plan.to_str().expect("utf-8")];
        args.extend(extra);
        let out = drctl(&args);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|line| line.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
            .collect()
    };
    for (environment, extra, choices) in [
        ("default", &[][..], &["PlanStateBucketName", "Architecture"][..]),
        ("us-east-1", &["--detection"][..], &["HealthPath", "UnhealthyMinutes"][..]),
    ] {
        let mut held = overrides(environment);
        for choice in choices {
            assert!(held.remove(*choice).is_some(), "{environment}: the deployment's {choice}");
        }
        assert_eq!(held, derived(extra), "{environment}: samconfig.toml and drctl deploy params");
    }
    assert_eq!(config["us-east-1"]["deploy"]["parameters"]["template_file"].as_str(), Some("template-us-east-1.yaml"));
}

/// docs/staging-drill.md shows the commands `drctl deploy staging-drill` prints for the example
/// plan, exactly: the document and the tool do not drift apart.
#[test]
fn the_staging_drill_document_shows_what_drctl_prints() {
    // From the repository's root, as the document's reader runs it.
    let out = Command::new(workspace_binary("drctl"))
        .current_dir(dr_tests::repo_root())
        .args(["deploy", "staging-drill", "plans/paris-ireland.toml"])
        .args(["--stack", "dr-orchestrator-staging", "--bucket", "platform-dr-plans-staging"])
        .output()
        .expect("drctl runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = String::from_utf8(out.stdout).expect("utf-8");
    for command in
        ["drctl doctor plans/paris-ireland.toml --stack dr-orchestrator-staging", "--dry-run", "--round-trip"]
    {
        assert!(printed.contains(command), "{command}");
    }
    let document = std::fs::read_to_string(dr_tests::repo_root().join("docs/staging-drill.md")).expect("document");
    assert!(document.contains(&format!("```sh\n{printed}```")), "docs/staging-drill.md differs from drctl's output");
}
