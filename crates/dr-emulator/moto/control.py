"""The local stack's control API, in front of moto (WSGI middleware), under /dr-local/:

    GET  /dr-local/dns?name=NAME&type=CNAME[&at=RFC3339]
                                 Route 53's answer now, and why (route53.answer); with `at`, what
                                 it will answer then if no new data arrives (nothing changes)
    POST /dr-local/alarms/hold   {"region", "alarm", "held": true|false}
                                 CloudWatch has not evaluated the alarm yet: its state stays
                                 where it is (alarms.freeze)
    POST /dr-local/alarms/moved  {"region", "alarm", "at": RFC3339}: the alarm moved to its state
                                 at `at` (a back-dated simulated outage; moto stamps SetAlarmState
                                 with the call's time)
    POST /dr-local/rds/status    {"region", "instance", "status", "seconds"}: the instance shows
                                 this status for that long (rds.hold_status)
    POST /dr-local/rds/backing   {"region", "instance", "host", "port"}: a real PostgreSQL standby
                                 backs the replica; promoting it promotes the standby (rds.back_with)
    POST /dr-local/rds/promotion-fails {"region", "instance", "status"}: the replica's next
                                 promotion is accepted and ends in that status (rds.promotion_fails)
    POST /dr-local/ec2/start-fallback {"instance", "times", "code", "message", "terminates"}: its
                                 next starts fall back to stopped with this state reason, or
                                 (terminates) its next start ends terminated (ec2.fall_back)
    POST /dr-local/route53/missed-datapoints {"region", "namespace", "metric", "plan", "count"}:
                                 Route 53's checkers miss the next `count` datapoints of the
                                 metric with that Plan dimension; the alarm
                                 still sees them (route53.miss_datapoints)
    POST   /dr-local/timing      {"scale": S}: AWS's durations on a compressed clock (timing.py)
    GET    /dr-local/timing      the model in force and its figures
    DELETE /dr-local/timing      instant changes again (moto's own)
    POST   /dr-local/faults      inject faults into the functions' requests about a scope (faults.py)
    GET    /dr-local/faults?scope=S  what was injected there, and every mutating call that took effect
    DELETE /dr-local/faults?scope=S  stop injecting there
    POST   /dr-local/acm/certificate {"region", "domain", "days"}: a certificate valid that many days,
                                 imported into ACM (acm.py)
    POST   /dr-local/iam/deployments  a deployment of the stack whose roles IAM enforces (iam.py)
    GET    /dr-local/iam         every function's calls, denials and the statements that allowed them
    POST   /dr-local/iam/simulate one decision for a function's role (iam:SimulatePrincipalPolicy)
    POST   /dr-local/iam/scps    service control policies over the functions' calls
    POST   /dr-local/iam/members a member role deployed in another account (member-role.yaml)
    GET    /dr-local/iam/roles   each function's role in the template (its logical id)
    POST   /dr-local/quotas      {"region", "service_code", "quota_code", "value"}: a quota's
                                 applied value (GetServiceQuota; quotas.py)
    DELETE /dr-local/quotas      every quota back to its default
    POST   /dr-local/elbv2/target-health {"region", "target_group", "state", "reason",
                                 "description"}: a group's running targets fail (or pass again)
                                 their health checks (elbv2.py)
    DELETE /dr-local/elbv2/target-health every group's targets back to ELB's model
    POST   /dr-local/ecs/task-capacity {"region", "cluster", "service", "running"}: at most that many
                                 of the service's tasks can run, the others stay pending (ecs.py)
    DELETE /dr-local/ecs/task-capacity every cap lifted

Everything else goes to moto.
"""

import json
from datetime import datetime
from urllib.parse import parse_qs

import acm
import alarms
import ec2
import ecs
import elbv2
import faults
import iam
import quotas
import rds
import route53
import timing


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

    @staticmethod
    def json_body(environ):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        return json.loads(environ["wsgi.input"].read(length) or b"{}")

    def handle(self, environ, path):
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/dr-local/dns" and method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            name, rtype = query["name"][0], query.get("type", ["CNAME"])[0]
            at = datetime.fromisoformat(query["at"][0].replace("Z", "+00:00")) if "at" in query else None
            values, why, ttl = route53.answer(name, rtype, at)
            return "200 OK", {"name": name, "type": rtype, "values": values, "ttl": ttl, "why": why}
        if path == "/dr-local/alarms/hold" and method == "POST":
            request = self.json_body(environ)
            alarms.freeze(request["region"], request["alarm"], bool(request.get("held", True)))
            return "200 OK", {"held": bool(request.get("held", True))}
        if path == "/dr-local/alarms/moved" and method == "POST":
            request = self.json_body(environ)
            at = datetime.fromisoformat(request["at"].replace("Z", "+00:00"))
            alarms.moved_at(request["region"], request["alarm"], at)
            return "200 OK", {"moved_at": request["at"]}
        if path == "/dr-local/rds/status" and method == "POST":
            request = self.json_body(environ)
            rds.hold_status(request["region"], request["instance"], request["status"], request["seconds"])
            return "200 OK", {"held": request["status"]}
        if path == "/dr-local/rds/backing" and method == "POST":
            request = self.json_body(environ)
            rds.back_with(request["region"], request["instance"], request["host"], request["port"])
            return "200 OK", {"backed_by": f"{request['host']}:{request['port']}"}
        if path == "/dr-local/rds/promotion-fails" and method == "POST":
            request = self.json_body(environ)
            rds.promotion_fails(request["region"], request["instance"], request["status"])
            return "200 OK", {"promotion_ends": request["status"]}
        if path == "/dr-local/ec2/start-fallback" and method == "POST":
            request = self.json_body(environ)
            ec2.fall_back(
                request["instance"],
                request.get("times", 1),
                request["code"],
                request["message"],
                request.get("terminates", False),
            )
            return "200 OK", {"instance": request["instance"]}
        if path == "/dr-local/route53/missed-datapoints" and method == "POST":
            request = self.json_body(environ)
            route53.miss_datapoints(
                request["region"], request["namespace"], request["metric"], request["plan"], request["count"]
            )
            return "200 OK", {"missed": int(request["count"])}
        if path == "/dr-local/timing":
            if method == "POST":
                timing.configure(self.json_body(environ)["scale"])
                route53.forget_served()
            elif method == "DELETE":
                timing.configure(None)
            return "200 OK", timing.figures()
        if path == "/dr-local/faults":
            if method == "POST":
                config = self.json_body(environ)
                faults.configure(config)
                return "200 OK", faults.report(config.get("scope", ""))
            scope = parse_qs(environ.get("QUERY_STRING", "")).get("scope", [""])[0]
            if method == "DELETE":
                faults.clear(scope)
            return "200 OK", faults.report(scope)
        if path == "/dr-local/iam/deployments" and method == "POST":
            return "200 OK", iam.deploy(self.json_body(environ))
        if path == "/dr-local/iam/members" and method == "POST":
            return "200 OK", iam.register_member(self.json_body(environ))
        if path == "/dr-local/iam/simulate" and method == "POST":
            return "200 OK", iam.simulate(self.json_body(environ))
        if path == "/dr-local/iam/scps" and method == "POST":
            iam.set_scps(self.json_body(environ).get("policies", []))
            return "200 OK", {"scps": len(iam._state["scps"])}
        if path == "/dr-local/acm/certificate" and method == "POST":
            body = self.json_body(environ)
            return "200 OK", acm.issue(body["region"], body["domain"], body["days"])
        if path == "/dr-local/iam/roles" and method == "GET":
            return "200 OK", {"roles": iam.roles()}
        if path == "/dr-local/quotas":
            if method == "POST":
                request = self.json_body(environ)
                quotas.set_value(request["region"], request["service_code"], request["quota_code"], request["value"])
                return "200 OK", {"value": float(request["value"])}
            if method == "DELETE":
                quotas.reset()
                return "200 OK", {"reset": True}
        if path == "/dr-local/elbv2/target-health":
            if method == "POST":
                request = self.json_body(environ)
                elbv2.set_health(
                    request["region"], request["target_group"], request["state"], request.get("reason"), request.get("description")
                )
                return "200 OK", {"target_group": request["target_group"], "state": request["state"]}
            if method == "DELETE":
                elbv2.clear()
                return "200 OK", {"cleared": True}
        if path == "/dr-local/ecs/task-capacity":
            if method == "POST":
                request = self.json_body(environ)
                ecs.set_capacity(request["region"], request["cluster"], request["service"], request["running"])
                return "200 OK", {"service": request["service"], "running": request["running"]}
            if method == "DELETE":
                ecs.clear()
                return "200 OK", {"cleared": True}
        if path == "/dr-local/iam" and method == "GET":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            return "200 OK", iam.report(mutations=query.get("mutations") == ["1"])
        return "404 Not Found", {"error": f"no {method} {path}"}
