"""EC2, modelled where moto is not EC2: a started instance can fall back from pending to
stopped (insufficient capacity in the zone; a customer-managed EBS key the caller may not use,
`Client.InternalError`). moto starts every instance at once. The control API makes the next
starts of an instance fall back (`POST /dr-local/ec2/start-fallback`), with the state reason
EC2 gives."""

import threading

from moto.ec2.models.instances import Instance, StateReason

_lock = threading.Lock()
# instance id -> (starts that fall back, reason code, message)
_fallbacks = {}


def fall_back(instance, times, code, message):
    with _lock:
        _fallbacks[instance] = (int(times), code, message)


_start = Instance.start


def _start_or_fall_back(self):
    previous = _start(self)
    with _lock:
        times, code, message = _fallbacks.get(self.id, (0, "", ""))
        if times > 0:
            _fallbacks[self.id] = (times - 1, code, message)
    if times > 0:
        self._state.name = "stopped"
        self._state.code = 80
        self._reason = message
        self.state_reason = StateReason(message, code)
    return previous


def install():
    Instance.start = _start_or_fall_back
