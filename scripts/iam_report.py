"""The least-privilege table of a suite run, from the local stack's IAM (crates/dr-emulator/moto/iam.py):

    python scripts/iam_report.py EMULATOR_URL OUT.md

Per function: the calls it made, the calls IAM denied, and the mutation check: each Allow
statement of its role removed in turn and every call the suite made decided again. A statement
without which no call is denied is excess (the suite never needed it): it is narrowed in
template.yaml or justified there in a comment. Denials of resources named `iam-denied-*` are the
enforcement's own tests (tests/iam.rs) and are counted apart. Exits 1 when any other call was denied.
"""

import json
import sys
import urllib.request

# Statements that no test can need, with why they stay (template.yaml says the same beside them).
GRANTED_BY_SAM = {
    "AWSLambdaBasicExecutionRole": "Lambda's own log delivery (every function; not an API call the code makes)",
    "AWSXrayWriteOnlyAccess": "X-Ray trace segments (Tracing: Active; sent by the Lambda service, not the code)",
    "AWSLambdaVPCAccessExecutionRole": "ENIs for the VPC option; Lambda creates them, not the code",
}


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
            elif policy in GRANTED_BY_SAM:
                continue
            else:
                excess.append(key)
        denied_cell = f"{len(denied)}" + (f" (+{deliberate} by tests/iam.rs)" if deliberate else "")
        lines.append(
            f"| {function} | {entry['calls']} | {denied_cell} | {', '.join(needed) or '-'} | {', '.join(excess) or '-'} |"
        )
    lines.append("")
    lines.append("Granted by SAM to every function and never exercised by the code: " + "; ".join(f"{k}: {v}" for k, v in GRANTED_BY_SAM.items()) + ".")
    text = "\n".join(lines) + "\n"
    with open(out, "w") as handle:
        handle.write(text)
    print(text)
    for function, denial in unexpected:
        print(f"DENIED {function}: {denial['operation']} {denial.get('action')} {denial.get('resource')} {denial['why']}", file=sys.stderr)
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
