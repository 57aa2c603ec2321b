"""Cold migration in the simulator: leases survive, the interruption is reported."""

from __future__ import annotations

import pytest

from edgeroam.gateways import migration
from edgeroam.gateways.leases import Lease, lost, parse_dnsmasq, render_dnsmasq
from edgeroam.gateways.migration import MigrationMode
from edgeroam.model import OperationState, Reason
from tests.gateways.vrgw_world import VrgwWorld, build

MACS = ("02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03")


def _customer_with_terminals(w: VrgwWorld) -> str:
    w.run(0.3)
    w.subscribe("alice", "high")
    w.run(0.3)
    gw = w.vrgw("alice")
    assert gw is not None
    for mac in MACS:
        assert w.driver.dhcp(gw.id, mac, w.now) is not None
    return gw.id


def _migrate(w: VrgwWorld, name: str, target: str, mode: MigrationMode) -> OperationState:
    inst = w.controller.inventory.instances[name]
    op = w.controller.request(
        migration.request(inst, target, mode, Reason(rule="test", message="move")), w.now
    )
    w.run(1.0, step=0.005)
    final = w.controller.operation(op.id)
    assert final is not None
    return final.state


@pytest.mark.parametrize("mode", list(MigrationMode))
@pytest.mark.parametrize("target", ["n2", "n3"], ids=["same-site", "other-site"])
def test_migration_keeps_every_lease(mode: MigrationMode, target: str) -> None:
    w = build(nodes=("n1", "n2", "n3"), pool_size=0)
    name = _customer_with_terminals(w)
    source = w.controller.inventory.instances[name].host
    if source == target:
        target = "n1"
    before = w.driver.leases(name)
    assert len(before) == 3
    assert _migrate(w, name, target, mode) is OperationState.COMPLETED
    assert w.controller.inventory.instances[name].host == target
    assert w.driver.serving_copy(name) is not None
    assert w.driver.serving_copy(name).host == target  # type: ignore[union-attr]
    assert w.driver.state_of(name, source) is None  # source removed
    assert lost(before, w.driver.leases(name)) == {}
    for lease in before:  # renewals answered with the same address
        assert w.driver.dhcp(name, lease.mac, w.now) == lease.ip
    (outage,) = w.driver.outages[name]
    assert outage[1] > outage[0]


def test_context_migration_interrupts_less_than_image_migration() -> None:
    took = {}
    for mode in MigrationMode:
        w = build(nodes=("n1", "n2", "n3"), pool_size=0)
        name = _customer_with_terminals(w)
        target = "n3"
        assert _migrate(w, name, target, mode) is OperationState.COMPLETED
        ((start, end),) = w.driver.outages[name]
        took[mode] = end - start
    t = w.driver.timings
    assert took[MigrationMode.CONTEXT] == pytest.approx(t.cutover_s, abs=1e-6)
    # Image: suspend + transfer, then build and start on the destination, one controller
    # cycle (5 ms here) between steps.
    assert took[MigrationMode.IMAGE] >= t.freeze_s + t.build_s + t.start_s
    assert took[MigrationMode.CONTEXT] < took[MigrationMode.IMAGE]


def test_unknown_mode_is_refused_before_anything_runs() -> None:
    w = build(pool_size=0)
    name = _customer_with_terminals(w)
    inst = w.controller.inventory.instances[name]
    req = migration.request(
        inst,
        "n2" if inst.host == "n1" else "n1",
        MigrationMode.IMAGE,
        Reason(rule="t", message="t"),
    )
    bad = req.model_copy(update={"params": {"_migration": "teleport"}})
    with pytest.raises(ValueError, match="'context' or 'image'"):
        w.controller.request(bad, w.now)


def test_dnsmasq_lease_file_round_trip() -> None:
    text = (
        "1700000000 02:00:00:00:00:0a 192.168.1.100 laptop 01:02:00:00:00:00:00:0a\n"
        "0 02:00:00:00:00:0b 192.168.1.101 * *\n"
        "duid 00:01:00:01:2c:aa\n"
    )
    leases = parse_dnsmasq(text)
    assert [str(x.ip) for x in leases] == ["192.168.1.100", "192.168.1.101"]
    assert parse_dnsmasq(render_dnsmasq(leases)) == leases
    moved = [leases[0], Lease(mac=leases[1].mac, ip="192.168.1.150", expires_at=0)]
    assert lost(leases, moved) == {
        "02:00:00:00:00:0b": "address changed 192.168.1.101 -> 192.168.1.150"
    }
    with pytest.raises(ValueError, match="lease line 1"):
        parse_dnsmasq("12 not-a-mac 1.2.3.4\n")
