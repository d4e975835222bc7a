"""RDS, modelled where moto is not RDS:

- PromoteReadReplica turns the replica into a standalone instance, so
  ReadReplicaSourceDBInstanceIdentifier disappears from DescribeDBInstances (moto 5.2 keeps it);
- an instance can be in a transient state for a while (`backing-up` during its daily backup
  window, `modifying`, ...): moto makes every instance `available` at once. The control API sets a
  status for some seconds (`POST /dr-local/rds/status`); while it holds, DescribeDBInstances shows
  it and PromoteReadReplica is refused with InvalidDBInstanceState, as RDS refuses it;
- a promoted replica keeps the BackupRetentionPeriod and PreferredBackupWindow the request gives,
  and without them keeps backups for 1 day, as RDS does (moto keeps the source's settings);
- moto has no data: an emulated instance can be backed by a real PostgreSQL server
  (`POST /dr-local/rds/backing`, crates/dr-emulator/src/postgres.rs); promoting the replica then
  promotes the standby (`pg_promote()`, which waits until it accepts writes), so rows written on
  the primary before the promotion can be counted on the new primary. A backed instance's
  Endpoint is its server's address and port. An instance with no server behind it answers with an
  endpoint that refuses connections (loopback, port 9), as a database nobody can reach: moto's
  made-up host name would leave each connection to the machine's resolver.
- a promotion can fail after RDS accepted it: the instance no longer replicates and is left in a
  status it does not leave by itself (`incompatible-parameters` when the promoted instance cannot
  start with its parameter group, `storage-full`, ...: "DB instance status" in the RDS User Guide,
  https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html). moto's
  promotions always succeed; the control API makes a replica's next one fail so
  (`POST /dr-local/rds/promotion-fails`). Its PostgreSQL standby is not promoted: it takes no writes.
- a renamed instance (ModifyDBInstance with NewDBInstanceIdentifier) is `renaming` for a while
  under its new name (moto renames at once), and keeps its PostgreSQL server behind it;
- a read replica created of a backed instance (CreateDBInstanceReadReplica, e.g. reprotect's
  Paris replica of the promoted Ireland primary) is backed by a new real standby of that server:
  a base backup of it, started beside it (in the pair's directory, which the pair's owner removes
  with every server in it), streaming from it; its first ReplicaLag datapoint (0 s) is published
  then (RDS publishes one a minute for a replica, moto none). RDS answers the call at once with
  the replica `creating`, and makes it `available` once it replicates; so does the model: the
  standby starts in the background (a base backup and a server start take seconds, longer than
  a caller's 6 s attempt under load), the replica is `creating` with no server behind it until
  then, and `failed` if its standby does not start.
- a manual snapshot (CreateDBSnapshot: reprotect's final snapshot, the estate's seed) is
  `creating` for a while (moto makes it `available` at once), and CopyDBSnapshot refuses a source
  that is not available yet with InvalidDBSnapshotState, as RDS does. (Automated snapshots, which
  RDS takes itself in the backup window, and copies are available at once.)
"""

import glob
import os
import socket
import subprocess
import threading
import time
import uuid

from moto.rds.exceptions import RDSClientError
from moto.rds.models import DBInstance, RDSBackend
from moto.rds.utils import valid_preferred_maintenance_window

import timing

_lock = threading.Lock()
# (region, instance) -> (status, until monotonic time)
_held = {}
# (region, instance) -> (host, port) of the PostgreSQL standby behind it
_backing = {}


def back_with(region, instance, host, port):
    with _lock:
        _backing[(region, instance)] = (host, int(port))


def _promote_standby(region, instance):
    with _lock:
        server = _backing.get((region, instance))
    if server is None:
        return
    host, port = server
    if _psql(host, port, "SELECT pg_promote(true, 60)") != "t":
        raise RDSClientError("InternalFailure", f"the PostgreSQL standby behind {instance} was not promoted")


# How long a rename keeps an instance `renaming`, and a manual snapshot `creating`.
RENAME_SECONDS = 2
SNAPSHOT_SECONDS = 1
# (region, snapshot) -> monotonic time it becomes available
_snapshots_creating = {}


def _psql(host, port, statement):
    result = subprocess.run(
        ["psql", "-h", host, "-p", str(port), "-U", "postgres", "-d", "postgres", "-X", "-q", "-t", "-A",
         "-v", "ON_ERROR_STOP=1", "-c", statement],
        capture_output=True,
        text=True,
        timeout=90,
    )
    if result.returncode != 0:
        raise RDSClientError("InternalFailure", f"PostgreSQL on {host}:{port}: {result.stderr}")
    return result.stdout.strip()


def _as_postgres(command):
    """Server programs refuse to run as root: as root, they run as the package's postgres user."""
    return ["runuser", "-u", "postgres", "--"] + command if os.geteuid() == 0 else command


def _start_standby_of(host, port):
    """A new streaming standby of the server at host:port, beside its data directory: (host, port)."""
    source_data = _psql(host, port, "SHOW data_directory")
    directory = os.path.dirname(source_data)
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not versions:
        raise RDSClientError("InternalFailure", "no PostgreSQL server programs in /usr/lib/postgresql")
    binaries = versions[-1]
    data = os.path.join(directory, f"replica-{uuid.uuid4().hex[:12]}")
    result = subprocess.run(
        _as_postgres([f"{binaries}/pg_basebackup", "-h", host, "-p", str(port), "-U", "postgres", "-D", data, "-R", "-X", "stream"]),
        capture_output=True, text=True, timeout=120, cwd=directory,
    )
    if result.returncode != 0:
        raise RDSClientError("InternalFailure", f"pg_basebackup: {result.stderr}")
    # A free port is free when it is probed, not necessarily when the server binds it (another
    # process may take it in between): a start that lost its port tries another.
    last = ""
    for _ in range(3):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            new_port = probe.getsockname()[1]
        command = [f"{binaries}/pg_ctl", "-D", data, "-l", f"{data}.log", "-o", f"-p {new_port}", "-w", "start"]
        result = subprocess.run(_as_postgres(command), capture_output=True, text=True, timeout=120, cwd=directory)
        if result.returncode == 0:
            return ("127.0.0.1", new_port)
        last = result.stderr
    raise RDSClientError("InternalFailure", f"pg_ctl start: {last}")


# (region, instance) -> the status its next promotion ends in
_failing_promotions = {}
# A failed status is held for a day: longer than any run waits, as RDS leaves it until a human acts.
_FAILED_FOR_SECONDS = 86400


def promotion_fails(region, instance, status):
    with _lock:
        _failing_promotions[(region, instance)] = status


def hold_status(region, instance, status, seconds):
    with _lock:
        _held[(region, instance)] = (status, time.monotonic() + float(seconds))


def _apply(backend):
    """Puts the held statuses on the backend's instances, and releases the expired ones."""
    now = time.monotonic()
    with _lock:
        for (region, instance), (status, until) in list(_held.items()):
            if region != backend.region_name:
                continue
            database = backend.databases.get(instance)
            if database is None:
                continue
            if now < until:
                database.status = status
            else:
                database.status = "available"
                del _held[(region, instance)]


_promote_read_replica = RDSBackend.promote_read_replica
_create_db_snapshot = RDSBackend.create_db_snapshot
_describe_db_snapshots = RDSBackend.describe_db_snapshots
_copy_db_snapshot = RDSBackend.copy_db_snapshot
_create_db_instance_read_replica = RDSBackend.create_db_instance_read_replica
_modify_db_instance = RDSBackend.modify_db_instance
_describe_db_instances = RDSBackend.describe_db_instances


def _promote(self, db_kwargs):
    _apply(self)
    identifier = db_kwargs.get("db_instance_identifier")
    database = self.databases.get(identifier)
    if database is not None and database.status != "available":
        raise RDSClientError(
            "InvalidDBInstanceState",
            f"Database instance {identifier} is {database.status}: it can be promoted only when available.",
        )
    # RDS refuses a backup window that meets the instance's maintenance window ("Must not conflict
    # with the preferred maintenance window": PromoteReadReplica, PreferredBackupWindow); moto's
    # promotion takes any window, and its ModifyDBInstance then refuses every later change.
    window = db_kwargs.get("preferred_backup_window")
    if database is not None and window:
        refusal = valid_preferred_maintenance_window(database.preferred_maintenance_window, window)
        if refusal:
            raise RDSClientError("InvalidParameterValue", refusal)
    was_replica = database is not None and database.is_replica
    with _lock:
        fails_as = _failing_promotions.pop((self.region_name, identifier), None) if was_replica else None
    if was_replica and fails_as is None:
        _promote_standby(self.region_name, identifier)
    database = _promote_read_replica(self, db_kwargs)
    database.source_db_instance_identifier = None
    if fails_as is not None:
        hold_status(self.region_name, identifier, fails_as, _FAILED_FOR_SECONDS)
        return database
    if was_replica and timing.on():
        # The RTO model: RDS reboots the promoted instance before making it available.
        hold_status(self.region_name, identifier, "modifying", timing.scaled(timing.PROMOTE_SECONDS))
    if was_replica and db_kwargs.get("backup_retention_period") is None:
        database.backup_retention_period = 1
    return database


def _region_and_name(identifier, default_region):
    """An RDS ARN's region and resource name (`arn:aws:rds:REGION:ACCOUNT:db:NAME`), or a plain name
    in `default_region`."""
    parts = identifier.split(":")
    if identifier.startswith("arn:") and len(parts) >= 7:
        return parts[3], parts[-1]
    return default_region, identifier


def _create_replica(self, db_kwargs):
    region, name = _region_and_name(db_kwargs.get("source_db_instance_identifier", ""), self.region_name)
    with _lock:
        server = _backing.get((region, name))
    replica = _create_db_instance_read_replica(self, db_kwargs)
    if server is None:
        return replica
    # `creating` until its standby streams: never `available` without its server (a caller that
    # waits for `available`, as reprotect does, finds it backed).
    key = (self.region_name, replica.db_instance_identifier)
    with _lock:
        _held[key] = ("creating", float("inf"))
    replica.status = "creating"
    account_id = self.account_id

    def start():
        try:
            standby = _start_standby_of(*server)
        except Exception:  # the replica fails, as RDS shows a replica that could not be created
            with _lock:
                _held[key] = ("failed", float("inf"))
            return
        back_with(*key, *standby)
        # Its standby streams: RDS's first datapoint. (Replicas of unbacked instances, as the
        # seed makes them, get theirs from the seed, with the lag the test asks for.)
        _publish_replica_lag(account_id, key[0], key[1], 0.0)
        with _lock:
            _held[key] = ("available", 0.0)

    threading.Thread(target=start, daemon=True).start()
    return replica


def _publish_replica_lag(account_id, region, instance, seconds):
    """RDS publishes AWS/RDS ReplicaLag for a replica every minute once it replicates; moto
    publishes none. The first datapoint is put when a backed replica is created (it starts from a
    fresh copy of its source: caught up); later ones come from the local stack's `replica-lag`
    command and from tests that need another lag."""
    from moto.cloudwatch.models import MetricDatum, cloudwatch_backends

    datum = MetricDatum(
        namespace="AWS/RDS",
        name="ReplicaLag",
        value=seconds,
        dimensions=[{"Name": "DBInstanceIdentifier", "Value": instance}],
        timestamp=None,  # moto stamps it now, in the form its queries compare with
        unit="Seconds",
    )
    cloudwatch_backends[account_id][region].metric_data.append(datum)


def _modify(self, db_instance_identifier, db_kwargs):
    new_name = db_kwargs.get("new_db_instance_identifier")
    database = _modify_db_instance(self, db_instance_identifier, db_kwargs)
    if new_name and new_name != db_instance_identifier:
        with _lock:
            server = _backing.pop((self.region_name, db_instance_identifier), None)
            if server is not None:
                _backing[(self.region_name, new_name)] = server
        hold_status(self.region_name, new_name, "renaming", RENAME_SECONDS)
    return database


def _apply_snapshots(backend):
    """Manual snapshots still being created show `creating`; the finished ones `available`."""
    now = time.monotonic()
    with _lock:
        for (region, snapshot_id), until in list(_snapshots_creating.items()):
            if region != backend.region_name:
                continue
            snapshot = backend.database_snapshots.get(snapshot_id)
            if snapshot is None or now >= until:
                if snapshot is not None:
                    snapshot.status = "available"
                del _snapshots_creating[(region, snapshot_id)]
            else:
                snapshot.status = "creating"


def _create_snapshot(self, *args, **kwargs):
    snapshot = _create_db_snapshot(self, *args, **kwargs)
    if snapshot.snapshot_type == "manual":
        with _lock:
            _snapshots_creating[(self.region_name, snapshot.db_snapshot_identifier)] = time.monotonic() + SNAPSHOT_SECONDS
        snapshot.status = "creating"
    return snapshot


def _describe_snapshots(self, *args, **kwargs):
    _apply_snapshots(self)
    return _describe_db_snapshots(self, *args, **kwargs)


def _copy_snapshot(self, source_db_snapshot_identifier, *args, **kwargs):
    region, name = _region_and_name(source_db_snapshot_identifier, self.region_name)
    with _lock:
        until = _snapshots_creating.get((region, name))
    if until is not None and time.monotonic() < until:
        raise RDSClientError("InvalidDBSnapshotState", f"Snapshot {name} is not available: it is still being created.")
    return _copy_db_snapshot(self, source_db_snapshot_identifier, *args, **kwargs)


def _endpoint(self):
    with _lock:
        server = _backing.get((self.region, self.db_instance_identifier))
    host, port = server if server is not None else ("127.0.0.1", 9)
    return {"Address": host, "Port": port}


def _describe(self, *args, **kwargs):
    _apply(self)
    return _describe_db_instances(self, *args, **kwargs)


def install():
    DBInstance.endpoint = property(_endpoint)
    RDSBackend.promote_read_replica = _promote
    RDSBackend.create_db_instance_read_replica = _create_replica
    RDSBackend.modify_db_instance = _modify
    RDSBackend.create_db_snapshot = _create_snapshot
    RDSBackend.describe_db_snapshots = _describe_snapshots
    RDSBackend.copy_db_snapshot = _copy_snapshot
    RDSBackend.describe_db_instances = _describe
