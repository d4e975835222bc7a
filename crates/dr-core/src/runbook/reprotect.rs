//! Reprotect after a failover: Ireland serves alone, with no replica anywhere; make Paris its
//! replica again, without losing the old primary.
//!
//! 1. **Retire** the old Paris primary (act, asked again until done): a final snapshot first
//!    (`<instance>-final-<run time>`), and once it is available, the instance renamed
//!    (`<instance>-retired-<run time>`: its endpoint changes, so a forgotten client cannot write to
//!    it) and tagged with the run and its snapshot. It is never deleted here: that is an operator's
//!    step once the new replica is healthy. A Paris primary that is gone (the region lost it) has
//!    nothing to retire.
//! 2. **Replicate** (act): a cross-region read replica of the Ireland primary, created in Paris
//!    under the plan's primary name, as the instance it replaces was (class, subnet group,
//!    security groups, parameter and option groups, encryption key, Multi-AZ).
//! 3. **Replicate status**: ready when the new replica is available and its `ReplicaLag` (in
//!    Paris) is within the RPO.
//!
//! Every step does this for each of the plan's databases, in turn, and is ready when each is.
//!
//! Each step observes before it acts: run again, it finds its work done and makes no mutating
//! call. Reprotect refuses (`ReprotectRefused`, before any change) while the Ireland instance is
//! still a replica: there is nothing to reprotect before a failover.

use aws_sdk_rds::types::{DbInstance, Tag};

use super::database::{needs_promotion, observed};
use super::status_record;
use crate::aws::lookup::{describe_db_instance, require_db_instance};
use crate::aws::{AwsClients, once};
use crate::error::DrError;
use crate::plan::{Database, Plan};
use crate::rpo::read_replica_lags;
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer, ValidState};
use crate::time;

/// Tags on the retired primary: the run that retired it, and its final snapshot.
pub const RETIRED_BY_RUN_TAG: &str = "dr-retired-by-run";
pub const FINAL_SNAPSHOT_TAG: &str = "dr-final-snapshot";
/// Tag on the new Paris replica: the run that created it.
pub const REPLICA_BY_RUN_TAG: &str = "dr-replica-by-run";

/// RDS instance identifiers are at most 63 characters.
const MAX_INSTANCE_ID: usize = 63;

/// The name a database's old primary takes when retired: `<instance>-retired-<run time>`.
pub fn retired_id(state: &RunbookState, db: &Database) -> String {
    suffixed(&db.primary_instance, "retired", state)
}

/// The old primary's final snapshot: `<instance>-final-<run time>`.
pub fn final_snapshot_id(state: &RunbookState, db: &Database) -> String {
    suffixed(&db.primary_instance, "final", state)
}

/// What a step did for one database.
struct Part {
    outcome: Outcome,
    ready: bool,
    /// What was seen or done; for a dry run, what would be done.
    detail: String,
    resources: Vec<ResourceState>,
}

impl Part {
    fn new(outcome: Outcome, ready: bool, detail: String, resources: Vec<ResourceState>) -> Part {
        Part { outcome, ready, detail, resources }
    }
}

/// One step's record from every database's part: ready when each is; changed when any changed;
/// still waiting (within the phase's budget) when none changed and one is not ready.
fn combine(timer: StepTimer<'_>, state: &RunbookState, key: StepKey, parts: Vec<Part>) -> Result<StepRecord, DrError> {
    let ready = parts.iter().all(|part| part.ready);
    let outcome_of = |outcome| parts.iter().any(|part| part.outcome == outcome);
    let (changed, would) = (outcome_of(Outcome::Changed), outcome_of(Outcome::WouldChange));
    let detail = parts.iter().map(|part| part.detail.as_str()).collect::<Vec<_>>().join("; ");
    let resources = parts.into_iter().flat_map(|part| part.resources).collect();
    if would {
        return Ok(timer.would(detail, resources));
    }
    if changed {
        return Ok(timer.finish(Outcome::Changed, ready, detail, resources));
    }
    if !ready {
        return status_record(timer, state, key, false, detail, resources);
    }
    Ok(timer.finish(Outcome::AlreadyDone, true, detail, resources))
}

fn suffixed(instance: &str, what: &str, state: &RunbookState) -> String {
    let suffix = format!("-{what}-{}", time::compact(state.run.triggered_at).to_lowercase());
    format!("{}{suffix}", stem(instance, suffix.len()))
}

/// What of an instance's name is kept before a suffix of `suffix_len` characters.
fn stem(instance: &str, suffix_len: usize) -> &str {
    let keep = MAX_INSTANCE_ID.saturating_sub(suffix_len).min(instance.len());
    instance.get(..keep).unwrap_or(instance).trim_end_matches('-')
}

fn refused(reason: String) -> DrError {
    DrError::ReprotectRefused { reason }
}

/// Each database's Ireland instance, which must be standalone (failed over): else
/// `ReprotectRefused`, before any change.
async fn ireland_primaries<'p>(
    clients: &AwsClients,
    state: &'p RunbookState,
) -> Result<Vec<(&'p Database, DbInstance)>, DrError> {
    let plan = &state.plan;
    let mut found = Vec::with_capacity(plan.databases.len());
    for db in &plan.databases {
        let ireland = require_db_instance(&clients.dr.rds, &db.replica_instance, &plan.dr_region).await?;
        if needs_promotion(&ireland).unwrap_or(true) {
            return Err(refused(format!(
                "{} ({}) is still a replica: there is nothing to reprotect before a failover",
                db.replica_instance, plan.dr_region
            )));
        }
        found.push((db, ireland));
    }
    Ok(found)
}

/// Whether `db` replicates from the Ireland instance (`source` is its identifier or ARN).
fn replicates_from(db: &DbInstance, ireland: &DbInstance) -> bool {
    let source = db.read_replica_source_db_instance_identifier().unwrap_or_default();
    !source.is_empty()
        && (Some(source) == ireland.db_instance_arn() || Some(source) == ireland.db_instance_identifier())
}

/// Retires each old Paris primary: final snapshot, then renamed and tagged. Asked again until it
/// answers ready.
pub async fn retire_primary(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("retire-primary", clients);
    let mut parts = Vec::new();
    for (db, ireland) in ireland_primaries(clients, state).await? {
        parts.push(retire_one(clients, state, db, &ireland).await?);
    }
    combine(timer, state, StepKey::RetirePrimary, parts)
}

async fn retire_one(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
    ireland: &DbInstance,
) -> Result<Part, DrError> {
    let plan = &state.plan;
    let paris = &clients.primary.rds;
    let (name, retired, snapshot) = (&db.primary_instance, retired_id(state, db), final_snapshot_id(state, db));
    // The new replica holding the name was created after an earlier attempt retired the old one.
    let old = describe_db_instance(paris, name).await?.filter(|found| !replicates_from(found, ireland));
    let Some(old) = old else {
        let (detail, resources) = match describe_db_instance(paris, &retired).await? {
            Some(found) => (format!("{name} retired as {retired}, final snapshot {snapshot}"), vec![observed(&found)]),
            None => (format!("{name} is gone from {}: nothing to retire", plan.primary_region), Vec::new()),
        };
        return Ok(Part::new(Outcome::AlreadyDone, true, detail, resources));
    };
    if !old.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty() {
        return Err(refused(format!(
            "{name} ({}) is a replica of {}, not the old primary nor a replica of {}: left alone",
            plan.primary_region,
            old.read_replica_source_db_instance_identifier().unwrap_or_default(),
            db.replica_instance
        )));
    }
    // Renaming, modifying, backing up: RDS would refuse the snapshot or the rename; asked again.
    let status = old.db_instance_status().unwrap_or("unknown");
    if status != "available" && !state.is_dry_run() {
        return Ok(Part::new(Outcome::NotReady, false, format!("{name}: {status}"), vec![observed(&old)]));
    }
    if state.is_dry_run() {
        return Ok(Part::new(
            Outcome::WouldChange,
            true,
            format!("snapshot {name} as {snapshot}, then rename it {retired} (kept, never deleted)"),
            vec![observed(&old)],
        ));
    }
    let arn = old.db_instance_arn().unwrap_or_default().to_string();
    let Some(status) = snapshot_status(paris, &snapshot).await? else {
        paris
            .create_db_snapshot()
            .db_instance_identifier(name)
            .db_snapshot_identifier(&snapshot)
            .tags(Tag::builder().key(RETIRED_BY_RUN_TAG).value(&state.run.id).build())
            .customize()
            .config_override(once::rds())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "CreateDBSnapshot", e))?;
        let detail = format!("final snapshot {snapshot} of {name} requested");
        tracing::info!(plan = %plan.name, step = "retire-primary", resource = %name, "{detail}");
        return Ok(Part::new(Outcome::Changed, false, detail, vec![observed(&old)]));
    };
    if status != "available" {
        let detail = format!("final snapshot {snapshot} of {name}: {status}");
        return Ok(Part::new(Outcome::NotReady, false, detail, vec![observed(&old)]));
    }
    paris
        .add_tags_to_resource()
        .resource_name(&arn)
        .tags(Tag::builder().key(RETIRED_BY_RUN_TAG).value(&state.run.id).build())
        .tags(Tag::builder().key(FINAL_SNAPSHOT_TAG).value(&snapshot).build())
        .customize()
        .config_override(once::rds())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "AddTagsToResource", e))?;
    paris
        .modify_db_instance()
        .db_instance_identifier(name)
        .new_db_instance_identifier(&retired)
        .apply_immediately(true)
        .customize()
        .config_override(once::rds())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "ModifyDBInstance", e))?;
    let detail =
        format!("{name} renamed {retired} (final snapshot {snapshot} available); kept until an operator deletes it");
    tracing::info!(plan = %plan.name, step = "retire-primary", resource = %name, "{detail}");
    Ok(Part::new(Outcome::Changed, false, detail, vec![observed(&old)]))
}

/// Creates each Paris replica of an Ireland primary under the database's primary name, as the
/// retired instance was. Already there: no call.
pub async fn create_replica(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("create-replica", clients);
    let mut parts = Vec::new();
    for (db, ireland) in ireland_primaries(clients, state).await? {
        parts.push(create_one(clients, state, db, &ireland).await?);
    }
    combine(timer, state, StepKey::Replica, parts)
}

async fn create_one(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
    ireland: &DbInstance,
) -> Result<Part, DrError> {
    let plan = &state.plan;
    let paris = &clients.primary.rds;
    let name = &db.primary_instance;
    if let Some(found) = describe_db_instance(paris, name).await? {
        if replicates_from(&found, ireland) {
            let detail = format!("{name} replicates from {}", plan.dr_name());
            return Ok(Part::new(Outcome::AlreadyDone, true, detail, vec![observed(&found)]));
        }
        // A dry run retired nothing: the old primary still holds the name.
        if state.is_dry_run() {
            return Ok(Part::new(
                Outcome::WouldChange,
                true,
                format!(
                    "create {name} in {} as a read replica of {}, as the old primary is, once it is retired",
                    plan.primary_region, db.replica_instance
                ),
                vec![observed(&found), observed(ireland)],
            ));
        }
        return Err(refused(format!("{name} ({}) is still the old primary: retire it first", plan.primary_region)));
    }
    let retired = retired_id(state, db);
    let Some(template) = describe_db_instance(paris, &retired).await? else {
        return Err(refused(format!(
            "no retired primary {retired} in {} to take the replica's settings from (subnet group, security groups, key): create it by hand",
            plan.primary_region
        )));
    };
    if state.is_dry_run() {
        return Ok(Part::new(
            Outcome::WouldChange,
            true,
            format!("create {name} in {} as a read replica of {}", plan.primary_region, db.replica_instance),
            vec![observed(ireland)],
        ));
    }
    let source = ireland.db_instance_arn().unwrap_or_default();
    let security_groups: Vec<String> =
        template.vpc_security_groups().iter().filter_map(|g| g.vpc_security_group_id().map(str::to_string)).collect();
    paris
        .create_db_instance_read_replica()
        .db_instance_identifier(name)
        // The source by ARN, from the other region. No PreSignedUrl: RDS needs it only between
        // GovCloud or China regions (and ignores it elsewhere), even for an encrypted replica.
        .source_db_instance_identifier(source)
        .set_db_instance_class(template.db_instance_class().map(str::to_string))
        .set_db_subnet_group_name(template.db_subnet_group().and_then(|g| g.db_subnet_group_name()).map(str::to_string))
        .set_vpc_security_group_ids(Some(security_groups).filter(|groups| !groups.is_empty()))
        .set_kms_key_id(template.kms_key_id().map(str::to_string))
        .set_db_parameter_group_name(
            template.db_parameter_groups().first().and_then(|g| g.db_parameter_group_name()).map(str::to_string),
        )
        .set_option_group_name(
            template.option_group_memberships().first().and_then(|g| g.option_group_name()).map(str::to_string),
        )
        .set_multi_az(template.multi_az())
        .publicly_accessible(false)
        .tags(Tag::builder().key(REPLICA_BY_RUN_TAG).value(&state.run.id).build())
        .customize()
        .config_override(once::rds())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "CreateDBInstanceReadReplica", e))?;
    let detail = format!("{name} requested in {} as a read replica of {source}", plan.primary_region);
    tracing::info!(plan = %plan.name, step = "create-replica", resource = %name, "{detail}");
    Ok(Part::new(Outcome::Changed, true, detail, vec![observed(&template)]))
}

/// Ready when every Paris replica is available and replicating within the RPO.
pub async fn replica_status(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("create-replica-status", clients);
    let mut parts = Vec::new();
    for db in &state.plan.databases {
        parts.push(replica_status_of(clients, state, db).await?);
    }
    let ready = parts.iter().all(|part| part.ready);
    let detail = parts.iter().map(|part| part.detail.as_str()).collect::<Vec<_>>().join("; ");
    let resources = parts.into_iter().flat_map(|part| part.resources).collect();
    status_record(timer, state, StepKey::ReplicaStatus, ready, detail, resources)
}

async fn replica_status_of(clients: &AwsClients, state: &RunbookState, plan_db: &Database) -> Result<Part, DrError> {
    let plan = &state.plan;
    let name = &plan_db.primary_instance;
    let db = require_db_instance(&clients.primary.rds, name, &plan.primary_region).await?;
    let status = db.db_instance_status().unwrap_or("unknown");
    if status != "available" {
        return Ok(Part::new(Outcome::NotReady, false, format!("{name}: {status}"), vec![observed(&db)]));
    }
    let rpo = plan.targets.rpo();
    let (ready, detail) = match paris_replica_lag(clients, plan, plan_db).await? {
        Some(Ok(lag)) => {
            let source = &plan.dr_region;
            (true, format!("{name} available, replicating {lag:.0} s behind {source} (RPO {} s)", rpo.as_secs()))
        }
        Some(Err(err)) => (false, format!("{name} available, not yet within the RPO: {err}")),
        None => (false, format!("{name} available, no ReplicaLag yet")),
    };
    let outcome = if ready { Outcome::Ready } else { Outcome::NotReady };
    Ok(Part::new(outcome, ready, detail, vec![observed(&db)]))
}

/// A snapshot's status in Paris (`None`: there is none of that name).
async fn snapshot_status(paris: &aws_sdk_rds::Client, snapshot: &str) -> Result<Option<String>, DrError> {
    paris
        .describe_db_snapshots()
        .db_snapshot_identifier(snapshot)
        .send()
        .await
        .map(|found| found.db_snapshots().first().map(|s| s.status().unwrap_or("unknown").to_string()))
        .or_else(|e| match e.as_service_error() {
            Some(err) if err.is_db_snapshot_not_found_fault() => Ok(None),
            _ => Err(DrError::from_sdk("rds", "DescribeDBSnapshots", e)),
        })
}

/// The Paris replica's ReplicaLag against the RPO: `Ok(lag)` within it, the named error
/// otherwise; `None` without a reading.
async fn paris_replica_lag(
    clients: &AwsClients,
    plan: &Plan,
    db: &Database,
) -> Result<Option<Result<f64, DrError>>, DrError> {
    let name = &db.primary_instance;
    let lags =
        read_replica_lags(&clients.primary.cloudwatch, std::slice::from_ref(name), db.lag_freshness(), time::now())
            .await?;
    Ok(lags.first().map(|reading| reading.require_within(name, plan.targets.rpo())))
}

/// The operator's last step, never the runbook's: deletes a retired primary once the new Paris
/// replica is healthy (available, replicating from Ireland within the RPO) and the final
/// snapshot its tag names is available. Anything else is `ReprotectRefused`, with no call that
/// changes anything: an instance without both tags (the Ireland primary, the new replica, any
/// other) is never deleted. Deleting one already being deleted is done. Returns what it did.
pub async fn delete_retired(clients: &AwsClients, plan: &Plan, retired: &str) -> Result<String, DrError> {
    let paris = &clients.primary.rds;
    let Some(db) = describe_db_instance(paris, retired).await? else {
        return Err(refused(format!("{retired} does not exist in {}", plan.primary_region)));
    };
    if db.db_instance_status() == Some("deleting") {
        return Ok(format!("{retired} is being deleted"));
    }
    let tags = db.tag_list();
    let tag = |key: &str| tags.iter().find(|t| t.key() == Some(key)).and_then(|t| t.value()).map(str::to_string);
    let (Some(run), Some(snapshot)) = (tag(RETIRED_BY_RUN_TAG), tag(FINAL_SNAPSHOT_TAG)) else {
        return Err(refused(format!(
            "{retired} is not a retired primary (no {RETIRED_BY_RUN_TAG} and {FINAL_SNAPSHOT_TAG} tags): never deleted here"
        )));
    };
    let found = snapshot_status(paris, &snapshot).await?;
    if found.as_deref() != Some("available") {
        return Err(refused(format!(
            "{retired}'s final snapshot {snapshot} is {}: not deleted",
            found.as_deref().unwrap_or("missing")
        )));
    }
    let Some(plan_db) = retired_from(plan, retired) else {
        return Err(refused(format!("{retired} was not retired from any of the plan's primaries: never deleted here")));
    };
    let ireland = require_db_instance(&clients.dr.rds, &plan_db.replica_instance, &plan.dr_region).await?;
    let name = &plan_db.primary_instance;
    let replica = describe_db_instance(paris, name).await?;
    let healthy = match &replica {
        Some(replica) if replicates_from(replica, &ireland) && replica.db_instance_status() == Some("available") => {
            paris_replica_lag(clients, plan, plan_db).await?
        }
        _ => None,
    };
    match healthy {
        Some(Ok(_)) => {}
        Some(Err(err)) => {
            return Err(refused(format!("the new replica {name} is not healthy yet ({err}): {retired} kept")));
        }
        None => {
            return Err(refused(format!(
                "{name} is not an available replica of {} yet: {retired} kept",
                plan_db.replica_instance
            )));
        }
    }
    paris
        .delete_db_instance()
        .db_instance_identifier(retired)
        // Its final snapshot is kept, and checked above.
        .skip_final_snapshot(true)
        .delete_automated_backups(false)
        .customize()
        .config_override(once::rds())
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "DeleteDBInstance", e))?;
    tracing::info!(plan = %plan.name, resource = %retired, run = %run, "retired primary deleted; final snapshot {snapshot} kept");
    Ok(format!("{retired} (retired by run {run}) deleted; its final snapshot {snapshot} is kept"))
}

/// The database whose primary `retired` was (`<primary>-retired-<run time>`, the primary's name
/// cut to fit): the longest primary name it starts with.
fn retired_from<'p>(plan: &'p Plan, retired: &str) -> Option<&'p Database> {
    plan.databases
        .iter()
        .filter(|db| {
            let suffix_len = "-retired-".len() + time::compact(time::now()).len();
            retired.starts_with(&format!("{}-retired-", stem(&db.primary_instance, suffix_len)))
        })
        .max_by_key(|db| db.primary_instance.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::RunInfo;

    #[test]
    fn retired_names_fit_rds_identifiers_and_carry_the_run_time() {
        let mut plan =
            Plan::load(std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans/paris-ireland.toml")))
                .expect("the example plan");
        let run = RunInfo::new("r", time::from_epoch_seconds(1_795_000_000), "test");
        let state = RunbookState::new(plan.clone(), run.clone());
        assert_eq!(
            retired_id(&state, &state.plan.databases[0]),
            format!("platform-db-paris-retired-{}", time::compact(run.triggered_at).to_lowercase())
        );
        plan.databases[0].primary_instance = "a".repeat(63);
        let state = RunbookState::new(plan, run);
        let db = &state.plan.databases[0];
        assert_eq!(retired_id(&state, db).len(), MAX_INSTANCE_ID);
        assert!(final_snapshot_id(&state, db).ends_with(&time::compact(state.run.triggered_at).to_lowercase()));
        assert_eq!(retired_from(&state.plan, &retired_id(&state, db)), Some(db));
        assert_eq!(retired_from(&state.plan, "b-retired-x"), None);
    }
}
