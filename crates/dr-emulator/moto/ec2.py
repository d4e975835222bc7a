"""EC2 and EC2 Auto Scaling, modelled where moto is not EC2:

- a started instance can fall back from pending to stopped (insufficient capacity in the zone; a
  customer-managed EBS key the caller may not use, `Client.InternalError`). moto starts every
  instance at once. The control API makes the next starts of an instance fall back
  (`POST /dr-local/ec2/start-fallback`), with the state reason EC2 gives; or be terminated as
  it starts (`"terminates": true`: another actor, a shutdown behaviour of `terminate`, a lost
  host), which EC2 shows as `shutting-down` then `terminated` with its state reason;
- under the RTO model (timing.py), a started instance is `pending` for its boot, then `running`
  with its status checks `initializing` until they have run; an instance an Auto Scaling group
  launches is `pending` in EC2 for its boot the same way, and `Pending` in the group until it is
  `InService`. moto makes them running, checked and InService at once.

- RunInstances with a ClientToken is idempotent, as EC2 documents it ("Ensuring idempotency in
  Amazon EC2 API requests"): a request repeating a token answers the reservation the first one
  made, launching nothing (moto stores the token and launches again). A retried RunInstances
  (the SDK's, after an attempt timed out while the emulator was busy) no longer doubles an
  estate's instances.

- DescribeInstances' NextToken is a cursor that stays valid while instances change state, as
  EC2's is (a paginator reading a region's running instances is not broken by another instance
  stopping between its pages). moto's token is the last reservation of the page, looked up in the
  list filtered anew: once that reservation no longer matches the filter (its instance stopped),
  the next page fails with a 500 (ValueError) on every retry. Here the token is placed among every
  reservation of the region, whatever its state, and the page goes on after it.

And one change of moto's speed, not of what it answers: moto finds a resource's tags by scanning
every tag of the region (TagBackend.describe_tags with a resource-id filter), once per resource
serialized and per resource a tag filter looks at, so a DescribeInstances costs instances x tags
and the suite's estates, which accumulate, made the emulator quadratically slower.
`_tags_of_this_resource` reads the resource's own entry of the same store: the same tags, in the
same order, in the same shape.
"""

import threading
import time

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.autoscaling.models import InstanceState as GroupInstance
from moto.ec2.models.core import TaggedEC2Resource
from moto.ec2.models.instances import Instance, StateReason
from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix

import timing

_lock = threading.Lock()
# instance id -> (starts that fall back, reason code, message)
_fallbacks = {}
# instance id -> (reason code, message): its next start ends terminated
_terminations = {}


def fall_back(instance, times, code, message, terminates=False):
    with _lock:
        if terminates:
            _terminations[instance] = (code, message)
        else:
            _fallbacks[instance] = (int(times), code, message)


_start = Instance.start


def _start_or_fall_back(self):
    previous = _start(self)
    with _lock:
        times, code, message = _fallbacks.get(self.id, (0, "", ""))
        if times > 0:
            _fallbacks[self.id] = (times - 1, code, message)
        termination = _terminations.pop(self.id, None)
    if termination is not None:
        self.terminate()
        self._reason = termination[1]
        self.state_reason = StateReason(termination[1], termination[0])
    elif times > 0:
        self._state.name = "stopped"
        self._state.code = 80
        self._reason = message
        self.state_reason = StateReason(message, code)
    elif timing.on():
        _boot(self)
    return previous


def _boot(instance):
    instance._state.name = "pending"
    instance._state.code = 0

    def running():
        if instance._state.name == "pending":
            # When it began to run: a load balancer's first health check of it follows (elbv2.py).
            instance._dr_running_at = time.monotonic()
            instance._dr_checks_until = timing.later(timing.STATUS_CHECK_SECONDS)
            instance._state.name = "running"
            instance._state.code = 16

    timing.after(timing.BOOT_SECONDS, running)


_instance_status = Instance.instance_status
_system_status = Instance.system_status


def _checked(original):
    def status(self):
        if self.state_code == 16 and time.monotonic() < getattr(self, "_dr_checks_until", 0.0):
            return {"Details": [{"Name": "reachability", "Status": "initializing"}], "Status": "initializing"}
        return original.fget(self)

    return property(status)


_group_instance_init = GroupInstance.__init__


def _launched(self, *args, **kwargs):
    _group_instance_init(self, *args, **kwargs)
    if timing.on() and self.lifecycle_state == "InService":
        self.lifecycle_state = "Pending"

        def in_service():
            if self.lifecycle_state == "Pending":
                self.lifecycle_state = "InService"

        timing.after(timing.ASG_IN_SERVICE_SECONDS, in_service)


_launch = FakeAutoScalingGroup.replace_autoscaling_group_instances


def _launch_and_boot(self, count_needed, propagated_tags):
    """The group's new instances boot as a started one does: EC2 Auto Scaling launches them with
    RunInstances, and a launched instance is `pending` until it is running (EC2 User Guide,
    instance lifecycle: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-lifecycle.html)."""
    before = {state.instance.id for state in self.instance_states}
    _launch(self, count_needed, propagated_tags)
    if timing.on():
        for state in self.instance_states:
            if state.instance.id not in before:
                _boot(state.instance)


def _tags_of_this_resource(self):
    resource_id = getattr(self, "id", None)
    if not resource_id:
        return []
    resource_type = EC2_PREFIX_TO_RESOURCE.get(get_prefix(resource_id), "")
    tags = self.ec2_backend.tags.get(resource_id, {})
    return [
        {"resource_id": resource_id, "key": key, "value": value, "resource_type": resource_type}
        for key, value in list(tags.items())
    ]


_run_instances = None
_run_lock = threading.Lock()


def _run_instances_once_per_token(self, image_id, count, user_data, security_group_names, **kwargs):
    token = kwargs.get("client_token")
    if not token:
        return _run_instances(self, image_id, count, user_data, security_group_names, **kwargs)
    # Serialised per backend call: two attempts with the same token racing each other launch once.
    with _run_lock:
        for reservation in self.reservations.values():
            if any(getattr(instance, "client_token", None) == token for instance in reservation.instances):
                return reservation
        return _run_instances(self, image_id, count, user_data, security_group_names, **kwargs)


def _describe_instances_with_a_stable_cursor(self):
    """moto's DescribeInstances, but a NextToken names a place among every reservation of the
    region (moto's order), not in the list filtered anew."""
    token = self._get_param("NextToken")
    order = {reservation_id: index for index, reservation_id in enumerate(list(self.ec2_backend.reservations))}
    if self._get_param("InstanceIds", []) or not token or token not in order:
        return _describe_instances(self)
    from moto.core.responses import ActionResult

    self.error_on_dryrun()
    reservations = self.ec2_backend.describe_instances(filters=self._filters_from_querystring())
    after = [reservation for reservation in reservations if order.get(reservation.id, -1) > order[token]]
    max_results = int(self._get_param("MaxResults", 100))
    page = after[:max_results]
    next_token = page[-1].id if max_results and len(after) > max_results else None
    return ActionResult({"Reservations": page, "NextToken": next_token})


_describe_instances = None


def install():
    global _run_instances, _describe_instances
    from moto.ec2.models.instances import InstanceBackend
    from moto.ec2.responses.instances import InstanceResponse

    _describe_instances = InstanceResponse.describe_instances
    InstanceResponse.describe_instances = _describe_instances_with_a_stable_cursor

    _run_instances = InstanceBackend.run_instances
    InstanceBackend.run_instances = _run_instances_once_per_token
    TaggedEC2Resource.get_tags = _tags_of_this_resource
    Instance.start = _start_or_fall_back
    Instance.instance_status = _checked(_instance_status)
    Instance.system_status = _checked(_system_status)
    GroupInstance.__init__ = _launched
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _launch_and_boot
