"""The emulated AWS: moto server, with the AWS behaviour the product depends on and moto lacks,
modelled (test setup only, started by scripts/emulator). Each module says what AWS does:

- rds.py: PromoteReadReplica clears the replica's source, as RDS does; transient states
  (backing-up, ...) last a while and refuse a promotion;
- ec2.py: a started instance can fall back to stopped (capacity, an EBS key), as EC2 does;
- ecs.py: a service's tasks start and stop over time, and its deployment follows them, as ECS's
  do; some can be kept from starting;
- elbv2.py: target health follows the instances (registering, draining, stopped) and can be made
  to fail its health checks, as ELB's health checks would; Auto Scaling registers what it launches;
- quotas.py: GetServiceQuota answers EC2's On-Demand vCPU quota, settable per Region;
- timing.py: on request, AWS's durations on a compressed clock (promotion, boot and status
  checks, Auto Scaling launches, Route 53 propagation): the RTO model;
- s3.py: a conditional PutObject checks and stores atomically, as S3 does;
- alarms.py: CloudWatch alarms are evaluated from their metric data, as CloudWatch does;
- route53.py: health checks keep their alarm settings, endpoint and metric health checks have a
  status, and failover records answer as Route 53's name servers would;
- cloudformation.py: DescribeStacks answers a list parameter as the string it was given;
- dns.py: a DNS server on loopback that gives those answers;
- iam.py: every call a local function makes is authorized against its own template role by a
  real IAM policy evaluator (iam_policies.py, iam_requests.py, ../iam/evaluate.mjs), and a denied
  call is answered as AWS answers it;
- faults.py: the faults of a regional event (a hung region, throttling, lost answers) for the
  functions' requests, when a test asks for them;
- control.py: the local stack's control API under /dr-local/ (DNS answers, held alarms, faults,
  quotas, target health).

    python crates/dr-emulator/moto/server.py -H 127.0.0.1 -p 5000 --dns-port 5053 --template template.yaml \
        --lambda-url http://127.0.0.1:9000 --sfn-url http://127.0.0.1:8083
"""

import argparse

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

import alarms
import cloudformation
import control
import dns
import ec2
import ecs
import elbv2
import faults
import iam
import quotas
import rds
import route53
import s3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--dns-port", type=int, default=5053)
    parser.add_argument("--template", default="template.yaml", help="the SAM template whose roles IAM enforces")
    parser.add_argument("--lambda-url", help="the local Lambda service, where the functions' authorized Invoke calls go")
    parser.add_argument("--sfn-url", help="the local Step Functions, where the functions' authorized calls go")
    parser.add_argument(
        "--name",
        action="append",
        default=[],
        help="NAME=VALUE: a physical name of the local stack (a state machine's ARN, the default plan store)",
    )
    args = parser.parse_args()
    for module in (rds, ec2, ecs, elbv2, quotas, s3, alarms, route53, cloudformation):
        module.install()
    dns.serve(args.host, args.dns_port)
    app = DomainDispatcherApplication(create_backend_app)
    iam.configure(args.template, dict(item.split("=", 1) for item in args.name))
    # IAM first, as AWS authorizes a request before the service acts on it; the faults are the
    # network's and the service's, after.
    # A function's Lambda and Step Functions calls go on to the local services, past the faults.
    app = iam.Iam(faults.Faults(iam.Forward(app)), lambda_url=args.lambda_url, sfn_url=args.sfn_url)
    run_simple(args.host, args.port, control.Control(app), threaded=True)


if __name__ == "__main__":
    main()
