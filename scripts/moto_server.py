"""moto server, with the AWS behaviour the runbook depends on and moto lacks, modelled.

Test setup only (started by scripts/emulator). Each patch says what AWS does:

- PromoteReadReplica: AWS turns the replica into a standalone instance, so
  ReadReplicaSourceDBInstanceIdentifier disappears from DescribeDBInstances. moto 5.2 keeps it.
- Conditional PutObject (If-Match / If-None-Match): S3 checks the condition and stores the
  object atomically. moto 5.2 checks, then stores, and its server is threaded, so two
  concurrent writers can both pass the check. The plan state's single-flight relies on S3's
  atomicity: a lock makes the check and the store one step, as in S3.
"""

import sys
import threading

from moto.rds.models import RDSBackend
from moto.s3.responses import S3Response
from moto.server import main

_promote_read_replica = RDSBackend.promote_read_replica


def promote_read_replica(self, db_kwargs):
    database = _promote_read_replica(self, db_kwargs)
    database.source_db_instance_identifier = None
    return database


RDSBackend.promote_read_replica = promote_read_replica

_put_object = S3Response.put_object
_put_object_lock = threading.Lock()


def put_object(self):
    if "If-Match" in self.headers or "If-None-Match" in self.headers:
        with _put_object_lock:
            return _put_object(self)
    return _put_object(self)


S3Response.put_object = put_object

if __name__ == "__main__":
    main(sys.argv[1:])
