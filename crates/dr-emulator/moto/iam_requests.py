"""What IAM authorizes for each request a function sends: its action, the resource ARN(s) and
the request context (the local stack's IAM enforcement, iam.py).

One table, OPERATIONS, covers every operation the product's functions call; an operation that is
not in it is denied and named (fail closed), never allowed. Each row follows the Service
Authorization Reference (https://docs.aws.amazon.com/service-authorization/latest/reference/):
the action, the resource types the action authorizes (an action with none is authorized on "*"),
and the condition keys its statements may use:

- aws:ResourceTag/<key> (and the service's own spelling: rds:db-tag/<key>,
  autoscaling:ResourceTag/<key>) from the emulated resource's tags;
- aws:RequestTag/<key> and aws:TagKeys from the tags a request sets;
- cloudwatch:namespace, s3:if-match / s3:if-none-match, the Route 53 record-change keys;
- aws:RequestedRegion, aws:SecureTransport (HTTPS, as every SDK call to AWS is; the local stack
  speaks plain HTTP on loopback), aws:PrincipalArn and aws:userid on every request.

A describe with no identifier is authorized, as AWS does, on the type's wildcard ARN
(arn:aws:rds:<region>:<account>:db:*): a policy that names only some instances does not allow it.
"""

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

ACCOUNT = "123456789012"


@dataclass
class Request:
    """A request as the service parses it."""

    service: str  # the SigV4 signing name: rds, ec2, autoscaling, monitoring, s3, ...
    region: str
    method: str
    path: str
    query: dict
    params: dict  # query-protocol form fields, or a JSON body
    body: bytes
    headers: dict


@dataclass
class Authorization:
    """What IAM decides on: every (action, resource) must be allowed."""

    operation: str
    checks: list  # [(action, resource ARN, context)]
    unknown: str = ""  # why the request is not in the table (then it is denied)
    extra: dict = field(default_factory=dict)


# ---------------------------------------------------------------- request parsing


def parse(environ, service, region, body):
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True).items()}
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = environ["CONTENT_TYPE"]
    params = {}
    if headers.get("x-amz-target"):
        try:
            params = json.loads(body or b"{}")
        except ValueError:
            params = {}
    elif service in ("rds", "ec2", "autoscaling", "monitoring", "sns", "sts", "sqs", "cloudformation", "elasticloadbalancing", "iam"):
        form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True) if body else {}
        params = {k: v[0] for k, v in form.items()} or dict(query)
    path = unquote(environ.get("PATH_INFO", ""))
    return Request(service, region, environ.get("REQUEST_METHOD", "GET"), path, query, params, body, headers)


def operation_name(request):
    """The API operation, as AWS names it."""
    target = request.headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "Action" in request.params:
        return request.params["Action"]
    if request.service == "s3":
        return _s3_operation(request)
    if request.service == "route53":
        return _route53_operation(request)
    if request.service == "lambda":
        if re.fullmatch(r"/2015-03-31/functions/[^/]+/invocations/?", request.path) and request.method == "POST":
            return "Invoke"
        if re.fullmatch(r"/2015-03-31/functions/[^/]+/?", request.path) and request.method == "GET":
            return "GetFunction"
    return f"{request.method} {request.path}"


def _s3_parts(request):
    parts = request.path.lstrip("/").split("/", 1)
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _s3_operation(request):
    bucket, key = _s3_parts(request)
    method = request.method
    if not key:
        if method == "GET" and "replication" in request.query:
            return "GetBucketReplication"
        if method == "GET" and request.query.get("list-type") == "2":
            return "ListObjectsV2"
        if method == "HEAD":
            return "HeadBucket"
        return f"{method} bucket?{'&'.join(sorted(request.query))}"
    if request.query and not set(request.query) <= {"versionId", "x-id"}:
        return f"{method} object?{'&'.join(sorted(request.query))}"
    return {"GET": "GetObject", "HEAD": "HeadObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
        method, f"{method} object"
    )


_ROUTE53 = [
    ("GET", r"/2013-04-01/hostedzonesbyname", "ListHostedZonesByName"),
    ("GET", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "ListResourceRecordSets"),
    ("POST", r"/2013-04-01/hostedzone/[^/]+/rrset/?", "ChangeResourceRecordSets"),
    ("GET", r"/2013-04-01/change/[^/]+", "GetChange"),
    ("GET", r"/2013-04-01/healthcheck/?", "ListHealthChecks"),
    ("GET", r"/2013-04-01/healthcheck/[^/]+", "GetHealthCheck"),
    ("POST", r"/2013-04-01/tags/healthcheck/?", "ListTagsForResources"),
    ("GET", r"/2013-04-01/tags/healthcheck/[^/]+", "ListTagsForResource"),
]


def _route53_operation(request):
    for method, pattern, name in _ROUTE53:
        if request.method == method and re.fullmatch(pattern, request.path):
            return name
    return f"{request.method} {request.path}"


# ---------------------------------------------------------------- resources and their tags


def _numbered(params, prefix):
    """Query-protocol lists: Prefix.1, Prefix.2, ... (or Prefix.member.1, ...)."""
    values = []
    for key, value in params.items():
        if re.fullmatch(re.escape(prefix) + r"(\.member)?\.\d+", key):
            values.append((int(key.rsplit(".", 1)[1]), value))
    return [value for _, value in sorted(values)]


def _query_tags(params, prefix):
    """Tags.member.N.Key/Value or Tags.Tag.N.Key/Value -> {key: value}."""
    tags = {}
    pattern = re.compile(re.escape(prefix) + r"\.(?:member|Tag)\.(\d+)\.Key")
    for key, value in params.items():
        match = pattern.fullmatch(key)
        if match:
            index = match.group(1)
            tags[value] = params.get(key[: -len("Key")] + "Value", "")
    return tags


def _tag_context(tags, *prefixes):
    return {f"{prefix}/{key}": value for key, value in tags.items() for prefix in prefixes}


def _request_tag_context(tags):
    context = _tag_context(tags, "aws:RequestTag")
    if tags:
        context["aws:TagKeys"] = sorted(tags)
    return context


def _ec2_instance_tags(region, instance_id):
    from moto.ec2.models import ec2_backends

    try:
        instance = ec2_backends[ACCOUNT][region].get_instance(instance_id)
    except Exception:  # an unknown instance: EC2 answers it after authorizing
        return {}
    return {tag["key"]: tag["value"] for tag in instance.get_tags()}


def ebs_keys(region, instance_id):
    """The KMS keys of an instance's EBS volumes (starting it makes EC2 create a grant on each)."""
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[ACCOUNT][region]
    try:
        instance = backend.get_instance(instance_id)
    except Exception:
        return []
    keys = []
    for _, block in instance.block_device_mapping.items():
        try:
            volume = backend.get_volume(block.volume_id)
        except Exception:
            continue
        if getattr(volume, "kms_key_id", None):
            keys.append(volume.kms_key_id)
    return keys


def _rds_tags(region, kind, identifier):
    from moto.rds.models import rds_backends

    backend = rds_backends[ACCOUNT][region]
    table = backend.databases if kind == "db" else backend.database_snapshots
    resource = table.get(identifier)
    return {tag["Key"]: tag["Value"] for tag in getattr(resource, "tags", None) or []}


def _asg(region, name):
    from moto.autoscaling.models import autoscaling_backends

    return autoscaling_backends[ACCOUNT][region].autoscaling_groups.get(name)


def _asg_arn(region, name):
    group = _asg(region, name)
    arn = getattr(group, "arn", None)
    return arn or f"arn:aws:autoscaling:{region}:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/{name}"


def _asg_tags(region, name):
    group = _asg(region, name)
    return {tag.get("Key", tag.get("key")): tag.get("Value", tag.get("value")) for tag in getattr(group, "tags", [])}


def _rds_arn(region, kind, identifier):
    if identifier.startswith("arn:"):
        return identifier
    return f"arn:aws:rds:{region}:{ACCOUNT}:{kind}:{identifier}"


def _rds_name(arn):
    """(region, kind, name) of an RDS ARN."""
    parts = arn.split(":")
    return parts[3], parts[5], parts[6]


def _secret_arn(region, secret_id):
    if secret_id.startswith("arn:"):
        return secret_id
    from moto.secretsmanager.models import secretsmanager_backends

    try:
        return secretsmanager_backends[ACCOUNT][region].describe_secret(secret_id).arn
    except Exception:  # an unknown secret: Secrets Manager answers it after authorizing
        return f"arn:aws:secretsmanager:{region}:{ACCOUNT}:secret:{secret_id}-??????"


def _key_arn(region, key_id):
    """The ARN of the key a key id, key ARN, alias name or alias ARN names (KMS authorizes the
    key, whatever names it: https://docs.aws.amazon.com/kms/latest/developerguide/cmks-in-iam-policies.html)."""
    from moto.kms.models import kms_backends

    try:
        return kms_backends[ACCOUNT][region].describe_key(key_id).arn
    except Exception:  # an unknown key or alias: KMS answers it after authorizing
        if key_id.startswith("arn:"):
            return key_id
        kind = "" if key_id.startswith("alias/") else "key/"
        return f"arn:aws:kms:{region}:{ACCOUNT}:{kind}{key_id}"


def _function_arn(region, name):
    if name.startswith("arn:"):
        return ":".join(name.split(":")[:7])
    return f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name.split(':')[0]}"


# ---------------------------------------------------------------- one builder per row


def _rds_db(action, field_name, tags=False):
    def build(request):
        identifier = request.params.get(field_name)
        if not identifier:
            return [(action, f"arn:aws:rds:{request.region}:{ACCOUNT}:db:*", {})]
        arn = _rds_arn(request.region, "db", identifier)
        context = {}
        if tags:
            region, kind, name = _rds_name(arn)
            context = _tag_context(_rds_tags(region, kind, name), "aws:ResourceTag", "rds:db-tag")
        return [(action, arn, context)]

    return build


def _rds_describe_snapshots(request):
    snapshot = request.params.get("DBSnapshotIdentifier")
    instance = request.params.get("DBInstanceIdentifier")
    if snapshot:
        return [("rds:DescribeDBSnapshots", _rds_arn(request.region, "snapshot", snapshot), {})]
    if instance:
        return [("rds:DescribeDBSnapshots", _rds_arn(request.region, "db", instance), {})]
    return [("rds:DescribeDBSnapshots", f"arn:aws:rds:{request.region}:{ACCOUNT}:snapshot:*", {})]


def _rds_tagging(action):
    def build(request):
        arn = request.params.get("ResourceName", "")
        context = {}
        if action == "rds:AddTagsToResource":
            context = _request_tag_context(_query_tags(request.params, "Tags"))
        elif action == "rds:RemoveTagsFromResource":
            keys = _numbered(request.params, "TagKeys")
            context = {"aws:TagKeys": keys} if keys else {}
        return [(action, arn, context)]

    return build


def _rds_create_snapshot(request):
    return [
        ("rds:CreateDBSnapshot", _rds_arn(request.region, "db", request.params.get("DBInstanceIdentifier", "")), {}),
        (
            "rds:CreateDBSnapshot",
            _rds_arn(request.region, "snapshot", request.params.get("DBSnapshotIdentifier", "")),
            _request_tag_context(_query_tags(request.params, "Tags")),
        ),
    ]


def _rds_modify(request):
    checks = [("rds:ModifyDBInstance", _rds_arn(request.region, "db", request.params.get("DBInstanceIdentifier", "")), {})]
    renamed = request.params.get("NewDBInstanceIdentifier")
    if renamed:
        checks.append(("rds:ModifyDBInstance", _rds_arn(request.region, "db", renamed), {}))
    return checks


def _rds_restore(request):
    region = request.region
    tags = _request_tag_context(_query_tags(request.params, "Tags"))
    checks = [
        ("rds:RestoreDBInstanceFromDBSnapshot", _rds_arn(region, "db", request.params.get("DBInstanceIdentifier", "")), tags),
        ("rds:RestoreDBInstanceFromDBSnapshot", _rds_arn(region, "snapshot", request.params.get("DBSnapshotIdentifier", "")), {}),
    ]
    if request.params.get("DBSubnetGroupName"):
        checks.append(("rds:RestoreDBInstanceFromDBSnapshot", _rds_arn(region, "subgrp", request.params["DBSubnetGroupName"]), {}))
    if tags:
        # Tags given at creation are authorized as rds:AddTagsToResource too.
        checks.append(("rds:AddTagsToResource", _rds_arn(region, "db", request.params.get("DBInstanceIdentifier", "")), tags))
    return checks


def _rds_create_replica(request):
    region = request.region
    tags = _request_tag_context(_query_tags(request.params, "Tags"))
    source = request.params.get("SourceDBInstanceIdentifier", "")
    checks = [
        ("rds:CreateDBInstanceReadReplica", _rds_arn(region, "db", request.params.get("DBInstanceIdentifier", "")), tags),
        ("rds:CreateDBInstanceReadReplica", _rds_arn(region, "db", source), {}),
    ]
    if tags:
        checks.append(("rds:AddTagsToResource", _rds_arn(region, "db", request.params.get("DBInstanceIdentifier", "")), tags))
    return checks


def _ec2_instances(action):
    def build(request):
        checks = []
        for instance_id in _numbered(request.params, "InstanceId"):
            arn = f"arn:aws:ec2:{request.region}:{ACCOUNT}:instance/{instance_id}"
            tags = _ec2_instance_tags(request.region, instance_id)
            checks.append((action, arn, _tag_context(tags, "aws:ResourceTag", "ec2:ResourceTag")))
        return checks or [(action, f"arn:aws:ec2:{request.region}:{ACCOUNT}:instance/*", {})]

    return build


def _ec2_tags_change(action):
    """CreateTags / DeleteTags (EC2's query protocol: ResourceId.N, Tag.N.Key, Tag.N.Value): one
    check per instance, with its tags (aws:ResourceTag) and the request's (aws:RequestTag,
    aws:TagKeys). Only instances are modelled (the functions tag nothing else)."""

    def build(request):
        keys = {}
        for key, value in request.params.items():
            match = re.fullmatch(r"Tag\.(\d+)\.Key", key)
            if match:
                keys[value] = request.params.get(f"Tag.{match.group(1)}.Value", "")
        checks = []
        for resource_id in _numbered(request.params, "ResourceId"):
            arn = f"arn:aws:ec2:{request.region}:{ACCOUNT}:instance/{resource_id}"
            context = _tag_context(_ec2_instance_tags(request.region, resource_id), "aws:ResourceTag", "ec2:ResourceTag")
            if action == "ec2:CreateTags":
                context.update(_request_tag_context(keys))
            elif keys:
                context["aws:TagKeys"] = sorted(keys)
            checks.append((action, arn, context))
        return checks

    return build


def _asg_update(request):
    name = request.params.get("AutoScalingGroupName", "")
    context = _tag_context(_asg_tags(request.region, name), "aws:ResourceTag", "autoscaling:ResourceTag")
    return [("autoscaling:UpdateAutoScalingGroup", _asg_arn(request.region, name), context)]


def _asg_tags_change(action):
    def build(request):
        checks = []
        tags = {}
        groups = set()
        pattern = re.compile(r"Tags\.member\.(\d+)\.(ResourceId|Key|Value)")
        by_index = {}
        for key, value in request.params.items():
            match = pattern.fullmatch(key)
            if match:
                by_index.setdefault(match.group(1), {})[match.group(2)] = value
        for item in by_index.values():
            groups.add(item.get("ResourceId", ""))
            tags[item.get("Key", "")] = item.get("Value", "")
        for name in sorted(groups):
            context = _tag_context(_asg_tags(request.region, name), "aws:ResourceTag", "autoscaling:ResourceTag")
            if action == "autoscaling:CreateOrUpdateTags":
                context.update(_request_tag_context(tags))
            else:
                context["aws:TagKeys"] = sorted(tags)
            checks.append((action, _asg_arn(request.region, name), context))
        return checks

    return build


def _cloudwatch_alarms(request):
    names = _numbered(request.params, "AlarmNames")
    if not names:
        return [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{request.region}:{ACCOUNT}:alarm:*", {})]
    return [("cloudwatch:DescribeAlarms", f"arn:aws:cloudwatch:{request.region}:{ACCOUNT}:alarm:{name}", {}) for name in names]


def _put_metric_data(request):
    return [("cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": request.params.get("Namespace", "")})]


def _everything(action):
    return lambda request: [(action, "*", {})]


def _s3_object(action):
    def build(request):
        bucket, key = _s3_parts(request)
        context = {}
        if action == "s3:PutObject":
            for header in ("if-match", "if-none-match"):
                if header in request.headers:
                    context[f"s3:{header}"] = request.headers[header]
        return [(action, f"arn:aws:s3:::{bucket}/{key}", context)]

    return build


def _s3_bucket(action):
    def build(request):
        bucket, _ = _s3_parts(request)
        context = {}
        if action == "s3:ListBucket" and "prefix" in request.query:
            context["s3:prefix"] = request.query["prefix"]
        return [(action, f"arn:aws:s3:::{bucket}", context)]

    return build


def _hosted_zone(action):
    def build(request):
        zone = request.path.split("/")[3]
        return [(action, f"arn:aws:route53:::hostedzone/{zone}", {})]

    return build


def _change_record_sets(request):
    zone = request.path.split("/")[3]
    names, actions = [], []
    try:
        root = ElementTree.fromstring(request.body)
        for element in root.iter():
            tag = element.tag.rsplit("}", 1)[-1]
            if tag == "Action":
                actions.append(element.text or "")
            elif tag == "Name" and element.text:
                names.append(element.text.rstrip(".").lower())
    except ElementTree.ParseError:
        pass
    context = {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": sorted(set(names)),
        "route53:ChangeResourceRecordSetsActions": sorted(set(actions)),
    }
    return [("route53:ChangeResourceRecordSets", f"arn:aws:route53:::hostedzone/{zone}", context)]


def _change(request):
    return [("route53:GetChange", f"arn:aws:route53:::change/{request.path.rsplit('/', 1)[-1]}", {})]


def _health_check(action):
    def build(request):
        if action == "route53:ListTagsForResources":
            ids = []
            try:
                root = ElementTree.fromstring(request.body)
                ids = [e.text for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "ResourceId" and e.text]
            except ElementTree.ParseError:
                pass
            return [(action, f"arn:aws:route53:::healthcheck/{hc}", {}) for hc in ids] or [
                (action, "arn:aws:route53:::healthcheck/*", {})
            ]
        return [(action, f"arn:aws:route53:::healthcheck/{request.path.rstrip('/').rsplit('/', 1)[-1]}", {})]

    return build


def _sns_publish(request):
    return [("sns:Publish", request.params.get("TopicArn", ""), {})]


def _put_events(request):
    """One check per bus the entries name (a name, or an ARN), with every entry's source and
    detail-type as the multivalued events:source / events:detail-type condition keys (ArrayOfString
    in the Service Authorization Reference: a policy must use ForAllValues/ForAnyValue;
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-conditions.html)."""
    entries = request.params.get("Entries", [])
    context = {
        "events:source": sorted({entry.get("Source", "") for entry in entries}),
        "events:detail-type": sorted({entry.get("DetailType", "") for entry in entries}),
    }
    buses = sorted({entry.get("EventBusName") or "default" for entry in entries})
    return [
        ("events:PutEvents", bus if bus.startswith("arn:") else f"arn:aws:events:{request.region}:{ACCOUNT}:event-bus/{bus}", context)
        for bus in buses
    ]


def _secret(action):
    def build(request):
        return [(action, _secret_arn(request.region, request.params.get("SecretId", "")), {})]

    return build


def _describe_key(request):
    return [("kms:DescribeKey", _key_arn(request.region, request.params.get("KeyId", "")), {})]


def _certificate(request):
    return [("acm:DescribeCertificate", request.params.get("CertificateArn", ""), {})]


def _service_quota(request):
    service_code, quota_code = request.params.get("ServiceCode", ""), request.params.get("QuotaCode", "")
    return [("servicequotas:GetServiceQuota", f"arn:aws:servicequotas:{request.region}:{ACCOUNT}:{service_code}/{quota_code}", {})]


def _invoke(request):
    name = request.path.split("/")[3]
    return [("lambda:InvokeFunction", _function_arn(request.region, name), {})]


def _get_function(request):
    name = request.path.split("/")[3]
    return [("lambda:GetFunction", _function_arn(request.region, name), {})]


def _ecs_services(action):
    """One check per service the request names (ECS's JSON protocol: `cluster`, and `services` or
    `service`, by name or ARN), on its ARN (arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE), with
    ecs:cluster, the cluster's ARN (the Service Authorization Reference, Amazon ECS: DescribeServices
    and UpdateService authorize the `service` resource type, condition key ecs:cluster)."""

    def build(request):
        cluster = (request.params.get("cluster") or "default").split("/")[-1]
        named = request.params.get("services") or [request.params.get("service", "")]
        context = {"ecs:cluster": f"arn:aws:ecs:{request.region}:{ACCOUNT}:cluster/{cluster}"}
        return [
            (action, f"arn:aws:ecs:{request.region}:{ACCOUNT}:service/{cluster}/{name.split('/')[-1]}", dict(context))
            for name in named
        ]

    return build


def _ecs_tagging(action):
    """ECS's TagResource, UntagResource and ListTagsForResource: on `resourceArn`, with
    aws:TagKeys from the tags set (`tags`: [{key, value}]) or removed (`tagKeys`) (the Service
    Authorization Reference, Amazon ECS: TagResource and UntagResource take aws:TagKeys)."""

    def build(request):
        keys = [tag.get("key", "") for tag in request.params.get("tags") or []]
        keys += request.params.get("tagKeys") or []
        context = {"aws:TagKeys": sorted(keys)} if keys else {}
        return [(action, request.params.get("resourceArn", ""), context)]

    return build


def _states(action, field_name):
    def build(request):
        return [(action, request.params.get(field_name, ""), {})]

    return build


# (signing name, operation) -> builder of [(action, resource ARN, context)]
OPERATIONS = {
    # RDS
    ("rds", "DescribeDBInstances"): _rds_db("rds:DescribeDBInstances", "DBInstanceIdentifier"),
    ("rds", "DescribeDBSnapshots"): _rds_describe_snapshots,
    ("rds", "ListTagsForResource"): lambda r: [("rds:ListTagsForResource", r.params.get("ResourceName", ""), {})],
    ("rds", "PromoteReadReplica"): _rds_db("rds:PromoteReadReplica", "DBInstanceIdentifier", tags=True),
    ("rds", "AddTagsToResource"): _rds_tagging("rds:AddTagsToResource"),
    ("rds", "RemoveTagsFromResource"): _rds_tagging("rds:RemoveTagsFromResource"),
    ("rds", "CreateDBSnapshot"): _rds_create_snapshot,
    ("rds", "ModifyDBInstance"): _rds_modify,
    ("rds", "DeleteDBInstance"): _rds_db("rds:DeleteDBInstance", "DBInstanceIdentifier", tags=True),
    ("rds", "RestoreDBInstanceFromDBSnapshot"): _rds_restore,
    ("rds", "CreateDBInstanceReadReplica"): _rds_create_replica,
    # EC2 and EC2 Auto Scaling
    ("ec2", "DescribeInstances"): _everything("ec2:DescribeInstances"),
    ("ec2", "DescribeInstanceStatus"): _everything("ec2:DescribeInstanceStatus"),
    ("ec2", "StartInstances"): _ec2_instances("ec2:StartInstances"),
    ("ec2", "StopInstances"): _ec2_instances("ec2:StopInstances"),
    ("ec2", "CreateTags"): _ec2_tags_change("ec2:CreateTags"),
    ("ec2", "DeleteTags"): _ec2_tags_change("ec2:DeleteTags"),
    ("ec2", "DescribeLaunchTemplates"): _everything("ec2:DescribeLaunchTemplates"),
    ("ec2", "DescribeLaunchTemplateVersions"): _everything("ec2:DescribeLaunchTemplateVersions"),
    ("ec2", "DescribeImages"): _everything("ec2:DescribeImages"),
    ("ec2", "DescribeInstanceTypes"): _everything("ec2:DescribeInstanceTypes"),
    ("ecs", "DescribeServices"): _ecs_services("ecs:DescribeServices"),
    ("ecs", "UpdateService"): _ecs_services("ecs:UpdateService"),
    ("ecs", "TagResource"): _ecs_tagging("ecs:TagResource"),
    ("ecs", "UntagResource"): _ecs_tagging("ecs:UntagResource"),
    ("ecs", "ListTagsForResource"): _ecs_tagging("ecs:ListTagsForResource"),
    ("autoscaling", "DescribeAutoScalingGroups"): _everything("autoscaling:DescribeAutoScalingGroups"),
    ("autoscaling", "UpdateAutoScalingGroup"): _asg_update,
    ("autoscaling", "CreateOrUpdateTags"): _asg_tags_change("autoscaling:CreateOrUpdateTags"),
    ("autoscaling", "DeleteTags"): _asg_tags_change("autoscaling:DeleteTags"),
    # Elastic Load Balancing v2 (signing name "elasticloadbalancing"): its describes support no
    # resource-level permissions
    ("elasticloadbalancing", "DescribeLoadBalancers"): _everything("elasticloadbalancing:DescribeLoadBalancers"),
    ("elasticloadbalancing", "DescribeListeners"): _everything("elasticloadbalancing:DescribeListeners"),
    ("elasticloadbalancing", "DescribeListenerCertificates"): _everything("elasticloadbalancing:DescribeListenerCertificates"),
    ("elasticloadbalancing", "DescribeTargetGroups"): _everything("elasticloadbalancing:DescribeTargetGroups"),
    ("elasticloadbalancing", "DescribeTargetHealth"): _everything("elasticloadbalancing:DescribeTargetHealth"),
    # Certificate Manager, Service Quotas
    ("acm", "DescribeCertificate"): _certificate,
    ("servicequotas", "GetServiceQuota"): _service_quota,
    # CloudWatch (signing name "monitoring")
    ("monitoring", "GetMetricData"): _everything("cloudwatch:GetMetricData"),
    ("monitoring", "DescribeAlarms"): _cloudwatch_alarms,
    ("monitoring", "PutMetricData"): _put_metric_data,
    # S3
    ("s3", "GetObject"): _s3_object("s3:GetObject"),
    ("s3", "HeadObject"): _s3_object("s3:GetObject"),
    ("s3", "PutObject"): _s3_object("s3:PutObject"),
    ("s3", "DeleteObject"): _s3_object("s3:DeleteObject"),
    ("s3", "ListObjectsV2"): _s3_bucket("s3:ListBucket"),
    ("s3", "HeadBucket"): _s3_bucket("s3:ListBucket"),
    ("s3", "GetBucketReplication"): _s3_bucket("s3:GetReplicationConfiguration"),
    # Route 53
    ("route53", "ListHostedZonesByName"): _everything("route53:ListHostedZonesByName"),
    ("route53", "ListResourceRecordSets"): _hosted_zone("route53:ListResourceRecordSets"),
    ("route53", "ChangeResourceRecordSets"): _change_record_sets,
    ("route53", "GetChange"): _change,
    ("route53", "ListHealthChecks"): _everything("route53:ListHealthChecks"),
    ("route53", "GetHealthCheck"): _health_check("route53:GetHealthCheck"),
    ("route53", "ListTagsForResources"): _health_check("route53:ListTagsForResources"),
    ("route53", "ListTagsForResource"): _health_check("route53:ListTagsForResource"),
    # STS: a plan section's member role in another account (iam.py then checks its trust)
    ("sts", "AssumeRole"): lambda request: [("sts:AssumeRole", request.params.get("RoleArn", ""), {})],
    # SNS, Secrets Manager, KMS, Lambda, Step Functions
    ("sns", "Publish"): _sns_publish,
    ("events", "PutEvents"): _put_events,
    ("secretsmanager", "GetSecretValue"): _secret("secretsmanager:GetSecretValue"),
    ("secretsmanager", "DescribeSecret"): _secret("secretsmanager:DescribeSecret"),
    ("kms", "DescribeKey"): _describe_key,
    ("lambda", "Invoke"): _invoke,
    ("lambda", "GetFunction"): _get_function,
    ("states", "StartExecution"): _states("states:StartExecution", "stateMachineArn"),
    ("states", "DescribeExecution"): _states("states:DescribeExecution", "executionArn"),
    ("states", "StopExecution"): _states("states:StopExecution", "executionArn"),
    ("states", "ListExecutions"): _states("states:ListExecutions", "stateMachineArn"),
    ("states", "GetExecutionHistory"): _states("states:GetExecutionHistory", "executionArn"),
    ("states", "DescribeStateMachine"): _states("states:DescribeStateMachine", "stateMachineArn"),
}


def authorization(request):
    """The checks IAM makes for `request`; an operation outside the table has none and is named."""
    operation = operation_name(request)
    builder = OPERATIONS.get((request.service, operation))
    if builder is None:
        return Authorization(operation, [], unknown=f"{request.service}:{operation} is not in the local stack's IAM table")
    return Authorization(operation, builder(request))
