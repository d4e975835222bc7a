//! Preflight and the RPO gate: nothing is changed before both pass.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::{Approval, Outcome, ResourceState, RunbookState, StepRecord, StepTimer};
use crate::aws::AwsClients;
use crate::error::DrError;
use crate::readiness::{Finding, check_plan, describe_db_instance};
use crate::rpo::read_replica_lags;

/// Tag the promote step puts on the replica: the lag accepted at promotion, in seconds.
pub const LAG_AT_PROMOTION_TAG: &str = "dr-lag-at-promotion-seconds";
/// Tag the promote step puts on the replica: the run that promoted it.
pub const PROMOTED_BY_RUN_TAG: &str = "dr-promoted-by-run";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateVerdict {
    /// Fresh lag within the RPO.
    WithinRpo,
    /// Lag over the RPO or not replicating, and a human approved going on.
    Approved,
    /// The replica was promoted by an earlier attempt: the lag recorded then stands.
    AlreadyPromoted,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GateDecision {
    pub verdict: GateVerdict,
    /// The replica lag the failover accepts (its achieved RPO), when known.
    pub lag_seconds: Option<f64>,
    pub rpo_seconds: u64,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

/// Findings that mean "an earlier attempt of this failover already moved this resource".
const ALREADY_MOVED: &[Finding] =
    &[Finding::NotAReplica, Finding::StandbyInstanceRunning, Finding::AsgNotAtStandbySize, Finding::DnsNotOnPrimary];

/// Checks about the primary region, which may well be down: recorded, never blocking.
const PRIMARY_SIDE_CHECKS: &[&str] = &["primary database", "s3 replication"];

/// Runs the plan check, records the state of every resource, and applies the RPO gate.
pub async fn preflight(clients: &AwsClients, state: &RunbookState) -> Result<StepRecord, DrError> {
    state.validate()?;
    let timer = StepTimer::start("preflight", clients);
    let readiness = check_plan(clients, &state.plan).await;
    let mut resources = Vec::new();
    let mut blocking = Vec::new();
    for row in &readiness.rows {
        // The lag row is the gate's business, below.
        if row.check == "replica lag" {
            continue;
        }
        let observed = match row.finding {
            None => "standby".to_string(),
            Some(finding) if ALREADY_MOVED.contains(&finding) => format!("already failed over ({})", finding.name()),
            Some(finding) if PRIMARY_SIDE_CHECKS.contains(&row.check.as_str()) => {
                format!("primary side: {}", finding.name())
            }
            Some(finding) => {
                blocking.push(format!("{} {}: {} ({})", row.check, row.resource, finding.name(), row.detail));
                format!("not ready: {}", finding.name())
            }
        };
        resources.push(ResourceState {
            resource: format!("{}: {}", row.check, row.resource),
            state: format!("{observed}; {}", row.detail),
        });
    }
    if !blocking.is_empty() {
        return Err(DrError::PreflightFailed { findings: blocking });
    }
    let gate = rpo_gate(clients, state).await?;
    let detail = format!("{} resources checked; RPO gate: {:?}, {}", resources.len(), gate.verdict, gate.reason);
    let mut record = timer.finish(Outcome::Checked, true, detail, resources);
    record.gate = Some(gate);
    Ok(record)
}

/// The RPO gate, applied while the replica is still a replica.
async fn rpo_gate(clients: &AwsClients, state: &RunbookState) -> Result<GateDecision, DrError> {
    let plan = &state.plan;
    let replica_id = &plan.database.replica_instance;
    let rpo = plan.targets.rpo();
    let replica = describe_db_instance(&clients.dr.rds, replica_id).await?.ok_or_else(|| {
        DrError::ResourceNotFound { kind: "RDS instance", id: replica_id.clone(), region: plan.dr_region.clone() }
    })?;

    if replica.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty() {
        let lag = promotion_lag(clients, replica.db_instance_arn()).await?;
        return Ok(GateDecision {
            verdict: GateVerdict::AlreadyPromoted,
            lag_seconds: lag,
            rpo_seconds: rpo.as_secs(),
            reason: match lag {
                Some(lag) => format!("replica already promoted; lag at promotion {lag:.0} s stands"),
                None => {
                    "replica already standalone, promoted outside this runbook: lag at promotion unknown".to_string()
                }
            },
            approval: None,
        });
    }

    let readings = read_replica_lags(
        &clients.dr.cloudwatch,
        std::slice::from_ref(replica_id),
        plan.database.lag_freshness(),
        SystemTime::now(),
    )
    .await?;
    let reading = readings.into_iter().next().ok_or_else(|| DrError::ReplicaNotReplicating {
        replica: replica_id.clone(),
        reason: "no reading".to_string(),
    })?;
    let lag_seconds = match &reading {
        crate::rpo::LagReading::Lag { seconds, .. } => Some(*seconds),
        crate::rpo::LagReading::NotReplicating { .. } => None,
    };
    match (reading.require_within(replica_id, rpo), &state.approval) {
        (Ok(lag), _) => Ok(GateDecision {
            verdict: GateVerdict::WithinRpo,
            lag_seconds: Some(lag),
            rpo_seconds: rpo.as_secs(),
            reason: format!("lag {lag:.0} s within the RPO of {} s", rpo.as_secs()),
            approval: None,
        }),
        (Err(refused), Some(approval)) => Ok(GateDecision {
            verdict: GateVerdict::Approved,
            lag_seconds,
            rpo_seconds: rpo.as_secs(),
            reason: format!("{} overridden by {}: {}", refused.name(), approval.by, refused),
            approval: Some(approval.clone()),
        }),
        (Err(refused), None) => Err(refused),
    }
}

/// The lag the promote step recorded on the instance, if it was this runbook that promoted it.
async fn promotion_lag(clients: &AwsClients, arn: Option<&str>) -> Result<Option<f64>, DrError> {
    let Some(arn) = arn else { return Ok(None) };
    let tags = clients
        .dr
        .rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .map_err(|e| DrError::from_sdk("rds", "ListTagsForResource", e))?;
    Ok(tags
        .tag_list()
        .iter()
        .find(|tag| tag.key() == Some(LAG_AT_PROMOTION_TAG))
        .and_then(|tag| tag.value())
        .and_then(|value| value.parse().ok()))
}
