"""RDS, modelled: PromoteReadReplica turns the replica into a standalone instance, so
ReadReplicaSourceDBInstanceIdentifier disappears from DescribeDBInstances. moto 5.2 keeps it."""

from moto.rds.models import RDSBackend

_promote_read_replica = RDSBackend.promote_read_replica


def _promote(self, db_kwargs):
    database = _promote_read_replica(self, db_kwargs)
    database.source_db_instance_identifier = None
    return database


def install():
    RDSBackend.promote_read_replica = _promote
