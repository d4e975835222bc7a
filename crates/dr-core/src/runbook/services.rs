//! The plan's ECS services in the compute branch: raised to their failover count with the DR
//! group, ready when their tasks run and their deployment is steady, and back to their standby
//! count after a failback. Each service is its own resource in the step's record.
//!
//! UpdateService is sent once (no SDK retry, as every mutating call: `aws::once`): a throttled or
//! lost answer fails the step, and its next attempt reads the services again and updates only
//! those still short, so that each service is updated once whatever the faults.

use crate::aws::lookup::{EcsServiceFound, EcsServiceStatus, describe_ecs_services};
use crate::aws::{RegionClients, once};
use crate::error::DrError;
use crate::plan::EcsService;
use crate::run::ResourceState;

/// A plan's service and how ECS describes it.
pub(super) struct Described<'a> {
    pub service: &'a EcsService,
    pub status: EcsServiceStatus,
}

/// Every service of the plan, described before the step changes anything: a missing cluster or
/// service is `ResourceNotFound`, named, with no call made to change the estate.
pub(super) async fn describe_required<'a>(
    region: &RegionClients,
    services: &'a [EcsService],
) -> Result<Vec<Described<'a>>, DrError> {
    if services.is_empty() {
        return Ok(Vec::new());
    }
    let found = describe_ecs_services(&region.ecs, services).await?;
    services
        .iter()
        .zip(found)
        .map(|(service, found)| match found {
            EcsServiceFound::Found(status) => Ok(Described { service, status }),
            EcsServiceFound::ClusterMissing => Err(DrError::ResourceNotFound {
                kind: "ECS cluster",
                id: service.cluster.clone(),
                region: region.region.clone(),
            }),
            EcsServiceFound::ServiceMissing(reason) => Err(DrError::ResourceNotFound {
                kind: "ECS service",
                id: format!("{} ({reason})", service.label()),
                region: region.region.clone(),
            }),
        })
        .collect()
}

/// A desired count to set: the service, from, to.
pub(crate) struct CountChange<'a> {
    pub service: &'a EcsService,
    pub from: i32,
    pub to: i32,
}

impl CountChange<'_> {
    pub fn text(&self) -> String {
        format!("{} desired {} -> {}", self.service.label(), self.from, self.to)
    }
}

/// The services whose desired count is below their failover count (a higher one is kept: the
/// service's own scaling may have raised it).
pub(super) fn raises<'a>(described: &[Described<'a>]) -> Vec<CountChange<'a>> {
    described
        .iter()
        .filter(|d| d.status.desired < i32::from(d.service.failover_count))
        .map(|d| CountChange { service: d.service, from: d.status.desired, to: i32::from(d.service.failover_count) })
        .collect()
}

/// The services whose desired count is not their standby count.
pub(super) fn to_standby<'a>(described: &[Described<'a>]) -> Vec<CountChange<'a>> {
    described
        .iter()
        .filter(|d| d.status.desired != i32::from(d.service.standby_count))
        .map(|d| CountChange { service: d.service, from: d.status.desired, to: i32::from(d.service.standby_count) })
        .collect()
}

/// Sets each desired count, in turn, once.
pub(crate) async fn set_counts(region: &RegionClients, changes: &[CountChange<'_>]) -> Result<(), DrError> {
    for change in changes {
        region
            .ecs
            .update_service()
            .cluster(&change.service.cluster)
            .service(&change.service.service)
            .desired_count(change.to)
            .customize()
            .config_override(once::ecs())
            .send()
            .await
            .map_err(|e| DrError::from_sdk("ecs", "UpdateService", e))?;
        tracing::info!(
            step = "ecs-services",
            resource = %change.service.label(),
            from = change.from,
            to = change.to,
            "desired count set"
        );
    }
    Ok(())
}

/// Each service's row: `cluster/service (region)` and its counts, with `changes` applied.
pub(super) fn resources(region: &str, described: &[Described<'_>], changes: &[CountChange<'_>]) -> Vec<ResourceState> {
    described
        .iter()
        .map(|d| {
            let mut status = d.status.clone();
            if let Some(change) = changes.iter().find(|c| c.service.label() == d.service.label()) {
                status.desired = change.to;
            }
            ResourceState::new(format!("ECS service {} ({region})", d.service.label()), status.text())
        })
        .collect()
}

/// Ready to serve: at least the failover count of tasks running, and the deployment steady.
pub(super) fn serves(d: &Described<'_>) -> bool {
    d.status.running >= i32::from(d.service.failover_count) && d.status.is_steady()
}

/// On standby: no more tasks running than the standby count.
pub(super) fn on_standby(d: &Described<'_>) -> bool {
    d.status.running <= i32::from(d.service.standby_count) && d.status.desired == i32::from(d.service.standby_count)
}
