//! Reads a plan's evidence from the stack: the report bucket (run, round-trip and restore-test
//! reports, the readiness snapshots) and the plan store (the plan's state, the decisions humans
//! took). Read-only. A file that cannot be read or is not what its key says is named in
//! [`Evidence::unreadable`], never dropped silently: an auditor must see that something is
//! missing.

use serde::de::DeserializeOwned;

use super::Evidence;
use crate::aws::{AwsClients, objects};
use crate::error::DrError;
use crate::plan::Plan;
use crate::readiness::scheduled::{ReadinessSnapshot, history_prefix, snapshot_key};
use crate::report::location;
use crate::restore::report::RestoreReport;
use crate::runbook::round_trip::AnyRunReport;
use crate::store::{Decision, PlanStore};

/// What the report bucket holds under a plan's prefix besides runs: the doctor's reports.
const NOT_A_RUN: &str = "doctor";

/// Everything the stack stores about `plan`, whatever its date: what came before the window
/// still says when the last drill was, how long the gap into the window is, and what the
/// readiness was when the window opened ([`super::build`] keeps to the window). The plan store
/// gives the plan's state and the decisions.
pub async fn gather(clients: &AwsClients, plan: &Plan, store: &PlanStore) -> Result<Evidence, DrError> {
    let s3 = &clients.home.s3;
    let bucket = &plan.reports.bucket;
    let mut evidence = Evidence {
        plan: plan.name.clone(),
        primary_region_name: plan.primary_name().to_string(),
        dr_region_name: plan.dr_name().to_string(),
        rto_target_seconds: plan.targets.rto().as_secs(),
        rpo_target_seconds: plan.targets.rpo().as_secs(),
        state: None,
        runs: Vec::new(),
        round_trips: Vec::new(),
        restore_tests: Vec::new(),
        readiness: Vec::new(),
        decisions: Vec::new(),
        unreadable: Vec::new(),
    };

    let base = format!("{}{}/", plan.reports.prefix, plan.name);
    for key in objects::list_keys(s3, bucket, &base, None).await? {
        let Some(path) = key.strip_prefix(&base).and_then(|rest| rest.strip_suffix("/report.json")) else {
            continue;
        };
        let parts: Vec<&str> = path.split('/').collect();
        match parts.as_slice() {
            [NOT_A_RUN] | ["restore-tests", NOT_A_RUN] => {}
            ["restore-tests", _] => {
                if let Some(report) = read::<RestoreReport>(clients, bucket, &key, &mut evidence.unreadable).await {
                    evidence.restore_tests.push(report);
                }
            }
            [_] => {
                let Some(value) = read::<serde_json::Value>(clients, bucket, &key, &mut evidence.unreadable).await
                else {
                    continue;
                };
                match AnyRunReport::from_json(value) {
                    Ok(AnyRunReport::Run(report)) => evidence.runs.push(*report),
                    Ok(AnyRunReport::RoundTrip(report)) => evidence.round_trips.push(*report),
                    Err(err) => evidence.unreadable.push(format!("{}: not a report: {err}", location(bucket, &key))),
                }
            }
            _ => {}
        }
    }

    // The readiness history (each change) and the latest check.
    let history = objects::list_keys(s3, bucket, &history_prefix(&plan.name), None).await?;
    for key in history.iter().map(String::as_str).chain([snapshot_key(&plan.name).as_str()]) {
        if let Some(snapshot) = read::<ReadinessSnapshot>(clients, bucket, key, &mut evidence.unreadable).await
            && evidence.readiness.last() != Some(&snapshot)
        {
            evidence.readiness.push(snapshot);
        }
    }
    evidence.readiness.sort_by_key(|snapshot| snapshot.checked_at);
    evidence.readiness.dedup();

    evidence.state = Some(store.read_state(&plan.name).await?.state);
    let prefix = format!("decisions/{}/", plan.name);
    for key in objects::list_keys(s3, store.bucket(), &prefix, None).await? {
        if let Some(decision) = read::<Decision>(clients, store.bucket(), &key, &mut evidence.unreadable).await {
            evidence.decisions.push(decision);
        }
    }
    Ok(evidence)
}

/// One JSON object, or its name in `unreadable` (a missing object too: it was just listed).
async fn read<T: DeserializeOwned>(
    clients: &AwsClients,
    bucket: &str,
    key: &str,
    unreadable: &mut Vec<String>,
) -> Option<T> {
    match objects::get_json::<T>(&clients.home.s3, bucket, key, "report").await {
        Ok(Some((value, _))) => Some(value),
        Ok(None) => {
            unreadable.push(format!("{}: deleted while read", location(bucket, key)));
            None
        }
        Err(err) => {
            unreadable.push(format!("{}: {}: {err}", location(bucket, key), err.name()));
            None
        }
    }
}
