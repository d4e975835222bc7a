//! The staging drill as one documented path (`docs/staging-drill.md`): deploy to the staging
//! account, `drctl doctor`, a dry run, a live drill with a writer, reprotect and failback, a round
//! trip, and the evidence to keep. `drctl deploy staging-drill` prints these commands for a plan,
//! with its names filled in, so that what the SRE runs is what the document says.

use crate::plan::Plan;

/// One stage of the drill: what it proves and the commands that run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub title: &'static str,
    pub proves: String,
    pub commands: Vec<String>,
}

/// `name` as a word of a shell line (an environment variable's or a file's name): its ASCII
/// letters and digits, every run of anything else one `separator`.
fn shell_word(name: &str, separator: char) -> String {
    let mut word = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            word.push(c);
        } else if !word.is_empty() && !word.ends_with(separator) {
            word.push(separator);
        }
    }
    word.trim_end_matches(separator).to_string()
}

/// The drill's stages for `plan` (read from `plan_path`), deployed as `stack` in the plan's DR
/// region with its plan store in `bucket`.
pub fn staging_drill(plan: &Plan, plan_path: &str, stack: &str, bucket: &str) -> Vec<Stage> {
    let (dr, name) = (&plan.dr_region, &plan.name);
    let (primary_name, dr_name) = (plan.primary_name(), plan.dr_name());
    // The application's connection strings, and the rows found in the DR region, by the regions'
    // names: PARIS_DB_URL, IRELAND_DB_URL, evidence/in-ireland for the example plan.
    let primary_url = format!("{}_DB_URL", shell_word(primary_name, '_').to_ascii_uppercase());
    let dr_url = format!("{}_DB_URL", shell_word(dr_name, '_').to_ascii_uppercase());
    let rows_in_dr = format!("evidence/in-{}", shell_word(dr_name, '-').to_ascii_lowercase());
    let output = |key: &str| {
        format!(
            "$(aws cloudformation describe-stacks --region {dr} --stack-name {stack} \
             --query \"Stacks[0].Outputs[?OutputKey=='{key}'].OutputValue\" --output text)"
        )
    };
    let confirm = if plan.environment == crate::plan::Environment::Production {
        format!(" --confirm {name}")
    } else {
        String::new()
    };
    let reports = format!("s3://{}/{}{name}/", plan.reports.bucket, plan.reports.prefix);
    vec![
        Stage {
            title: "1. Deploy to the staging account",
            proves: "the template deploys under the account's SCPs and guardrails, with the plan's names".into(),
            commands: vec![
                "sam build".into(),
                format!(
                    "sam deploy --stack-name {stack} --region {dr} --capabilities CAPABILITY_IAM --resolve-s3 \
                     --parameter-overrides $(drctl deploy params {plan_path}) PlanStateBucketName={bucket}"
                ),
                format!(
                    "sam deploy --template-file template-us-east-1.yaml --stack-name {stack}-us-east-1 --region us-east-1 \
                     --capabilities CAPABILITY_IAM --resolve-s3 --parameter-overrides $(drctl deploy params {plan_path} --detection)"
                ),
                format!("drctl plan publish {plan_path} --bucket {bucket} --stack {stack}"),
                format!("export DR_PLAN_STATE_BUCKET={bucket}"),
                format!("export DR_FAILOVER_STATE_MACHINE={}", output("FailoverStateMachineArn")),
                format!("export DR_ROUND_TRIP_STATE_MACHINE={}", output("RoundTripStateMachineArn")),
                format!("export DR_REPROTECT_STATE_MACHINE={}", output("ReprotectStateMachineArn")),
                "mkdir -p evidence".into(),
            ],
        },
        Stage {
            title: "2. Doctor",
            proves: format!(
                "IAM's own simulator allows every call of every function on the real resources (the \
                 organization's SCPs and the roles' boundaries included), and {dr_name} can serve: launch \
                 template and AMI, certificates, target group, vCPU quota, keys, secret, your probes"
            ),
            commands: vec![
                format!("drctl doctor {plan_path} --stack {stack} --json > evidence/doctor.json"),
                format!("drctl doctor {plan_path} --stack {stack}      # exit 0: nothing denied, everything ready"),
            ],
        },
        Stage {
            title: "3. Dry run",
            proves: "the game day's checks and the runbook's preflight pass; nothing changes".into(),
            commands: vec![format!(
                "drctl drill start {plan_path} --dry-run --by \"$USER\" --reason \"staging drill: dry run\""
            )],
        },
        Stage {
            title: "4. Live drill with a writer",
            proves: format!(
                "a planned move loses no acknowledged write: the writer is fenced in {primary_name}, a barrier \
                 proves {dr_name} holds every row, then promotion, compute, serving targets, DNS"
            ),
            commands: vec![
                format!(
                    "# a writer on the {primary_name} primary throughout ({primary_url}, {dr_url}: the application's \
                     connection strings)"
                ),
                format!("psql \"${primary_url}\" -c 'CREATE TABLE IF NOT EXISTS dr_drill (n bigint PRIMARY KEY)'"),
                format!(
                    "( n=0; while [ ! -f evidence/stop-writer ]; do n=$((n+1)); \
                     psql \"${primary_url}\" -qc \"INSERT INTO dr_drill VALUES ($n)\" >/dev/null 2>&1 \
                     && echo $n >> evidence/acknowledged; done ) &"
                ),
                format!(
                    "drctl drill start {plan_path} --live{confirm} --by \"$USER\" --reason \"staging drill: live\" \
                     | tee evidence/drill.json"
                ),
                "drctl run watch $(jq -r .execution_arn evidence/drill.json)   # exit 0: failed over".into(),
                "touch evidence/stop-writer; wait".into(),
                format!("psql \"${dr_url}\" -Atc 'SELECT n FROM dr_drill' | sort -n > {rows_in_dr}"),
                format!("sort -n evidence/acknowledged | comm -23 - {rows_in_dr}   # empty: no acknowledged row lost"),
            ],
        },
        Stage {
            title: "5. Reprotect and fail back",
            proves: format!(
                "{primary_name} becomes {dr_name}'s replica, then a planned failback returns to {primary_name}"
            ),
            commands: vec![
                format!(
                    "aws stepfunctions start-execution --region {dr} --state-machine-arn \"$DR_REPROTECT_STATE_MACHINE\" \
                     --input \"$(drctl failover input {plan_path})\""
                ),
                format!(
                    "drctl plan check {plan_path} --bucket {bucket}   # green, reversed: {primary_name} replicates {dr_name}"
                ),
                format!(
                    "drctl failback start {plan_path} --by \"$USER\" --reason \"staging drill: failback\" \
                     | tee evidence/failback.json"
                ),
                "drctl run watch $(jq -r .execution_arn evidence/failback.json)".into(),
                "# then reprotect the original direction (as above) and re-arm:".into(),
                format!(
                    "drctl trigger arm {plan_path} --bucket {bucket} --by \"$USER\" --reason \"staging drill: re-armed\""
                ),
            ],
        },
        Stage {
            title: "6. Round trip",
            proves: "the whole way out and back in one run and one report: failover, verification window, \
                     reprotect, failback, reprotect, re-armed"
                .into(),
            commands: vec![
                format!(
                    "drctl drill start {plan_path} --live --round-trip --verification-minutes 15{confirm} --by \"$USER\" \
                     --reason \"staging drill: round trip\" | tee evidence/round-trip.json"
                ),
                "drctl run watch $(jq -r .execution_arn evidence/round-trip.json)".into(),
            ],
        },
        Stage {
            title: "7. Evidence to keep",
            proves: "an auditor can trace each claim to a file: IAM decisions, readiness, timelines, RTO and \
                     RPO against the targets, rows counted"
                .into(),
            commands: vec![
                format!("drctl doctor {plan_path} --stack {stack} --json > evidence/doctor-after.json"),
                format!("drctl run list {name} > evidence/runs.txt"),
                format!("aws s3 cp --recursive {reports} evidence/reports/"),
                "for r in evidence/reports/*/report.json; do drctl report show \"$r\"; done > evidence/reports.md"
                    .into(),
            ],
        },
    ]
}

/// The stages as a shell script with comments, as `drctl deploy staging-drill` prints them.
pub fn render(stages: &[Stage]) -> String {
    let mut out = String::new();
    for stage in stages {
        out.push_str(&format!("# {}\n#   proves: {}\n", stage.title, stage.proves));
        for command in &stage.commands {
            out.push_str(command);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_drill_calls_the_regions_and_their_connection_strings_by_the_plans_names() {
        let mut plan = Plan::parse(include_str!("../../../../plans/paris-ireland.toml"), "example").expect("plan");
        let drill = |plan: &Plan| render(&staging_drill(plan, "plan.toml", "dr", "plans"));
        let example = drill(&plan);
        for said in
            ["fenced in Paris, a barrier proves Ireland holds", "$PARIS_DB_URL", "$IRELAND_DB_URL", "in-ireland"]
        {
            assert!(example.contains(said), "{said}: {example}");
        }
        (plan.primary_region, plan.dr_region) = ("us-east-1".into(), "us-west-2".into());
        plan.region_names = [("us-east-1".to_string(), "US East (N. Virginia)".to_string())].into();
        let us = drill(&plan);
        for said in ["fenced in US East (N. Virginia), a barrier proves us-west-2 holds", "$US_EAST_N_VIRGINIA_DB_URL"]
        {
            assert!(us.contains(said), "{said}: {us}");
        }
        assert!(us.contains("$US_WEST_2_DB_URL") && us.contains("evidence/in-us-west-2"), "{us}");
        // The plan's resources keep their names (platform-db-paris, ...); the regions are not called so.
        for region in ["Paris", "Ireland", "PARIS", "IRELAND", "in-ireland"] {
            assert!(!us.contains(region), "{region}: {us}");
        }
    }
}
