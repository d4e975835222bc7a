"""moto server, with the AWS behaviour the runbook depends on and moto lacks, modelled.

Test setup only (started by scripts/emulator). Each patch says what AWS does:

- PromoteReadReplica: AWS turns the replica into a standalone instance, so
  ReadReplicaSourceDBInstanceIdentifier disappears from DescribeDBInstances. moto 5.2 keeps it.
"""

import sys

from moto.rds.models import RDSBackend
from moto.server import main

_promote_read_replica = RDSBackend.promote_read_replica


def promote_read_replica(self, db_kwargs):
    database = _promote_read_replica(self, db_kwargs)
    database.source_db_instance_identifier = None
    return database


RDSBackend.promote_read_replica = promote_read_replica

if __name__ == "__main__":
    main(sys.argv[1:])
