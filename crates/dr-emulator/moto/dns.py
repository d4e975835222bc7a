"""A DNS server on loopback that answers for the emulator's public hosted zones as Route 53's name
servers would (route53.answer: failover records follow their health checks). The product's DNS
verification asks it (DR_DNS_RESOLVER in the local stack) where in AWS it asks the resolver.

Only what the project needs: one question per UDP query, A / AAAA / CNAME answers, NXDOMAIN for
names the zones do not hold. The message format is RFC 1035's.
"""

import ipaddress
import socket
import struct
import threading

import route53

TYPES = {1: "A", 5: "CNAME", 28: "AAAA"}


def _read_name(message, offset):
    labels = []
    while True:
        length = message[offset]
        offset += 1
        if length == 0:
            return ".".join(labels) + ".", offset
        labels.append(message[offset : offset + length].decode("ascii", "replace"))
        offset += length


def _encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        raw = label.encode("ascii")
        out += bytes([len(raw)]) + raw
    return out + b"\0"


def _rdata(rtype, value):
    if rtype == "A":
        return ipaddress.IPv4Address(value).packed
    if rtype == "AAAA":
        return ipaddress.IPv6Address(value).packed
    return _encode_name(value)


def respond(query):
    """The response to one query message."""
    (ident, flags, qdcount) = struct.unpack("!HHH", query[:6])
    if qdcount != 1:
        return struct.pack("!HHHHHH", ident, 0x8000 | 0x0001, 0, 0, 0, 0)  # FORMERR
    name, end = _read_name(query, 12)
    qtype, qclass = struct.unpack("!HH", query[end : end + 4])
    question = query[12 : end + 4]
    rtype = TYPES.get(qtype)
    values, ttl = [], 0
    if rtype is not None:
        values, _, ttl = route53.answer(name, rtype)
    recursion_desired = flags & 0x0100
    rcode = 0 if values else 3  # NOERROR / NXDOMAIN
    header = struct.pack("!HHHHHH", ident, 0x8000 | 0x0400 | recursion_desired | rcode, 1, len(values), 0, 0)
    answers = b""
    for value in values:
        data = _rdata(rtype, value)
        answers += struct.pack("!HHHIH", 0xC00C, qtype, qclass, ttl, len(data)) + data
    return header + question + answers


def serve(host, port):
    """Answers on host:port (UDP) in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, port))

    def loop():
        while True:
            query, peer = sock.recvfrom(512)
            try:
                sock.sendto(respond(query), peer)
            except Exception as error:  # a malformed query must not stop the server
                print(f"dns: cannot answer {peer}: {error}", flush=True)

    threading.Thread(target=loop, name="dns", daemon=True).start()
