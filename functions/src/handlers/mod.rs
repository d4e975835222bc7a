//! Every function's handler, chosen at start by the function's `Handler`
//! (template.yaml), which Lambda gives a custom runtime as `_HANDLER`. One binary serves every
//! function: `sam build` compiles and links it once (a fat-LTO release link of the SDK set takes
//! minutes on CI's 2 cores; one per function did not fit its 90 minutes), and each function's
//! zip holds the same `bootstrap`. A runbook step's handler is a row of its runbook's table
//! ([`RUNBOOKS`]); every other handler is a module here.

mod alarm_trigger;
mod failover_report;
mod game_day;
mod plan_reconciler;
mod readiness_check;
mod restore_janitor;
mod restore_report;
mod restore_sql_probe;
mod restore_test_start;
mod round_trip;
mod rpo_check;

use dr_core::run::table::Runbook;

/// The runbooks whose steps the step handlers serve: their tables say which handler serves which
/// Task, and the dispatch is derived from them (no module per step).
pub const RUNBOOKS: [&Runbook; 3] =
    [&dr_core::runbook::FAILOVER, &dr_core::runbook::REPROTECT, &dr_core::restore::RESTORE_TEST];

/// The handlers that serve no runbook step, one module each: the triggers, schedules and reports.
const OTHER_HANDLERS: [&str; 11] = [
    "alarm-trigger",
    "failover-report",
    "game-day",
    "plan-reconciler",
    "readiness-check",
    "restore-janitor",
    "restore-report",
    "restore-sql-probe",
    "restore-test-start",
    "round-trip",
    "rpo-check",
];

/// Every handler name, as template.yaml's `Handler` properties name them.
pub fn handlers() -> Vec<&'static str> {
    let mut all: Vec<&'static str> = RUNBOOKS.iter().flat_map(|runbook| runbook.handlers()).collect();
    all.extend(OTHER_HANDLERS);
    all
}

/// Runs the named handler's `main`: configuration and clients once, then the runtime loop.
pub async fn run(handler: &str) -> Result<(), lambda_runtime::Error> {
    for runbook in RUNBOOKS {
        if let Some(served) = runbook.handlers().into_iter().find(|name| *name == handler) {
            return Box::pin(crate::serve_steps(served, runbook)).await;
        }
    }
    // Boxed: each handler's runtime loop is a large future, and only one of them runs.
    match handler {
        "alarm-trigger" => Box::pin(alarm_trigger::run()).await,
        "failover-report" => Box::pin(failover_report::run()).await,
        "game-day" => Box::pin(game_day::run()).await,
        "plan-reconciler" => Box::pin(plan_reconciler::run()).await,
        "readiness-check" => Box::pin(readiness_check::run()).await,
        "restore-janitor" => Box::pin(restore_janitor::run()).await,
        "restore-report" => Box::pin(restore_report::run()).await,
        "restore-sql-probe" => Box::pin(restore_sql_probe::run()).await,
        "restore-test-start" => Box::pin(restore_test_start::run()).await,
        "round-trip" => Box::pin(round_trip::run()).await,
        "rpo-check" => Box::pin(rpo_check::run()).await,
        other => {
            Err(format!("no handler {other:?} (the function's Handler, `_HANDLER`): one of {}", handlers().join(", "))
                .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function of template.yaml names one of the handlers, and every handler serves one
    /// (a runbook's handler is the function its rows name).
    #[test]
    fn the_handlers_are_the_functions_of_the_template() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap_or_default();
        let mut named: Vec<&str> =
            template.lines().filter_map(|line| line.strip_prefix("      Handler: ")).map(str::trim).collect();
        named.sort_unstable();
        let mut handlers = handlers();
        handlers.sort_unstable();
        assert_eq!(named, handlers, "no handler is served twice, none is missing");
    }

    #[tokio::test]
    async fn an_unknown_handler_is_refused_by_name_before_anything_runs() {
        let err = run("bootstrap").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("no handler \"bootstrap\"") && err.contains("preflight"), "{err}");
    }
}
