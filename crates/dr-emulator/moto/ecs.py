"""Amazon ECS services, modelled where moto is not ECS. moto sets a service's runningCount to its
desiredCount the moment UpdateService changes it, and leaves the service's deployment as it was
created (its desiredCount, runningCount and rolloutState never follow). What ECS does (Amazon ECS
Developer Guide, "Amazon ECS services" and "Deployment circuit breaker"; API Reference,
Deployment: "rolloutState ... When a service deployment is started, it begins in an IN_PROGRESS
state. When the service reaches a steady state, the deployment transitions to a COMPLETED state"):

- a raised desired count starts tasks: they are `pendingCount` (PROVISIONING, PENDING) until they
  run, then `runningCount`; the PRIMARY deployment counts them too and is IN_PROGRESS until
  runningCount reaches desiredCount, then COMPLETED. A task takes timing.ECS_TASK_START_SECONDS to run;
- a lowered desired count stops tasks: they keep running for timing.ECS_TASK_STOP_SECONDS (the container's
  stopTimeout), then are gone;
- a new service starts its tasks the same way (moto has none running until
  MOTO_ECS_SERVICE_RUNNING says otherwise);
- the durations run on the RTO model's clock (timing.py); with the model off (moto's clock, which
  has no durations) tasks start and stop at once, as moto has them, and the deployment follows.

Tasks that cannot start (an image that does not pull, a subnet out of addresses, Fargate capacity):
the control API caps how many tasks of a service can run; the rest stay pending, and the
deployment IN_PROGRESS, until the cap is lifted:

    POST   /dr-local/ecs/task-capacity {"region", "cluster", "service", "running": N or null (lifted)}
    DELETE /dr-local/ecs/task-capacity every cap lifted
"""

import threading

from moto.core.utils import utcnow
from moto.ecs.models import EC2ContainerServiceBackend

import timing

# The durations, on the RTO model's clock: timing.ECS_TASK_START_SECONDS, timing.ECS_TASK_STOP_SECONDS.

_lock = threading.Lock()
# (region, cluster name, service name) -> tasks that can run at most
_caps = {}
# (region, cluster name, service name) -> the change a scheduled settle belongs to: a later change
# supersedes it
_changes = {}

_update_service = EC2ContainerServiceBackend.update_service
_create_service = EC2ContainerServiceBackend.create_service


def _key(backend, service):
    return (backend.region_name, service.cluster_name, service.name)


def _follow(service):
    """The PRIMARY deployment counts what the service counts."""
    for deployment in service.deployments:
        if deployment.get("status") != "PRIMARY":
            continue
        deployment["desiredCount"] = service.desired_count
        deployment["runningCount"] = service.running_count
        deployment["pendingCount"] = service.pending_count
        done = service.running_count >= service.desired_count and service.pending_count == 0
        deployment["rolloutState"] = "COMPLETED" if done else "IN_PROGRESS"
        state = "completed" if done else "in progress"
        deployment["rolloutStateReason"] = f"ECS deployment {deployment.get('id', '')} {state}."
        deployment["updatedAt"] = utcnow()


def _settle(backend, service, change):
    """The tasks started or stopped: running what can run, up to the desired count."""
    with _lock:
        key = _key(backend, service)
        if _changes.get(key) != change:
            return
        cap = _caps.get(key)
        running = service.desired_count if cap is None else min(cap, service.desired_count)
        service.running_count = running
        service.pending_count = service.desired_count - running
        _follow(service)


def _start_or_stop(backend, service, running_before):
    """After a change of desired count: tasks to start are pending, tasks to stop still run, until
    their time has passed."""
    with _lock:
        key = _key(backend, service)
        change = _changes.get(key, 0) + 1
        _changes[key] = change
        raised = service.desired_count > running_before
        service.running_count = running_before
        service.pending_count = max(service.desired_count - running_before, 0)
        _follow(service)
    timing.after(timing.ECS_TASK_START_SECONDS if raised else timing.ECS_TASK_STOP_SECONDS, lambda: _settle(backend, service, change))


def _update_service_over_time(self, service_properties):
    service = self._get_service(service_properties.get("cluster", "default"), service_properties["service"].split("/")[-1])
    running_before = service.running_count
    desired = service_properties.get("desired_count")
    updated = _update_service(self, service_properties)
    if desired is not None:
        _start_or_stop(self, updated, running_before)
    return updated


def _create_service_over_time(self, *args, **kwargs):
    service = _create_service(self, *args, **kwargs)
    _start_or_stop(self, service, service.running_count)
    return service


def set_capacity(region, cluster, service, running):
    """At most `running` tasks of the service can run; the others stay pending. `None`: the cap
    lifted, the pending tasks start on the model's clock."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[DEFAULT_ACCOUNT_ID][region]
    found = backend._get_service(cluster, service)
    if running is None:
        with _lock:
            _caps.pop(_key(backend, found), None)
        _start_or_stop(backend, found, found.running_count)
        return
    with _lock:
        _caps[_key(backend, found)] = int(running)
        change = _changes.get(_key(backend, found), 0) + 1
        _changes[_key(backend, found)] = change
    # Running tasks above the cap stop (they failed); pending ones wait.
    _settle(backend, found, change)


def clear():
    """Every cap lifted: the pending tasks start, on the model's clock."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends

    with _lock:
        capped = list(_caps)
        _caps.clear()
    for region, cluster, name in capped:
        backend = ecs_backends[DEFAULT_ACCOUNT_ID][region]
        try:
            service = backend._get_service(cluster, name)
        except Exception:  # deleted meanwhile
            continue
        _start_or_stop(backend, service, service.running_count)


def install():
    EC2ContainerServiceBackend.update_service = _update_service_over_time
    EC2ContainerServiceBackend.create_service = _create_service_over_time
