"""CloudWatch alarm evaluation, modelled: moto stores alarms and metric data but never evaluates
an alarm, so its state only changes by SetAlarmState. CloudWatch evaluates every metric alarm
continuously; here an alarm is evaluated when something looks at it (DescribeAlarms, a Route 53
answer), as of that moment, which is what CloudWatch's state would be then.

The rules (CloudWatch User Guide, "Evaluating an alarm" and "Configuring how CloudWatch alarms
treat missing data"):
- the metric's datapoints are aggregated by the alarm's statistic into periods aligned on the
  period; the most recent EvaluationPeriods *complete* periods are evaluated (CloudWatch
  evaluates a period once it has ended: a datapoint of the current minute moves the alarm at the
  end of that minute, and the unfinished minute is not "missing data");
- a period breaches when its value compares to the threshold as ComparisonOperator says; the
  alarm is in ALARM when at least DatapointsToAlarm (default: EvaluationPeriods) periods breach;
- a period without data is treated as TreatMissingData says: `breaching`, `notBreaching`,
  `ignore` (the current state is kept when every period is missing) or `missing` (the default:
  every period missing makes the alarm INSUFFICIENT_DATA);
- a new alarm starts in INSUFFICIENT_DATA (moto starts it in OK).

CloudWatch evaluates every minute, whether anyone looks or not: a datapoint published in the last
seconds of a period moves the alarm even when nobody looks before the next period begins. So a
look first goes through the evaluations CloudWatch made since the previous look, at the end of
each period that completed in between (`_since_last_look`), then evaluates now.

An alarm can be held ("frozen") by the local stack's control API: CloudWatch has not evaluated it
yet, as happens for a minute or more after new data. Tests use it to make a status never ready.
On release the alarm catches up with the evaluations the hold hid, as CloudWatch made them.
"""

import threading
from datetime import datetime, timezone

from moto.cloudwatch.models import Alarm, MetricDatum

# (region, name) -> when the hold began
_frozen = {}
# (region, name) -> when the alarm was last evaluated (looked at)
_last_look = {}
# Periods caught up at most per look: an alarm nobody looked at for hours is evaluated over the
# last two hours only (the suite looks at its alarms far more often).
_MAX_CATCH_UP_PERIODS = 120
_lock = threading.Lock()


def freeze(region, name, frozen):
    with _lock:
        if frozen:
            _frozen.setdefault((region, name), datetime.now(timezone.utc))
            return
        since = _frozen.pop((region, name), None)
    if since is not None:
        _catch_up(region, name, since)


def is_frozen(alarm):
    with _lock:
        return (alarm.region_name, alarm.name) in _frozen


def _find(region, name):
    """The region's CloudWatch backend and the alarm, in whichever account holds it."""
    from moto.cloudwatch.models import cloudwatch_backends

    for backend in cloudwatch_backends.values():
        regional = backend[region] if region in backend else None
        alarm = regional.alarms.get(name) if regional is not None else None
        if alarm is not None:
            return regional, alarm
    return None, None


def _catch_up(region, name, since):
    """CloudWatch kept evaluating while the hold hid it: on release, the alarm goes through each
    evaluation it missed, one per period, in order (with `ignore`, a datapoint seen during the
    hold moves the alarm even when it has aged out of the periods evaluated now)."""
    regional, alarm = _find(region, name)
    if alarm is None:
        return
    data = metric_data(regional, {alarm.namespace})
    period = int(alarm.period or 60)
    now = datetime.now(timezone.utc)
    # Every period boundary the hold covered, the last one at or before now included (CloudWatch
    # evaluates at each end of a period; `since` itself is not on one).
    boundary = int(since.timestamp()) // period * period + period
    while boundary <= now.timestamp():
        at = datetime.fromtimestamp(boundary, timezone.utc)
        state = evaluate(alarm, data, at)
        if state != alarm.state_value:
            alarm.update_state(f"Modelled evaluation at {at.isoformat()} (after a hold)", "{}", state)
        boundary += period
    with _lock:
        _last_look[(region, name)] = now


def moved_at(region, name, at):
    """Stamps the alarm's move to its current state (StateTransitionedTimestamp and
    StateUpdatedTimestamp): a simulated outage is back-dated, SetAlarmState stamps the call's time."""
    _, alarm = _find(region, name)
    if alarm is None:
        raise KeyError(f"no alarm {name} in {region}")
    # moto keeps naive UTC times.
    stamp = at.astimezone(timezone.utc).replace(tzinfo=None)
    alarm.state_updated_timestamp = stamp
    alarm.state_transitioned_timestamp = stamp


# The namespaces whose datapoints moto computes itself rather than stores (its S3 storage
# metrics): computing them walks every bucket and object of the region.
_COMPUTED_NAMESPACES = {"AWS/S3"}


def metric_data(backend, namespaces):
    """The datapoints alarms on `namespaces` can read: every published one, and moto's computed
    ones only when an alarm reads their namespace (the suite's estates accumulate thousands of
    buckets and objects, and every look at an alarm computed them all)."""
    if _COMPUTED_NAMESPACES & set(namespaces):
        return backend.get_all_metrics()
    return list(backend.metric_data)


def _dimensions(items):
    return sorted((d.name, d.value) for d in items)


def _statistic(name, values):
    if name == "Maximum":
        return max(values)
    if name == "Minimum":
        return min(values)
    if name == "Sum":
        return sum(values)
    if name == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)  # Average


def _breaches(alarm, value):
    threshold = alarm.threshold
    return {
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "GreaterThanThreshold": value > threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(alarm.comparison_operator, False)


def _since_last_look(alarm, metric_data, now):
    """The evaluations CloudWatch made at the end of each period that completed since the last
    look, applied in order."""
    key = (alarm.region_name, alarm.name)
    with _lock:
        last = _last_look.get(key)
        _last_look[key] = now
    if last is None:
        return
    period = int(alarm.period or 60)
    end = int(last.timestamp()) // period * period + period
    current = int(now.timestamp()) // period * period
    end = max(end, current - _MAX_CATCH_UP_PERIODS * period)
    while end <= current:
        at = datetime.fromtimestamp(end, timezone.utc)
        state = evaluate(alarm, metric_data, at)
        if state != alarm.state_value:
            alarm.update_state(f"Modelled evaluation at {at.isoformat()} (end of its period)", "{}", state)
        end += period


def evaluate(alarm, metric_data, at=None):
    """The alarm's state now (updating moto's alarm when it changed), or what it would be at `at`
    with the data there is now (nothing is updated). Metric-math and composite alarms keep the
    state moto gives them."""
    if alarm.rule is not None or not alarm.metric_name or is_frozen(alarm):
        return alarm.state_value
    if at is None:
        _since_last_look(alarm, metric_data, datetime.now(timezone.utc))
    state, reason = judge(alarm, metric_data, at or datetime.now(timezone.utc))
    if state is None:
        state = alarm.state_value
    if state != alarm.state_value and at is None:
        alarm.update_state(f"Modelled evaluation: {reason}", "{}", state)
    return state


def judge(alarm, metric_data, at):
    """What the alarm's definition makes of `metric_data` at `at`, over the EvaluationPeriods
    periods completed by then: ("OK" | "ALARM" | "INSUFFICIENT_DATA", why), or (None, why) when
    every period is missing and TreatMissingData is `ignore` (the alarm keeps its state)."""
    period = int(alarm.period or 60)
    evaluation_periods = int(alarm.evaluation_periods or 1)
    to_alarm = int(alarm.datapoints_to_alarm or evaluation_periods)
    wanted = _dimensions(alarm.dimensions)
    ended = int(at.timestamp()) // period * period
    starts = [ended - (i + 1) * period for i in range(evaluation_periods)]
    buckets = {start: [] for start in starts}
    for datum in metric_data:
        if not isinstance(datum, MetricDatum):
            continue
        if datum.namespace != alarm.namespace or datum.name != alarm.metric_name:
            continue
        if _dimensions(datum.dimensions) != wanted:
            continue
        stamp = datum.timestamp
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        start = int(stamp.timestamp()) // period * period
        if start in buckets:
            buckets[start].append(float(datum.value))
    treat = alarm.treat_missing_data or "missing"
    verdicts = []
    for start in starts:
        values = buckets[start]
        if values:
            verdicts.append(_breaches(alarm, _statistic(alarm.statistic or "Average", values)))
        elif treat == "breaching":
            verdicts.append(True)
        elif treat == "notBreaching":
            verdicts.append(False)
    why = f"{sum(verdicts)} of {evaluation_periods} periods breaching (missing data: {treat})"
    if all(not buckets[start] for start in starts) and treat in ("missing", "ignore"):
        return ("INSUFFICIENT_DATA" if treat == "missing" else None), why
    return ("ALARM" if sum(verdicts) >= to_alarm else "OK"), why


_alarm_init = Alarm.__init__
_update_state = Alarm.update_state


def _init_insufficient_data(self, *args, **kwargs):
    _alarm_init(self, *args, **kwargs)
    # CloudWatch: a new alarm is INSUFFICIENT_DATA until its first evaluation (moto: OK).
    self.state_value = "INSUFFICIENT_DATA"
    self.state_reason = "Unchecked: Initial alarm creation"
    self.state_transitioned_timestamp = self.state_updated_timestamp
    # CloudWatch evaluates the alarm from its creation (or update) on, looked at or not: the end
    # of the period in which it was created is its first evaluation. Without this, an alarm first
    # looked at just after a period ended missed that period's evaluation, and a datapoint
    # published in its last second never moved it.
    with _lock:
        _last_look[(self.region_name, self.name)] = datetime.now(timezone.utc)


def _update_state_transitioned(self, reason, reason_data, state_value):
    # CloudWatch: StateTransitionedTimestamp moves only when the state value changes (moto has no
    # such field; StateUpdatedTimestamp also moves on a new reason).
    changed = state_value != self.state_value
    _update_state(self, reason, reason_data, state_value)
    if changed:
        self.state_transitioned_timestamp = self.state_updated_timestamp


def install():
    Alarm.__init__ = _init_insufficient_data
    Alarm.update_state = _update_state_transitioned

    from moto.cloudwatch.models import cloudwatch_backends
    from moto.cloudwatch.responses import CloudWatchResponse

    describe_alarms = CloudWatchResponse.describe_alarms

    def describe_alarms_evaluated(self):
        backend = self.cloudwatch_backend
        # Only the alarms asked for are evaluated now: any other is evaluated when it is looked
        # at, and catches up with what it missed then (`_since_last_look`).
        names = self._get_param("AlarmNames", [])
        prefix = self._get_param("AlarmNamePrefix")
        alarms = list(backend.alarms.values())
        if names:
            alarms = [alarm for alarm in alarms if alarm.name in names]
        elif prefix:
            alarms = [alarm for alarm in alarms if alarm.name.startswith(prefix)]
        data = metric_data(backend, {alarm.namespace for alarm in alarms})
        for alarm in alarms:
            evaluate(alarm, data)
        return describe_alarms(self)

    CloudWatchResponse.describe_alarms = describe_alarms_evaluated
    return cloudwatch_backends
