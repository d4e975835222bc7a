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

/// The parameter names `template.yaml` declares (its `Parameters:` section, two-space keys).
fn template_parameters() -> Vec<String> {
    let text = std::fs::read_to_string(dr_tests::repo_root().join("template.yaml")).expect("template.yaml");
    let section = text.split("\nParameters:\n").nth(1).expect("a Parameters section");
    section
        .lines()
        .take_while(|line| line.is_empty() || line.starts_with(' '))
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| !line.starts_with(' ') && !line.starts_with('#'))
        .filter_map(|line| line.strip_suffix(':'))
        .map(str::to_string)
        .collect()
}

#[test]
fn deploy_params_are_the_templates_parameters_that_the_plan_determines_normalised() {
    // What the deployment chooses (or looks up), not the plan: everything else comes from it.
    const DEPLOYMENT_CHOICES: [&str; 15] = [
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
        "DatabaseSubnetIds",
        "DatabaseSecurityGroupIds",
        "NotificationKmsKeyId",
        "LogRetentionDays",
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
    assert_eq!(
        printed["ReplicatedBucketArns"],
        "arn:aws:s3:::platform-assets-paris,arn:aws:s3:::platform-assets-ireland"
    );

    // A record written with upper case and its trailing dot is what IAM's condition compares:
    // lower case, no dot. A standby tag key the stack's IAM condition does not name is refused.
    let text = std::fs::read_to_string(example_plan()).expect("example plan");
    let shouted = text.replace("record = \"app.platform.example.com.\"", "record = \"App.Platform.Example.COM.\"");
    assert_ne!(shouted, text, "the example plan's record line");
    let path = std::env::temp_dir().join(format!("deploy-params-{}.toml", std::process::id()));
    std::fs::write(&path, &shouted).expect("plan written");
    let out = drctl(&["deploy", "params", path.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("\nFailoverRecordName=app.platform.example.com\n"));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("FenceFunctionName"), "empty values are left out");
    let other_key = text.replace("key = \"dr-standby\"", "key = \"standby\"");
    assert_ne!(other_key, text, "the example plan's tag key line");
    std::fs::write(&path, other_key).expect("plan written");
    let out = drctl(&["deploy", "params", path.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidInput"), "{out:?}");
    let _ = std::fs::remove_file(&path);
}
