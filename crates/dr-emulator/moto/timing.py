"""AWS's durations on a compressed clock: the RTO model (`bench-rto`). moto does everything at
once (a promoted replica is standalone, a started instance running with its checks passed, a
raised group InService, a routing change answered, all in the same second), so the emulator can
say nothing about the RTO a runbook achieves on AWS. With the model on, each of these takes its
AWS duration times `scale` (0.02: one AWS minute lasts 1.2 s):

    POST   /dr-local/timing   {"scale": 0.02}        the model on (durations below, scaled)
    GET    /dr-local/timing                          the model in force and its figures
    DELETE /dr-local/timing                          off: moto's instant changes (the default)

Each figure is what AWS documents, or, where AWS gives no number, a typical value marked as an
assumption. The RTO benchmark reads them from GET so that its report and the emulator agree.
"""

import threading
import time

# RDS: "When you promote a read replica, RDS reboots the DB instance before making it
# available. The promotion process can take several minutes or longer to complete, depending on
# the size of the read replica." (Amazon RDS User Guide, USER_ReadRepl.Promote). Taken: 5 min,
# a small instance (an assumption within "several minutes").
PROMOTE_SECONDS = 300

# EC2, a stopped EBS-backed instance started: `pending` until `running`; AWS gives no figure
# ("pending: the instance is preparing to enter the running state", EC2 User Guide, instance
# lifecycle). Taken: 45 s (an assumption, typical for a Linux AMI).
BOOT_SECONDS = 45

# EC2 status checks: "Status checks are performed every minute, returning a pass or a fail
# status" (EC2 User Guide, monitoring-system-instance-status-check); a started instance's checks
# stay `initializing` until they have run. Taken: two rounds after `running`, 120 s.
STATUS_CHECK_SECONDS = 120

# EC2 Auto Scaling: a launched instance is `Pending` until it is running and, with no lifecycle
# hook, moves to `InService` (Auto Scaling User Guide, instance lifecycle); AWS gives no figure.
# Taken: boot (45 s) plus the first EC2 status check round (60 s).
ASG_IN_SERVICE_SECONDS = 105

# ECS on Fargate: a task goes PROVISIONING (its network interface attached), PENDING (its image
# pulled), RUNNING; AWS gives no figure ("Amazon ECS task lifecycle", Developer Guide). Taken:
# 60 s (an assumption, typical for a small image from ECR in the same region). ecs.py plays it.
ECS_TASK_START_SECONDS = 60

# A stopped ECS task gets SIGTERM, then SIGKILL after the container's stopTimeout, 30 s by default
# (ContainerDefinition.stopTimeout, ECS API Reference).
ECS_TASK_STOP_SECONDS = 30

# Route 53: "Changes generally propagate to all Route 53 name servers within 60 seconds"
# (Route 53 Developer Guide, resource-record-sets-changing; GetChange INSYNC).
DNS_PROPAGATION_SECONDS = 60

# A CLOUDWATCH_METRIC health check follows its alarm, which CloudWatch evaluates once per period
# (the routing alarm of template.yaml: Period 60, EvaluationPeriods 1; CloudWatch User Guide,
# "Using Amazon CloudWatch alarms"): the routing change waits for the next evaluation, a period
# at most.
ROUTING_ALARM_PERIOD_SECONDS = 60

_lock = threading.Lock()
_scale = None


def configure(scale):
    global _scale
    with _lock:
        _scale = float(scale) if scale is not None else None


def figures():
    return {
        "scale": _scale,
        "promote_seconds": PROMOTE_SECONDS,
        "boot_seconds": BOOT_SECONDS,
        "status_check_seconds": STATUS_CHECK_SECONDS,
        "asg_in_service_seconds": ASG_IN_SERVICE_SECONDS,
        "ecs_task_start_seconds": ECS_TASK_START_SECONDS,
        "dns_propagation_seconds": DNS_PROPAGATION_SECONDS,
        "routing_alarm_period_seconds": ROUTING_ALARM_PERIOD_SECONDS,
    }


def on():
    return _scale is not None


def scaled(aws_seconds):
    """Wall seconds that `aws_seconds` of AWS time last under the model (0 when it is off)."""
    with _lock:
        return 0.0 if _scale is None else aws_seconds * _scale


def later(aws_seconds):
    """The monotonic time at which `aws_seconds` of AWS time from now have passed."""
    return time.monotonic() + scaled(aws_seconds)


def after(aws_seconds, action):
    """Runs `action` once `aws_seconds` of AWS time have passed (at once when the model is off)."""
    delay = scaled(aws_seconds)
    if delay <= 0:
        action()
        return
    timer = threading.Timer(delay, action)
    timer.daemon = True
    timer.start()
