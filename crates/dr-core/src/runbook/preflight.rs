//! Preflight and the RPO gate: nothing is changed before both pass.

use super::decision::recorded_approval;
use crate::aws::AwsClients;
use crate::aws::lookup::{db_instance_tags, require_db_instance};
use crate::aws::postgres::{self, Endpoint};
use crate::error::DrError;
use crate::plan::{Database, Plan};
use crate::readiness::scheduled::{SCHEDULE_ENV, read_snapshot, schedule_interval};
use crate::readiness::{Check, CheckRow, Finding, Scope, check_plan};
use crate::rpo::check::{Heartbeat, PairKind, ReplicatedPair, check_pairs, pairs_of};
use crate::rpo::{LagReading, replica_lag_at};
use crate::run::{
    FailoverKind, GateDecision, GateVerdict, Outcome, ResourceState, RunbookState, StepRecord, StepTimer, ValidState,
};
use crate::store::PlanStore;
use crate::time::{self, Timestamp};

/// Tag the promote step puts on the replica: the lag accepted at promotion, in seconds.
pub const LAG_AT_PROMOTION_TAG: &str = "dr-lag-at-promotion-seconds";
/// Tag the promote step puts on the replica: the run that promoted it.
pub const PROMOTED_BY_RUN_TAG: &str = "dr-promoted-by-run";

/// Findings that mean "an earlier attempt of this failover already moved this resource".
const ALREADY_MOVED: &[Finding] = &[
    Finding::NotAReplica,
    Finding::StandbyInstanceRunning,
    Finding::AsgNotAtStandbySize,
    Finding::EcsServiceNotAtStandbyCount,
    Finding::DnsNotOnPrimary,
];

/// Findings of states that clear by themselves (a replica backing up, an instance stopping): not
/// blocking; the step that needs the resource waits for it within its budget.
const TRANSIENT: &[Finding] = &[Finding::ReplicaBusy, Finding::StandbyInstanceNotStopped];

/// Findings a failover goes on with, recorded as warnings: the promotion keeps the replica's own
/// backup window rather than fail on a window RDS refuses.
const WARNINGS: &[Finding] = &[Finding::BackupWindowConflictsMaintenance];

/// The routing pieces only Route 53's API shows (the records, the PRIMARY's health check), which
/// preflight does not call: it takes them from the scheduled readiness check's snapshot.
const ROUTING_CHECKS: &[Check] = &[
    Check::HostedZone,
    Check::DnsRecord,
    Check::DnsPrimaryRecord,
    Check::DnsSecondaryRecord,
    Check::RoutingHealthCheck,
];

/// The findings of those pieces that keep traffic from moving. Not `CheckFailed` (the check
/// could not ask Route 53 then: nothing is known to be broken), nor what an earlier attempt of a
/// failover already moved ([`ALREADY_MOVED`]: DNS answering Ireland).
const ROUTING_BROKEN: &[Finding] = &[
    Finding::HostedZoneMissing,
    Finding::RecordMissing,
    Finding::RecordMisconfigured,
    Finding::DetectionCheckOnRecord,
    Finding::RoutingHealthCheckMissing,
    Finding::RoutingHealthCheckMisconfigured,
];

/// The routing pieces as the scheduled readiness check last found them: what blocks (a piece
/// named broken in a snapshot younger than its schedule) and what preflight records. A snapshot
/// older than its schedule, or none, blocks nothing and says so: the run goes on without knowing.
async fn routing_as_last_checked(
    clients: &AwsClients,
    plan: &Plan,
    now: Timestamp,
) -> Result<(Vec<String>, ResourceState), DrError> {
    let resource = "routing (scheduled readiness check)".to_string();
    let snapshot = match read_snapshot(clients, plan).await {
        Ok(Some(snapshot)) => snapshot,
        Ok(None) => {
            let state = "no readiness snapshot yet: the records and the routing health check are not known";
            return Ok((Vec::new(), ResourceState::new(resource, state.to_string())));
        }
        // What cannot be read (denied, another version's form, S3 slow) is not known, as with no
        // snapshot: it never stops a failover by itself.
        Err(err) => {
            let state =
                format!("readiness snapshot not read ({}: {err}): the routing pieces are not known", err.name());
            return Ok((Vec::new(), ResourceState::new(resource, state)));
        }
    };
    let interval = schedule_interval(std::env::var(SCHEDULE_ENV).ok().as_deref());
    let age = time::elapsed(snapshot.checked_at, now);
    let checked = time::rfc3339(snapshot.checked_at);
    if age > interval {
        let state = format!(
            "readiness snapshot of {checked} is older than its schedule ({} min): the records and the routing \
             health check are not known; going on",
            interval.as_secs() / 60
        );
        return Ok((Vec::new(), ResourceState::new(resource, state)));
    }
    let broken: Vec<String> = snapshot
        .not_ready
        .iter()
        .filter(|row| ROUTING_CHECKS.contains(&row.check) && row.finding.is_some_and(|f| ROUTING_BROKEN.contains(&f)))
        .map(|row| {
            let finding = row.finding.map_or("not ready", |f| f.name());
            format!("{} {}: {finding} ({}; readiness check of {checked})", row.check.label(), row.resource, row.detail)
        })
        .collect();
    let state = if broken.is_empty() {
        format!("records and routing health check ready at the readiness check of {checked}")
    } else {
        format!("{} routing piece(s) broken at the readiness check of {checked}", broken.len())
    };
    Ok((broken, ResourceState::new(resource, state)))
}

/// Runs the plan check, records the state of every resource, and applies the RPO gate.
pub async fn preflight(clients: &AwsClients, state: &ValidState) -> Result<StepRecord, DrError> {
    let timer = StepTimer::start("preflight", clients);
    require_plan_held(clients, state).await?;
    let readiness = check_plan(clients, &state.plan, Scope::DataPlane).await;
    let mut resources = Vec::new();
    let mut blocking = Vec::new();
    for row in &readiness.rows {
        // The lag row is the gate's business, below.
        if row.check == Check::ReplicaLag {
            continue;
        }
        let observed = match row.finding {
            None => "standby".to_string(),
            Some(finding) if ALREADY_MOVED.contains(&finding) => format!("already failed over ({})", finding.name()),
            Some(finding) if TRANSIENT.contains(&finding) => format!("transient: {} (waited for)", finding.name()),
            Some(finding) if WARNINGS.contains(&finding) => format!("warning: {}", finding.name()),
            Some(finding) if row.check.is_primary_side() => {
                format!("primary side: {}", finding.name())
            }
            Some(finding) => {
                blocking.push(format!("{} {}: {} ({})", row.check.label(), row.resource, finding.name(), row.detail));
                format!("not ready: {}", finding.name())
            }
        };
        resources.push(ResourceState {
            resource: format!("{}: {}", row.check.label(), row.resource),
            state: format!("{observed}; {}", row.detail),
        });
    }
    if let Some(retryable) = retryable_blocker(&readiness.rows) {
        return Err(retryable);
    }
    // Only a failover's routing: a failback's records are the same records, and a failover that
    // detached them is what the failback repairs by hand.
    if state.run.direction == crate::plan::Direction::ToDr {
        let (broken, routing) = routing_as_last_checked(clients, &state.plan, time::now()).await?;
        resources.push(routing);
        blocking.extend(broken);
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

/// A read that failed in a way that may succeed later (throttling, a timeout) makes the whole
/// preflight wait and try again, rather than judge the estate on a partial view.
fn retryable_blocker(rows: &[CheckRow]) -> Option<DrError> {
    rows.iter().filter(|row| !row.check.is_primary_side()).find_map(|row| match row.finding {
        Some(Finding::CheckFailed) if row.error.is_some_and(|name| name.is_retryable()) => {
            Some(DrError::AwsTransient {
                service: "plan check",
                operation: "preflight",
                message: format!("{} {}: {}", row.check.label(), row.resource, row.detail),
            })
        }
        _ => None,
    })
}

/// A run started with the plan's single-flight state (the trigger, a game day, `drctl failover
/// start`) goes on only while it still holds it: an operator may have disarmed the plan with
/// `--force`, or another run taken it.
async fn require_plan_held(clients: &AwsClients, state: &RunbookState) -> Result<(), DrError> {
    let Some(store) = PlanStore::of_run(clients, &state.run) else { return Ok(()) };
    let read = store.read_state(&state.plan.name).await?;
    if read.state.is_held_by(&state.run.id) {
        let named = state.run.plan.as_ref().map(|p| p.version.as_str());
        return match read.state.plan_version.as_deref() {
            Some(taken) if Some(taken) != named => Err(DrError::UntrustedInput {
                what: format!("run {}", state.run.id),
                field: "run.plan".into(),
                message: format!(
                    "it names plan version {}, the plan was taken for version {taken}",
                    named.unwrap_or("none")
                ),
            }),
            _ => Ok(()),
        };
    }
    Err(DrError::PlanBusy {
        plan: state.plan.name.clone(),
        status: format!(
            "{} (held by {}, not by this run {})",
            read.state.status.name(),
            read.state.run_id.as_deref().unwrap_or("nobody"),
            state.run.id
        ),
    })
}

/// One database as the gate reads it.
enum DatabaseGate {
    /// Promoted by this runbook: the lag its promotion accepted stands.
    Promoted { replica: String, run: String, lag_seconds: Option<f64> },
    /// Still a replica, or standalone with an unknown data age: its lag (when known), and either
    /// the lag within the RPO or the refusal.
    Read { replica: String, lag_seconds: Option<f64>, within: Result<f64, DrError>, basis: String },
}

impl DatabaseGate {
    fn lag_seconds(&self) -> Option<f64> {
        match self {
            DatabaseGate::Promoted { lag_seconds, .. } | DatabaseGate::Read { lag_seconds, .. } => *lag_seconds,
        }
    }

    fn into_refusal(self) -> Option<DrError> {
        match self {
            DatabaseGate::Read { within: Err(refused), .. } => Some(refused),
            _ => None,
        }
    }

    fn describe(&self) -> String {
        match self {
            DatabaseGate::Promoted { replica, run, lag_seconds: Some(lag) } => {
                format!("{replica} already promoted by run {run}; lag at promotion {lag:.0} s stands")
            }
            DatabaseGate::Promoted { replica, run, lag_seconds: None } => {
                format!("{replica} already promoted by run {run}, which was approved past the gate")
            }
            DatabaseGate::Read { replica, within: Ok(lag), basis, .. } => {
                format!("{replica}: lag {lag:.0} s ({basis})")
            }
            DatabaseGate::Read { replica, within: Err(refused), basis, .. } => {
                format!("{replica}: {} {refused} ({basis})", refused.name())
            }
        }
    }
}

/// The RPO gate, applied while the replicas are still replicas: one decision for every database.
/// It passes only if each is within the RPO (or was promoted by this runbook); else a human's
/// approval, recorded in the plan store, takes the whole data tier past it, and without one the
/// gate refuses before any database is promoted. The lag it accepts is the worst of them: the data
/// tier's achieved RPO.
async fn rpo_gate(clients: &AwsClients, state: &RunbookState) -> Result<GateDecision, DrError> {
    let plan = &state.plan;
    let rpo = plan.targets.rpo();
    let mut databases = Vec::with_capacity(plan.databases.len());
    for db in &plan.databases {
        databases.push(gate_database(clients, state, db).await?);
    }
    let worst_lag = databases.iter().filter_map(DatabaseGate::lag_seconds).reduce(f64::max);
    let described = databases.iter().map(DatabaseGate::describe).collect::<Vec<_>>().join("; ");
    if databases.iter().all(|db| matches!(db, DatabaseGate::Promoted { .. })) {
        return Ok(GateDecision {
            verdict: GateVerdict::AlreadyPromoted,
            lag_seconds: worst_lag,
            rpo_seconds: rpo.as_secs(),
            reason: described,
            approval: None,
        });
    }
    // The worst refusal speaks for the data tier: a replica that does not replicate before one
    // that lags, then the longest lag.
    let refused = databases
        .into_iter()
        .filter_map(DatabaseGate::into_refusal)
        .max_by(|a, b| refusal_rank(a).total_cmp(&refusal_rank(b)));
    let Some(refused) = refused else {
        return Ok(GateDecision {
            verdict: GateVerdict::WithinRpo,
            lag_seconds: worst_lag,
            rpo_seconds: rpo.as_secs(),
            reason: format!("within the RPO of {} s: {described}", rpo.as_secs()),
            approval: None,
        });
    };
    // Only a refused gate looks for a human's decision: recorded in the plan store, never taken
    // from the run's input.
    match recorded_approval(clients, state).await? {
        Some(approval) => Ok(GateDecision {
            verdict: GateVerdict::Approved,
            lag_seconds: worst_lag,
            rpo_seconds: rpo.as_secs(),
            reason: format!("{} overridden by {} for every database: {described}", refused.name(), approval.by),
            approval: Some(approval),
        }),
        None => Err(refused),
    }
}

/// How bad a refusal is: not replicating (or an unknown age) above any lag.
fn refusal_rank(refused: &DrError) -> f64 {
    match refused {
        DrError::RpoExceeded { lag_seconds, .. } => *lag_seconds,
        _ => f64::INFINITY,
    }
}

/// One database's part of the gate.
async fn gate_database(clients: &AwsClients, state: &RunbookState, db: &Database) -> Result<DatabaseGate, DrError> {
    let plan = &state.plan;
    let replica_id = &db.replica_instance;
    let replica = require_db_instance(&clients.dr.rds, replica_id, &plan.dr_region).await?;
    if replica.read_replica_source_db_instance_identifier().unwrap_or_default().is_empty() {
        if let Some(PromotionTags { run, lag_seconds }) = promotion_tags(clients, replica.db_instance_arn()).await? {
            return Ok(DatabaseGate::Promoted { replica: replica_id.clone(), run, lag_seconds });
        }
        // Promoted outside this runbook: its data may be arbitrarily old. Only a human may decide
        // to serve it.
        return Ok(DatabaseGate::Read {
            replica: replica_id.clone(),
            lag_seconds: None,
            within: Err(DrError::ReplicaNotReplicating {
                replica: replica_id.clone(),
                reason: "it is a standalone instance that this runbook did not promote: its data age is unknown"
                    .to_string(),
            }),
            basis: "standalone, promoted outside this runbook".to_string(),
        });
    }
    let (reading, basis) = match state.run.kind {
        // The barrier proves the rest: the gate asks that the replica replicates, now, as the RPO
        // status reads it (the database heartbeat where the plan has one, else ReplicaLag).
        FailoverKind::Planned => {
            let pair: Vec<ReplicatedPair> = pairs_of(plan)
                .into_iter()
                .filter(|p| p.kind == PairKind::Rds && p.replica == db.replica_instance)
                .collect();
            let statuses = check_pairs(clients, &pair, Heartbeat::ReadOnly, time::now()).await?;
            let status = statuses.into_iter().next().ok_or_else(|| DrError::ReplicaNotReplicating {
                replica: replica_id.clone(),
                reason: "no reading".to_string(),
            })?;
            (status.reading(), format!("{}; the barrier proves the rest", status.detail))
        }
        FailoverKind::Unplanned => loss_at_incident_start(clients, state, db, &replica).await?,
    };
    let lag_seconds = match &reading {
        LagReading::Lag { seconds, .. } => Some(*seconds),
        LagReading::NotReplicating { .. } => None,
    };
    let within = reading.require_within(replica_id, plan.targets.rpo());
    Ok(DatabaseGate::Read { replica: replica_id.clone(), lag_seconds, within, basis })
}

/// An unplanned run's data loss, measured at the incident's start, never at the time of the run:
/// the newest heartbeat replayed in Ireland against the incident's start, where the plan writes
/// heartbeats and the replica answers; else ReplicaLag at the incident's start. With the reading,
/// how it was measured.
async fn loss_at_incident_start(
    clients: &AwsClients,
    state: &RunbookState,
    db: &Database,
    replica: &aws_sdk_rds::types::DbInstance,
) -> Result<(LagReading, String), DrError> {
    let plan = &state.plan;
    let at = state.run.incident_start();
    let now = time::now();
    let mut why_not_heartbeat = "the plan writes no database heartbeat".to_string();
    if db.credentials_secret.is_some() {
        match newest_replayed_heartbeat(clients, plan, db, replica).await {
            Ok(Some(newest)) => {
                let loss = if newest >= at { 0.0 } else { time::seconds_between(newest, at) };
                let basis = format!(
                    "newest heartbeat replayed in {} written at {}, the incident started at {}",
                    plan.dr_name(),
                    time::rfc3339(newest),
                    time::rfc3339(at)
                );
                return Ok((LagReading::Lag { seconds: loss, age: time::elapsed(at, now) }, basis));
            }
            Ok(None) => why_not_heartbeat = format!("no heartbeat has reached {}", plan.dr_name()),
            Err(err) => why_not_heartbeat = format!("heartbeat not read: {}", err.name()),
        }
    }
    let reading = replica_lag_at(&clients.dr.cloudwatch, &db.replica_instance, db.lag_freshness(), at, now).await?;
    Ok((reading, format!("ReplicaLag at the incident's start {} ({why_not_heartbeat})", time::rfc3339(at))))
}

/// The newest heartbeat the replica has replayed (`None`: none yet).
async fn newest_replayed_heartbeat(
    clients: &AwsClients,
    plan: &Plan,
    db: &Database,
    replica: &aws_sdk_rds::types::DbInstance,
) -> Result<Option<Timestamp>, DrError> {
    let credentials = postgres::credentials(clients, plan, db).await?;
    let session = postgres::connect(&Endpoint::require(replica)?, &credentials).await?;
    session.newest_heartbeat().await
}

/// What the promote step recorded on the instance when it promoted it.
pub struct PromotionTags {
    pub run: String,
    pub lag_seconds: Option<f64>,
}

/// The promote step's tags on the instance, or `None` if this runbook did not promote it.
pub async fn promotion_tags(clients: &AwsClients, arn: Option<&str>) -> Result<Option<PromotionTags>, DrError> {
    let Some(arn) = arn else { return Ok(None) };
    let tags = db_instance_tags(&clients.dr.rds, arn).await?;
    Ok(tags.get(PROMOTED_BY_RUN_TAG).map(|run| PromotionTags {
        run: run.clone(),
        lag_seconds: tags.get(LAG_AT_PROMOTION_TAG).and_then(|lag| lag.parse().ok()),
    }))
}
