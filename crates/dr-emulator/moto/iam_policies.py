"""The policies template.yaml gives each function's role, for one deployment (the local stack's
IAM enforcement, iam.py, authorizes every call a function makes against them).

How a deployment's policies are made, as CloudFormation would make them:
- the template goes through the SAM translator (samtranslator, which the SAM CLI installs): its
  policy templates (VPCAccessPolicy, LambdaInvokePolicy, ...), the managed policies SAM attaches
  (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess, AWSLambdaVPCAccessExecutionRole) and the
  function roles it generates are SAM's own;
- intrinsic functions (Ref, Fn::Sub, Fn::GetAtt, Fn::If, Fn::Join, Fn::Split, Fn::Select and the
  conditions) are resolved with the deployment's parameters (`drctl deploy params` plus the
  deployment's choices) and the physical names the local stack gives the resources;
- AWS managed policies are their documented content (MANAGED_POLICIES, from the IAM managed
  policy reference: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/);
- the resource policies the template declares (the buckets' policies) are resolved the same way.
"""

import copy
import json
import os

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ACCOUNT = "123456789012"
PARTITION = "aws"

# The documented content of the AWS managed policies SAM attaches to function roles (version in
# force in 2026; the reference pages are cited above).
MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "xray:PutTraceSegments",
                    "xray:PutTelemetryRecords",
                    "xray:GetSamplingRules",
                    "xray:GetSamplingTargets",
                    "xray:GetSamplingStatisticSummaries",
                ],
                "Resource": "*",
            }
        ],
    },
    "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:PutLogEvents",
                    "ec2:CreateNetworkInterface",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets",
                    "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses",
                    "ec2:UnassignPrivateIpAddresses",
                ],
                "Resource": "*",
            }
        ],
    },
}

NO_VALUE = object()


class Unresolvable(Exception):
    pass


def translated(template_path):
    """The template after the SAM transform, as CloudFormation receives it after `sam package`."""
    template, errors = decode(template_path)
    if errors:
        raise Unresolvable(f"{template_path}: {errors}")
    template = json.loads(json.dumps(template, default=str))
    # `sam package` replaces the local code and definition paths with S3 locations.
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = "s3://packaged/dr-lambda.zip"
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in resource["Properties"]:
            resource["Properties"]["DefinitionUri"] = "s3://packaged/" + resource["Properties"]["DefinitionUri"]
        if resource["Type"] == "AWS::Serverless::Function" and isinstance(resource["Properties"].get("CodeUri"), str):
            resource["Properties"]["CodeUri"] = "s3://packaged/dr-lambda.zip"

    class NoManagedPolicyLookups:
        # Policies name managed policies by ARN or Ref only: nothing to look up in IAM.
        def load(self):
            return {}

    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-1")
    return transform(template, {}, NoManagedPolicyLookups())


class Resolver:
    """CloudFormation's intrinsic functions over one deployment's parameters and names."""

    def __init__(self, template, parameters, names, region, account=ACCOUNT):
        self.template = template
        self.region = region
        self.parameters = {}
        for name, declared in template.get("Parameters", {}).items():
            value = parameters.get(name, declared.get("Default"))
            if value is None:
                continue
            if declared.get("Type") == "CommaDelimitedList":
                value = value if isinstance(value, list) else ("" if value == "" else str(value)).split(",")
            self.parameters[name] = value
        self.names = names
        self.pseudo = {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": PARTITION,
            "AWS::StackName": names.get("AWS::StackName", "dr-orchestrator"),
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.conditions = {}

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.value(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        if name in self.names:
            return self.names[name]
        resource = self.template["Resources"].get(name, {})
        if resource.get("Type") == "AWS::S3::Bucket" and "BucketName" in resource.get("Properties", {}):
            return self.value(resource["Properties"]["BucketName"])
        raise Unresolvable(f"Ref {name}: no parameter value or local name")

    def get_att(self, name, attribute):
        key = f"{name}.{attribute}"
        if key in self.names:
            return self.names[key]
        resource = self.template["Resources"].get(name, {})
        kind = resource.get("Type")
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"arn:{PARTITION}:s3:::{self.ref(name)}"
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return f"arn:{PARTITION}:lambda:{self.region}:{ACCOUNT}:function:{self.ref(name)}"
        if kind == "AWS::StepFunctions::StateMachine" and attribute == "Name":
            return self.ref(name).rsplit(":", 1)[-1]
        # Queues and roles the local stack does not create are named by their logical ids.
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"arn:{PARTITION}:sqs:{self.region}:{ACCOUNT}:{name}"
        if kind == "AWS::SQS::Queue" and attribute == "QueueName":
            return name
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{self.ref(name)}"
        raise Unresolvable(f"GetAtt {key}")

    def sub(self, text, variables):
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in variables:
                out.append(str(variables[name]))
            elif "." in name and not name.startswith("AWS::"):
                out.append(str(self.get_att(*name.split(".", 1))))
            else:
                value = self.ref(name)
                out.append(",".join(value) if isinstance(value, list) else str(value))
        out.append(rest)
        return "".join(out)

    def value(self, node):
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            if key == "Ref":
                return self.ref(argument)
            if key == "Fn::GetAtt":
                name, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                if isinstance(argument, list):
                    text, variables = argument
                    return self.sub(text, {k: self.value(v) for k, v in variables.items()})
                return self.sub(argument, {})
            if key == "Fn::If":
                name, if_true, if_false = argument
                return self.value(if_true if self.condition(name) else if_false)
            if key == "Fn::Join":
                separator, items = argument
                items = self.value(items)
                return separator.join(str(item) for item in (items if isinstance(items, list) else [items]))
            if key == "Fn::Split":
                separator, text = argument
                return str(self.value(text)).split(separator)
            if key == "Fn::Select":
                index, items = argument
                return self.value(items)[int(self.value(index))]
            if key == "Fn::Equals":
                left, right = (self.value(item) for item in argument)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.value(argument[0])
            if key == "Fn::And":
                return all(self.value(item) for item in argument)
            if key == "Fn::Or":
                return any(self.value(item) for item in argument)
            if key == "Condition":
                return self.condition(argument)
        resolved = {}
        for key, item in node.items():
            item = self.value(item)
            if item is not NO_VALUE:
                resolved[key] = item
        return resolved


def _document(policy):
    """A policy document as IAM stores it: a JSON string parsed, Statement always a list."""
    if isinstance(policy, str):
        policy = json.loads(policy)
    policy = copy.deepcopy(policy)
    statements = policy.get("Statement", [])
    policy["Statement"] = statements if isinstance(statements, list) else [statements]
    policy.setdefault("Version", "2012-10-17")
    return policy


def function_roles(template):
    """{function logical id: its role's logical id} (the role SAM generated, or the template's)."""
    resources = template["Resources"]
    roles = {}
    for logical_id, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        role_ref = resource["Properties"].get("Role", {})
        role_id = role_ref.get("Fn::GetAtt", [None])[0] if isinstance(role_ref, dict) else None
        if role_id in resources:
            roles[logical_id] = role_id
    return roles


def deployment_policies(template, parameters, names, region):
    """{"roles": {function logical id: {"role": name, "policies": [{name, policy, inline}]}},
    "resource_policies": {resource ARN: policy}} for one deployment. A role's name is what Ref
    gives for it (its physical name in `names`, else its logical id)."""
    resolver = Resolver(template, parameters, names, region)
    resources = template["Resources"]
    roles = {}
    for logical_id, role_id in function_roles(template).items():
        role = resolver.value(resources[role_id]["Properties"])
        policies = []
        for arn in role.get("ManagedPolicyArns", []):
            if arn in MANAGED_POLICIES:
                policies.append({"name": arn.rsplit("/", 1)[-1], "policy": _document(MANAGED_POLICIES[arn])})
                continue
            managed = next(
                (name for name, r in resources.items() if r["Type"] == "AWS::IAM::ManagedPolicy" and resolver.ref(name) == arn),
                None,
            )
            if managed is None:
                raise Unresolvable(f"{role_id}: managed policy {arn} has no documented content here")
            document = resolver.value(resources[managed]["Properties"]["PolicyDocument"])
            policies.append({"name": managed, "policy": _document(document)})
        for inline in role.get("Policies", []):
            policies.append({"name": inline["PolicyName"], "policy": _document(inline["PolicyDocument"]), "inline": True})
        roles[logical_id] = {"role": resolver.ref(role_id), "policies": policies}
    resource_policies = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::S3::BucketPolicy":
            properties = resolver.value(resource["Properties"])
            resource_policies[f"arn:{PARTITION}:s3:::{properties['Bucket']}"] = _document(properties["PolicyDocument"])
    return {"roles": roles, "resource_policies": resource_policies}


def member_role(template_path, parameters, account, region):
    """The member role of member-role.yaml deployed in `account` with `parameters`:
    {"role": name, "policies": [{name, policy, inline}], "trust": its trust policy}. A plain
    CloudFormation template (a StackSet's): no SAM transform."""
    template, errors = decode(template_path)
    if errors:
        raise Unresolvable(f"{template_path}: {errors}")
    template = json.loads(json.dumps(template, default=str))
    resolver = Resolver(template, parameters, {}, region, account)
    role = resolver.value(template["Resources"]["MemberRole"]["Properties"])
    policies = [
        {"name": inline["PolicyName"], "policy": _document(inline["PolicyDocument"]), "inline": True}
        for inline in role.get("Policies", [])
    ]
    return {"role": role["RoleName"], "policies": policies, "trust": _document(role["AssumeRolePolicyDocument"])}


def local_names(template, functions, refs):
    """The physical names of the local stack: each function is named by its Handler (as the local
    Lambda service serves it), each managed policy by an ARN of this account, and `refs` (the state
    machines' ARNs, the buckets) as given."""
    names = {}
    for logical_id, resource in template["Resources"].items():
        kind = resource["Type"]
        if kind == "AWS::Lambda::Function":
            handler = resource["Properties"].get("Handler")
            names[logical_id] = functions.get(logical_id, handler)
        elif kind == "AWS::IAM::ManagedPolicy":
            names[logical_id] = f"arn:{PARTITION}:iam::{ACCOUNT}:policy/{logical_id}"
        elif kind == "AWS::IAM::Role":
            names[logical_id] = logical_id
    names.update(refs)
    return names
