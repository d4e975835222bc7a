//! The Terraform module `terraform/modules/dr` (issue 34), checked offline: no provider installs
//! here, so `terraform validate` cannot run (docs/deploy.md). `scripts/terraform_check.py` parses
//! every `.tf` file (python-hcl2), holds the module's parameters against both templates and the
//! plan's export, the example against samconfig.toml, and evaluates the preconditions. And what
//! the estate's own Terraform must change after a failover (`drctl plan terraform-inputs`).

// Test code: a failed step is a failed test, so helpers panic with a message.
#![allow(clippy::expect_used, clippy::panic)]

use std::process::{Command, Output};

use dr_core::plan::Direction;
use dr_core::run::RunbookState;
use dr_tests::{
    example_plan_path, failover_input, plan_file, repo_root, run_failover, seeded_estate, trigger_context,
    unique_suffix, workspace_binary,
};

fn drctl(args: &[&str]) -> Output {
    Command::new(workspace_binary("drctl")).args(args).output().expect("drctl runs")
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_module_parses_covers_every_template_parameter_and_refuses_an_rto_the_plan_does_not_hold() {
    let plan = example_plan_path();
    let plan = plan.to_string_lossy();
    let export = stdout(&drctl(&["plan", "export", &plan, "--json"]));
    // One source: the parameters Terraform takes from the plan are the ones SAM takes.
    let exported: serde_json::Value = serde_json::from_str(&export).expect("JSON");
    let params: serde_json::Value =
        serde_json::from_str(&stdout(&drctl(&["deploy", "params", &plan, "--json"]))).expect("JSON");
    assert_eq!(exported["stack_parameters"], params);
    let detection: serde_json::Value =
        serde_json::from_str(&stdout(&drctl(&["deploy", "params", &plan, "--detection", "--json"]))).expect("JSON");
    assert_eq!(exported["detection_stack_parameters"], detection);

    let file = std::env::temp_dir().join(format!("plan-export-{}.json", unique_suffix()));
    std::fs::write(&file, &export).expect("export written");
    let checked = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("scripts/terraform_check.py"))
        .arg(&file)
        .args(["--rto-hours", "8"])
        .output()
        .expect("the check runs in the project's virtualenv (scripts/test installs it)");
    let _ = std::fs::remove_file(&file);
    let report = stdout(&checked);
    eprintln!("{report}");
    assert!(report.contains("5 .tf files parse"), "{report}");
    assert!(report.contains("template.yaml: 49 parameters: 28 the plan's, 21 the deployment's choices"), "{report}");
    assert!(report.contains("2 stacks, each with the capabilities its template needs"), "{report}");
    assert!(
        report.contains(
            "with rto_hours = 8: terraform_data.plan_agrees refuses: rto_hours = 8 but plan paris-ireland-prod holds an \
             RTO of 4 h (targets.rto_minutes = 240): change one of them."
        ),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_failover_drctl_names_the_terraform_inputs_that_now_differ() {
    let (plan, clients) = seeded_estate().await;
    let store = trigger_context(&plan, &clients).await.store;
    let file = plan_file(&plan);
    let (file, bucket) = (file.to_string_lossy().to_string(), store.reference().bucket);
    let inputs = |bucket: &str| stdout(&drctl(&["plan", "terraform-inputs", &file, "--bucket", bucket]));

    let before = inputs(&bucket);
    assert!(before.contains("Terraform's inputs need no change"), "{before}");

    let run_id = format!("terraform-{}", unique_suffix());
    let mut state: RunbookState = serde_json::from_value(failover_input(&plan, &run_id).await).expect("state");
    store.take_for_run(&plan, Direction::ToDr, &run_id, "test", "failover").await.expect("plan taken");
    state.run.plan_state = Some(store.reference());
    let execution = run_failover(&serde_json::to_value(&state).expect("input"));
    assert_eq!(execution.status, "SUCCEEDED", "{execution:#?}");

    let after = inputs(&bucket);
    eprintln!("{after}");
    let line = |name: &str| after.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{name}: {after}"));
    assert!(line("primary_region ").contains("= \"eu-west-1\"  # was \"eu-west-3\""), "{after}");
    assert!(line("dr_region ").contains("= \"eu-west-3\"  # was \"eu-west-1\""), "{after}");
    let writer = line("database.primary_instance ");
    assert!(writer.contains(&format!("= \"{}\"", plan.databases[0].replica_instance)), "{writer}");
    assert!(writer.contains("is standalone and takes the writes"), "{writer}");
    let replica = line("database.replica_instance ");
    assert!(replica.contains("= null") && replica.contains("reprotect makes one"), "{replica}");
    assert!(after.contains("# unchanged: dns.primary.value"), "routing-health-check leaves the records: {after}");
}
