"""Real functions started by the controller through the agents: counters, DHCP, DNS, NAT."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edgeroam.model import OperationKind, OperationState
from edgeroam.testbed.builder import Bed
from edgeroam.testbed.dhcp import request_lease
from edgeroam.testbed.nsutil import call_in_netns
from edgeroam.testbed.runner import Session, start_session
from edgeroam.testbed.sender import send
from edgeroam.testbed.topology import BedTopology
from tests.testbed.worlds import star

pytestmark = pytest.mark.root
INTERVAL = 0.25


@pytest.fixture
def session_of(
    make_bed: Callable[[BedTopology], Bed],
) -> Iterator[Callable[[BedTopology], Session]]:
    sessions: list[Session] = []

    def start(topology: BedTopology) -> Session:
        session = start_session(
            make_bed(topology), interval_s=INTERVAL, tick_s=0.1, stale_after_s=1.0
        )
        sessions.append(session)
        return session

    yield start
    for session in sessions:
        session.stop()


def address_of(bed: Bed, netns: str, role: str) -> str:
    address = next(i.address for i in bed.plan.nodes[netns].ifaces if i.role == role)
    assert address is not None
    return address.split("/")[0]


def started(session: Session, function: str, host: str, params: dict[str, object]) -> str:
    op = session.operate(OperationKind.INSTANTIATE, function, (host,), params=params)
    assert op.state is OperationState.COMPLETED, op.error
    [instance] = op.created_instances
    return instance


def test_counters_match_the_traffic_sent(session_of: Callable[[BedTopology], Session]) -> None:
    session = session_of(star(1))
    bed = session.bed
    guard = started(
        session, "guard", "cpe-1", {"destination": "50.1.1.1", "protocol": "udp", "ports": [9]}
    )
    source = f"instance:{guard}"
    t0 = time.time()
    bytes0 = session.wait_reading(source, "fn.bytes", t0)
    link0 = session.wait_reading("link:acc-1", "ab_bytes", t0)
    terminal = bed.plan.terminals["t1"]
    # Dropped by the guard on the CPE (counted by nft), and passed on (counted on the link).
    dropped = call_in_netns(
        terminal, lambda: send("udp", "50.1.1.1", 20.0, size=1000, count=3000, port=9)
    )
    passed = call_in_netns(
        terminal, lambda: send("udp", "50.1.1.1", 20.0, size=1000, count=2000, port=10)
    )
    t1 = time.time() + 0.05
    counted = session.wait_reading(source, "fn.bytes", t1) - bytes0
    on_link = session.wait_reading("link:acc-1", "ab_bytes", t1) - link0
    assert dropped.sent_bytes == 3_000_000 and passed.sent_bytes == 2_000_000
    assert counted == pytest.approx(dropped.sent_bytes, rel=0.10)
    # The link counts frames (14 more bytes each) and a little background traffic.
    assert on_link == pytest.approx(passed.sent_bytes, rel=0.10)
    assert session.latest("host:cpe-1", "offload.guard.local_mbps") is not None
    # New parameters rebuild the rules; the bytes counted so far are kept.
    op = session.operate(
        OperationKind.UPDATE, "guard", instances=(guard,), params={"ports": [9, 11]}
    )
    assert op.state is OperationState.COMPLETED, op.error
    call_in_netns(terminal, lambda: send("udp", "50.1.1.1", 20.0, size=500, count=1000, port=11))
    total = session.wait_reading(source, "fn.bytes", time.time() + 0.05) - bytes0
    assert total == pytest.approx(dropped.sent_bytes + 500_000, rel=0.10)


def _dns_query(server: str, name: str) -> str | None:
    """The first A record for `name` from `server`, with a hand-built query."""
    query = struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    query += struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(query, (server, 53))
        answer = sock.recv(512)
    if struct.unpack("!H", answer[6:8])[0] == 0:
        return None
    return socket.inet_ntoa(answer[-4:])


def test_a_terminal_gets_a_lease_and_names_from_the_dnsmasq_function(
    session_of: Callable[[BedTopology], Session],
) -> None:
    session = session_of(star(1, dhcp_terminals=("t1",)))
    bed = session.bed
    instance = started(
        session, "dhcp", "cpe-1", {"domain": "home", "records": ["printer=10.128.0.50"]}
    )
    lease = request_lease(bed, "t1")
    assert lease.router == "10.128.0.1" and lease.dns == "10.128.0.1"
    assert lease.mask == 24 and lease.domain == "home"
    last = int(lease.ip.split(".")[-1])
    assert lease.ip.startswith("10.128.0.") and 100 <= last <= 199
    terminal = bed.plan.terminals["t1"]
    assert call_in_netns(terminal, lambda: _dns_query("10.128.0.1", "printer.home")) == (
        "10.128.0.50"
    )
    # With the lease's route the terminal reaches the internet.
    reply = call_in_netns(
        terminal, lambda: send("icmp", "50.1.1.1", 1.0, size=100, count=2, count_replies=True)
    )
    assert reply.replies == 2
    # The function's own counters saw the DHCP and DNS exchange.
    assert session.wait_reading(f"instance:{instance}", "fn.bytes", time.time()) > 0
    # Stopping the function (terminate) stops dnsmasq: no answer any more.
    op = session.operate(OperationKind.TERMINATE, "dhcp", instances=(instance,))
    assert op.state is OperationState.COMPLETED
    with pytest.raises(OSError):
        call_in_netns(terminal, lambda: _dns_query("10.128.0.1", "printer.home"))


def test_nat_is_the_only_way_out_and_forwards_ports(
    session_of: Callable[[BedTopology], Session],
) -> None:
    session = session_of(star(1, routes_back=False))
    bed = session.bed
    terminal = bed.plan.terminals["t1"]

    def ping() -> int:
        result = call_in_netns(
            terminal, lambda: send("icmp", "50.1.1.1", 1.0, size=100, count=3, count_replies=True)
        )
        return result.replies

    assert ping() == 0  # the internet has no route back to the customers' LAN
    nat = started(session, "nat", "srv", {"forwards": ["tcp:8080=10.128.0.10:80"]})
    assert ping() == 3

    # Port forward: the internet connects to the server's public address, the terminal answers.
    listener = call_in_netns(terminal, lambda: socket.create_server(("10.128.0.10", 80)))
    listener.settimeout(5.0)
    peers: list[str] = []

    def serve() -> None:
        conn, peer = listener.accept()
        with conn:
            peers.append(peer[0])
            conn.sendall(b"hello from t1")

    server = threading.Thread(target=serve)
    server.start()
    public = address_of(bed, bed.plan.hosts["srv"], "inet")

    def connect() -> bytes:
        with socket.create_connection((public, 8080), timeout=5.0) as conn:
            return conn.recv(100)

    assert call_in_netns(bed.plan.internet_netns, connect) == b"hello from t1"
    server.join()
    listener.close()
    # The terminal sees the internet's own address: DNAT changed the destination only.
    assert peers == [address_of(bed, bed.plan.internet_netns, "inet")]
    assert session.wait_reading(f"instance:{nat}", "fn.bytes", time.time()) > 0
