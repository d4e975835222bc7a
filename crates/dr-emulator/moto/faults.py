"""Faults between the functions and the emulated AWS, as AWS fails during a regional event
(the loopback layer of issue 13): a region that hangs, throttling and 5xx answers, and answers
lost after the call took effect. Only requests signed with the configured access key are touched:
the local Lambda service gives the functions their own key (`local-lambda`), so a test's own
setup and checks are not faulted.

    POST /dr-local/faults   {"access_key": "local-lambda",
                             "hang_regions": ["eu-west-3"],      every call there gets no answer
                             "throttle_share": 0.2,               answered with the service's throttling error
                             "server_error_share": 0.1,           answered 503
                             "lose_share": 0.3,                   mutating calls: applied, then the connection drops
                             "seed": 7}
    DELETE /dr-local/faults                                       no more faults (hung calls are released)
    GET  /dr-local/faults                                         what was injected, and every mutating call
                                                                  that took effect, with how many times

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
_config = {}
_random = random.Random(0)
_stats = {}
# (service, operation, target) -> number of times it took effect
_applied = {}

READ_PREFIXES = ("Describe", "List", "Get", "Head")

# The signing names of the services the functions call whose protocol is JSON: their errors are
# JSON bodies with x-amzn-ErrorType (Lambda's REST-JSON answers are its own).
JSON_PROTOCOLS = ("states", "secretsmanager", "kms", "sqs", "acm", "servicequotas")

CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


def configure(config):
    global _random
    with _lock:
        _config.clear()
        _config.update(config)
        _random = random.Random(config.get("seed", 0))
        _stats.clear()
        _applied.clear()


def clear():
    with _lock:
        _config.clear()


def report():
    with _lock:
        applied = [
            {"service": s, "operation": o, "target": t, "times": n} for (s, o, t), n in sorted(_applied.items())
        ]
        return {"config": dict(_config), "injected": dict(_stats), "applied": applied}


def _count(kind):
    _stats[kind] = _stats.get(kind, 0) + 1


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
        return target.rsplit(".", 1)[-1], str(name)
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
            config = dict(_config)
        # Every function signs with a key of its own role (local-lambda-<Function>, iam.py): the
        # configured key names them all by prefix.
        if not match or not config or not match.group(1).startswith(config.get("access_key", "\0")):
            return self.app(environ, start_response)
        _, region, service = match.groups()
        body = read_body(environ)
        operation, target = _operation(environ, service, body)
        mutating = not operation.startswith(READ_PREFIXES)
        if region in config.get("hang_regions", []):
            with _lock:
                _count("hung")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                with _lock:
                    still = region in _config.get("hang_regions", [])
                if not still:
                    break
                time.sleep(0.2)
            start_response("504 Gateway Timeout", [("Content-Length", "0")])
            return [b""]
        with _lock:
            roll = _random.random()
        throttle = config.get("throttle_share", 0.0)
        server_error = config.get("server_error_share", 0.0)
        if roll < throttle:
            with _lock:
                _count("throttled")
            status, headers, text = _throttle(service)
            payload = text.encode()
            start_response(status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        if roll < throttle + server_error:
            with _lock:
                _count("server_errors")
            start_response("503 Service Unavailable", [("Content-Length", "0")])
            return [b""]
        if mutating:
            with _lock:
                lose = _random.random() < config.get("lose_share", 0.0)
            captured = {}

            def capture(status, headers, exc_info=None):
                captured["status"] = status
                captured["headers"] = headers
                return lambda data: None

            chunks = list(self.app(environ, capture))
            succeeded = captured.get("status", "500").startswith("2")
            with _lock:
                if succeeded:
                    key = (service, operation, target)
                    _applied[key] = _applied.get(key, 0) + 1
                if lose:
                    _count("lost")
            if lose:
                sock = environ.get("werkzeug.socket")
                if sock is not None:
                    try:
                        sock.shutdown(2)
                    except OSError:
                        pass
                    start_response("500 Internal Server Error", [("Content-Length", "0")])
                    return [b""]
            start_response(captured.get("status", "500 Internal Server Error"), captured.get("headers", []))
            return chunks
        return self.app(environ, start_response)
