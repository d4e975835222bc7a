//! Reading a run's execution back from Step Functions, for the operator: its status, its steps as
//! they start and end (from the execution history), each step's budget and the run's RTO target,
//! and the executions of a state machine. Read-only: `DescribeExecution`, `GetExecutionHistory`,
//! `DescribeStateMachine`, `ListExecutions`, `StopExecution` only when asked.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde::Serialize;

use super::{RunbookState, StepKey};
use crate::error::DrError;
use crate::time::{self, Timestamp};

/// An execution as `DescribeExecution` gives it.
#[derive(Debug, Clone, Serialize)]
pub struct ExecutionView {
    pub execution_arn: String,
    pub state_machine_arn: String,
    pub name: String,
    /// RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED.
    pub status: String,
    pub started: Option<Timestamp>,
    pub stopped: Option<Timestamp>,
    #[serde(skip)]
    pub input: Option<String>,
    #[serde(skip)]
    pub output: Option<String>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl ExecutionView {
    pub fn is_running(&self) -> bool {
        self.status == "RUNNING"
    }

    /// The run's input, where it is a runbook's (the failover, reprotect, restore test), its plan
    /// not loaded (the input names it: `run.plan`); a round trip's input is its own.
    pub fn runbook_input(&self) -> Option<RunbookState> {
        self.input.as_deref().and_then(|input| serde_json::from_str(input).ok())
    }

    /// The plan the run is for, from its input (`run.plan.name`: the published plan it took).
    pub fn plan_name(&self) -> Option<String> {
        let input: serde_json::Value = serde_json::from_str(self.input.as_deref()?).ok()?;
        input.pointer("/run/plan/name").and_then(serde_json::Value::as_str).map(str::to_string)
    }
}

pub async fn describe(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<ExecutionView, DrError> {
    let out = sfn
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sfn", "DescribeExecution", e))?;
    Ok(ExecutionView {
        execution_arn: out.execution_arn().to_string(),
        state_machine_arn: out.state_machine_arn().to_string(),
        name: out.name().unwrap_or_default().to_string(),
        status: out.status().as_str().to_string(),
        started: time::from_smithy(out.start_date()),
        stopped: out.stop_date().and_then(time::from_smithy),
        input: out.input().map(str::to_string),
        output: out.output().map(str::to_string),
        error: out.error().map(str::to_string),
        cause: out.cause().map(str::to_string),
    })
}

/// The executions of a state machine, newest first, at most `limit`.
pub async fn list(sfn: &aws_sdk_sfn::Client, state_machine_arn: &str, limit: usize) -> Result<Vec<String>, DrError> {
    let mut arns = Vec::new();
    let mut pages = sfn.list_executions().state_machine_arn(state_machine_arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("sfn", "ListExecutions", e))?;
        arns.extend(page.executions().iter().map(|e| e.execution_arn().to_string()));
        if arns.len() >= limit {
            break;
        }
    }
    arns.truncate(limit);
    Ok(arns)
}

/// Stops a running execution, with who and why as its error and cause.
pub async fn stop(sfn: &aws_sdk_sfn::Client, execution_arn: &str, error: &str, cause: &str) -> Result<(), DrError> {
    sfn.stop_execution()
        .execution_arn(execution_arn)
        .error(error)
        .cause(cause)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sfn", "StopExecution", e))?;
    Ok(())
}

/// The whole history of an execution, oldest first.
pub async fn history(sfn: &aws_sdk_sfn::Client, execution_arn: &str) -> Result<Vec<HistoryEvent>, DrError> {
    let mut events = Vec::new();
    let mut pages = sfn.get_execution_history().execution_arn(execution_arn).max_results(1000).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| DrError::from_sdk("sfn", "GetExecutionHistory", e))?;
        events.extend(page.events().iter().cloned());
    }
    Ok(events)
}

/// What happened to a state, as the operator follows a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Progress {
    /// A Task started.
    Started,
    /// A Task ended; its answer was taken.
    Done,
    /// A Task failed (it may be retried or caught).
    Failed { error: String, cause: String },
    /// A Task is asked again (a Retry).
    Retried,
    /// A Wait state: the run waits before asking a step again.
    Waiting,
    /// A Choice chose the next state.
    Decided { next: String },
    /// The execution ended.
    Ended { status: String, error: Option<String>, cause: Option<String> },
}

/// One line of a run as it is followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepEvent {
    /// The history event's id (a follower skips those it has shown).
    pub id: i64,
    pub at: Timestamp,
    /// The state's name (empty for the execution's end).
    pub state: String,
    #[serde(flatten)]
    pub progress: Progress,
    /// A Task's answer as the state left it (`Done`): the execution state, with the step's record
    /// at its `ResultPath`. Not printed as such: the follower reads each resource from the record.
    #[serde(skip)]
    pub output: Option<String>,
}

impl StepEvent {
    /// The record a Task's answer wrote at `$.steps.<key>`, if the event carries one.
    pub fn record(&self, key: StepKey) -> Option<super::StepRecord> {
        let output: serde_json::Value = serde_json::from_str(self.output.as_deref()?).ok()?;
        serde_json::from_value(output.get("steps")?.get(key.as_str())?.clone()).ok()
    }
}

/// The history as the operator follows it: Tasks starting, ending, failing and retried, Waits,
/// Choices with the state they chose, and the end. Other events (Pass, Parallel, Succeed) say
/// nothing an operator acts on.
pub fn step_events(history: &[HistoryEvent]) -> Vec<StepEvent> {
    let mut events = Vec::new();
    let mut entered: Option<String> = None;
    let mut failed_last = false;
    for (index, event) in history.iter().enumerate() {
        let at = time::from_smithy(event.timestamp()).unwrap_or_else(time::now);
        let line = |state: &str, progress: Progress| StepEvent {
            id: event.id(),
            at,
            state: state.to_string(),
            progress,
            output: None,
        };
        let entered_name = event.state_entered_event_details().map(|d| d.name().to_string());
        let exited_name = event.state_exited_event_details().map(|d| d.name().to_string());
        match event.r#type() {
            HistoryEventType::TaskStateEntered => {
                events.push(line(entered_name.as_deref().unwrap_or_default(), Progress::Started));
            }
            HistoryEventType::TaskStateExited => {
                let mut done = line(exited_name.as_deref().unwrap_or_default(), Progress::Done);
                done.output = event.state_exited_event_details().and_then(|d| d.output()).map(str::to_string);
                events.push(done);
            }
            HistoryEventType::TaskFailed => {
                let details = event.task_failed_event_details();
                events.push(line(
                    entered.as_deref().unwrap_or_default(),
                    Progress::Failed {
                        error: details.and_then(|d| d.error()).unwrap_or_default().to_string(),
                        cause: lambda_message(details.and_then(|d| d.cause()).unwrap_or_default()),
                    },
                ));
            }
            // Step Functions schedules a Task on entry and again on each retry, after its failure.
            HistoryEventType::TaskScheduled if failed_last => {
                events.push(line(entered.as_deref().unwrap_or_default(), Progress::Retried));
            }
            HistoryEventType::WaitStateEntered => {
                events.push(line(entered_name.as_deref().unwrap_or_default(), Progress::Waiting));
            }
            HistoryEventType::ChoiceStateExited => {
                // The state it chose is the next one entered.
                let next = history[index + 1..]
                    .iter()
                    .find_map(|e| e.state_entered_event_details().map(|d| d.name().to_string()));
                if let Some(next) = next {
                    events.push(line(exited_name.as_deref().unwrap_or_default(), Progress::Decided { next }));
                }
            }
            HistoryEventType::ExecutionSucceeded => {
                events.push(line("", Progress::Ended { status: "SUCCEEDED".into(), error: None, cause: None }));
            }
            HistoryEventType::ExecutionFailed => {
                let details = event.execution_failed_event_details();
                let (error, cause) = (details.and_then(|d| d.error()), details.and_then(|d| d.cause()));
                events.push(line("", ended("FAILED", error, cause)));
            }
            HistoryEventType::ExecutionAborted => {
                let details = event.execution_aborted_event_details();
                let (error, cause) = (details.and_then(|d| d.error()), details.and_then(|d| d.cause()));
                events.push(line("", ended("ABORTED", error, cause)));
            }
            HistoryEventType::ExecutionTimedOut => {
                events.push(line("", Progress::Ended { status: "TIMED_OUT".into(), error: None, cause: None }));
            }
            _ => {}
        }
        match event.r#type() {
            HistoryEventType::TaskStateEntered => {
                entered = entered_name;
                failed_last = false;
            }
            HistoryEventType::TaskFailed => failed_last = true,
            HistoryEventType::TaskScheduled => failed_last = false,
            _ => {}
        }
    }
    events
}

fn ended(status: &str, error: Option<&str>, cause: Option<&str>) -> Progress {
    Progress::Ended { status: status.to_string(), error: error.map(str::to_string), cause: cause.map(str::to_string) }
}

/// A Lambda function error's cause is its JSON answer (`{"errorType", "errorMessage", ...}`):
/// the message; any other cause as it is.
fn lambda_message(cause: &str) -> String {
    serde_json::from_str::<serde_json::Value>(cause)
        .ok()
        .and_then(|answer| answer.get("errorMessage").and_then(serde_json::Value::as_str).map(str::to_string))
        .unwrap_or_else(|| cause.to_string())
}

/// Each Task's step and budget in a state machine's definition: the step is the Task's
/// `ResultPath` (`$.steps.<key>`), the budget its phase's share of the RTO ([`StepKey::phase`]).
/// Tasks that are no step of a run (the report) have none.
pub fn step_budgets(definition: &str, rto: Duration) -> HashMap<String, (StepKey, Duration)> {
    let mut budgets = HashMap::new();
    let Ok(definition) = serde_json::from_str::<serde_json::Value>(definition) else { return budgets };
    fn collect(states: &serde_json::Value, rto: Duration, budgets: &mut HashMap<String, (StepKey, Duration)>) {
        let Some(states) = states.as_object() else { return };
        for (name, state) in states {
            let key = state
                .get("ResultPath")
                .and_then(serde_json::Value::as_str)
                .and_then(|path| path.strip_prefix("$.steps."))
                .and_then(|key| serde_json::from_value::<StepKey>(serde_json::Value::String(key.to_string())).ok());
            if let Some(key) = key {
                budgets.insert(name.clone(), (key, rto.mul_f64(key.phase().share_of_rto)));
            }
            for branch in state.get("Branches").and_then(serde_json::Value::as_array).into_iter().flatten() {
                collect(&branch["States"], rto, budgets);
            }
        }
    }
    collect(&definition["States"], rto, &mut budgets);
    budgets
}

/// A state machine's definition (`DescribeStateMachine`).
pub async fn definition(sfn: &aws_sdk_sfn::Client, state_machine_arn: &str) -> Result<String, DrError> {
    let out = sfn
        .describe_state_machine()
        .state_machine_arn(state_machine_arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("sfn", "DescribeStateMachine", e))?;
    Ok(out.definition().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_budget_is_its_phases_share_of_the_rto_found_by_its_result_path() {
        let definition =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../statemachines/failover.asl.json"))
                .unwrap_or_default();
        let budgets = step_budgets(&definition, Duration::from_secs(4 * 3600));
        assert_eq!(budgets.get("Preflight"), Some(&(StepKey::Preflight, Duration::from_secs(1800))));
        assert_eq!(budgets.get("Decision"), Some(&(StepKey::Decision, Duration::from_secs(3600))));
        // Nested in the Parallel's branches.
        assert_eq!(budgets.get("ReplicaStatus"), Some(&(StepKey::PromoteStatus, Duration::from_secs(7200))));
        assert_eq!(budgets.get("Report"), None);
    }
}
