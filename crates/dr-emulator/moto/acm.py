"""ACM certificates for the local estate: moto's ACM imports a certificate's PEM and reads its
expiry from the certificate itself (DescribeCertificate's NotAfter), as ACM does, but a test has no
CA to issue one from. This issues a self-signed certificate valid for a given number of days and
imports it into moto's ACM, so that a DR load balancer's listener can carry a certificate that
expires when a test says (ACM: "NotAfter: the time after which the certificate is not valid",
https://docs.aws.amazon.com/acm/latest/APIReference/API_CertificateDetail.html).

    POST /dr-local/acm/certificate {"region", "domain", "days"} -> {"arn"}
"""

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from moto.acm.models import acm_backends

ACCOUNT = "123456789012"


def issue(region, domain, days):
    """A self-signed certificate for `domain`, valid from an hour ago for `days` days, imported."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=float(days)))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    backend = acm_backends[ACCOUNT][region]
    arn = backend.import_certificate(certificate=pem, private_key=private, chain=None, arn=None, tags=[])
    return {"arn": arn}
