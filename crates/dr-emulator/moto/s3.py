"""S3, modelled: a conditional PutObject (If-Match / If-None-Match) checks the condition and stores
the object atomically. moto 5.2 checks, then stores, and its server is threaded, so two concurrent
writers can both pass the check. The plan state's single-flight relies on S3's atomicity: a lock
makes the check and the store one step, as in S3."""

import threading

from moto.s3.responses import S3Response

_put_object = S3Response.put_object
_lock = threading.Lock()


def _put(self):
    if "If-Match" in self.headers or "If-None-Match" in self.headers:
        with _lock:
            return _put_object(self)
    return _put_object(self)


def install():
    S3Response.put_object = _put
