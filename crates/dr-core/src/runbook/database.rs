//! Promote the Ireland read replica to a standalone primary, and tell when it is.

use aws_sdk_rds::types::Tag;

use super::preflight::{LAG_AT_PROMOTION_TAG, PROMOTED_BY_RUN_TAG, promotion_tags};
use super::status_record;
use crate::aws::lookup::{db_instance_tags, is_transient_rds_status, require_db_instance};
use crate::aws::postgres::{self, Endpoint};
use crate::aws::{AwsClients, once};
use crate::error::{DrError, describe_sdk_error, sdk_error_code};
use crate::run::{FailoverKind, Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};

async fn replica(clients: &AwsClients, state: &RunbookState) -> Result<aws_sdk_rds::types::DbInstance, DrError> {
    require_db_instance(&clients.dr.rds, &state.plan.database.replica_instance, &state.plan.dr_region).await
}

/// An instance as a step saw it: its status, and standalone or whose replica.
pub(super) fn observed(db: &aws_sdk_rds::types::DbInstance) -> ResourceState {
    let source = db.read_replica_source_db_instance_identifier().unwrap_or_default();
    ResourceState {
        resource: db.db_instance_identifier().unwrap_or_default().to_string(),
        state: format!(
            "{}, {}",
            db.db_instance_status().unwrap_or("unknown"),
            if source.is_empty() { "standalone".to_string() } else { format!("replica of {source}") }
        ),
    }
}

/// Tag on an instance a rolled-back run had promoted: the run. It is a standalone copy that no
/// longer follows the primary (it takes no traffic); reprotect replaces it with a new replica.
pub const DIVERGED_BY_RUN_TAG: &str = "dr-diverged-by-run";
/// The mark's fact: the instance marked (the report reads it).
pub const DIVERGED_FACT: &str = "diverged";

/// A roll-back's mark (the promote step's undo): the instance this run promoted, if it did, is
/// tagged as diverged, so that nobody takes it for the replica or points an application at it.
/// Not promoted (still a replica, and this run never asked): nothing to mark. Idempotent.
pub async fn mark_diverged(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("mark-diverged", clients);
    let db = replica(clients, state).await?;
    let id = state.plan.database.replica_instance.clone();
    let asked = state.step(StepKey::Promote).is_some_and(|r| r.outcome == Outcome::Changed);
    let standalone = db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty();
    if !standalone && !asked {
        let detail = format!("{id} was not promoted: still a replica, nothing diverged");
        return Ok(timer.finish(Outcome::AlreadyDone, true, detail, vec![observed(&db)]));
    }
    let detail = format!(
        "{id} ({}) was promoted by run {} and no longer follows {} ({}): marked {DIVERGED_BY_RUN_TAG}; it takes no \
         traffic, and reprotect replaces it with a new replica",
        state.plan.dr_region, state.run.id, state.plan.database.primary_instance, state.plan.primary_region
    );
    let arn = db.db_instance_arn().unwrap_or_default().to_string();
    let marked = db_instance_tags(&clients.dr.rds, &arn).await?.get(DIVERGED_BY_RUN_TAG) == Some(&state.run.id);
    let diverged = |mut record: StepRecord| {
        record.facts.insert(DIVERGED_FACT.into(), id.clone());
        record
    };
    if marked {
        return Ok(diverged(timer.finish(Outcome::AlreadyDone, true, detail, vec![observed(&db)])));
    }
    if state.is_dry_run() {
        return Ok(timer.would(format!("tag {id} {DIVERGED_BY_RUN_TAG}={}", state.run.id), vec![observed(&db)]));
    }
    clients
        .dr
        .rds
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(Tag::builder().key(DIVERGED_BY_RUN_TAG).value(&state.run.id).build())
        .customize()
        .config_override(once::rds())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "AddTagsToResource", e))?;
    tracing::warn!(plan = %state.plan.name, step = "mark-diverged", resource = %id, "{detail}");
    Ok(diverged(timer.finish(Outcome::Changed, true, detail, vec![observed(&db)])))
}

/// Whether the instance must be promoted: `false` when already standalone, `ReplicaNotPromotable`
/// (retryable: waited out) while a replica is in a transient state, `ReplicaFailed` in a state it
/// does not leave by itself.
pub fn needs_promotion(db: &aws_sdk_rds::types::DbInstance) -> Result<bool, DrError> {
    if db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty() {
        return Ok(false);
    }
    let replica = db.db_instance_identifier().unwrap_or_default().to_string();
    match db.db_instance_status().unwrap_or("unknown") {
        "available" => Ok(true),
        status if is_transient_rds_status(status) => {
            Err(DrError::ReplicaNotPromotable { replica, status: status.to_string() })
        }
        status => Err(DrError::ReplicaFailed { replica, status: status.to_string() }),
    }
}

/// Promotes the replica. Already standalone: no call. A replica in any state but `available`
/// (backing up, modifying: RDS refuses the promotion) is `ReplicaNotPromotable`, which the step
/// waits out within the database phase's budget. Before promoting, tags the instance with this run
/// and the lag the gate accepted, so that a later attempt that finds it standalone knows the
/// achieved RPO; the tags count only on a standalone instance, and a refused promotion removes them
/// (the replica is gated and promoted again by the next attempt or run).
pub async fn promote_replica(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("promote-replica", clients);
    let db = replica(clients, state).await?;
    let backups = Backups::of(&state.plan, &db)?;
    let id = state.plan.database.replica_instance.clone();
    if !needs_promotion(&db)? {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("{id} is already standalone"),
            vec![observed(&db)],
        ));
    }
    let lag = state.gate().and_then(|g| g.lag_seconds);
    if state.is_dry_run() {
        let lag = lag.map_or(String::new(), |lag| format!(" (lag {lag:.0} s)"));
        let change = format!("promote {id} to a standalone primary{lag}, keeping {backups}");
        return Ok(timer.would(change, vec![observed(&db)]));
    }
    let arn = db.db_instance_arn().map(str::to_string);
    if let Some(arn) = &arn {
        let tagged = promotion_tags(clients, Some(arn)).await?;
        if tagged.as_ref().is_none_or(|t| t.run != state.run.id) {
            let mut tags = vec![Tag::builder().key(PROMOTED_BY_RUN_TAG).value(&state.run.id).build()];
            if let Some(lag) = lag {
                tags.push(Tag::builder().key(LAG_AT_PROMOTION_TAG).value(format!("{lag:.0}")).build());
            }
            clients
                .dr
                .rds
                .add_tags_to_resource()
                .resource_name(arn)
                .set_tags(Some(tags))
                .customize()
                .config_override(once::rds())
                .send()
                .await
                .map_err(|e| DrError::from_sdk("rds", "AddTagsToResource", e))?;
        }
    }
    let promoted = clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&id)
        // Without them the new primary keeps 1 day of backups.
        .backup_retention_period(backups.retention_days)
        .set_preferred_backup_window(backups.window.clone())
        .customize()
        .config_override(once::rds())
        .send()
        .await;
    let promoted = match promoted {
        Ok(promoted) => promoted,
        // Refused because of its state: a transient state the step waits out. The tags go: they
        // count only with a promotion that happened (a later promotion by hand must not pass
        // for this run's).
        Err(e) if matches!(sdk_error_code(&e), Some("InvalidDBInstanceState" | "InvalidDBInstanceStateFault")) => {
            // Unless the refusal is an earlier attempt's promotion in progress (its answer lost):
            // then the tags are that promotion's and stay.
            let promoting = match replica(clients, state).await {
                Ok(now) => {
                    now.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty()
                        || now.db_instance_status() == Some("modifying")
                }
                Err(_) => true,
            };
            if let (Some(arn), false) = (&arn, promoting) {
                remove_promotion_tags(clients, arn).await;
            }
            return Err(DrError::ReplicaNotPromotable { replica: id.clone(), status: describe_sdk_error(&e) });
        }
        Err(e) => return Err(DrError::from_sdk("rds", "PromoteReadReplica", e)),
    };
    let resources = promoted.db_instance().map(observed).into_iter().collect();
    tracing::info!(plan = %state.plan.name, step = "promote-replica", resource = %id, "promotion requested");
    let mut record =
        timer.finish(Outcome::Changed, true, format!("promotion of {id} requested, keeping {backups}"), resources);
    record.facts.insert("backup_retention_days".into(), backups.retention_days.to_string());
    match &backups.window {
        Some(window) => record.facts.insert("backup_window".into(), window.clone()),
        None => record.facts.insert("backup_window_not_applied".into(), backups.to_string()),
    };
    Ok(record)
}

/// The backups the promoted instance keeps, from the plan.
struct Backups {
    retention_days: i32,
    /// The plan's window; `None` when it meets the instance's maintenance window, which RDS
    /// refuses in a promotion ("Must not conflict with the preferred maintenance window"): the
    /// promotion goes on with the instance's own window rather than fail (readiness names the
    /// conflict beforehand: `BackupWindowConflictsMaintenance`).
    window: Option<String>,
    plan_window: String,
    maintenance: Option<String>,
}

impl Backups {
    fn of(plan: &crate::plan::Plan, db: &aws_sdk_rds::types::DbInstance) -> Result<Backups, DrError> {
        let days = plan.database.backup_retention_days;
        let retention_days = i32::try_from(days).map_err(|_| DrError::InvalidInput {
            message: format!("database.backup_retention_days {days} is out of range"),
        })?;
        let plan_window = plan.database.backup_window.clone();
        let maintenance = db.preferred_maintenance_window().map(str::to_string);
        let conflicts = maintenance
            .as_deref()
            .is_some_and(|maintenance| crate::plan::backup_window_conflicts(&plan_window, maintenance));
        let window = (!conflicts).then(|| plan_window.clone());
        Ok(Backups { retention_days, window, plan_window, maintenance })
    }
}

impl std::fmt::Display for Backups {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.window {
            Some(window) => write!(f, "{} days of backups, window {window} UTC", self.retention_days),
            None => write!(
                f,
                "{} days of backups in its own window (the plan's {} UTC meets its maintenance window {}, which RDS refuses)",
                self.retention_days,
                self.plan_window,
                self.maintenance.as_deref().unwrap_or("?")
            ),
        }
    }
}

/// Best effort: a tag left behind is overwritten by the next attempt's and counts only on a
/// standalone instance.
async fn remove_promotion_tags(clients: &AwsClients, arn: &str) {
    let removed = clients
        .dr
        .rds
        .remove_tags_from_resource()
        .resource_name(arn)
        .tag_keys(PROMOTED_BY_RUN_TAG)
        .tag_keys(LAG_AT_PROMOTION_TAG)
        .customize()
        .config_override(once::rds())
        .send()
        .await;
    if let Err(err) = removed {
        let err = DrError::from_sdk("rds", "RemoveTagsFromResource", err);
        tracing::warn!(resource = arn, error = err.name(), "promotion tags not removed: {err}");
    }
}

/// Ready when the instance is standalone (no replication source) and accepts writes: `available`,
/// or `backing-up` (a promoted replica takes its first automated backup while already writable).
pub async fn replica_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("promote-replica-status", clients);
    let db = replica(clients, state).await?;
    let standalone = db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty();
    let ready = standalone && matches!(db.db_instance_status(), Some("available" | "backing-up"));
    let resource = observed(&db);
    let mut detail = resource.state.clone();
    if ready && let Some(opened) = open_for_writes(clients, state, &db).await? {
        detail = format!("{detail}; {opened}");
    }
    status_record(timer, state, StepKey::PromoteStatus, ready, detail, vec![resource])
}

/// A planned move made Paris's database read-only (`ALTER DATABASE ... SET
/// default_transaction_read_only`): a setting in the catalog, which the replica replayed with the
/// data. The promoted instance would refuse every write of a new session, so the setting is reset
/// there once it is standalone (idempotent). `None` when the plan does not fence the database.
async fn open_for_writes(
    clients: &AwsClients,
    state: &RunbookState,
    db: &aws_sdk_rds::types::DbInstance,
) -> Result<Option<String>, DrError> {
    let fenced = state.run.kind == FailoverKind::Planned
        && state.plan.fence.as_ref().is_some_and(|fence| fence.database_read_only);
    if !fenced || state.is_dry_run() {
        return Ok(None);
    }
    let credentials = postgres::credentials(clients, &state.plan).await?;
    let session = postgres::connect(&Endpoint::require(db)?, &credentials).await?;
    if !session.is_read_only().await? {
        return Ok(Some(format!("database {} writable", session.dbname())));
    }
    session.make_writable().await?;
    tracing::info!(plan = %state.plan.name, step = "promote-replica-status", resource = %state.plan.database.replica_instance, "the fence's read-only setting reset on the promoted database");
    Ok(Some(format!("database {} made writable (the fence's read-only setting came with the data)", session.dbname())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_rds::types::DbInstance;

    fn instance(status: &str, source: Option<&str>) -> DbInstance {
        DbInstance::builder()
            .db_instance_identifier("platform-db-ireland")
            .db_instance_status(status)
            .set_read_replica_source_db_instance_identifier(source.map(str::to_string))
            .build()
    }

    #[test]
    fn only_an_available_replica_is_promoted() {
        let source = Some("arn:aws:rds:eu-west-3:123456789012:db:platform-db-paris");
        assert!(matches!(needs_promotion(&instance("available", source)), Ok(true)));
        assert!(matches!(needs_promotion(&instance("available", None)), Ok(false)));
        // moto keeps every instance `available`; AWS has these states, which must wait.
        for busy in ["modifying", "backing-up", "storage-optimization", "rebooting"] {
            let err = needs_promotion(&instance(busy, source)).expect_err("not promotable now");
            assert_eq!(err.name(), "ReplicaNotPromotable");
            assert!(err.is_retryable());
        }
    }
}
