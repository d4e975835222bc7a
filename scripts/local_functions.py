"""The function table of the local Lambda service, read from template.yaml.

    python scripts/local_functions.py template.yaml --ref NAME=VALUE ... > functions.json

Every AWS::Serverless::Function becomes {function, binary, handler, timeout_seconds, memory_mb,
environment, access_key} (function: its logical id), keyed by its handler name (its Handler; the binary is
BuildProperties.Binary, the same for every function), with Globals.Function applied as SAM does.
So the local functions run with the template's own timeouts, memory and variables. Variables that are
intrinsic functions (!Ref PlanStateBucket, ...) are resolved from --ref, then from the parameter's
Default; one that cannot be resolved is an error, not a silent omission. The template is parsed
with cfn-lint's decoder (the linter the suite already installs), which understands the short
intrinsic tags.
"""

import argparse
import json
import sys

from cfnlint.decode import decode


def resolve(value, refs, parameters, where):
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    if isinstance(value, dict) and list(value) == ["Ref"]:
        name = value["Ref"]
        if name in refs:
            return refs[name]
        default = parameters.get(name, {}).get("Default")
        if default is not None:
            return str(default)
    sys.exit(f"{where}: cannot resolve {dict(value)!r} locally: pass --ref NAME=VALUE")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("--ref", action="append", default=[], help="NAME=VALUE for !Ref NAME")
    parser.add_argument(
        "--application",
        action="append",
        default=[],
        help="[NAME=]BINARY:TIMEOUT, a function of the protected application (not in the template) that plans "
        "name, served under NAME (default: the binary's name)",
    )
    args = parser.parse_args()
    refs = dict(item.split("=", 1) for item in args.ref)
    template, errors = decode(args.template)
    if errors:
        sys.exit(f"{args.template}: {errors}")
    parameters = template.get("Parameters", {})
    globals_ = template.get("Globals", {}).get("Function", {})
    functions = {}
    for name, resource in template["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        properties = resource["Properties"]
        binary = resource["Metadata"]["BuildProperties"]["Binary"]
        handler = properties.get("Handler", globals_.get("Handler"))
        if not handler:
            sys.exit(f"{name}: no Handler")
        variables = dict(globals_.get("Environment", {}).get("Variables", {}))
        variables.update(properties.get("Environment", {}).get("Variables", {}))
        environment = {key: resolve(value, refs, parameters, f"{name}.{key}") for key, value in variables.items()}
        if properties.get("LoggingConfig", globals_.get("LoggingConfig", {})).get("LogFormat") == "JSON":
            environment["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        functions[handler] = {
            "function": name,
            "binary": binary,
            "handler": handler,
            "timeout_seconds": int(properties.get("Timeout", globals_.get("Timeout", 3))),
            "memory_mb": int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
            "environment": environment,
            # Credentials that stand for the function's own role: the emulator authorizes each
            # call against that role's policies (crates/dr-emulator/moto/iam.py).
            "access_key": f"local-lambda-{name}",
        }
    for item in args.application:
        named, timeout = item.split(":", 1)
        name, _, binary = named.rpartition("=")
        functions[name or binary] = {
            "binary": binary,
            "handler": "bootstrap",
            "timeout_seconds": int(timeout),
            "memory_mb": 128,
            "environment": {},
        }
    json.dump(functions, sys.stdout, indent=2, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
