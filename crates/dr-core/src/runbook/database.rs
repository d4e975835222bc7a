//! Promote the Ireland read replica to a standalone primary, and tell when it is.

use aws_sdk_rds::types::Tag;

use super::preflight::{LAG_AT_PROMOTION_TAG, PROMOTED_BY_RUN_TAG, promotion_tags};
use super::status_record;
use crate::aws::AwsClients;
use crate::aws::lookup::describe_db_instance;
use crate::error::DrError;
use crate::run::{Outcome, ResourceState, RunbookState, StepKey, StepRecord, StepTimer};

/// Share of the RTO the promotion may take before the run stops with `StepTimedOut`.
pub const PROMOTION_SHARE_OF_RTO: f64 = 0.5;

async fn replica(clients: &AwsClients, state: &RunbookState) -> Result<aws_sdk_rds::types::DbInstance, DrError> {
    let id = &state.plan.database.replica_instance;
    describe_db_instance(&clients.dr.rds, id).await?.ok_or_else(|| DrError::ResourceNotFound {
        kind: "RDS instance",
        id: id.clone(),
        region: state.plan.dr_region.clone(),
    })
}

fn observed(db: &aws_sdk_rds::types::DbInstance) -> ResourceState {
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

/// Whether the instance must be promoted: `false` when already standalone,
/// `ReplicaNotPromotable` (retryable) when it is a replica in any state but `available`.
pub fn needs_promotion(db: &aws_sdk_rds::types::DbInstance) -> Result<bool, DrError> {
    if db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty() {
        return Ok(false);
    }
    match db.db_instance_status() {
        Some("available") => Ok(true),
        status => Err(DrError::ReplicaNotPromotable {
            replica: db.db_instance_identifier().unwrap_or_default().to_string(),
            status: status.unwrap_or("unknown").to_string(),
        }),
    }
}

/// Promotes the replica. Already standalone: no call. Not `available`: `ReplicaNotPromotable`
/// (retryable). Before promoting, tags the instance with the lag the gate accepted, so that a
/// later attempt still knows the achieved RPO.
pub async fn promote_replica(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("promote-replica", clients);
    let db = replica(clients, state).await?;
    let id = state.plan.database.replica_instance.clone();
    let needed = match needs_promotion(&db) {
        Ok(needed) => needed,
        // Modifying or rebooting because an earlier attempt of this runbook asked for the promotion
        // (a retried Task): it is under way, and the status check waits for it.
        Err(not_now) => match promotion_tags(clients, db.db_instance_arn()).await? {
            Some(tags) => {
                let detail = format!("promotion requested by run {} is under way", tags.run);
                return Ok(timer.finish(Outcome::AlreadyDone, true, detail, vec![observed(&db)]));
            }
            None => return Err(not_now),
        },
    };
    if !needed {
        return Ok(timer.finish(
            Outcome::AlreadyDone,
            true,
            format!("{id} is already standalone"),
            vec![observed(&db)],
        ));
    }
    if state.is_dry_run() {
        let lag = state.gate().and_then(|g| g.lag_seconds);
        let lag = lag.map_or(String::new(), |lag| format!(" (lag {lag:.0} s)"));
        return Ok(timer.would(format!("promote {id} to a standalone primary{lag}"), vec![observed(&db)]));
    }
    let lag = state.gate().and_then(|g| g.lag_seconds);
    if let Some(arn) = db.db_instance_arn() {
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
            .send()
            .await
            .map_err(|e| DrError::from_sdk("rds", "AddTagsToResource", e))?;
    }
    let promoted = clients
        .dr
        .rds
        .promote_read_replica()
        .db_instance_identifier(&id)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "PromoteReadReplica", e))?;
    let resources = promoted.db_instance().map(observed).into_iter().collect();
    tracing::info!(plan = %state.plan.name, step = "promote-replica", resource = %id, "promotion requested");
    Ok(timer.finish(Outcome::Changed, true, format!("promotion of {id} requested"), resources))
}

/// Ready when the instance is standalone (no replication source) and accepts writes: `available`,
/// or `backing-up` (a promoted replica takes its first automated backup while already writable).
pub async fn replica_status(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("promote-replica-status", clients);
    let db = replica(clients, state).await?;
    let standalone = db.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty();
    let ready = standalone && matches!(db.db_instance_status(), Some("available" | "backing-up"));
    let resource = observed(&db);
    status_record(
        timer,
        state,
        StepKey::PromoteStatus,
        PROMOTION_SHARE_OF_RTO,
        ready,
        resource.state.clone(),
        vec![resource],
    )
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
