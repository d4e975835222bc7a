"""Elastic Load Balancing (an Application Load Balancer's target groups), modelled where moto is
not ELB. moto runs no health checks: every registered target answers `healthy` for ever, an
instance an Auto Scaling group terminates on a scale-in stays registered and `healthy`, and only a
stopped instance reads `unused`. What ELB does (ALB User Guide, "Health checks for Application
Load Balancer target groups":
https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html ,
target states initial, healthy, unhealthy, unused, draining, unavailable; and the reason codes of
the API's TargetHealth: https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html):

- a target whose instance is `pending` is `initial` (Elb.RegistrationInProgress); "after your
  target is registered, it must pass one health check to be considered healthy": once it runs it
  stays `initial` (Elb.InitialHealthChecking) for one HealthCheckIntervalSeconds;
- a target whose instance is shutting down or terminated is `draining`
  (Target.DeregistrationInProgress): EC2 Auto Scaling deregisters an instance it terminates, and
  the target drains for the group's deregistration delay (`deregistration_delay.timeout_seconds`,
  300 s by default), then is gone. The delay runs on the RTO model's clock (timing.py); with the
  model off (moto's clock, which has no durations) the target stays draining until a
  DeregisterTargets;
- a stopped (or stopping) instance is `unused` (Target.InvalidState), as moto has it;
- EC2 Auto Scaling registers the instances it launches into the group's target groups as it
  launches them, pending or not (they read `initial` until they pass a check); moto registers
  through RegisterTargets, which refuses an instance that is not running, as ELB does for a
  caller, so under the RTO model (instances launched `pending`, ec2.py) a scale-up would fail;
- the application behind a group failing its health checks: the control API makes every running
  target of a group (past its initial check) answer `unhealthy` with a reason, until set back:

    POST   /dr-local/elbv2/target-health  {"region", "target_group": name or ARN,
                                           "state": "unhealthy"|"healthy",
                                           "reason": "Target.FailedHealthChecks" (default),
                                           "description": "Health checks failed" (default)}
    DELETE /dr-local/elbv2/target-health  every group's targets back to the model above
"""

import threading
import time

from moto.autoscaling.models import AutoScalingBackend
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ec2.models.instances import Instance
from moto.elbv2.models import ELBv2Backend, FakeHealthStatus, FakeTargetGroup, elbv2_backends

import timing

_lock = threading.Lock()
# target group ARN -> (state, reason, description) its running targets answer
_overrides = {}
# (target group ARN, target id) -> monotonic time it was registered
_registered_at = {}

# ELB's descriptions of each reason (as DescribeTargetHealth gives them).
DESCRIPTIONS = {
    "Elb.RegistrationInProgress": "Target registration is in progress",
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [502]",
    "Target.Timeout": "Request timed out",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
}


def _target_group(region, name_or_arn):
    backend = elbv2_backends[DEFAULT_ACCOUNT_ID][region]
    for target_group in backend.target_groups.values():
        if name_or_arn in (target_group.arn, target_group.name):
            return target_group
    raise ValueError(f"no target group {name_or_arn} in {region}")


def set_health(region, target_group, state, reason=None, description=None):
    """Every running target of the group answers `state` (its application failing the checks), or
    the model again for `healthy`."""
    arn = _target_group(region, target_group).arn
    if state == "healthy":
        with _lock:
            _overrides.pop(arn, None)
        return
    if state != "unhealthy":
        raise ValueError(f"state {state}: unhealthy or healthy")
    reason = reason or "Target.FailedHealthChecks"
    with _lock:
        _overrides[arn] = (state, reason, description or DESCRIPTIONS.get(reason, "Health checks failed"))


def clear():
    with _lock:
        _overrides.clear()


def _registered(target_group, target_id):
    with _lock:
        _registered_at[(target_group.arn, target_id)] = time.monotonic()


_register = FakeTargetGroup.register


def _register_and_stamp(self, targets):
    _register(self, targets)
    for target in targets:
        _registered(self, target["Id"])


def _register_group(self, group_name):
    """EC2 Auto Scaling registers the group's instances as it launches them, pending or not."""
    group = self.autoscaling_groups[group_name]
    if not group.target_group_arns:
        return
    target_groups = self.elbv2_backend.describe_target_groups(
        target_group_arns=group.target_group_arns, load_balancer_arn=None, names=None
    )
    for target_group in target_groups:
        for state in group.instance_states:
            instance_id = state.instance.id
            if instance_id not in target_group.targets:
                target_group.targets[instance_id] = {"Id": instance_id, "Port": target_group.port}
                target_group.deregistered_targets.pop(instance_id, None)
                _registered(target_group, instance_id)


_terminate = Instance.terminate


def _terminate_and_stamp(self):
    previous = _terminate(self)
    self._dr_terminated_at = time.monotonic()
    return previous


def _drained(target_group, instance):
    """Whether the target of a terminated instance has drained: the deregistration delay has
    passed on the RTO model's clock (never with the model off)."""
    if not timing.on():
        return False
    delay = float(target_group.attributes.get("deregistration_delay.timeout_seconds", 300))
    since = getattr(instance, "_dr_terminated_at", None)
    return since is not None and time.monotonic() >= since + timing.scaled(delay)


def _health_of(target_group, target, ec2_backend):
    """(state, reason, description) of a registered target as ELB would judge it, or None for
    moto's answer."""
    instance = ec2_backend.get_instance_by_id(target["Id"]) if target["Id"].startswith("i-") else None
    judged = None
    if instance is not None:
        state = instance.state
        if state in ("shutting-down", "terminated"):
            judged = ("draining", "Target.DeregistrationInProgress")
        elif state == "pending":
            judged = ("initial", "Elb.RegistrationInProgress")
        elif state in ("stopping", "stopped"):
            return None  # moto's: unused, Target.InvalidState
    with _lock:
        registered = _registered_at.get((target_group.arn, target["Id"]), 0.0)
        override = _overrides.get(target_group.arn)
    if judged is None:
        first_check = max(registered, getattr(instance, "_dr_running_at", 0.0))
        interval = float(target_group.health_check_interval_seconds)
        if time.monotonic() < first_check + timing.scaled(interval):
            judged = ("initial", "Elb.InitialHealthChecking")
        elif override is not None:
            return override
    return (*judged, DESCRIPTIONS[judged[1]]) if judged else None


_health_for = FakeTargetGroup.health_for


def _health(self, target, ec2_backend):
    registered = self.targets.get(target["Id"])
    judged = _health_of(self, registered, ec2_backend) if registered is not None else None
    if judged is None:
        return _health_for(self, target, ec2_backend)
    return FakeHealthStatus(registered["Id"], registered["Port"], self.health_check_port, *judged)


_describe_target_health = ELBv2Backend.describe_target_health


def _describe(self, target_group_arn, targets):
    """A drained target is no longer registered: it leaves the group's targets first."""
    target_group = self.target_groups.get(target_group_arn)
    if target_group is not None:
        for target_id in list(target_group.targets):
            instance = self.ec2_backend.get_instance_by_id(target_id) if target_id.startswith("i-") else None
            if instance is not None and instance.state == "terminated" and _drained(target_group, instance):
                target_group.deregistered_targets[target_id] = target_group.targets.pop(target_id)
    return _describe_target_health(self, target_group_arn, targets)


def install():
    FakeTargetGroup.register = _register_and_stamp
    FakeTargetGroup.health_for = _health
    ELBv2Backend.describe_target_health = _describe
    AutoScalingBackend.update_attached_target_groups = _register_group
    Instance.terminate = _terminate_and_stamp
