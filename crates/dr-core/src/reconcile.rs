//! The reconciler: no lock outlives its run. A plan is held (failing-over) by the run that took
//! it; the run's report ends the hold. When the run ends without its report (stopped by hand,
//! timed out, aborted, a failure report that failed, a `States.Runtime` error no Catch takes) or
//! never starts (the start failed and the give-back was lost, the Lambda timed out between the
//! two), the reconciler ends it: on a schedule, and on Step Functions' "Execution Status Change"
//! events (template.yaml). It reads the truth each time (the plan state, the execution, its
//! history), never the event.
//!
//! A run that changed nothing (no Task that changes the estate was ever entered) gives the plan
//! back to the status it took it from; a run that entered one stays held, with why, for a human.
//! Either way the on-call is told once: which run, how it ended, what the estate looks like.

use std::time::Duration;

use aws_sdk_sfn::types::HistoryEventType;
use serde::Serialize;

use crate::error::DrError;
use crate::notify::{self, Notice, NoticeKind};
use crate::readiness::{Scope, check_plan};
use crate::run::execution;
use crate::store::{PlanState, PlanStatus, WriteOutcome};
use crate::time;
use crate::trigger::TriggerContext;

/// Who the reconciler writes as: a hold it has already judged is not told again.
pub const RECONCILER: &str = "reconciler";

/// How long a plan may be held by a run that does not exist before it is given back: longer than
/// any invocation that takes a plan and then starts its run (the alarm trigger's timeout is
/// 900 s), so that a start still under way is never mistaken for one that will not come.
pub const START_GRACE: Duration = Duration::from_secs(20 * 60);

/// The failover runbook's Tasks that change nothing in the estate: preflight and its RPO gate,
/// the decision, the reports. A run that entered any other Task may have changed it, even if its
/// record was lost with a crash (`tests/contract.rs` checks these names against the machine).
pub const TASKS_THAT_CHANGE_NOTHING: &[&str] =
    &["Preflight", "Decision", "CapacityDecision", "DataTierDecision", "RefusalReport", "FailureReport", "Report"];

/// What the reconciler did about one held plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The run changed nothing (or never started): the plan is back to the status it was taken
    /// from.
    GivenBack,
    /// The run ended after entering a step that changes the estate: held, for a human.
    KeptForAHuman,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    pub plan: String,
    pub run_id: String,
    /// How the run ended: FAILED, TIMED_OUT, ABORTED, SUCCEEDED, or NEVER_STARTED.
    pub ended: String,
    pub verdict: Verdict,
    pub detail: String,
}

/// Judges every served plan that a run holds; one entry for each hold it ended or judged.
pub async fn reconcile(ctx: &TriggerContext) -> Result<Vec<Reconciled>, DrError> {
    let mut done = Vec::new();
    for name in &ctx.plan_names {
        // One plan that cannot be judged (a throttled call) does not keep the others waiting.
        match reconcile_plan(ctx, name).await {
            Ok(Some(reconciled)) => done.push(reconciled),
            Ok(None) => {}
            Err(err) => tracing::error!(plan = %name, error = err.name(), "hold not reconciled: {err}"),
        }
    }
    Ok(done)
}

/// How a run that holds a plan stands.
enum RunStands {
    /// Running, or held for too short a time to tell that it will not start.
    Live,
    Ended {
        status: String,
        changing_tasks: Vec<String>,
    },
}

async fn reconcile_plan(ctx: &TriggerContext, name: &str) -> Result<Option<Reconciled>, DrError> {
    let read = ctx.store.read_state(name).await?;
    let held = &read.state;
    let Some(run_id) = held.run_id.clone().filter(|_| held.status == PlanStatus::FailingOver) else {
        return Ok(None);
    };
    // Judged already: by this reconciler, or by the run's own report (which told).
    if held.changed_by == RECONCILER || held.changed_by == crate::runbook::report::REPORT {
        return Ok(None);
    }
    let RunStands::Ended { status, changing_tasks } = how_it_stands(ctx, held, &run_id).await? else {
        return Ok(None);
    };
    let plan = ctx.store.load_plan(name).await?;
    let (verdict, new) = if changing_tasks.is_empty() && status != "SUCCEEDED" {
        let why = format!("run {run_id} ended {status} having changed nothing: given back");
        (Verdict::GivenBack, held.given_back(RECONCILER, why))
    } else {
        let entered = if changing_tasks.is_empty() { "its report".to_string() } else { changing_tasks.join(", ") };
        let why = format!(
            "run {run_id} ended {status} without ending its hold, after {entered}: check the estate, then re-arm (drctl trigger arm --force)"
        );
        (Verdict::KeptForAHuman, held.moved(PlanStatus::FailingOver, RECONCILER, why))
    };
    if ctx.store.write_state(&read, &new).await? == WriteOutcome::Lost {
        // Someone (the run's own report, an operator) changed it meanwhile: judged next time.
        return Ok(None);
    }
    let clients = (ctx.clients_for)(&plan);
    let current = new.current_plan(&plan)?;
    let estate = check_plan(&clients, &current, Scope::DataPlane).await;
    let findings: Vec<String> = estate.findings().iter().map(|f| format!("{f:?}")).collect();
    let estate_line = if findings.is_empty() {
        "Estate: plan check green (data plane)".to_string()
    } else {
        format!("Estate: {} finding(s): {}", findings.len(), findings.join(", "))
    };
    let reconciled = Reconciled {
        plan: name.to_string(),
        run_id: run_id.clone(),
        ended: status,
        verdict,
        detail: new.reason.clone(),
    };
    let headline = match reconciled.verdict {
        Verdict::GivenBack => format!("plan {} again: run {run_id} ended {}", new.status.name(), reconciled.ended),
        Verdict::KeptForAHuman => format!("plan still held: run {run_id} ended {}, a human decides", reconciled.ended),
    };
    let text = [headline.clone(), new.reason.clone(), estate_line].join("\n");
    let notice = Notice::new(NoticeKind::HoldReconciled, name, Some(&run_id), format!("{name}: {headline}"), text)
        .fact("ended", &reconciled.ended)
        .fact("verdict", &reconciled.verdict)
        .fact("plan_status", new.status.name())
        .fact("estate_ready", estate.is_ready());
    notify::send(&clients, &notice).await;
    tracing::warn!(plan = %name, run = %run_id, ended = %reconciled.ended, verdict = ?reconciled.verdict, "{}", new.reason);
    Ok(Some(reconciled))
}

/// Whether the run holding `held` is live, or how it ended and which Tasks that change the
/// estate it entered.
async fn how_it_stands(ctx: &TriggerContext, held: &PlanState, run_id: &str) -> Result<RunStands, DrError> {
    let arn = ctx.starter.execution_arn(run_id);
    let sfn = ctx.starter.client();
    let described = match sfn.describe_execution().execution_arn(&arn).send().await {
        Ok(described) => described,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_execution_does_not_exist()) => {
            let since = held.changed_at.map_or(Duration::MAX, |at| time::elapsed(at, time::now()));
            return Ok(if since > START_GRACE {
                RunStands::Ended { status: "NEVER_STARTED".into(), changing_tasks: Vec::new() }
            } else {
                RunStands::Live
            });
        }
        Err(err) => return Err(DrError::from_sdk("sfn", "DescribeExecution", err)),
    };
    let status = described.status().as_str().to_string();
    if status == "RUNNING" || status == "PENDING_REDRIVE" {
        return Ok(RunStands::Live);
    }
    let history = execution::history(sfn, &arn).await?;
    let mut changing_tasks: Vec<String> = history
        .iter()
        .filter(|event| event.r#type() == &HistoryEventType::TaskStateEntered)
        .filter_map(|event| event.state_entered_event_details().map(|d| d.name().to_string()))
        .filter(|task| !TASKS_THAT_CHANGE_NOTHING.contains(&task.as_str()))
        .collect();
    // A Task asked again (a status loop) is named once.
    changing_tasks.sort();
    changing_tasks.dedup();
    Ok(RunStands::Ended { status, changing_tasks })
}
