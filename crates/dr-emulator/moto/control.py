"""The local stack's control API, in front of moto (WSGI middleware), under /dr-local/:

    GET  /dr-local/dns?name=NAME&type=CNAME[&at=RFC3339]
                                 Route 53's answer now, and why (route53.answer); with `at`, what
                                 it will answer then if no new data arrives (nothing changes)
    POST /dr-local/alarms/hold   {"region", "alarm", "held": true|false}
                                 CloudWatch has not evaluated the alarm yet: its state stays
                                 where it is (alarms.freeze)

Everything else goes to moto.
"""

import json
from datetime import datetime
from urllib.parse import parse_qs

import alarms
import route53


class Control:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith("/dr-local/"):
            return self.app(environ, start_response)
        try:
            status, body = self.handle(environ, path)
        except (KeyError, ValueError) as error:
            status, body = "400 Bad Request", {"error": str(error)}
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    def handle(self, environ, path):
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/dr-local/dns" and method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            name, rtype = query["name"][0], query.get("type", ["CNAME"])[0]
            at = datetime.fromisoformat(query["at"][0].replace("Z", "+00:00")) if "at" in query else None
            values, why, ttl = route53.answer(name, rtype, at)
            return "200 OK", {"name": name, "type": rtype, "values": values, "ttl": ttl, "why": why}
        if path == "/dr-local/alarms/hold" and method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request = json.loads(environ["wsgi.input"].read(length) or b"{}")
            alarms.freeze(request["region"], request["alarm"], bool(request.get("held", True)))
            return "200 OK", {"held": bool(request.get("held", True))}
        return "404 Not Found", {"error": f"no {method} {path}"}
