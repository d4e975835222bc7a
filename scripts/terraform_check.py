"""The Terraform module checked offline (CI reaches no Terraform registry: no provider installs,
so `terraform validate` cannot run here).

    python scripts/terraform_check.py EXPORT.json [--rto-hours N]

EXPORT.json is `drctl plan export plans/paris-ireland.toml --json`. It checks that:

- every `.tf` file under terraform/ parses (python-hcl2);
- every parameter of template.yaml and template-us-east-1.yaml is either one the plan determines
  (the export's, which `drctl deploy params` gives SAM) or one of the module's choices, never both,
  and each choice is a module variable's;
- every module variable is used by the module, and the example's arguments are module variables,
  every required one given;
- the example deploys the deployment's choices samconfig.toml deploys;
- the module's preconditions hold for the example, and with `rto_hours` replaced (--rto-hours)
  the one that disagrees is refused with its message. The preconditions are evaluated here, by a
  small reading of their expressions (comparisons, arithmetic, references to var. and the
  exported plan), not by Terraform.

Prints what it found; exits 1 on any failure.
"""

import argparse
import json
import re
import sys
import tomllib
from pathlib import Path

import hcl2
from cfnlint.decode import decode_str

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "terraform/modules/dr"
EXAMPLE = ROOT / "terraform/examples/prod/main.tf"

failures = []


def fail(message):
    failures.append(message)
    print(f"FAIL {message}")


def unquote(text):
    return text[1:-1] if isinstance(text, str) and len(text) >= 2 and text[0] == text[-1] == '"' else text


def parse(path):
    with open(path) as handle:
        return hcl2.load(handle)


def expression(text):
    """The expression inside `${...}`."""
    text = unquote(text)
    return text[2:-1] if isinstance(text, str) and text.startswith("${") and text.endswith("}") else text


def template_parameters(name):
    template, _ = decode_str((ROOT / name).read_text())
    return list(template["Parameters"])


def module_variables():
    variables = {}
    for path in sorted(MODULE.glob("*.tf")):
        for block in parse(path).get("variable", []):
            for name, body in block.items():
                if not name.startswith("__"):
                    variables[unquote(name)] = body
    return variables


def module_locals():
    found = {}
    for block in parse(MODULE / "main.tf").get("locals", []):
        found.update({k: v for k, v in block.items() if not k.startswith("__")})
    return found


def choice_variables(choices, where):
    """{template parameter: module variable} of a choices map, each value naming one var."""
    out = {}
    for parameter, value in choices.items():
        if parameter.startswith("__"):  # the parser's own keys (__is_block__, __comments__)
            continue
        names = set(re.findall(r"\bvar\.([a-z_0-9]+)", str(value)))
        if len(names) != 1:
            fail(f"{where}.{parameter}: takes {sorted(names) or 'no variable'}, not one module variable")
            continue
        out[parameter] = names.pop()
    return out


def value_of(reference, scope):
    head, *path = reference.split(".")
    value = scope[head]
    for part in path:
        value = value[part]
    return value


def evaluate(text, scope):
    """A precondition's expression, read as Python: comparisons, arithmetic and references."""
    python = re.sub(
        r"\b((?:var|local)\.[A-Za-z0-9_.]+)",
        lambda m: repr(value_of(m.group(1), scope)),
        text,
    )
    python = python.replace("&&", " and ").replace("||", " or ")
    return eval(python, {"__builtins__": {}}, {})  # our own module's expressions only


def shown(value):
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def message(text, scope):
    return re.sub(r"\$\{([^}]*)\}", lambda m: shown(evaluate(m.group(1), scope)), unquote(text))


def preconditions():
    main = parse(MODULE / "main.tf")
    found = []
    for block in main.get("resource", []):
        for kind, named in block.items():
            for name, body in named.items():
                for lifecycle in body.get("lifecycle", []) if isinstance(body, dict) else []:
                    for condition in lifecycle.get("precondition", []):
                        found.append((f"{unquote(kind)}.{unquote(name)}", expression(condition["condition"]), condition["error_message"]))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("export")
    parser.add_argument("--rto-hours", type=float, default=8)
    args = parser.parse_args()
    exported = json.loads(Path(args.export).read_text())

    files = sorted((ROOT / "terraform").rglob("*.tf"))
    for path in files:
        try:
            parse(path)
        except Exception as error:  # the parser's own message names the line
            fail(f"{path.relative_to(ROOT)} does not parse: {error}")
    print(f"{len(files)} .tf files parse")

    variables = module_variables()
    found = module_locals()
    choices = choice_variables(found.get("choices", {}), "local.choices")
    detection_choices = choice_variables(found.get("detection_choices", {}), "local.detection_choices")
    for stack, template, determined, chosen in [
        ("template.yaml", "template.yaml", exported["stack_parameters"], choices),
        ("template-us-east-1.yaml", "template-us-east-1.yaml", exported.get("detection_stack_parameters") or {}, detection_choices),
    ]:
        parameters = template_parameters(template)
        for parameter in parameters:
            if parameter in determined and parameter in chosen:
                fail(f"{stack}: {parameter} is both the plan's and a choice (var.{chosen[parameter]})")
            elif parameter not in determined and parameter not in chosen:
                fail(f"{stack}: {parameter} is neither the plan's (drctl plan export) nor a module variable")
        for parameter, variable in chosen.items():
            if parameter not in parameters:
                fail(f"{stack}: the module sets {parameter} (var.{variable}), which the template does not have")
            if variable not in variables:
                fail(f"{stack}: {parameter} takes var.{variable}, which is not a module variable")
        print(f"{stack}: {len(parameters)} parameters: {len(set(determined) & set(parameters))} the plan's, {len(chosen)} the deployment's choices")

    # A stack whose template creates IAM resources needs CAPABILITY_IAM, or CloudFormation
    # refuses it (InsufficientCapabilities).
    stacks = {}
    for block in parse(MODULE / "main.tf").get("resource", []):
        for kind, named in block.items():
            if unquote(kind) == "aws_cloudformation_stack":
                stacks.update({unquote(name): body for name, body in named.items() if not name.startswith("__")})
    for name, template in [("dr", "template.yaml"), ("detection", "template-us-east-1.yaml")]:
        creates_iam = "AWS::IAM::" in (ROOT / template).read_text() or "AWS::Serverless::Function" in (ROOT / template).read_text()
        capabilities = str(stacks.get(name, {}).get("capabilities", ""))
        if name not in stacks:
            fail(f"no aws_cloudformation_stack.{name} for {template}")
        elif creates_iam and "CAPABILITY_IAM" not in capabilities:
            fail(f"aws_cloudformation_stack.{name}: {template} creates IAM roles, and the stack has no CAPABILITY_IAM")
    print(f"{len(stacks)} stacks, each with the capabilities its template needs")

    text = "\n".join(path.read_text() for path in sorted(MODULE.glob("*.tf")) if path.name != "variables.tf")
    for variable in variables:
        if not re.search(rf"\bvar\.{variable}\b", text):
            fail(f"var.{variable} is declared and never used: it reaches no stack")

    example = parse(EXAMPLE)
    calls = [body for block in example.get("module", []) for name, body in block.items() if unquote(name) == "bcp_dr"]
    if len(calls) != 1:
        fail("terraform/examples/prod/main.tf: no module \"bcp_dr\"")
        return
    call = {k: v for k, v in calls[0].items() if k not in ("source", "providers") and not k.startswith("__")}
    for argument in call:
        if argument not in variables:
            fail(f"the example passes {argument}, not a module variable")
    for variable, body in variables.items():
        if "default" not in body and variable not in call:
            fail(f"the example does not give {variable}, which has no default")

    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for section, determined, chosen in [
        ("default", exported["stack_parameters"], choices),
        ("us-east-1", exported.get("detection_stack_parameters") or {}, detection_choices),
    ]:
        overrides = dict(item.split("=", 1) for item in samconfig[section]["deploy"]["parameters"]["parameter_overrides"])
        sam_choices = {k: v for k, v in overrides.items() if k not in determined}
        given = {parameter: str(unquote(call[variable])) for parameter, variable in chosen.items() if variable in call}
        if sam_choices != given:
            fail(f"samconfig.toml [{section}] chooses {sam_choices}, the example {given}")
    print("the example deploys samconfig.toml's choices")
    # The build the example packages is the architecture it deploys (another would not start).
    built = re.findall(r"scripts/package (\w+)", EXAMPLE.read_text())
    if built != [str(unquote(call.get("architecture", "")))]:
        fail(f"the example packages {built} and deploys architecture {unquote(call.get('architecture', ''))!r}")

    scope = {"var": {k: unquote(v) for k, v in call.items()}, "local": {"exported": exported, "plan": exported["plan"]}}
    checks = preconditions()
    for where, condition, error in checks:
        if not evaluate(condition, scope):
            fail(f"{where}: the example is refused: {message(error, scope)}")
    print(f"{len(checks)} preconditions hold for the example")
    scope["var"]["rto_hours"] = args.rto_hours
    refused = [(where, message(error, scope)) for where, condition, error in checks if not evaluate(condition, scope)]
    for where, text in refused:
        print(f"with rto_hours = {shown(args.rto_hours)}: {where} refuses: {text}")
    if len(refused) != 1 or "rto_hours" not in refused[0][1]:
        fail(f"with rto_hours = {shown(args.rto_hours)}, expected one refusal naming rto_hours: {refused}")

    if failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
