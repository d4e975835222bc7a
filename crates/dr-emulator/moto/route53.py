"""Route 53, modelled where moto is not Route 53:

- CreateHealthCheck keeps AlarmIdentifier and InsufficientDataHealthStatus, and GetHealthCheck /
  ListHealthChecks return them (moto 5.2 drops both), so that `plan check` can verify them;
- the health checkers: an endpoint check (HTTP/HTTPS/TCP) is as healthy as the newest
  `AWS/Route53 HealthCheckStatus` datapoint for it in us-east-1 says (the outage simulation
  publishes what the checkers would; no datapoint yet: healthy); a CLOUDWATCH_METRIC check follows
  the alarm's *data stream*, not the alarm's state ("How Route 53 determines the status of health
  checks that monitor CloudWatch alarms": the checkers monitor the alarm's data stream): at the end
  of every period the alarm's definition is applied to the datapoints the checkers received
  (alarms.judge): OK healthy, ALARM unhealthy, a stream without enough data (every period missing,
  whatever TreatMissingData says) as InsufficientDataHealthStatus says (LastKnownStatus, the
  documented default: the status from the last time there was data; never known: healthy). The
  checkers can miss datapoints (`miss_datapoints`, POST /dr-local/route53/missed-datapoints): the
  alarm sees them, Route 53 does not. A held alarm (alarms.freeze) holds its stream too: the
  checkers keep the status they had;
- answering DNS questions (moto answers none): failover records answer the PRIMARY while its
  health check is healthy (a record without a health check is healthy), else the SECONDARY; a
  plain record answers its values.

The local stack holds several accounts (moto keeps its state per account, and credentials assumed
into another account's role select it): a landing zone's DNS account has its own zones, health
checks and alarms. A health check is judged in its own account (its alarm and its
HealthCheckStatus metric are that account's, as on AWS: AlarmIdentifier names a region and a name
only), and the name servers answer from every account's public zones.

`answer(name, type)` is what the local DNS server (dns.py) and the control API's `/dr-local/dns`
return.
"""

import threading
import time

from moto.core import DEFAULT_ACCOUNT_ID
from moto.route53.models import HealthCheck, route53_backends
from moto.route53.responses import Route53

import alarms
import timing

_lock = threading.Lock()


def _backends():
    """(account, Route 53 backend) of every account the local stack holds."""
    return [(account, backends["aws"]) for account, backends in list(route53_backends.items()) if "aws" in backends]


def _find_check(check_id):
    """(account, health check) of the check with this id in whichever account holds it."""
    for account, backend in _backends():
        check = backend.health_checks.get(check_id)
        if check is not None:
            return account, check
    return DEFAULT_ACCOUNT_ID, None


def _cloudwatch(region, account=DEFAULT_ACCOUNT_ID):
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[account][region]


def _endpoint_health(check, account):
    data = alarms.metric_data(_cloudwatch("us-east-1", account), {"AWS/Route53"})
    newest = None
    for datum in data:
        if datum.namespace != "AWS/Route53" or datum.name != "HealthCheckStatus":
            continue
        if not any(d.name == "HealthCheckId" and d.value == check.id for d in datum.dimensions):
            continue
        if newest is None or datum.timestamp > newest.timestamp:
            newest = datum
    if newest is None:
        return True, "no HealthCheckStatus yet: healthy"
    healthy = float(newest.value) >= 1.0
    return healthy, f"HealthCheckStatus {newest.value:g} at {newest.timestamp.isoformat()}"


# (region, namespace, metric, Plan dimension) -> [datapoints already published when the fault
# was set, how many of the next ones the checkers miss]
_missed = {}
# health check id -> (when its stream was last evaluated, whether it was healthy then)
_stream = {}
# Periods caught up at most per look (as alarms.py).
_MAX_CATCH_UP_PERIODS = 120
_stream_lock = threading.Lock()


def _plan_of(datum):
    return next((d.value for d in datum.dimensions if d.name == "Plan"), None)


def _of_metric(datum, namespace, metric, plan):
    return (
        getattr(datum, "namespace", None) == namespace
        and getattr(datum, "name", None) == metric
        and _plan_of(datum) == plan
    )


def miss_datapoints(region, namespace, metric, plan, count):
    """Route 53's checkers miss the next `count` datapoints of the plan's metric published in
    `region` (CloudWatch has them, the alarm evaluates them), in whichever account publishes it."""
    published = 0
    for account, _ in _backends():
        data = alarms.metric_data(_cloudwatch(region, account), {namespace})
        published += sum(1 for d in data if _of_metric(d, namespace, metric, plan))
    with _lock:
        _missed[(region, namespace, metric, plan)] = [published, int(count)]


def _received(region, alarm, data):
    """The datapoints of the alarm's metric the checkers received."""
    plan = next((d.value for d in alarm.dimensions if d.name == "Plan"), None)
    with _lock:
        missed = _missed.get((region, alarm.namespace, alarm.metric_name, plan))
    if not missed:
        return data
    first, count = missed
    kept, index = [], 0
    for datum in data:
        if _of_metric(datum, alarm.namespace, alarm.metric_name, plan):
            index += 1
            if first < index <= first + count:
                continue
        kept.append(datum)
    return kept


def _stream_health(check, alarm, data, healthy, at):
    """Whether the check is healthy after the checkers' evaluation of the stream at `at`."""
    state, _ = alarms.judge(alarm, data, at)
    if state == "OK":
        return True
    if state == "ALARM":
        return False
    setting = getattr(check, "insufficient_data_health_status", None) or "LastKnownStatus"
    if setting == "Healthy":
        return True
    if setting == "Unhealthy":
        return False
    return healthy


def _metric_health(check, at, account):
    identifier = getattr(check, "alarm_identifier", None) or {}
    region, name = identifier.get("Region"), identifier.get("Name")
    # The alarm of the check's own account: AlarmIdentifier has no account.
    backend = _cloudwatch(region, account) if region else None
    alarm = backend.alarms.get(name) if backend else None
    now = time.time() if at is None else at.timestamp()
    # One look at a time: a look reads where the stream was last judged, judges the boundaries
    # since and records the result; two interleaved looks could record an older result last.
    with _stream_lock:
        return _judge_stream(check, alarm, region, name, backend, now, at)


def _judge_stream(check, alarm, region, name, backend, now, at):
    with _lock:
        since, healthy = _stream.get(check.id, (getattr(check, "created_at", now), True))
    if alarm is None:
        # Route 53: a health check whose alarm does not exist has insufficient data.
        setting = getattr(check, "insufficient_data_health_status", None) or "LastKnownStatus"
        healthy = {"Healthy": True, "Unhealthy": False}.get(setting, healthy)
        return healthy, f"alarm {name} ({region}) does not exist: {setting} -> {'healthy' if healthy else 'unhealthy'}"
    if alarms.is_frozen(alarm):
        return healthy, f"alarm {name} ({region}) not evaluated yet (held): {'healthy' if healthy else 'unhealthy'} as before"
    # The checkers evaluate the stream at the end of every period, looked at or not.
    period = int(alarm.period or 60)
    data = _received(region, alarm, alarms.metric_data(backend, {alarm.namespace}))
    boundary = max(int(since) // period * period + period, int(now) // period * period - _MAX_CATCH_UP_PERIODS * period)
    from datetime import datetime, timezone

    while boundary <= now:
        healthy = _stream_health(check, alarm, data, healthy, datetime.fromtimestamp(boundary, timezone.utc))
        boundary += period
    if at is None:
        with _lock:
            _stream[check.id] = (now, healthy)
    state, why = alarms.judge(alarm, data, datetime.fromtimestamp(now, timezone.utc))
    return healthy, f"alarm {name} ({region}) data stream: {state or 'INSUFFICIENT_DATA'}, {why} -> {'healthy' if healthy else 'unhealthy'}"


def health(check_id, at=None):
    """Whether the health check is healthy now (or at `at`, with the data there is now), and why."""
    account, check = _find_check(check_id)
    if check is None:
        # Route 53 treats a record whose health check was deleted as healthy.
        return True, f"health check {check_id} does not exist: healthy"
    if check.type_ == "CLOUDWATCH_METRIC":
        return _metric_health(check, at, account)
    if check.type_ == "CALCULATED":
        return True, "calculated health checks are not modelled: healthy"
    return _endpoint_health(check, account)


def _fqdn(name):
    return name.rstrip(".").lower() + "."


# Under the RTO model (timing.py): (name, type) -> [served answer, the answer it is changing to,
# monotonic time the change reaches the name servers].
_served = {}


def answer(name, rtype, at=None):
    """(values, explanation, ttl) of Route 53's answer for `name` and `rtype` now (or at `at`, with
    the data there is now: what it will answer if nothing new arrives); ([], why, 0) when the name
    has no such record. Under the RTO model a change of answer is served only once Route 53 would
    serve it: after the routing alarm's next evaluation (a failover record whose PRIMARY follows an
    alarm) and the propagation to the name servers."""
    now = _answer(name, rtype, at)
    key = (_fqdn(name), rtype)
    if at is not None or not timing.on():
        with _lock:
            _served.pop(key, None)
        return now
    with _lock:
        served = _served.setdefault(key, [now, None, 0.0])
        current, changing_to, ready_at = served
        if now[0] == current[0]:
            served[0], served[1] = now, None
            return now
        if changing_to is None or changing_to[0] != now[0]:
            delay = timing.DNS_PROPAGATION_SECONDS
            if _follows_an_alarm(key[0], rtype):
                delay += timing.ROUTING_ALARM_PERIOD_SECONDS
            served[1], served[2] = now, timing.later(delay)
        if time.monotonic() >= served[2]:
            served[0], served[1] = now, None
            return now
        return current[0], f"{current[1]}; changing to {now[0]} (modelled: not yet on the name servers)", current[2]


def forget_served():
    """A new model run starts from the answers as they are."""
    with _lock:
        _served.clear()


def _public_zones():
    return [zone for _, backend in _backends() for zone in list(backend.zones.values()) if not zone.private_zone]


def _follows_an_alarm(name, rtype):
    for zone in _public_zones():
        for s in zone.rrsets:
            if _fqdn(s.name) == name and s.type == rtype and s.failover == "PRIMARY" and s.health_check_id:
                _, check = _find_check(s.health_check_id)
                return check is not None and check.type_ == "CLOUDWATCH_METRIC"
    return False


def _answer(name, rtype, at):
    name = _fqdn(name)
    for zone in _public_zones():
        sets = [s for s in zone.rrsets if _fqdn(s.name) == name and s.type == rtype]
        if not sets:
            continue
        failover = {s.failover: s for s in sets if s.failover}
        if not failover:
            return list(sets[0].records), "plain record", int(sets[0].ttl or 0)
        primary, secondary = failover.get("PRIMARY"), failover.get("SECONDARY")
        if primary is not None:
            healthy, why = (True, "no health check") if not primary.health_check_id else health(primary.health_check_id, at)
            if healthy or secondary is None:
                return list(primary.records), f"PRIMARY healthy ({why})", int(primary.ttl or 0)
            return list(secondary.records), f"PRIMARY unhealthy ({why}): SECONDARY", int(secondary.ttl or 0)
        return list(secondary.records), "only a SECONDARY record", int(secondary.ttl or 0)
    return [], f"no {rtype} record {name}", 0


_health_check_init = HealthCheck.__init__


def _init_with_alarm(self, health_check_id, caller_reference, health_check_args):
    _health_check_init(self, health_check_id, caller_reference, health_check_args)
    self.alarm_identifier = health_check_args.get("alarm_identifier")
    self.insufficient_data_health_status = health_check_args.get("insufficient_data_health_status")
    # The checkers evaluate the alarm's stream from the check's creation on.
    self.created_at = time.time()


_health_check_config = HealthCheck.health_check_config


def _config_with_alarm(self):
    config = _health_check_config.fget(self)
    if getattr(self, "alarm_identifier", None):
        config["AlarmIdentifier"] = self.alarm_identifier
    if getattr(self, "insufficient_data_health_status", None):
        config["InsufficientDataHealthStatus"] = self.insufficient_data_health_status
    return config


_create_health_check = Route53.create_health_check
_create_lock = threading.Lock()


def _create_keeping_alarm(self):
    config = self._get_param("HealthCheckConfig")
    backend = self.backend
    # The response handler builds the backend's arguments without the two fields: hand them over
    # by wrapping the backend's create for this one call (serialised: the server is threaded).
    with _create_lock:
        original = backend.create_health_check

        def create(caller_reference, health_check_args):
            health_check_args = dict(health_check_args)
            health_check_args["alarm_identifier"] = config.get("AlarmIdentifier")
            health_check_args["insufficient_data_health_status"] = config.get("InsufficientDataHealthStatus")
            return original(caller_reference, health_check_args)

        backend.create_health_check = create
        try:
            return _create_health_check(self)
        finally:
            del backend.create_health_check


def install():
    HealthCheck.__init__ = _init_with_alarm
    HealthCheck.health_check_config = property(_config_with_alarm)
    Route53.create_health_check = _create_keeping_alarm
