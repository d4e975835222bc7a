"""IAM for the local functions: every call a function makes is authorized against the policies
template.yaml gives that function's own role, by a real IAM policy evaluator, and a denied call is
answered as the service answers it on AWS. moto enforces nothing by default (and its optional
check is, in its own documentation's words, very basic), so without this the suite would pass
whatever the template grants.

- Who calls: the local Lambda service gives each function credentials that stand for its role
  (access key `local-lambda-<FunctionLogicalId>`, scripts/local_functions.py), as Lambda gives each
  function its role's credentials. Requests signed with any other key (a test's own setup and
  checks, the protected application's own hooks) are not functions' calls and are not authorized.
- What is asked: iam_requests.py maps the request to its action, resource ARN(s) and context; an
  operation outside that table is denied and named (fail closed).
- Against what: the policies of each deployment a test or the demo registers
  (POST /dr-local/iam/deployments: the template's parameters for that plan, `drctl deploy
  params`, and the deployment's choices), made by iam_policies.py with the SAM translator.
- Who decides: @cloud-copilot/iam-simulate (crates/dr-emulator/iam/evaluate.mjs, a child process).
- S3 answers a missing object with 403 AccessDenied, not 404, when the caller may not
  s3:ListBucket the bucket (https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetObject.html,
  "Permissions"): modelled here.
- EC2 starts an instance whose EBS volumes use a customer-managed key by creating a grant on the
  key for the caller (kms:CreateGrant with kms:ViaService ec2.<region>.amazonaws.com and
  kms:GrantIsForAWSResource); a caller without it sees the start accepted and the instance go
  back to stopped with Client.InternalError
  (https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html): modelled
  here with ec2.fall_back, the denial recorded against the function.
- iam:SimulatePrincipalPolicy (moto has none), for a role of a registered deployment named by
  its physical name, is answered here by the same evaluator, in IAM's XML
  (https://docs.aws.amazon.com/IAM/latest/APIReference/API_SimulatePrincipalPolicy.html,
  API_EvaluationResult.html): one result per action on the request's resource, the SCPs in force
  reported in OrganizationsDecisionDetail. The operator's own checks (`drctl doctor`) call it.
- A plan section in another account (the plan's [accounts.dns]): a function's sts:AssumeRole is
  authorized against its own role (the identity side) and then against the member role's trust
  policy (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html:
  both must allow), with aws:PrincipalOrgID the modelled organization's (ORGANIZATION_ID); the
  member role is member-role.yaml as deployed in that account (POST /dr-local/iam/members). moto
  answers the call with credentials that select the member account; every call signed with them
  is authorized against the member role's policies, recorded under `member:<account>:<role>`, and
  named in a denial as that role's session, as AWS names it. A role nobody registered is refused
  as AWS refuses it (AccessDenied: no trust can name the caller). Not modelled: a session's
  expiry (moto never expires credentials; the orchestrator never holds them past an attempt).
- The functions' Lambda and Step Functions calls come here too (their AWS_ENDPOINT_URL_LAMBDA and
  _SFN point at the emulator) and, once authorized, go on to the local Lambda service and the
  local Step Functions.

    POST   /dr-local/iam/deployments {"id", "parameters": {...}, "names": {...}, "region",
                                      "role_names": {RoleLogicalId: physical name},
                                      "scps": [policy]}
                                      role_names: the names the deployed stack gave its roles
                                      (absent: the logical id); scps: the organization's SCPs over
                                      that deployment's account (they apply to its calls and to
                                      its simulations, with those of /dr-local/iam/scps)
    GET    /dr-local/iam/roles        {"roles": {FunctionLogicalId: RoleLogicalId}}: each function's
                                      role in the template
    GET    /dr-local/iam              per function: calls, denied calls, the statements that allowed
                                      them, and every statement of its role (for the excess table);
                                      ?mutations=1 adds the mutation check (each statement removed in
                                      turn, every allowed call decided again)
    POST   /dr-local/iam/simulate     {"function", "deployment", "action", "resource", "context",
                                       "scps"}: one decision, as iam:SimulatePrincipalPolicy gives it
    POST   /dr-local/iam/scps         {"policies": [...]}: service control policies in force for the
                                      functions' calls ([] for none)
    POST   /dr-local/iam/members      {"account", "parameters": {...}, "region", "without": [Sid]}:
                                      member-role.yaml deployed in that account with these
                                      parameters (its role, policies and trust), less the
                                      statements `without` names
"""

import http.client
import json
import os
import re
import subprocess
import threading
import uuid
from urllib.parse import urlsplit

import ec2
import faults
import iam_policies
import iam_requests

ACCESS_KEY_PREFIX = "local-lambda-"
ACCOUNT = iam_requests.ACCOUNT
# The organization the local stack's accounts belong to (aws:PrincipalOrgID of their principals).
ORGANIZATION_ID = "o-drlocal0001"
# What the functions' sessions in member roles are recorded under: member:<account>:<role name>.
MEMBER_PREFIX = "member:"
HERE = os.path.dirname(os.path.abspath(__file__))
EVALUATOR = os.path.join(HERE, "..", "iam", "evaluate.mjs")


class Evaluator:
    """The evaluator child process; one question at a time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.process = None

    def ask(self, message):
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.process = subprocess.Popen(
                    ["node", EVALUATOR],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    cwd=os.path.dirname(EVALUATOR),
                    text=True,
                    bufsize=1,
                )
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            return {"error": "the IAM evaluator exited"}
        return json.loads(line)


class Ledger:
    """What the functions asked and what IAM answered, for the report and the excess table."""

    def __init__(self):
        self.lock = threading.Lock()
        self.functions = {}
        self.statements = {}  # function -> {(policy, sid)}: every statement its role has

    def function(self, name):
        return self.functions.setdefault(name, {"calls": 0, "denied": [], "allowed_by": {}, "actions": {}})

    def allowed(self, name, answer):
        with self.lock:
            entry = self.function(name)
            entry["calls"] += 1
            for match in answer.get("matched", []):
                entry["actions"][match["action"]] = entry["actions"].get(match["action"], 0) + 1
                for statement in match["statements"]:
                    key = f"{statement['policy']}#{statement['sid']}"
                    entry["allowed_by"][key] = entry["allowed_by"].get(key, 0) + 1

    def denied(self, name, record):
        with self.lock:
            entry = self.function(name)
            entry["calls"] += 1
            entry["denied"].append(record)

    def roles(self, roles):
        with self.lock:
            for function, role in roles.items():
                known = self.statements.setdefault(function, {})
                for policy in role["policies"]:
                    for index, statement in enumerate(policy["policy"]["Statement"]):
                        sid = statement.get("Sid", str(index + 1))
                        actions = statement.get("Action", [])
                        known[f"{policy['name']}#{sid}"] = {
                            "effect": statement.get("Effect"),
                            "actions": actions if isinstance(actions, list) else [actions],
                        }

    def report(self):
        with self.lock:
            return {"functions": json.loads(json.dumps(self.functions)), "statements": json.loads(json.dumps(self.statements))}


_evaluator = Evaluator()
_ledger = Ledger()
_state = {"template": None, "template_path": None, "defaults": {}, "scps": []}
_state_lock = threading.Lock()


def configure(template_path, defaults):
    """The template whose roles are enforced, and the local stack's defaults: parameters (the
    default plan store) and physical names (the state machines, the topic) a registration may
    leave out."""
    _state["template_path"] = template_path
    _state["defaults"] = defaults


def _template():
    with _state_lock:
        if _state["template"] is None:
            _state["template"] = iam_policies.translated(_state["template_path"])
        return _state["template"]


def deploy(request):
    """Registers one deployment: the template's policies for these parameters and names."""
    template = _template()
    region = request.get("region", "eu-west-1")
    declared = template.get("Parameters", {})
    defaults = _state["defaults"]
    parameters = {k: v for k, v in defaults.items() if k in declared}
    parameters.update(request.get("parameters", {}))
    refs = {k: v for k, v in defaults.items() if k not in declared}
    refs.update(request.get("names", {}))
    # A role's physical name is what Ref gives for it, as for every other resource of the stack.
    refs.update(request.get("role_names", {}))
    names = iam_policies.local_names(template, request.get("functions", {}), refs)
    policies = iam_policies.deployment_policies(template, parameters, names, region)
    # A deployment whose role lacks a statement the template gives it (an edited policy, a
    # statement lost in review): the doctor's test of a denied call.
    for removed in request.get("without", []):
        role = policies["roles"].get(removed["function"], {})
        for policy in role.get("policies", []):
            statements = policy["policy"]["Statement"]
            policy["policy"]["Statement"] = [st for st in statements if st.get("Sid") != removed["sid"]]
    deployment_id = request.get("id") or str(uuid.uuid4())
    _ledger.roles(policies["roles"])
    answer = _evaluator.ask({"op": "deploy", "id": deployment_id, "scps": request.get("scps", []), **policies})
    return {"id": deployment_id, "roles": len(policies["roles"]), **answer}


# (account, role name) -> {"trust", "function"}: the member roles deployed (register_member)
_members = {}
# access key id -> {"function", "account", "role", "session", "member"}: the sessions functions
# assumed in member roles
_sessions = {}
_members_lock = threading.Lock()


def register_member(request):
    """member-role.yaml deployed in `account`: its role enforced on the sessions assumed in it."""
    account = request["account"]
    region = request.get("region", "eu-west-1")
    path = os.path.join(os.path.dirname(os.path.abspath(_state["template_path"])), "member-role.yaml")
    role = iam_policies.member_role(path, request.get("parameters", {}), account, region)
    # A member stack whose role lacks a statement (an edited policy): a test of a missing permission.
    for sid in request.get("without", []):
        for policy in role["policies"]:
            policy["policy"]["Statement"] = [st for st in policy["policy"]["Statement"] if st.get("Sid") != sid]
    member = f"{MEMBER_PREFIX}{account}:{role['role']}"
    roles = {member: {"role": role["role"], "policies": role["policies"]}}
    _ledger.roles(roles)
    answer = _evaluator.ask({"op": "deploy", "id": member, "roles": roles, "scps": []})
    with _members_lock:
        _members[(account, role["role"])] = {"trust": role["trust"], "function": member}
    return {"member": member, "role_arn": f"arn:aws:iam::{account}:role/{role['role']}", **answer}


def _member_of(role_arn):
    """(account, role name, registration or None) of a role ARN."""
    match = re.fullmatch(r"arn:aws:iam::(\d{12}):role/(?:.*/)?([^/]+)", role_arn or "")
    if not match:
        return None, None, None
    with _members_lock:
        return match.group(1), match.group(2), _members.get((match.group(1), match.group(2)))


def roles():
    """{function logical id: role logical id}, from the template."""
    return iam_policies.function_roles(_template())


def simulate(request):
    """One decision for a function's role in a registered deployment (doctor's local answer)."""
    return _evaluator.ask(
        {
            "op": "simulate",
            "deployment": request["deployment"],
            "function": request["function"],
            "scps": request.get("scps", []),
            "account": ACCOUNT,
            "action": request["action"],
            "resource": request.get("resource", "*"),
            "context": request.get("context", {}),
        }
    )


def set_scps(policies):
    _state["scps"] = list(policies)


def report(mutations=False):
    out = _ledger.report()
    if mutations:
        out["mutations"] = _evaluator.ask({"op": "mutations"})
    return out


# ---------------------------------------------------------------- denied answers, as AWS gives them


def _message(function, action, resource, why, principal=None):
    principal = principal or f"arn:aws:sts::{ACCOUNT}:assumed-role/{function}Role/{function}"
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


def access_denied(service, message):
    """(status, headers, body) of the service's AccessDenied answer, in its own protocol."""
    request_id = str(uuid.uuid4())
    if service == "ec2":
        body = (
            f"<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>You are not authorized to perform "
            f"this operation. {_xml(message)}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        )
        return "403 Forbidden", [("Content-Type", "text/xml")], body
    if service == "s3":
        body = f"<Error><Code>AccessDenied</Code><Message>{_xml(message)}</Message><RequestId>{request_id}</RequestId></Error>"
        return "403 Forbidden", [("Content-Type", "application/xml")], body
    if service == "route53":
        body = (
            '<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/"><Error><Type>Sender</Type>'
            f"<Code>AccessDenied</Code><Message>{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return "403 Forbidden", [("Content-Type", "text/xml")], body
    if service == "lambda":
        body = json.dumps({"Type": "User", "Message": message})
        return "403 Forbidden", [("Content-Type", "application/json"), ("x-amzn-ErrorType", "AccessDeniedException")], body
    if service in faults.JSON_PROTOCOLS:
        body = json.dumps({"__type": "AccessDeniedException", "message": message})
        return "400 Bad Request", [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", "AccessDeniedException")], body
    code = "AuthorizationError" if service == "sns" else "AccessDenied"
    body = (
        f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{_xml(message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    )
    return "403 Forbidden", [("Content-Type", "text/xml")], body


def _xml(text):
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- iam:SimulatePrincipalPolicy

IAM_XMLNS = "https://iam.amazonaws.com/doc/2010-05-08/"
EVAL_DECISIONS = {"Allowed": "allowed", "ImplicitlyDenied": "implicitDeny", "ExplicitlyDenied": "explicitDeny"}


def _context_entries(params):
    """ContextEntries.member.N (ContextKeyName, ContextKeyValues.member.M, ContextKeyType) as the
    request's context variables: one value, or the list for a *List type."""
    context = {}
    for key, name in params.items():
        match = re.fullmatch(r"(ContextEntries\.member\.\d+)\.ContextKeyName", key)
        if not match:
            continue
        values = iam_requests._numbered(params, f"{match.group(1)}.ContextKeyValues")
        if params.get(f"{match.group(1)}.ContextKeyType", "string").endswith("List"):
            context[name] = values
        else:
            context[name] = values[0] if values else ""
    return context


def _statements_xml(statements, role):
    """MatchedStatements as IAM names them: a role's inline policy as role_<role>_<policy>, a
    managed policy by its name. IAM answers SourcePolicyType "IAM Policy" for both (what the AWS
    CLI prints from it, e.g. the simulate-principal-policy examples), though the API model lists
    role / aws-managed / user-managed as its values."""
    members = "".join(
        f"<member><SourcePolicyId>{_xml(f'role_{role}_' + s['policy'] if s.get('inline') else s['policy'])}</SourcePolicyId>"
        "<SourcePolicyType>IAM Policy</SourcePolicyType></member>"
        for s in statements
    )
    return f"<MatchedStatements>{members}</MatchedStatements>"


def _iam_error(status, code, message):
    fault = "Receiver" if status.startswith("5") else "Sender"
    body = (
        f'<ErrorResponse xmlns="{IAM_XMLNS}"><Error><Type>{fault}</Type><Code>{code}</Code>'
        f"<Message>{_xml(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    )
    return status, body


def simulate_principal_policy(params):
    """(status, XML body) of IAM's answer: one EvaluationResult per action and resource, decided
    for the deployed role PolicySourceArn names, under the SCPs in force for its account."""
    source = params.get("PolicySourceArn", "")
    kind, _, path = source.split(":", 5)[-1].partition("/")
    name = path.rsplit("/", 1)[-1]
    actions = iam_requests._numbered(params, "ActionNames")
    resources = iam_requests._numbered(params, "ResourceArns") or ["*"]
    context = _context_entries(params)
    members = []
    for action in actions:
        for resource in resources:
            answer = _evaluator.ask(
                {
                    "op": "simulate_role",
                    "role": name if kind == "role" else "",
                    "scps": _state["scps"],
                    "account": ACCOUNT,
                    "action": action,
                    "resource": resource,
                    "context": context,
                }
            )
            if answer.get("no_such_role"):
                return _iam_error("404 Not Found", "NoSuchEntity", f"The {kind} with name {name} cannot be found.")
            if answer.get("error") or answer.get("decision") not in EVAL_DECISIONS:
                why = answer.get("error") or answer.get("reason") or "no decision"
                return _iam_error("500 Internal Server Error", "PolicyEvaluation", f"The policy could not be evaluated: {why[:300]}")
            decision = EVAL_DECISIONS[answer["decision"]]
            matched = _statements_xml(answer.get("matched_statements", []), answer["role"])
            allowed_by_organizations = "false" if answer.get("by_scp") else "true"
            members.append(
                f"<member><EvalActionName>{_xml(action)}</EvalActionName><EvalResourceName>{_xml(resource)}</EvalResourceName>"
                f"<EvalDecision>{decision}</EvalDecision>{matched}<MissingContextValues/>"
                f"<OrganizationsDecisionDetail><AllowedByOrganizations>{allowed_by_organizations}</AllowedByOrganizations>"
                "</OrganizationsDecisionDetail>"
                f"<ResourceSpecificResults><member><EvalResourceName>{_xml(resource)}</EvalResourceName>"
                f"<EvalResourceDecision>{decision}</EvalResourceDecision>{matched}<MissingContextValues/></member>"
                "</ResourceSpecificResults></member>"
            )
    body = (
        f'<SimulatePrincipalPolicyResponse xmlns="{IAM_XMLNS}"><SimulatePrincipalPolicyResult>'
        f"<IsTruncated>false</IsTruncated><EvaluationResults>{''.join(members)}</EvaluationResults>"
        f"</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</SimulatePrincipalPolicyResponse>"
    )
    return "200 OK", body


# ---------------------------------------------------------------- the middleware


def _record_denial(function, operation, action, resource, why):
    """A denial in the report, and in the emulator's log with the function, the action, the
    resource and why."""
    _ledger.denied(function, {"operation": operation, "action": action, "resource": resource, "why": why})
    print(f"IAM DENIED function={function} action={action} resource={resource} {why}", flush=True)


def _global_context(region, function):
    return {
        "aws:RequestedRegion": region,
        # Every SDK call to AWS is HTTPS; the local stack speaks plain HTTP on loopback.
        "aws:SecureTransport": "true",
        "aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/{function}Role",
        "aws:PrincipalAccount": ACCOUNT,
    }


class Iam:
    """WSGI middleware: authorizes the functions' calls, then hands them on."""

    def __init__(self, app, lambda_url=None, sfn_url=None):
        self.app = app
        self.forward = {"lambda": lambda_url, "states": sfn_url}

    def __call__(self, environ, start_response):
        match = faults.CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match:
            with _members_lock:
                session = _sessions.get(match.group(1))
            if session:
                return self.member_call(environ, start_response, session, match.group(2), match.group(3))
        if not match or not match.group(1).startswith(ACCESS_KEY_PREFIX):
            # Not a function's call: a test's own setup and checks, the application's hooks, the
            # operator's CLI.
            return self.serve(environ, start_response)
        function = match.group(1)[len(ACCESS_KEY_PREFIX) :]
        region, service = match.group(2), match.group(3)
        body = faults.read_body(environ)
        request = iam_requests.parse(environ, service, region, body)
        try:
            authorization = iam_requests.authorization(request)
        except Exception as error:  # a request the table cannot read is denied, and says why
            authorization = iam_requests.Authorization(iam_requests.operation_name(request), [], unknown=f"unreadable: {error}")
        if authorization.unknown:
            return self.deny(start_response, function, service, authorization.operation, {"action": f"{service}:{authorization.operation}", "resource": "*"}, authorization.unknown)
        checks = []
        for action, resource, context in authorization.checks:
            checks.append({"action": action, "resource": resource, "context": {**_global_context(region, function), **context}})
        answer = self.ask(function, checks)
        if not answer.get("allowed"):
            denied = answer.get("denied") or {"action": checks[0]["action"] if checks else "?", "resource": checks[0]["resource"] if checks else "?"}
            if answer.get("error"):
                why = f"because the local IAM evaluator failed: {answer['error'][:300]}"
            elif not answer.get("deployments"):
                why = "because no deployment of the stack is registered with the local stack (POST /dr-local/iam/deployments)"
            elif denied.get("by_scp"):
                why = "with an explicit deny in a service control policy"
            elif denied.get("decision") == "ExplicitlyDenied":
                why = f"with an explicit deny in a resource-based or identity-based policy ({', '.join(denied.get('deny_statements') or [])})"
            elif denied.get("decision") == "Error":
                why = denied.get("reason", "")
            else:
                why = f"because no identity-based policy allows the {denied['action']} action"
            return self.deny(start_response, function, service, authorization.operation, denied, why)
        _ledger.allowed(function, answer)
        if (service, authorization.operation) == ("sts", "AssumeRole"):
            return self.assume_member_role(environ, start_response, function, request, answer)
        if service in self.forward and self.forward[service]:
            # Authorized: on to the local service, through the fault layer (a Lambda Invoke or a
            # StartExecution is throttled and loses its answer as any other call).
            environ[FORWARD_TO] = self.forward[service]
            return self.app(environ, start_response)
        if (service, authorization.operation) == ("ec2", "StartInstances"):
            self.grant_ebs_keys(function, region, request)
        if (service, authorization.operation) in (("s3", "GetObject"), ("s3", "HeadObject")):
            return self.s3_read(environ, start_response, function, region, request, answer)
        return self.serve(environ, start_response)

    def serve(self, environ, start_response):
        """moto's answer, or IAM's own here for what moto does not implement
        (SimulatePrincipalPolicy)."""
        match = faults.CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        if match and match.group(3) == "iam":
            request = iam_requests.parse(environ, "iam", match.group(2), faults.read_body(environ))
            if iam_requests.operation_name(request) == "SimulatePrincipalPolicy":
                status, text = simulate_principal_policy(request.params)
                payload = text.encode()
                start_response(status, [("Content-Type", "text/xml"), ("Content-Length", str(len(payload)))])
                return [payload]
        return self.app(environ, start_response)

    def assume_member_role(self, environ, start_response, function, request, answer):
        """The member role's side of a cross-account AssumeRole: its trust policy must allow the
        function's role too. Allowed, moto's credentials are recorded as a session of the role."""
        role_arn = request.params.get("RoleArn", "")
        account, role_name, member = _member_of(role_arn)
        caller = f"arn:aws:iam::{ACCOUNT}:role/{answer.get('role', function + 'Role')}"
        denied = {"action": "sts:AssumeRole", "resource": role_arn}
        if member is None:
            why = "because no role of that name is deployed there (POST /dr-local/iam/members) to trust it"
            return self.deny(start_response, function, "sts", "AssumeRole", denied, why)
        context = {
            "aws:PrincipalArn": caller,
            "aws:PrincipalAccount": ACCOUNT,
            "aws:PrincipalOrgID": ORGANIZATION_ID,
            "aws:SecureTransport": "true",
        }
        trust = _evaluator.ask(
            {
                "op": "trust",
                "principal": caller,
                "account": account,
                "role_arn": role_arn,
                "trust": member["trust"],
                "context": context,
            }
        )
        if trust.get("decision") != "Allowed":
            why = f"because the trust policy of {role_name} in {account} does not allow {caller} ({trust.get('decision') or trust.get('error')})"
            return self.deny(start_response, function, "sts", "AssumeRole", denied, why)
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = list(self.app(environ, capture))
        body = b"".join(chunks)
        key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
        if key and captured.get("status", "").startswith("200"):
            with _members_lock:
                _sessions[key.group(1).decode()] = {
                    "function": function,
                    "account": account,
                    "role": role_name,
                    "session": request.params.get("RoleSessionName", function),
                    "member": member["function"],
                }
        start_response(captured.get("status", "500 Internal Server Error"), captured.get("headers", []))
        return [body]

    def member_call(self, environ, start_response, session, region, service):
        """A call signed with a member role's session: authorized against the member role in its
        account, recorded under the role, and named as the role's session when denied."""
        body = faults.read_body(environ)
        request = iam_requests.parse(environ, service, region, body)
        member, account = session["member"], session["account"]
        principal = f"arn:aws:sts::{account}:assumed-role/{session['role']}/{session['session']}"
        try:
            authorization = iam_requests.authorization(request)
        except Exception as error:
            authorization = iam_requests.Authorization(iam_requests.operation_name(request), [], unknown=f"unreadable: {error}")
        if authorization.unknown:
            denied = {"action": f"{service}:{authorization.operation}", "resource": "*"}
            return self.deny(start_response, member, service, authorization.operation, denied, authorization.unknown, principal)
        context = {
            "aws:RequestedRegion": region,
            "aws:SecureTransport": "true",
            "aws:PrincipalArn": f"arn:aws:iam::{account}:role/{session['role']}",
            "aws:PrincipalAccount": account,
            "aws:PrincipalOrgID": ORGANIZATION_ID,
        }
        # The table names this account's resources; the session's are the member account's.
        checks = [
            {"action": action, "resource": resource.replace(f":{ACCOUNT}:", f":{account}:"), "context": {**context, **extra}}
            for action, resource, extra in authorization.checks
        ]
        answer = _evaluator.ask(
            {"op": "authorize", "function": member, "principal": principal, "account": account, "checks": checks, "scps": []}
        )
        if not answer.get("allowed"):
            denied = answer.get("denied") or {"action": checks[0]["action"] if checks else "?", "resource": checks[0]["resource"] if checks else "?"}
            why = (
                f"because the local IAM evaluator failed: {answer['error'][:300]}"
                if answer.get("error")
                else f"because no identity-based policy allows the {denied['action']} action"
            )
            return self.deny(start_response, member, service, authorization.operation, denied, why, principal)
        _ledger.allowed(member, answer)
        return self.app(environ, start_response)

    def deny(self, start_response, function, service, operation, denied, why, principal=None):
        message = _message(function, denied.get("action", "?"), denied.get("resource", "?"), why, principal)
        _record_denial(function, operation, denied.get("action"), denied.get("resource"), why)
        status, headers, text = access_denied(service, message)
        payload = text.encode()
        start_response(status, headers + [("Content-Length", str(len(payload)))])
        return [payload]

    def grant_ebs_keys(self, function, region, request):
        """EC2's grant on each customer-managed EBS key, created for the caller: an instance whose
        key its starter may not grant falls back to stopped, as EC2 does."""
        for instance_id in iam_requests._numbered(request.params, "InstanceId"):
            for key in iam_requests.ebs_keys(region, instance_id):
                context = {
                    **_global_context(region, function),
                    "kms:ViaService": f"ec2.{region}.amazonaws.com",
                    "kms:GrantIsForAWSResource": "true",
                }
                answer = self.ask(function, [{"action": "kms:CreateGrant", "resource": key, "context": context}])
                if answer.get("allowed"):
                    continue
                why = "(EC2 could not create the grant on the instance's EBS key for the caller: the instance falls back to stopped)"
                _record_denial(function, "StartInstances", "kms:CreateGrant", key, why)
                ec2.fall_back(instance_id, 1, "Client.InternalError", "Client.InternalError: Client error on launch")

    def ask(self, function, checks):
        return _evaluator.ask(
            {
                "op": "authorize",
                "function": function,
                "principal": f"arn:aws:sts::{ACCOUNT}:assumed-role/${{role}}/{function}",
                "account": ACCOUNT,
                "checks": checks,
                "scps": _state["scps"],
            }
        )

    def s3_read(self, environ, start_response, function, region, request, answer):
        """A missing object is 403 to a caller that may not list the bucket, as S3 answers."""
        captured = {}

        def capture(status, headers, exc_info=None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = list(self.app(environ, capture))
        if captured.get("status", "").startswith("404"):
            bucket, _ = iam_requests._s3_parts(request)
            listing = self.ask(
                function,
                [{"action": "s3:ListBucket", "resource": f"arn:aws:s3:::{bucket}", "context": _global_context(region, function)}],
            )
            if not listing.get("allowed"):
                return self.deny(
                    start_response,
                    function,
                    "s3",
                    "GetObject",
                    {"action": "s3:ListBucket", "resource": f"arn:aws:s3:::{bucket}"},
                    "(the object does not exist, and without s3:ListBucket S3 answers 403 instead of 404)",
                )
        start_response(captured.get("status", "500 Internal Server Error"), captured.get("headers", []))
        return chunks


# Where Iam sends a function's authorized Lambda or Step Functions call (the local services),
# for Forward, the innermost layer, to find after the fault layer.
FORWARD_TO = "dr.forward_to"


class Forward:
    """WSGI app under the fault layer: a function's authorized call to Lambda or Step Functions
    goes to the local service Iam named; everything else to moto."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        base = environ.get(FORWARD_TO)
        if base:
            return proxy(environ, start_response, base, faults.read_body(environ))
        return self.app(environ, start_response)


def proxy(environ, start_response, base, body):
    target = urlsplit(base)
    connection = http.client.HTTPConnection(target.hostname, target.port, timeout=900)
    path = environ.get("RAW_URI") or environ.get("PATH_INFO", "/")
    if environ.get("QUERY_STRING") and "?" not in path:
        path += "?" + environ["QUERY_STRING"]
    headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_") and k != "HTTP_HOST"}
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    headers["Content-Length"] = str(len(body))
    try:
        connection.request(environ.get("REQUEST_METHOD", "POST"), path, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        skip = {"content-length", "transfer-encoding", "connection"}
        out = [(k, v) for k, v in response.getheaders() if k.lower() not in skip]
        start_response(f"{response.status} {response.reason}", out + [("Content-Length", str(len(payload)))])
        return [payload]
    except OSError as error:
        payload = json.dumps({"message": f"local service unreachable: {error}"}).encode()
        start_response("502 Bad Gateway", [("Content-Length", str(len(payload)))])
        return [payload]
    finally:
        connection.close()
