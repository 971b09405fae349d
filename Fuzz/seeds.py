#!/usr/bin/env python3
"""Writes the hand-made seed inputs of Fuzz/Corpus/ (run from the repository root).

Each input's first byte selects what the target does with the rest (see each target).
Inputs the fuzzer found are merged into the same folders with `scripts/fuzz.sh --merge`
(named by their SHA-1; only those that add coverage)."""
import os
import socket
import struct


def write(target, name, data):
    folder = f"Fuzz/Corpus/{target}"
    os.makedirs(folder, exist_ok=True)
    with open(f"{folder}/{name}", "wb") as f:
        f.write(data)


# FuzzAddress: 0 text, 1 int32 port + host, 2 sockaddr bytes, 3 uint16 length + sockaddr_storage.
T = "FuzzAddress"
texts = ["127.0.0.1:80", "0.0.0.0:0", "255.255.255.255:65535", "[::1]:443", "[fe80::1%lo]:8080",
         "[fe80::1%2]:1", "[::ffff:192.0.2.1]:53", "[2001:db8::1:0:0:1]:9", "/run/app.sock", "./x.sock",
         "@my-service", "@", "127.1", "0x7f000001", "1.2.3.4:99999", "[::1]80", "fe80::1%eth0",
         "2001:db8:0:0:1:0:0:1"]
for i, text in enumerate(texts):
    write(T, f"text-{i:02}", b"\x00" + text.encode())
for i, (port, host) in enumerate([(80, "127.0.0.1"), (-1, "::1"), (65536, "10.0.0.1"), (8080, "fe80::1%lo"), (0, "fe80::1%1")]):
    write(T, f"hostport-{i}", b"\x01" + struct.pack("<i", port) + host.encode())
sin = struct.pack("<H", 2) + struct.pack(">H", 80) + socket.inet_aton("127.0.0.1") + bytes(8)
sin6 = (struct.pack("<H", 10) + struct.pack(">H", 443) + struct.pack(">I", 0x12345)
        + socket.inet_pton(socket.AF_INET6, "fe80::1") + struct.pack("<I", 1))
unix = struct.pack("<H", 1) + b"/tmp/a.sock\0"
abstract = struct.pack("<H", 1) + b"\0name"
full_path = struct.pack("<H", 1) + b"p" * 108
netlink = struct.pack("<HHII", 16, 0, 1234, 0)
packet = struct.pack("<HHiHBB", 17, 0x0800, 1, 1, 0, 6) + bytes(8)
for i, data in enumerate([sin, sin6, unix, abstract, full_path, netlink, packet, b"\x02", b"\x0a\x00\x01"]):
    write(T, f"sockaddr-{i}", b"\x02" + data)
for i, (length, data) in enumerate([(16, sin), (28, sin6), (200, sin), (3, abstract)]):
    write(T, f"storage-{i}", b"\x03" + struct.pack("<H", length) + data)


# FuzzControlMessage: a control buffer; cmsghdr is (size_t len, int level, int type), padded to 8.
def record(level, kind, payload):
    length = 16 + len(payload)
    return struct.pack("<Qii", length, level, kind) + payload + bytes(-length % 8)


T = "FuzzControlMessage"
seeds = {
    "rights": record(1, 1, struct.pack("<3i", 3, 4, 1000)),
    "rights-garbage": record(1, 1, struct.pack("<2i", -1, 0x7FFFFFFF) + b"\x01"),
    "credentials": record(1, 2, struct.pack("<iII", 1234, 1000, 1000)),
    "timestamp": record(1, 29, struct.pack("<qq", 1700000000, 123456)),
    "timestampns": record(1, 35, struct.pack("<qq", 1700000000, 123456789)),
    "timestamping": record(1, 37, struct.pack("<6q", 1, 2, 0, 0, 3, 4)),
    "pktinfo": record(0, 8, struct.pack("<i", 1) + socket.inet_aton("127.0.0.1") + socket.inet_aton("127.0.0.2")),
    "ttl-tos": record(0, 2, struct.pack("<i", 64)) + record(0, 1, b"\x10"),
    "pktinfo6": record(41, 50, socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("<I", 1)),
    "hoplimit-tclass": record(41, 52, struct.pack("<i", 64)) + record(41, 67, struct.pack("<i", 0)),
    "recverr": record(0, 11, struct.pack("<IBBBBII", 111, 2, 3, 3, 0, 0, 0) + sin),
    "recverr6": record(41, 25, struct.pack("<IBBBBII", 111, 3, 1, 4, 0, 0, 0) + struct.pack("<H", 10) + bytes(26)),
    "origdst": record(0, 20, sin),
    "gro-gso": record(17, 104, struct.pack("<i", 1400)) + record(17, 103, struct.pack("<H", 1200)),
    "unknown": record(99, 99, b"abc"),
    "short-len": struct.pack("<Qii", 8, 1, 1),
    "long-len": struct.pack("<Qii", 1000, 1, 1) + bytes(8),
    "truncated-last": record(0, 2, struct.pack("<i", 64))[:20],
}
for name, data in seeds.items():
    write(T, name, data)

# FuzzOptions: first byte < 128 picks a decoder (27 of them), >= 128 an encoder (9).
T = "FuzzOptions"
short = [struct.pack("<i", 1), struct.pack("<i", 0), b"\x01", struct.pack("<i", -1)]
special = {
    9: [b"lo\0", b"eth0"], 10: [b"cubic\0", b"bbr"], 11: [struct.pack("<ii", 1, 5), struct.pack("<ii", 0, 0)],
    12: [struct.pack("<qq", 2, 500000), struct.pack("<qq", 0, 0)], 18: [socket.inet_aton("224.0.0.1")],
    20: [bytes(104), bytes(232), bytes(103)], 21: [struct.pack("<iII", 1, 2, 3)], 25: [struct.pack("<Q", 7)],
}
for selector in range(27):
    for i, value in enumerate(short + special.get(selector, [])):
        write(T, f"decode-{selector:02}-{i}", bytes([selector]) + value)
for k in range(9):
    selector = 128 + (k - 128 % 9) % 9
    for i, value in enumerate([struct.pack("<q", 64), struct.pack("<q", -1), struct.pack("<qq", 1, 0), struct.pack("<qq", 0, 1), b"reno"]):
        write(T, f"encode-{k}-{i}", bytes([selector]) + value)
