"""Service Quotas, modelled where moto is not Service Quotas: GetServiceQuota answers EC2's
On-Demand vCPU quota. moto 5.2 knows the quotas of service code `vpc` only and answers every other
one NoSuchResourceException, so the capacity check before a scale-up (are there enough vCPUs in the
DR Region for the group's instances?) could not run locally.

EC2 manages On-Demand capacity as a number of vCPUs per Region per instance-family group; the
standard families are one quota, "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z)
instances", code L-1216C47A (EC2 User Guide, "On-Demand Instance quotas":
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-on-demand-instances.html#ec2-on-demand-instances-limits ,
and Service Quotas API Reference, GetServiceQuota:
https://docs.aws.amazon.com/servicequotas/2019-06-24/apireference/API_GetServiceQuota.html ,
"Retrieves the applied quota value for the specified account-level or resource-level quota").

    POST   /dr-local/quotas  {"region", "service_code", "quota_code", "value"}: the applied value
                             of that quota in that Region
    DELETE /dr-local/quotas  every quota back to its default
"""

import threading

from moto.servicequotas.models import ServiceQuotasBackend

# The quotas modelled: (service code, quota code) -> what GetServiceQuota says of it besides its
# value. The applied value is the account's and varies by account (AWS raises it with use). The
# local stack is one account for every test's estate at once, whose instances accumulate over the
# suite: its default must never bind, so it is far above any suite's use; a test that needs the
# quota to bind sets the value it needs.
QUOTAS = {
    ("ec2", "L-1216C47A"): {
        "ServiceName": "Amazon Elastic Compute Cloud (Amazon EC2)",
        "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
        "Unit": "None",
        "Adjustable": True,
        "GlobalQuota": False,
        "default": 100000.0,
    },
}

_lock = threading.Lock()
# (region, service code, quota code) -> applied value
_applied = {}


def set_value(region, service_code, quota_code, value):
    if (service_code, quota_code) not in QUOTAS:
        raise ValueError(f"no model of quota {service_code}/{quota_code} (modelled: {sorted(QUOTAS)})")
    with _lock:
        _applied[(region, service_code, quota_code)] = float(value)


def reset():
    with _lock:
        _applied.clear()


def _quota(account, region, service_code, quota_code):
    model = QUOTAS[(service_code, quota_code)]
    with _lock:
        value = _applied.get((region, service_code, quota_code), model["default"])
    return {
        "ServiceCode": service_code,
        "ServiceName": model["ServiceName"],
        "QuotaArn": f"arn:aws:servicequotas:{region}:{account}:{service_code}/{quota_code}",
        "QuotaCode": quota_code,
        "QuotaName": model["QuotaName"],
        "Value": value,
        "Unit": model["Unit"],
        "Adjustable": model["Adjustable"],
        "GlobalQuota": model["GlobalQuota"],
    }


_get_service_quota = ServiceQuotasBackend.get_service_quota


def _get(self, service_code, quota_code):
    if (service_code, quota_code) in QUOTAS:
        return _quota(self.account_id, self.region_name, service_code, quota_code)
    return _get_service_quota(self, service_code, quota_code)


def install():
    ServiceQuotasBackend.get_service_quota = _get
