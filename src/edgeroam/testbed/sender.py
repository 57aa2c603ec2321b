"""A paced ICMP-echo / UDP sender for attack traffic, bounded in time and packets.

hping3's pacing drifts badly at tens of Mbit/s; this sender paces with a token bucket on the
monotonic clock (bursts of at most 10 ms worth of traffic) and counts exactly what it handed to
the kernel, so the testbed can compare its counters with what was really sent.

Safety: it sends only from inside a testbed namespace (``/run/netns/<prefix>*``), or to
loopback, and
every run is capped in duration (``MAX_DURATION_S``) and packets (``MAX_PACKETS``).

    python -m edgeroam.testbed.sender --proto icmp --dst 50.1.1.1 --rate-mbps 90 --duration 10
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
import time
from dataclasses import asdict, dataclass
from typing import Literal

MAX_DURATION_S = 600.0
MAX_PACKETS = 50_000_000
MAX_RATE_MBPS = 10_000.0
MIN_SIZE = 64
MAX_SIZE = 1500
BURST_S = 0.01
IP_HEADER = 20
ICMP_HEADER = 8
UDP_HEADER = 8

#: Every bed of the project (er7-, the tests' er7t…-, the benchmark's er7b-) starts with it.
DEFAULT_PREFIX = "er7"

Proto = Literal["icmp", "udp"]


class SenderError(ValueError):
    """Invalid sender parameters, or sending is not allowed from here."""


@dataclass
class SendResult:
    proto: str
    dst: str
    sent_packets: int = 0
    sent_bytes: int = 0
    """IP bytes (headers included) handed to the kernel."""
    errors: int = 0
    elapsed_s: float = 0.0
    replies: int = 0

    @property
    def mbps(self) -> float:
        return self.sent_bytes * 8 / 1e6 / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "mbps": round(self.mbps, 3)}


def testbed_netns(prefix: str) -> str | None:
    """The testbed namespace (``/run/netns/<prefix>*``) the calling thread is in, if any."""
    try:
        mine = os.stat("/proc/thread-self/ns/net").st_ino
        names = [n for n in os.listdir("/run/netns") if n.startswith(prefix)]
    except OSError:
        return None
    for name in names:
        try:
            if os.stat(f"/run/netns/{name}").st_ino == mine:
                return name
        except OSError:
            continue
    return None


def check(
    proto: str,
    dst: str,
    rate_mbps: float,
    size: int,
    duration_s: float,
    count: int | None,
    prefix: str = DEFAULT_PREFIX,
) -> ipaddress.IPv4Address:
    if proto not in ("icmp", "udp"):
        raise SenderError(f"proto must be icmp or udp, not {proto!r}")
    try:
        address = ipaddress.IPv4Address(dst)
    except ValueError as exc:
        raise SenderError(f"destination {dst!r} is not an IPv4 address") from exc
    if (
        address.is_multicast
        or address.is_unspecified
        or address == ipaddress.IPv4Address("255.255.255.255")
    ):
        raise SenderError(f"destination {address} is not a unicast address")
    if not 0 < rate_mbps <= MAX_RATE_MBPS:
        raise SenderError(f"rate must be within (0, {MAX_RATE_MBPS:g}] Mbit/s, not {rate_mbps}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise SenderError(f"size must be within [{MIN_SIZE}, {MAX_SIZE}] bytes, not {size}")
    if not 0 < duration_s <= MAX_DURATION_S:
        raise SenderError(f"duration must be within (0, {MAX_DURATION_S:g}] s, not {duration_s}")
    if count is not None and not 0 < count <= MAX_PACKETS:
        raise SenderError(f"count must be within [1, {MAX_PACKETS}], not {count}")
    if not address.is_loopback and testbed_netns(prefix) is None:
        raise SenderError(
            f"refusing to send to {address} from outside the testbed: run inside one of the "
            f"namespaces /run/netns/{prefix}* (ip netns exec …); only loopback is allowed here"
        )
    return address


def _checksum_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def send(
    proto: Proto,
    dst: str,
    rate_mbps: float,
    *,
    size: int = 1400,
    duration_s: float = 10.0,
    count: int | None = None,
    port: int = 9,
    stop: threading.Event | None = None,
    count_replies: bool = False,
    prefix: str = DEFAULT_PREFIX,
) -> SendResult:
    """Send until `duration_s`, `count` packets or `stop`, at `rate_mbps` of IP bytes."""
    address = check(proto, dst, rate_mbps, size, duration_s, count, prefix)
    result = SendResult(proto=proto, dst=str(address))
    ident = os.getpid() & 0xFFFF
    icmp = proto == "icmp"
    if icmp:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        packet = bytearray(size - IP_HEADER)
        packet[0] = 8  # echo request, code 0
        # One's-complement sum of the packet with checksum and sequence 0, computed once:
        # each packet only adds its sequence number, patched in place.
        struct.pack_into("!HHH", packet, 2, 0, ident, 0)
        base = _checksum_sum(bytes(packet))
    else:
        # Raw as well: the UDP header is ours (checksum 0 = none, allowed over IPv4), so no
        # local port is bound and nothing can answer into this process.
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
        packet = bytearray(size - IP_HEADER)
        struct.pack_into("!HHHH", packet, 0, 40000 + ident % 20000, port, size - IP_HEADER, 0)
        base = 0
    pack_into = struct.pack_into
    sendto = sock.sendto
    sent = 0
    sock.setblocking(False)
    target = (str(address), 0)
    byte_rate = rate_mbps * 1e6 / 8
    capacity = max(float(size), byte_rate * BURST_S)
    limit = count if count is not None else MAX_PACKETS
    started = time.monotonic()
    deadline = started + duration_s
    tokens = float(size)
    last = started
    seq = 0
    try:
        while result.sent_packets < limit and not (stop is not None and stop.is_set()):
            now = time.monotonic()
            if now >= deadline:
                break
            tokens = min(capacity, tokens + (now - last) * byte_rate)
            last = now
            burst = min(int(tokens // size), limit - result.sent_packets)
            for _ in range(burst):
                if icmp:
                    seq = (seq + 1) & 0xFFFF
                    pack_into("!HHH", packet, 2, _fold(base + seq), ident, seq)
                try:
                    sendto(packet, target)
                    sent += 1
                except OSError:
                    result.errors += 1
            result.sent_packets = sent
            tokens -= burst * size
            if count_replies and icmp:
                result.replies += _drain_replies(sock, ident)
            wait = (size - tokens) / byte_rate
            if wait > 0:
                time.sleep(min(wait, max(0.0, deadline - time.monotonic()), 0.05))
        if count_replies and icmp:
            # Give late replies a moment (bounded) to arrive.
            end = time.monotonic() + 0.5
            while time.monotonic() < end and result.replies < result.sent_packets:
                ready, _, _ = select.select([sock], [], [], 0.05)
                if ready:
                    result.replies += _drain_replies(sock, ident)
    finally:
        result.elapsed_s = time.monotonic() - started
        result.sent_bytes = result.sent_packets * size
        sock.close()
    return result


def _drain_replies(sock: socket.socket, ident: int) -> int:
    got = 0
    while True:
        try:
            data = sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return got
        header = (data[0] & 0x0F) * 4
        if len(data) >= header + 8:
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[header : header + 8])
            if kind == 0 and rid == ident:
                got += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proto", choices=("icmp", "udp"), default="icmp")
    parser.add_argument("--dst", required=True)
    parser.add_argument("--rate-mbps", type=float, required=True)
    parser.add_argument("--size", type=int, default=1400, help="IP packet size in bytes")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (at most 600)")
    parser.add_argument("--count", type=int, default=None, help="stop after this many packets")
    parser.add_argument("--port", type=int, default=9, help="UDP destination port")
    parser.add_argument("--replies", action="store_true", help="count ICMP echo replies")
    parser.add_argument(
        "--prefix", default=DEFAULT_PREFIX, help="testbed namespaces it may send from"
    )
    args = parser.parse_args(argv)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        result = send(
            args.proto,
            args.dst,
            args.rate_mbps,
            size=args.size,
            duration_s=args.duration,
            count=args.count,
            port=args.port,
            stop=stop,
            count_replies=args.replies,
            prefix=args.prefix,
        )
    except (SenderError, OSError) as exc:
        print(f"sender: {exc}", file=sys.stderr)
        return 2
    json.dump(result.as_dict(), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
