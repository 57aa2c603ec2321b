"""Real vRGWs in network namespaces: DHCP lease, NAT, isolation, live update, migration.

Needs root and the testbed's tools; skipped (with the reason) otherwise, and failing loudly
when run as root on a machine missing a prerequisite. Everything is created under a prefix of
its own and removed by the fixture, also when a test fails.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from edgeroam.arbiter import ArbiterConfig
from edgeroam.controller import Controller
from edgeroam.gateways import migration
from edgeroam.gateways.netns_vrgw import (
    INTERNET_SERVER,
    NetnsVrgwDriver,
    VrgwBed,
    dhcp,
    mac_of,
    reachable,
)
from edgeroam.gateways.settings import Writer, apply_changes, to_params
from edgeroam.gateways.template import vrgw_flavor, vrgw_function
from edgeroam.gateways.world import settings_of
from edgeroam.model import (
    Customer,
    Host,
    HostKind,
    Instance,
    OperationKind,
    OperationRequest,
    OperationState,
    Reason,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.registry import default_registry
from edgeroam.testbed import prereqs
from edgeroam.testbed.nsutil import call_in_netns, list_netns

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

PREFIX = f"er8-t{os.getpid() % 100000}-"


@pytest.fixture(scope="module")
def bed() -> Iterator[VrgwBed]:
    if os.geteuid() != 0:
        pytest.skip("needs root: network namespaces, nftables, cgroups")
    missing = prereqs.missing()
    if missing:
        pytest.fail(f"running as root but the testbed lacks: {', '.join(map(str, missing))}")
    made = VrgwBed(prefix=PREFIX, nodes=("na", "nb"), trunk_mbps=200)
    try:
        made.up()
        made.add_home("alice", 1)
        made.add_home("bob", 1)
        yield made
    finally:
        report = made.down()
        assert report["left_behind"] == []
        assert list_netns(PREFIX) == []


class World:
    def __init__(self, bed: VrgwBed) -> None:
        self.bed = bed
        self.driver = NetnsVrgwDriver(bed)
        registry = default_registry()
        registry.configure("gateways", {"enabled": True, "pool_size": 1})
        self.controller = Controller(
            self.driver, registry=registry, arbiter=ArbiterConfig(cooldown_s=0.0)
        )
        self.now = 0.0
        c = self.controller
        c.put("site", Site(id="dc1", kind=SiteKind.DATACENTER), 0)
        c.put("flavor", vrgw_flavor(), 0)
        c.put("function", vrgw_function(), 0)
        for node in bed.nodes:
            c.put(
                "host",
                Host(
                    id=node,
                    kind=HostKind.SERVER,
                    site="dc1",
                    capacity=Resources(vcpu=2, memory_mb=2048, bandwidth_mbps=200),
                    labels={"vrgw-node": "true"},
                ),
                0,
            )

    def tick(self, n: int = 1) -> None:
        for _ in range(n):
            self.now += 0.1
            self.controller.tick(self.now)

    def vrgw(self, customer: str) -> Instance:
        found = [i for i in self.controller.inventory.instances.values() if i.owner == customer]
        assert len(found) == 1, found
        return found[0]

    def update(self, customer: str, changes: dict[str, object]) -> None:
        inst = self.vrgw(customer)
        new = apply_changes(settings_of(inst), changes, Writer.CUSTOMER)
        op = self.controller.request(
            OperationRequest(
                kind=OperationKind.UPDATE,
                subject=inst.id,
                instances=(inst.id,),
                function=inst.function,
                owner=customer,
                hosts=(inst.host,),
                params=to_params(new),
                reason=Reason(rule="test", message="settings"),
            ),
            self.now,
        )
        done = self.controller.operation(op.id)
        assert done is not None and done.state is OperationState.COMPLETED, done


@pytest.fixture(scope="module")
def world(bed: VrgwBed) -> Iterator[World]:
    w = World(bed)
    try:
        w.tick(3)  # pools fill: one suspended vRGW per node
        for name in ("alice", "bob"):
            w.controller.put(
                "customer",
                Customer(id=name, profile="high", labels={"vrgw": "true", "access-node": "an1"}),
                w.now,
            )
        w.tick(3)
        yield w
    finally:
        w.driver.close()


def _serve_tcp(ns: str, port: int) -> tuple[list[str], threading.Event]:
    """A TCP server in `ns` recording the address of every peer (until `stop` is set)."""
    peers: list[str] = []
    stop = threading.Event()
    listening = threading.Event()

    def serve() -> None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen()
        srv.settimeout(0.2)
        listening.set()
        with srv:
            while not stop.is_set():
                try:
                    conn, addr = srv.accept()
                except TimeoutError:
                    continue
                peers.append(addr[0])
                conn.close()

    def in_ns() -> None:
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()

    call_in_netns(ns, in_ns)
    assert listening.wait(3)
    return peers, stop


def _peers(peers: list[str], count: int = 1, timeout_s: float = 3.0) -> list[str]:
    """The recorded peers once `count` arrived (the server accepts in its own thread)."""
    deadline = time.monotonic() + timeout_s
    while len(peers) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return list(peers)


def _connect(ns: str, address: str, port: int, source: str | None = None) -> bool:
    def attempt() -> bool:
        try:
            bind = (source, 0) if source else None
            with socket.create_connection((address, port), timeout=1.5, source_address=bind):
                return True
        except OSError:
            return False

    return call_in_netns(ns, attempt)


def test_vrgw_leases_nats_and_isolates(world: World, bed: VrgwBed) -> None:
    alice, bob = world.vrgw("alice"), world.vrgw("bob")
    assert world.driver.serving_copy(alice.id) is not None
    assert world.driver.serving_copy(bob.id) is not None
    # Bob moves his home network to 192.168.2.0/24, live (dnsmasq restarts, nothing else).
    pid = world.driver.serving_copy(bob.id).dnsmasq.pid  # type: ignore[union-attr]
    world.update(
        "bob",
        {
            "Device.IP.Interface.1.IPv4Address.1.IPAddress": "192.168.2.1",
            "Device.DHCPv4.Server.Pool.1.MinAddress": "192.168.2.100",
            "Device.DHCPv4.Server.Pool.1.MaxAddress": "192.168.2.150",
        },
    )
    assert world.driver.serving_copy(bob.id).dnsmasq.pid != pid  # type: ignore[union-attr]
    a_lease = dhcp(bed, "alice")
    b_lease = dhcp(bed, "bob")
    assert 100 <= int(a_lease.ip.split(".")[3]) <= 199 and a_lease.router == "192.168.1.1"
    assert a_lease.ip.startswith("192.168.1.") and b_lease.ip.startswith("192.168.2.")
    assert b_lease.router == "192.168.2.1" and a_lease.dns == "192.168.1.1"
    # Each lease is in its own vRGW's table only.
    a_mac, b_mac = mac_of(bed, "alice"), mac_of(bed, "bob")
    assert {x.mac for x in world.driver.leases(alice.id)} == {a_mac}
    assert {x.mac for x in world.driver.leases(bob.id)} == {b_mac}
    # NAT: the Internet sees alice's vRGW's WAN address, not her LAN address.
    peers, stop = _serve_tcp(bed.inet, 7000)
    try:
        assert _connect(bed.terminal_ns("alice"), str(INTERNET_SERVER), 7000)
        wan = world.driver.serving_copy(alice.id).wan.ip  # type: ignore[union-attr]
        assert _peers(peers) == [str(wan)]
        assert ipaddress.IPv4Address(str(wan)) in ipaddress.IPv4Network("100.64.0.0/10")
    finally:
        stop.set()
    # Isolation: bob reaches the Internet but nothing of alice's.
    tb = bed.terminal_ns("bob")
    assert reachable(tb, str(INTERNET_SERVER))
    for target in (a_lease.ip, "192.168.1.1", str(wan)):
        assert not reachable(tb, target), f"bob's terminal reached {target}"
    assert not _connect(tb, str(wan), 22)
    # Nor can the Internet open a connection to alice's terminal (firewall, no forward yet).
    assert not _connect(bed.inet, str(wan), 8080)


def test_port_forward_applies_live_without_restart(world: World, bed: VrgwBed) -> None:
    alice = world.vrgw("alice")
    copy = world.driver.serving_copy(alice.id)
    assert copy is not None and copy.dnsmasq is not None
    pid = copy.dnsmasq.pid
    lease = dhcp(bed, "alice")
    peers, stop = _serve_tcp(bed.terminal_ns("alice"), 80)
    try:
        world.update(
            "alice",
            {
                "Device.NAT.PortMapping.1.ExternalPort": 8080,
                "Device.NAT.PortMapping.1.InternalPort": 80,
                "Device.NAT.PortMapping.1.InternalClient": lease.ip,
            },
        )
        assert _connect(bed.inet, str(copy.wan.ip), 8080, source=str(INTERNET_SERVER))
        assert _peers(peers) == [str(INTERNET_SERVER)]  # forwarded without source NAT
    finally:
        stop.set()
    assert copy.dnsmasq is not None and copy.dnsmasq.pid == pid  # nothing restarted
    _, plan = world.driver.updates[-1]
    assert plan.reload_nftables and plan.restarts == ()


@pytest.mark.parametrize("mode", [migration.MigrationMode.CONTEXT, migration.MigrationMode.IMAGE])
def test_migration_keeps_the_lease(
    world: World, bed: VrgwBed, mode: migration.MigrationMode
) -> None:
    alice = world.vrgw("alice")
    lease = dhcp(bed, "alice")
    before = world.driver.leases(alice.id)
    assert lease.ip in {str(x.ip) for x in before}
    target = "nb" if alice.host == "na" else "na"
    op = world.controller.request(
        migration.request(alice, target, mode, Reason(rule="test", message="move")), world.now
    )
    final = world.controller.operation(op.id)
    assert final is not None and final.state is OperationState.COMPLETED, final
    moved = world.vrgw("alice")
    assert moved.host == target
    copy = world.driver.serving_copy(alice.id)
    assert copy is not None and copy.node == bed.node_index(target)
    # The destination knew the terminal before it asked again …
    assert {(x.mac, str(x.ip)) for x in world.driver.leases(alice.id)} >= {
        (x.mac, str(x.ip)) for x in before
    }
    # … renews it with the same address, and carries its traffic through the new node.
    again = dhcp(bed, "alice")
    assert again.ip == lease.ip
    assert reachable(bed.terminal_ns("alice"), str(INTERNET_SERVER))
    start, end = world.driver.outages[alice.id][-1]
    assert 0 < end - start < 5.0
    assert len([c for c in world.driver.copies if c[0] == alice.id]) == 1  # source removed
