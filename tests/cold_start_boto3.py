"""The Python equivalent of a dr-orchestrator function's start, for `bench-cold-start`: what a
Python 3 / boto3 Lambda does before its first request (the runtime's process starts, imports
the handler module, which builds its clients as module globals, then polls the Runtime API for
the first event). The clients are the ones dr-core's `AwsClients` holds: nine services for the
primary region, the DR region and the function's home region (the DR region again), and Route 53
with its CloudWatch in us-east-1.

    AWS_LAMBDA_RUNTIME_API=127.0.0.1:PORT python cold_start_boto3.py [--no-clients]
"""

import os
import sys
import urllib.request

import boto3

SERVICES = ["autoscaling", "cloudwatch", "ec2", "lambda", "rds", "s3", "secretsmanager", "stepfunctions", "sns"]

if "--no-clients" not in sys.argv:
    session = boto3.session.Session()
    regions = ("eu-west-3", "eu-west-1", "eu-west-1")
    clients = [session.client(service, region_name=region) for region in regions for service in SERVICES]
    clients += [session.client("route53", region_name="us-east-1"), session.client("cloudwatch", region_name="us-east-1")]

# The first poll: the bench's stub notes when it arrives and never answers.
urllib.request.urlopen(f"http://{os.environ['AWS_LAMBDA_RUNTIME_API']}/2018-06-01/runtime/invocation/next")
