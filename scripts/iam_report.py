"""The least-privilege table of a suite run, from the local stack's IAM (crates/dr-emulator/moto/iam.py):

    python scripts/iam_report.py EMULATOR_URL OUT.md

Per function: the calls it made, the calls IAM denied, and the mutation check: each Allow
statement of its role removed in turn and every call the suite made decided again. A statement
without which no call is denied is excess (the suite never needed it): it is narrowed in
template.yaml or justified there in a comment. Denials of resources named `iam-denied-*` are the
enforcement's own tests (tests/iam.rs) and are counted apart. Exits 1 when any other call was denied.

    python scripts/iam_report.py EMULATOR_URL OUT.md DOCTOR_ACTIONS.json

With the actions `drctl doctor` simulates (`drctl doctor PLAN --actions`), it also checks that
every action a function was allowed in the suite is one doctor simulates for that function, and
exits 1 naming any that is not: doctor decides on the real account every call the local stack
authorized. Member roles in other accounts (`member:<account>:<role>`, member-role.yaml) have their
rows and mutation check too; doctor does not simulate them yet.
"""

import json
import os
import re
import sys
import urllib.request

# Statements that no test can need, with why they stay (template.yaml says the same beside them).
GRANTED_BY_SAM = {
    "AWSLambdaBasicExecutionRole": "Lambda's own log delivery (every function; not an API call the code makes)",
    "AWSXrayWriteOnlyAccess": "X-Ray trace segments (Tracing: Active; sent by the Lambda service, not the code)",
    "AWSLambdaVPCAccessExecutionRole": "ENIs for the VPC option; Lambda creates them, not the code",
    "EventInvokeConfigOnFailureSQSPolicy": "Lambda delivers a failed asynchronous invocation to the OnFailure queue with it, not the code",
}
TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "template.yaml")
# A member role in another account (the plan's [accounts.dns]) is recorded as member:<account>:<role>.
MEMBER_TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "member-role.yaml")
MEMBER_PREFIX = "member:"


def _comments_above(lines, index):
    """The comment lines just above line `index`, over the `- !If` / condition-name lines of a
    conditional statement."""
    out = []
    i = index - 1
    while i >= 0:
        text = lines[i].strip()
        if text.startswith("#"):
            out.insert(0, text.lstrip("# ").rstrip())
        elif text == "- !If" or text.startswith("- !If [") or re.fullmatch(r"- [A-Z][A-Za-z]+", text):
            pass
        else:
            break
        i -= 1
    return " ".join(out)


def justification(function, key):
    """Why an excess statement stays: the template's comment on it, in the function's own block
    (above its `Sid:`, or above the `- !Ref <ManagedPolicy>` that attaches it), else above the
    statement where the managed policy defines it."""
    if function.startswith(MEMBER_PREFIX):
        lines = open(MEMBER_TEMPLATE).read().splitlines()
        sid = key.split("#", 1)[1]
        place = next((i for i, line in enumerate(lines) if line.strip() == f"- Sid: {sid}"), None)
        comment = _comments_above(lines, place) if place is not None else ""
        return comment or "NOT JUSTIFIED in member-role.yaml"
    lines = open(TEMPLATE).read().splitlines()
    policy, sid = key.split("#", 1)
    places = []
    # The function's block, and its own role's where it has one (the VPC functions).
    for name in (function, f"{function}Role"):
        start = next((i for i, line in enumerate(lines) if line == f"  {name}:"), None)
        if start is None:
            continue
        end = next((i for i in range(start + 1, len(lines)) if re.match(r"^  [A-Za-z]+:$", lines[i])), len(lines))
        for i in range(start, end):
            if lines[i].strip() == f"- Sid: {sid}" or re.search(rf"!Ref {policy}\b", lines[i]):
                places.append(i)
    definition = next((i for i, line in enumerate(lines) if line == f"  {policy}:"), None)
    if definition is not None:
        places.extend(i for i in range(definition, len(lines)) if lines[i].strip() == f"- Sid: {sid}")
    for i in places:
        comment = _comments_above(lines, i)
        if comment:
            return comment
    return "NOT JUSTIFIED in template.yaml"


def main():
    url, out = sys.argv[1], sys.argv[2]
    with urllib.request.urlopen(f"{url}/dr-local/iam?mutations=1", timeout=600) as response:
        report = json.load(response)
    functions = report["functions"]
    mutations = report.get("mutations", {})
    lines = [
        "| function | calls | denied | statements needed | excess statements (never needed by a call) |",
        "|---|---:|---:|---|---|",
    ]
    unexpected = []
    for function in sorted(report["statements"]):
        entry = functions.get(function, {"calls": 0, "denied": []})
        denied = [d for d in entry["denied"] if "iam-denied-" not in (d.get("resource") or "")]
        deliberate = len(entry["denied"]) - len(denied)
        unexpected.extend((function, d) for d in denied)
        needed, excess = [], []
        statements = mutations.get(function, {}).get("statements", {})
        for key, info in sorted(report["statements"][function].items()):
            if info.get("effect") != "Allow":
                continue
            policy = key.split("#", 1)[0]
            count = statements.get(key, {}).get("calls", 0)
            if count:
                needed.append(f"{key} ({count})")
            elif any(policy.endswith(name) for name in GRANTED_BY_SAM):
                continue
            else:
                excess.append(f"{key}: {justification(function, key)}")
        denied_cell = f"{len(denied)}" + (f" (+{deliberate} by tests/iam.rs)" if deliberate else "")
        lines.append(
            f"| {function} | {entry['calls']} | {denied_cell} | {', '.join(needed) or '-'} | {'<br>'.join(excess) or '-'} |"
        )
    unsimulated = []
    if len(sys.argv) > 3:
        with open(sys.argv[3]) as handle:
            simulated = json.load(handle)
        for function, entry in sorted(functions.items()):
            if function.startswith(MEMBER_PREFIX):
                continue  # doctor does not simulate the member roles yet (docs/landing-zone.md)
            for action in sorted(entry.get("actions", {})):
                if action not in simulated.get(function, []):
                    unsimulated.append((function, action))
        lines.append("")
        lines.append(
            "Every action the suite's functions were allowed is simulated by `drctl doctor`"
            if not unsimulated
            else "Allowed in the suite, not simulated by `drctl doctor`: "
            + ", ".join(f"{function} {action}" for function, action in unsimulated)
        )
    lines.append("")
    lines.append("Granted by SAM to every function and never exercised by the code: " + "; ".join(f"{k}: {v}" for k, v in GRANTED_BY_SAM.items()) + ".")
    text = "\n".join(lines) + "\n"
    with open(out, "w") as handle:
        handle.write(text)
    print(text)
    for function, denial in unexpected:
        print(f"DENIED {function}: {denial['operation']} {denial.get('action')} {denial.get('resource')} {denial['why']}", file=sys.stderr)
    for function, action in unsimulated:
        print(f"NOT SIMULATED BY DOCTOR {function}: {action} (crates/dr-core/src/doctor/calls.rs)", file=sys.stderr)
    return 1 if unexpected or unsimulated else 0


if __name__ == "__main__":
    sys.exit(main())
