//! Every function's handler, one module each, chosen at start by the function's `Handler`
//! (template.yaml), which Lambda gives a custom runtime as `_HANDLER`. One binary serves every
//! function: `sam build` compiles and links it once (a fat-LTO release link of the SDK set takes
//! minutes on CI's 2 cores; one per function did not fit its 90 minutes), and each function's
//! zip holds the same `bootstrap`.

mod alarm_trigger;
mod create_replica;
mod failover_report;
mod fence;
mod flip_dns;
mod game_day;
mod plan_reconciler;
mod preflight;
mod promote_replica;
mod readiness_check;
mod restore_cleanup;
mod restore_find_snapshot;
mod restore_instance;
mod restore_janitor;
mod restore_report;
mod restore_sql_probe;
mod restore_test_start;
mod restore_validate;
mod retire_primary;
mod round_trip;
mod rpo_check;
mod scale_asg;
mod start_standby;

/// The handler names, as template.yaml's `Handler` properties name them.
pub const HANDLERS: [&str; 23] = [
    "alarm-trigger",
    "create-replica",
    "failover-report",
    "fence",
    "flip-dns",
    "game-day",
    "plan-reconciler",
    "preflight",
    "promote-replica",
    "readiness-check",
    "restore-cleanup",
    "restore-find-snapshot",
    "restore-instance",
    "restore-janitor",
    "restore-report",
    "restore-sql-probe",
    "restore-test-start",
    "restore-validate",
    "retire-primary",
    "round-trip",
    "rpo-check",
    "scale-asg",
    "start-standby",
];

/// Runs the named handler's `main`: configuration and clients once, then the runtime loop.
pub async fn run(handler: &str) -> Result<(), lambda_runtime::Error> {
    // Boxed: each handler's runtime loop is a large future, and only one of them runs.
    match handler {
        "alarm-trigger" => Box::pin(alarm_trigger::run()).await,
        "create-replica" => Box::pin(create_replica::run()).await,
        "failover-report" => Box::pin(failover_report::run()).await,
        "fence" => Box::pin(fence::run()).await,
        "flip-dns" => Box::pin(flip_dns::run()).await,
        "game-day" => Box::pin(game_day::run()).await,
        "plan-reconciler" => Box::pin(plan_reconciler::run()).await,
        "preflight" => Box::pin(preflight::run()).await,
        "promote-replica" => Box::pin(promote_replica::run()).await,
        "readiness-check" => Box::pin(readiness_check::run()).await,
        "restore-cleanup" => Box::pin(restore_cleanup::run()).await,
        "restore-find-snapshot" => Box::pin(restore_find_snapshot::run()).await,
        "restore-instance" => Box::pin(restore_instance::run()).await,
        "restore-janitor" => Box::pin(restore_janitor::run()).await,
        "restore-report" => Box::pin(restore_report::run()).await,
        "restore-sql-probe" => Box::pin(restore_sql_probe::run()).await,
        "restore-test-start" => Box::pin(restore_test_start::run()).await,
        "restore-validate" => Box::pin(restore_validate::run()).await,
        "retire-primary" => Box::pin(retire_primary::run()).await,
        "round-trip" => Box::pin(round_trip::run()).await,
        "rpo-check" => Box::pin(rpo_check::run()).await,
        "scale-asg" => Box::pin(scale_asg::run()).await,
        "start-standby" => Box::pin(start_standby::run()).await,
        other => {
            Err(format!("no handler {other:?} (the function's Handler, `_HANDLER`): one of {}", HANDLERS.join(", "))
                .into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function of template.yaml names one of the handlers, and every handler serves one.
    #[test]
    fn the_handlers_are_the_functions_of_the_template() {
        let template =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../template.yaml")).unwrap_or_default();
        let mut named: Vec<&str> =
            template.lines().filter_map(|line| line.strip_prefix("      Handler: ")).map(str::trim).collect();
        named.sort_unstable();
        let mut handlers = HANDLERS.to_vec();
        handlers.sort_unstable();
        assert_eq!(named, handlers);
    }

    #[tokio::test]
    async fn an_unknown_handler_is_refused_by_name_before_anything_runs() {
        let err = run("bootstrap").await.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("no handler \"bootstrap\"") && err.contains("preflight"), "{err}");
    }
}
