//! Promote the Ireland read replica to a standalone primary, and tell when it is.

use aws_sdk_rds::types::Tag;

use super::preflight::{LAG_AT_PROMOTION_TAG, PROMOTED_BY_RUN_TAG, promotion_tags};
use super::{decision, status_record};
use crate::aws::lookup::{db_instance_tags, is_transient_rds_status, require_db_instance};
use crate::aws::postgres::{self, Endpoint};
use crate::aws::{AwsClients, once};
use crate::error::{DrError, describe_sdk_error, sdk_error_code};
use crate::plan::Database;
use crate::run::{
    CaughtError, FailoverKind, Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState,
};
use crate::store::Question;

async fn replica(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
) -> Result<aws_sdk_rds::types::DbInstance, DrError> {
    require_db_instance(&clients.dr.rds, &db.replica_instance, &state.plan.dr_region).await
}

/// Every database's replica, in the plan's order, each described once.
async fn replicas<'p>(
    clients: &AwsClients,
    state: &'p RunbookState,
) -> Result<Vec<(&'p Database, aws_sdk_rds::types::DbInstance)>, DrError> {
    let mut found = Vec::with_capacity(state.plan.databases.len());
    for db in &state.plan.databases {
        found.push((db, replica(clients, state, db).await?));
    }
    Ok(found)
}

fn standalone(db: &aws_sdk_rds::types::DbInstance) -> bool {
    db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty()
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
    let found = replicas(clients, state).await?;
    let resources: Vec<ResourceState> = found.iter().map(|(_, instance)| observed(instance)).collect();
    let mut diverged = Vec::new();
    let mut to_mark = Vec::new();
    for (db, instance) in &found {
        let arn = instance.db_instance_arn().unwrap_or_default().to_string();
        let tags = db_instance_tags(&clients.dr.rds, &arn).await?;
        // Promoted (by this run or another hand), or asked to be by this run (its tag comes
        // before the request): it no longer follows the primary, or may not.
        let asked = tags.get(PROMOTED_BY_RUN_TAG) == Some(&state.run.id);
        if !standalone(instance) && !asked {
            continue;
        }
        diverged.push(db.replica_instance.clone());
        if tags.get(DIVERGED_BY_RUN_TAG) != Some(&state.run.id) {
            to_mark.push((*db, arn));
        }
    }
    if diverged.is_empty() {
        let detail = "no replica was promoted: each still follows its primary, nothing diverged".to_string();
        return Ok(timer.finish(Outcome::AlreadyDone, true, detail, resources));
    }
    let names = diverged.join(", ");
    let detail = format!(
        "{names} ({}) promoted by run {} no longer follow their primaries in {}: marked {DIVERGED_BY_RUN_TAG}; they take \
         no traffic, and reprotect replaces them with new replicas",
        state.plan.dr_region, state.run.id, state.plan.primary_region
    );
    let record = |mut record: StepRecord| {
        record.facts.insert(DIVERGED_FACT.into(), names.clone());
        record
    };
    if to_mark.is_empty() {
        return Ok(record(timer.finish(Outcome::AlreadyDone, true, detail, resources)));
    }
    if state.is_dry_run() {
        let marks = to_mark.iter().map(|(db, _)| db.replica_instance.as_str()).collect::<Vec<_>>().join(", ");
        return Ok(timer.would(format!("tag {marks} {DIVERGED_BY_RUN_TAG}={}", state.run.id), resources));
    }
    for (db, arn) in &to_mark {
        clients
            .dr
            .rds
            .add_tags_to_resource()
            .resource_name(arn)
            .tags(Tag::builder().key(DIVERGED_BY_RUN_TAG).value(&state.run.id).build())
            .customize()
            .config_override(once::rds())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "AddTagsToResource", e))?;
        tracing::warn!(plan = %state.plan.name, step = "mark-diverged", resource = %db.replica_instance, "marked diverged");
    }
    Ok(record(timer.finish(Outcome::Changed, true, detail, resources)))
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

/// Promotes every database's replica, or none yet. Each replica is read first: one in a state it
/// does not leave by itself is `ReplicaFailed` and one in a transient state (backing up,
/// modifying: RDS refuses the promotion) `ReplicaNotPromotable`, which the step waits out within
/// the database phase's budget, in both cases before any promotion: the data tier moves whole. A
/// replica already standalone, or whose promotion this run already asked for (its answer lost),
/// gets no call. Before promoting, tags the instance with this run and the lag the gate accepted,
/// so that a later attempt that finds it standalone knows the achieved RPO; the tags count only on
/// a standalone instance, and a refused promotion removes them (the replica is gated and promoted
/// again by the next attempt or run).
pub async fn promote_replica(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("promote-replica", clients);
    let mut to_promote = Vec::new();
    let mut resources = Vec::new();
    let mut already = Vec::new();
    for (db, instance) in replicas(clients, state).await? {
        let backups = Backups::of(db, &instance)?;
        resources.push(observed(&instance));
        let promoting = match needs_promotion(&instance) {
            Ok(needed) => needed,
            // A promotion this run asked for, in progress (RDS shows `modifying` until it is
            // standalone): waited for by the status step, not asked again.
            Err(DrError::ReplicaNotPromotable { .. }) if promoted_by(clients, state, &instance).await? => false,
            Err(not_now) => return Err(not_now),
        };
        if promoting {
            to_promote.push((db, instance, backups));
        } else {
            already.push(db.replica_instance.clone());
        }
    }
    if to_promote.is_empty() {
        let detail = format!("{} already standalone or promoting", already.join(", "));
        return Ok(timer.finish(Outcome::AlreadyDone, true, detail, resources));
    }
    let lag = state.gate().and_then(|g| g.lag_seconds);
    if state.is_dry_run() {
        let lag = lag.map_or(String::new(), |lag| format!(" (lag {lag:.0} s)"));
        let changes = to_promote
            .iter()
            .map(|(db, _, backups)| {
                format!("promote {} to a standalone primary{lag}, keeping {backups}", db.replica_instance)
            })
            .collect::<Vec<_>>()
            .join("; ");
        return Ok(timer.would(changes, resources));
    }
    let mut requested = Vec::new();
    let mut not_applied = Vec::new();
    for (db, instance, backups) in &to_promote {
        let promoted = promote_one(clients, state, db, instance, backups, lag).await?;
        if let Some(now) = promoted.db_instance() {
            let id = now.db_instance_identifier().unwrap_or_default();
            if let Some(seen) = resources.iter_mut().find(|r| r.resource == id) {
                *seen = observed(now);
            }
        }
        requested.push(format!("{}, keeping {backups}", db.replica_instance));
        if backups.window.is_none() {
            not_applied.push(format!("{}: {backups}", db.replica_instance));
        }
    }
    let detail = format!("promotion requested: {}", requested.join("; "));
    let mut record = timer.finish(Outcome::Changed, true, detail, resources);
    if !not_applied.is_empty() {
        record.facts.insert("backup_window_not_applied".into(), not_applied.join("; "));
    }
    Ok(record)
}

/// Whether this run tagged the instance for its promotion.
async fn promoted_by(
    clients: &AwsClients,
    state: &RunbookState,
    instance: &aws_sdk_rds::types::DbInstance,
) -> Result<bool, DrError> {
    let tags = promotion_tags(clients, instance.db_instance_arn()).await?;
    Ok(tags.is_some_and(|tags| tags.run == state.run.id))
}

/// Tags one replica with this run and the accepted lag, then promotes it (sent once).
async fn promote_one(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
    instance: &aws_sdk_rds::types::DbInstance,
    backups: &Backups,
    lag: Option<f64>,
) -> Result<aws_sdk_rds::operation::promote_read_replica::PromoteReadReplicaOutput, DrError> {
    let id = &db.replica_instance;
    let arn = instance.db_instance_arn().map(str::to_string);
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
        .db_instance_identifier(id)
        // Without them the new primary keeps 1 day of backups.
        .backup_retention_period(backups.retention_days)
        .set_preferred_backup_window(backups.window.clone())
        .customize()
        .config_override(once::rds())
        .send()
        .await;
    match promoted {
        Ok(promoted) => {
            tracing::info!(plan = %state.plan.name, step = "promote-replica", resource = %id, "promotion requested");
            Ok(promoted)
        }
        // Refused because of its state: a transient state the step waits out. The tags go: they
        // count only with a promotion that happened (a later promotion by hand must not pass
        // for this run's).
        Err(e) if matches!(sdk_error_code(&e), Some("InvalidDBInstanceState" | "InvalidDBInstanceStateFault")) => {
            // Unless the refusal is an earlier attempt's promotion in progress (its answer lost):
            // then the tags are that promotion's and stay.
            let promoting = match replica(clients, state, db).await {
                Ok(now) => standalone(&now) || now.db_instance_status() == Some("modifying"),
                Err(_) => true,
            };
            if let (Some(arn), false) = (&arn, promoting) {
                remove_promotion_tags(clients, arn).await;
            }
            Err(DrError::ReplicaNotPromotable { replica: id.clone(), status: describe_sdk_error(&e) })
        }
        Err(e) => Err(DrError::from_sdk("rds", "PromoteReadReplica", e)),
    }
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
    fn of(plan_db: &Database, db: &aws_sdk_rds::types::DbInstance) -> Result<Backups, DrError> {
        let days = plan_db.backup_retention_days;
        let retention_days = i32::try_from(days).map_err(|_| DrError::InvalidInput {
            message: format!("backup_retention_days {days} of {} is out of range", plan_db.label()),
        })?;
        let plan_window = plan_db.backup_window.clone();
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

/// Ready when every database's instance is standalone (no replication source) and accepts
/// writes: `available`, or `backing-up` (a promoted replica takes its first automated backup while
/// already writable). An instance in a state it does not leave by itself (`incompatible-parameters`,
/// `storage-full`, ...) is `ReplicaFailed`: its promotion will not finish, and the data tier would
/// be split (the state machine's roll-back or the on-call's decision takes it from there).
pub async fn replica_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("promote-replica-status", clients);
    let mut ready = true;
    let mut details = Vec::new();
    let mut resources = Vec::new();
    for (db, instance) in replicas(clients, state).await? {
        let status = instance.db_instance_status().unwrap_or("unknown");
        if !is_transient_rds_status(status) && status != "available" {
            return Err(DrError::ReplicaFailed { replica: db.replica_instance.clone(), status: status.to_string() });
        }
        let writable = standalone(&instance) && matches!(status, "available" | "backing-up");
        let resource = observed(&instance);
        let mut detail = format!("{}: {}", resource.resource, resource.state);
        if writable && let Some(opened) = open_for_writes(clients, state, db, &instance).await? {
            detail = format!("{detail}; {opened}");
        }
        ready &= writable;
        details.push(detail);
        resources.push(resource);
    }
    status_record(timer, state, StepKey::PromoteStatus, ready, details.join("; "), resources)
}

/// The data tier's decision (the state machine asks it when an unplanned run's data tier branch
/// failed): split, a human decides whether traffic moves on the databases promoted
/// ([`decision::decision_about`]); whole (nothing promoted, or every database), nothing is asked:
/// `checked`, not ready, and the state machine goes to the failure report with the branch's error.
pub async fn data_tier_decision(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let split = split_data_tier(clients, state).await?;
    // Asked already (a later poll): the answer stands for the tier as it was asked about.
    if split.is_none() && state.step(StepKey::DataTierDecision).is_none() {
        let timer = StepTimer::start("data-tier-decision", clients);
        let error = state.data_tier_error.as_ref().map(CaughtError::reason).unwrap_or_default();
        let detail = format!("nothing to decide: the data tier is whole after {error}");
        return Ok(timer.finish(Outcome::Checked, false, detail, Vec::new()));
    }
    decision::decision_about(clients, state, Question::DataTier, split).await
}

/// Whether an unplanned run left its data tier split, and how: some databases promoted (or
/// promoting) by this run, and another not (still a replica, or in a state its promotion will not
/// leave). `None` when the data tier is whole: nothing was promoted, or every database was.
/// Read from RDS, not from the step records: a promotion step that failed half-way left none.
pub async fn split_data_tier(clients: &AwsClients, state: &ValidState) -> Result<Option<String>, DrError> {
    let mut promoted = Vec::new();
    let mut not_promoted = Vec::new();
    for (_, instance) in replicas(clients, state).await? {
        let status = instance.db_instance_status().unwrap_or("unknown");
        let failed = !is_transient_rds_status(status) && status != "available";
        let seen = observed(&instance);
        let line = format!("{} ({})", seen.resource, seen.state);
        if !failed && (standalone(&instance) || promoted_by(clients, state, &instance).await?) {
            promoted.push(line);
        } else {
            not_promoted.push(line);
        }
    }
    if promoted.is_empty() || not_promoted.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "the data tier is split: promoted {}; not promoted {}",
        promoted.join(", "),
        not_promoted.join(", ")
    )))
}

/// A planned move made Paris's databases read-only (`ALTER DATABASE ... SET
/// default_transaction_read_only`): a setting in the catalog, which each replica replayed with the
/// data. A promoted instance would refuse every write of a new session, so the setting is reset
/// there once it is standalone (idempotent). `None` when the plan does not fence the databases.
async fn open_for_writes(
    clients: &AwsClients,
    state: &RunbookState,
    plan_db: &Database,
    db: &aws_sdk_rds::types::DbInstance,
) -> Result<Option<String>, DrError> {
    let fenced = state.run.kind == FailoverKind::Planned
        && state.plan.fence.as_ref().is_some_and(|fence| fence.database_read_only);
    if !fenced || state.is_dry_run() {
        return Ok(None);
    }
    let credentials = postgres::credentials(clients, &state.plan, plan_db).await?;
    let session = postgres::connect(&Endpoint::require(db)?, &credentials).await?;
    if !session.is_read_only().await? {
        return Ok(Some(format!("database {} writable", session.dbname())));
    }
    session.make_writable().await?;
    tracing::info!(plan = %state.plan.name, step = "promote-replica-status", resource = %plan_db.replica_instance, "the fence's read-only setting reset on the promoted database");
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
