"""Heal policy: instances on down hosts get a HEAL proposal, or a note saying why not."""

from __future__ import annotations

import pytest

from edgeroam.inventory import Inventory
from edgeroam.model import HostKind, HostState, Instance, OperationKind, OperationState
from edgeroam.policies.base import PolicyResult
from edgeroam.policies.heal import HealConfig, HealPolicy
from edgeroam.snapshot import OperationSummary, Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache
from tests.conftest import load_world


@pytest.fixture
def inv() -> Inventory:
    inventory = Inventory()
    load_world(inventory)
    return inventory


def add(inv: Inventory, name: str, function: str, host: str, **kw: object) -> Instance:
    inst = Instance(id=name, function=function, host=host, stage="monitoring", **kw)  # type: ignore[arg-type]
    inv.put_instance(inst)
    return inst


def set_state(inv: Inventory, host: str, state: HostState) -> None:
    inv.put_host(inv.hosts[host].model_copy(update={"state": state}))


def evaluate(
    inv: Inventory, ops: tuple[OperationSummary, ...] = (), **config: object
) -> PolicyResult:
    snap = build_snapshot(100.0, inv, TelemetryCache(), ops)
    return HealPolicy().evaluate(snap, HealConfig(**config), None)  # type: ignore[arg-type]


def free_share(inv: Inventory, host: str) -> float:
    """Free vCPU share computed from the hosts' capacity and the instances' flavors."""
    used = sum(inv.flavor_of(i.function).vcpu for i in inv.instances.values() if i.host == host)
    cap = inv.hosts[host].capacity.vcpu
    return (cap - used) / cap


def test_nothing_to_do_when_every_host_is_up(inv: Inventory) -> None:
    add(inv, "fw.1", "fw", "edge-a")
    result = evaluate(inv)
    assert result.proposals == ()
    assert result.notes == ()


@pytest.mark.parametrize("state", [HostState.DOWN, HostState.OFF])
def test_instance_on_failed_host_is_healed_on_the_freest_eligible_host(
    inv: Inventory, state: HostState
) -> None:
    inst = add(inv, "fw.1", "fw", "edge-a", owner="alice", params={"mode": "strict"})
    # Load the candidates unevenly: edge-b gets a cache (large), cloud-1 some small ones.
    add(inv, "cache.1", "cache", "edge-b")
    for i in range(6):
        add(inv, f"dns.{i}", "dns", "cloud-1")
    set_state(inv, "edge-a", state)
    eligible = [
        h.id
        for h in inv.hosts.values()
        if h.state is HostState.READY and h.kind in inv.functions["fw"].placement
    ]
    expected = max(eligible, key=lambda h: (free_share(inv, h), [-ord(c) for c in h]))

    result = evaluate(inv)
    [proposal] = result.proposals
    assert result.notes == ()
    assert proposal.kind is OperationKind.HEAL
    assert proposal.subject == inst.id
    assert proposal.instances == (inst.id,)
    assert proposal.function == "fw"
    assert proposal.owner == "alice"
    assert proposal.hosts == (expected,)
    assert proposal.sources == ("edge-a",)
    assert proposal.params == {"mode": "strict"}
    assert proposal.priority == int(inv.functions["fw"].criticality)
    assert proposal.policy == "heal"
    assert proposal.reason.rule == "host_failed"
    assert proposal.reason.measured == {"host_state": state.value}
    assert "edge-a" in proposal.reason.message
    assert expected in proposal.reason.message


def test_wrong_kinds_are_filtered(inv: Inventory) -> None:
    # cache runs on servers only: edge-b although the cloud host is far freer.
    add(inv, "cache.1", "cache", "edge-a")
    add(inv, "dns.1", "dns", "edge-b")
    set_state(inv, "edge-a", HostState.DOWN)
    assert free_share(inv, "cloud-1") > free_share(inv, "edge-b")
    [proposal] = evaluate(inv).proposals
    assert proposal.hosts == ("edge-b",)


def test_failed_hosts_are_never_targets(inv: Inventory) -> None:
    add(inv, "fw.1", "fw", "edge-a")
    add(inv, "fw.2", "fw", "cloud-1")
    set_state(inv, "edge-a", HostState.DOWN)
    set_state(inv, "cloud-1", HostState.DOWN)
    result = evaluate(inv)
    assert {p.subject: p.hosts for p in result.proposals} == {
        "fw.1": ("edge-b",),
        "fw.2": ("edge-b",),
    }
    assert {p.sources for p in result.proposals} == {("edge-a",), ("cloud-1",)}


def test_no_target_yields_a_note_with_the_filter_verdicts(inv: Inventory) -> None:
    add(inv, "cache.1", "cache", "edge-a")
    # Fill edge-b so a large flavor no longer fits.
    flavor = inv.flavor_of("cache")
    for i in range(int(inv.hosts["edge-b"].capacity.vcpu // flavor.vcpu)):
        add(inv, f"cache.{i + 10}", "cache", "edge-b")
    set_state(inv, "edge-a", HostState.DOWN)
    result = evaluate(inv)
    assert result.proposals == ()
    [note] = result.notes
    assert note.rule == "heal_no_target"
    assert note.details == {"instance": "cache.1", "host": "edge-a"}
    hosts = list(inv.hosts.values())
    not_ready = sum(1 for h in hosts if h.state is not HostState.READY)
    wrong_kind = sum(
        1
        for h in hosts
        if h.state is HostState.READY and h.kind not in inv.functions["cache"].placement
    )
    for expected in (
        f"state_ready removed {not_ready}",
        f"host_kind removed {wrong_kind}",
        "fits_resources removed 1",  # edge-b, the only ready server left
    ):
        assert expected in note.message
    assert "cache.1" in note.message
    assert "edge-a (down)" in note.message


def test_reservations_within_a_cycle_prevent_overcommit(inv: Inventory) -> None:
    # Two large instances on a dead server; the only other server has room for exactly one.
    flavor = inv.flavor_of("cache")
    add(inv, "cache.1", "cache", "edge-a")
    add(inv, "cache.2", "cache", "edge-a")
    room = inv.hosts["edge-b"].capacity.vcpu
    fillers = int((room - flavor.vcpu) // flavor.vcpu)
    for i in range(fillers):
        add(inv, f"cache.{i + 10}", "cache", "edge-b")
    set_state(inv, "edge-a", HostState.DOWN)
    result = evaluate(inv)
    assert [p.subject for p in result.proposals] == ["cache.1"]
    assert [n.details["instance"] for n in result.notes] == ["cache.2"]


def test_busy_instances_are_left_alone(inv: Inventory) -> None:
    add(inv, "fw.1", "fw", "edge-a")
    add(inv, "fw.2", "fw", "edge-a")
    set_state(inv, "edge-a", HostState.DOWN)
    busy = OperationSummary(
        id="op-1",
        kind=OperationKind.HEAL,
        state=OperationState.PROCESSING,
        subject="fw.1",
        instances=("fw.1",),
        hosts=("edge-b",),
        sites=("edge-1",),
        policy="heal",
        created_at=99.0,
        finished_at=None,
    )
    result = evaluate(inv, (busy,))
    assert [p.subject for p in result.proposals] == ["fw.2"]


def test_max_per_cycle(inv: Inventory) -> None:
    for i in range(5):
        add(inv, f"dns.{i}", "dns", "edge-a")
    set_state(inv, "edge-a", HostState.DOWN)
    assert len(evaluate(inv, max_per_cycle=3).proposals) == 3
    assert len(evaluate(inv).proposals) == 5


def test_owned_function_may_heal_onto_its_owners_cpe(inv: Inventory) -> None:
    add(inv, "dns.1", "dns", "edge-a", owner="alice")
    for host in ("edge-a", "edge-b", "cloud-1"):
        set_state(inv, host, HostState.DOWN)
    [proposal] = evaluate(inv).proposals
    assert proposal.hosts == ("cpe-alice",)
    assert inv.hosts["cpe-alice"].kind is HostKind.CPE


def test_policy_does_not_change_its_inputs(inv: Inventory) -> None:
    add(inv, "fw.1", "fw", "edge-a")
    set_state(inv, "edge-a", HostState.DOWN)
    snap: Snapshot = build_snapshot(0.0, inv, TelemetryCache())
    before = snap.host_table.allocated.copy()
    memory = {"kept": 1}
    result = HealPolicy().evaluate(snap, HealConfig(), memory)
    assert result.memory is memory
    assert (snap.host_table.allocated == before).all()
    assert evaluate(inv).proposals == result.proposals
