"""The emulated AWS: moto server, with the AWS behaviour the product depends on and moto lacks,
modelled (test setup only, started by scripts/emulator). Each module says what AWS does:

- rds.py: PromoteReadReplica clears the replica's source, as RDS does; transient states
  (backing-up, ...) last a while and refuse a promotion;
- ec2.py: a started instance can fall back to stopped (capacity, an EBS key), as EC2 does;
- timing.py: on request, AWS's durations on a compressed clock (promotion, boot and status
  checks, Auto Scaling launches, Route 53 propagation): the RTO model;
- s3.py: a conditional PutObject checks and stores atomically, as S3 does;
- alarms.py: CloudWatch alarms are evaluated from their metric data, as CloudWatch does;
- route53.py: health checks keep their alarm settings, endpoint and metric health checks have a
  status, and failover records answer as Route 53's name servers would;
- cloudformation.py: DescribeStacks answers a list parameter as the string it was given;
- dns.py: a DNS server on loopback that gives those answers;
- faults.py: the faults of a regional event (a hung region, throttling, lost answers) for the
  functions' requests, when a test asks for them;
- control.py: the local stack's control API under /dr-local/ (DNS answers, held alarms, faults).

    python crates/dr-emulator/moto/server.py -H 127.0.0.1 -p 5000 --dns-port 5053
"""

import argparse

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

import alarms
import cloudformation
import control
import dns
import ec2
import faults
import rds
import route53
import s3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--dns-port", type=int, default=5053)
    args = parser.parse_args()
    for module in (rds, ec2, s3, alarms, route53, cloudformation):
        module.install()
    dns.serve(args.host, args.dns_port)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, control.Control(faults.Faults(app)), threaded=True)


if __name__ == "__main__":
    main()
