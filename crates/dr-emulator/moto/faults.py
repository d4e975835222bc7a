"""Faults between the functions and the emulated AWS, as AWS fails during a regional event
(the loopback layer of issue 13): a region that hangs, throttling and 5xx answers, and answers
lost after the call took effect. Only requests signed with the configured access key are touched:
the local Lambda service gives the functions their own key (`local-lambda`), so a test's own
setup and checks are not faulted.

Faults are scoped to an estate: a configuration touches only the requests about it, so tests on
other estates run beside it unfaulted and its report counts only its own changes. A request is
about the estate when its path, query or body names one of its resources: a name carrying the
`scope` (every resource name of a test's isolated plan carries its suffix), an instance a request
about the estate was answered with (the standby instances found by their tag, the instances its
group launched), or a database instance a request about it created (a restore test's). Each scope
has its configuration, its seeded draws, what it learnt and its report; the empty scope is every
request.

    POST /dr-local/faults   {"scope": "4821a3f0",                 the requests about this estate
                             "access_key": "local-lambda",
                             "hang_regions": ["eu-west-3"],      every call there gets no answer
                             "throttle_share": 0.2,               answered with the service's throttling error
                             "server_error_share": 0.1,           answered 503
                             "lose_share": 0.3,                   mutating calls: applied, then the connection drops
                             "lose_conditional_writes": 1,        the first N conditional S3 writes (If-Match,
                                                                  If-None-Match) that take effect: their
                                                                  answers lost, as lose_share's
                             "seed": 7}
    DELETE /dr-local/faults?scope=S                               no more faults there (hung calls are released)
    GET  /dr-local/faults?scope=S                                 what was injected there, and every mutating
                                                                  call that took effect, with how many times

How each is answered (what the SDKs see from AWS):
- a hung region: the request is read and never answered (the client's attempt timeout fires); a
  cleared fault answers 504, as a load balancer would;
- throttling: the protocol's own throttling error: awsQuery `Throttling` (400), EC2
  `RequestLimitExceeded` (503), S3 `SlowDown` (503), Route 53 `Throttling` (400), JSON protocols
  `ThrottlingException` (400);
- a lost answer: the request is handed to moto (so the change happens), then the socket is shut
  down without a response (the client sees the connection closed).
"""

import io
import json
import random
import re
import threading
import time
from urllib.parse import parse_qs

_lock = threading.Lock()
# scope -> _Scope
_scopes = {}

READ_PREFIXES = ("Describe", "List", "Get", "Head")

# The signing names of the services the functions call whose protocol is JSON: their errors are
# JSON bodies with x-amzn-ErrorType (Lambda's REST-JSON answers are its own).
JSON_PROTOCOLS = ("states", "secretsmanager", "kms", "sqs", "acm", "servicequotas", "events", "ecs")

CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


class _Scope:
    """One scope's faults: its configuration (empty once cleared), its draws and its report."""

    def __init__(self, config):
        self.config = dict(config)
        self.random = random.Random(config.get("seed", 0))
        self.stats = {}
        # (service, operation, target) -> number of times it took effect
        self.applied = {}
        # Resource ids learnt from the requests about the estate and their answers.
        self.learnt = set()
        self.conditional_losses_left = int(config.get("lose_conditional_writes", 0))

    def count(self, kind):
        self.stats[kind] = self.stats.get(kind, 0) + 1


def configure(config):
    """New faults for the scope `config["scope"]` (default: every request), its report reset."""
    with _lock:
        _scopes[config.get("scope", "")] = _Scope(config)


def clear(scope):
    """No more faults in `scope`; its report stays readable until it is configured again."""
    with _lock:
        if scope in _scopes:
            _scopes[scope].config = {}


def report(scope):
    with _lock:
        found = _scopes.get(scope) or _Scope({})
        applied = [
            {"service": s, "operation": o, "target": t, "times": n} for (s, o, t), n in sorted(found.applied.items())
        ]
        return {"config": dict(found.config), "injected": dict(found.stats), "applied": applied}


def _scope_of(environ, body, key):
    """The faulted scope this request of the access key `key` is about, or None."""
    with _lock:
        active = [(name, scope, list(scope.learnt)) for name, scope in _scopes.items() if scope.config]
    about = "\n".join((environ.get("PATH_INFO", ""), environ.get("QUERY_STRING", ""), body.decode("utf-8", "replace")))
    for name, scope, learnt in active:
        if not key.startswith(scope.config.get("access_key", "\0")):
            continue
        if not name or name in about or any(resource in about for resource in learnt):
            return scope
    return None


# An EC2 instance id, as answers name them.
INSTANCE_ID = re.compile(rb"\bi-[0-9a-f]{8,17}\b")


def _learn(scope, operation, body, answer):
    """What a request about the scope's estate tells of its other resources: the instances in its
    answer, and the database instance it creates."""
    found = {match.decode() for match in INSTANCE_ID.findall(answer)}
    if operation.startswith(("Create", "Restore")):
        params = parse_qs(body.decode("utf-8", "replace"))
        found.update(params.get("DBInstanceIdentifier", []))
    if found:
        with _lock:
            scope.learnt.update(found)


def _held_answer(app, environ, scope, operation, body):
    """The app's answer, held to be read before it is sent: (status, headers, chunks)."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers
        return lambda data: None

    chunks = list(app(environ, capture))
    _learn(scope, operation, body, b"".join(chunks))
    return captured.get("status", "500 Internal Server Error"), captured.get("headers", []), chunks


def read_body(environ):
    """The request's body, read once and put back for the next reader."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def _operation(environ, service, body):
    """The operation's name and a description of its target, from the request as AWS sees it."""
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocols: "AWSStepFunctions.StartExecution"
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = {}
        name = payload.get("name") or payload.get("stateMachineArn") or payload.get("Name") or ""
        if service == "ecs" and payload.get("service"):  # UpdateService: its cluster and service
            name = f"{payload.get('cluster', 'default')}/{payload['service']}"
        return target.rsplit(".", 1)[-1], str(name)
    if service == "lambda":  # REST: POST /2015-03-31/functions/<name>/invocations
        parts = environ.get("PATH_INFO", "").strip("/").split("/")
        if len(parts) >= 4 and parts[1] == "functions" and parts[3] == "invocations":
            return "Invoke", parts[2]
        if len(parts) == 3 and parts[1] == "functions" and environ.get("REQUEST_METHOD") == "GET":
            return "GetFunction", parts[2]
        return environ.get("REQUEST_METHOD", "GET").title() + "Lambda", "/".join(parts[2:3])
    if service in ("s3",):
        method = environ.get("REQUEST_METHOD", "GET")
        operation = {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject", "POST": "PostObject"}[method]
        return operation, environ.get("PATH_INFO", "")
    if service == "route53":
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "")
        if method == "GET":
            return "Get" + path.rsplit("/", 1)[-1], path
        if path.endswith("/rrset") or path.endswith("/rrset/"):
            return "ChangeResourceRecordSets", path
        return method.title() + "Route53", path
    params = parse_qs(body.decode("utf-8", "replace")) if body else parse_qs(environ.get("QUERY_STRING", ""))
    action = (params.get("Action") or ["Unknown"])[0]
    keys = [k for k in sorted(params) if k not in ("Action", "Version") and (k.endswith("Identifier") or k.endswith("Name") or k.startswith("InstanceId") or k == "Namespace" or k == "ResourceName")]
    return action, ",".join(f"{k}={params[k][0]}" for k in keys)


def _throttle(service):
    request_id = "00000000-0000-0000-0000-000000000000"
    if service == "ec2":
        body = f"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        return "503 Service Unavailable", [("Content-Type", "text/xml")], body
    if service == "s3":
        body = "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>"
        return "503 Slow Down", [("Content-Type", "application/xml")], body
    if service in JSON_PROTOCOLS or service == "lambda":
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"})
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", "ThrottlingException")], body
    body = f"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    return "400 Bad Request", [("Content-Type", "text/xml")], body


class Faults:
    """WSGI middleware: applies the configured faults, then hands the request to `app`."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        auth = environ.get("HTTP_AUTHORIZATION", "")
        match = CREDENTIAL.search(auth)
        with _lock:
            any_faults = any(scope.config for scope in _scopes.values())
        if not match or not any_faults:
            return self.app(environ, start_response)
        body = read_body(environ)
        # Every function signs with a key of its own role (local-lambda-<Function>, iam.py): the
        # configured key names them all by prefix.
        scope = _scope_of(environ, body, match.group(1))
        if scope is None:
            return self.app(environ, start_response)
        config = scope.config
        _, region, service = match.groups()
        operation, target = _operation(environ, service, body)
        mutating = not operation.startswith(READ_PREFIXES)
        if region in config.get("hang_regions", []):
            with _lock:
                scope.count("hung")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with _lock:
                    still = region in scope.config.get("hang_regions", [])
                if not still:
                    break
                time.sleep(0.2)
            start_response("504 Gateway Timeout", [("Content-Length", "0")])
            return [b""]
        with _lock:
            roll = scope.random.random()
        throttle = config.get("throttle_share", 0.0)
        server_error = config.get("server_error_share", 0.0)
        if roll < throttle:
            with _lock:
                scope.count("throttled")
            status, headers, text = _throttle(service)
            payload = text.encode()
            start_response(status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        if roll < throttle + server_error:
            with _lock:
                scope.count("server_errors")
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        if mutating:
            with _lock:
                lose = scope.random.random() < config.get("lose_share", 0.0)
            # A conditional write S3 applied whose answer is lost: the SDK's retry then meets its
            # own write's precondition failure (412), which the writer must not take for a lost
            # race (dr_core::store).
            conditional = service == "s3" and ("HTTP_IF_MATCH" in environ or "HTTP_IF_NONE_MATCH" in environ)
            status, headers, chunks = _held_answer(self.app, environ, scope, operation, body)
            succeeded = status.startswith("2")
            with _lock:
                if succeeded:
                    key = (service, operation, target)
                    scope.applied[key] = scope.applied.get(key, 0) + 1
                if succeeded and conditional and scope.conditional_losses_left > 0:
                    scope.conditional_losses_left -= 1
                    lose = True
                if lose:
                    scope.count("lost")
            if lose:
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    try:
                        sock.shutdown(2)
                    except OSError:
                        pass
                    start_response("500 Internal Server Error", [("Content-Length", "0")])
                    return [b""]
            start_response(status, headers)
            return chunks
        status, headers, chunks = _held_answer(self.app, environ, scope, operation, body)
        start_response(status, headers)
        return chunks
