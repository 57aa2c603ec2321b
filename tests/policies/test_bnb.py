"""The `bnb_lifecycle` policy: load check with hysteresis, scaling by cost, B&B withdrawal,
standbys for guests and cheaper-place migration."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeroam.inventory import Inventory
from edgeroam.model import OperationKind, OperationState, Reading, Role
from edgeroam.policies.base import PolicyResult
from edgeroam.policies.bnb import (
    OVERLOADED,
    UNDERLOADED,
    UP,
    BnbConfig,
    BnbLifecyclePolicy,
    BnbMemory,
    GroupState,
    _next_state,
)
from edgeroam.policies.registry import default_registry
from edgeroam.snapshot import OperationSummary, Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache
from tests.policies.placement.edge_world import (
    CLOUD_CAPACITY,
    DEAR,
    IOT,
    add,
    edge_inventory,
)

GROUP = "iot-c1"
POLICY = BnbLifecyclePolicy()


def config(**kw: Any) -> BnbConfig:
    values: dict[str, Any] = {
        "enabled": True,
        "hold_s": 10,
        "scale_cooldown_s": 0,
        "rebalance_interval_s": 1e9,
        "groups": {GROUP: {"function": "iot", "owner": "c1", "min_instances": 1}},
    }
    values.update(kw)
    return BnbConfig.model_validate(values)


def snap(
    inv: Inventory,
    now: float,
    readings: list[tuple[str, str, float]] = (),  # type: ignore[assignment]
    ops: tuple[OperationSummary, ...] = (),
) -> Snapshot:
    telemetry = TelemetryCache(stale_after=30)
    telemetry.ingest([Reading(source=s, metric=m, value=v, timestamp=now) for s, m, v in readings])
    return build_snapshot(now, inv, telemetry, ops)


def load(value: float) -> tuple[str, str, float]:
    return (f"function:{GROUP}", "load", value)


def usage(host: str, value: float) -> tuple[str, str, float]:
    return (f"host:{host}", "owner_usage", value)


def run(snapshot: Snapshot, cfg: BnbConfig, memory: Any = None) -> PolicyResult:
    return POLICY.evaluate(snapshot, cfg, memory)


def kinds(result: PolicyResult) -> list[tuple[OperationKind, str]]:
    return [(p.kind, p.reason.rule) for p in result.proposals]


# --- configuration and registration -------------------------------------------------------------


def test_registered_and_disabled_by_default() -> None:
    registry = default_registry()
    assert registry.config("bnb_lifecycle").enabled is False


@pytest.mark.parametrize(
    ("settings_", "message"),
    [
        ({"overload_at": 0.7, "overload_clear": 0.8}, "overload_clear must be below overload_at"),
        ({"underload_at": 0.5, "underload_clear": 0.4}, "underload_clear must be above"),
        ({"withdraw_at": 0.5, "rejoin_below": 0.6}, "rejoin_below must be below withdraw_at"),
        ({"groups": {"g": {"function": "f", "min_instances": 3, "max_instances": 2}}}, "above"),
        ({"strategy": "spread"}, "strategy"),
    ],
)
def test_invalid_settings_are_refused_with_a_precise_message(
    settings_: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        BnbConfig.model_validate(settings_)


# --- load check ---------------------------------------------------------------------------------


def test_a_raise_level_must_hold_and_a_clear_level_leaves_the_state() -> None:
    cfg = config()
    s0 = GroupState(UP, None, 0.0)
    s1 = _next_state(s0, 0.9, cfg, 100.0, True)
    assert (s1.state, s1.pending, s1.since) == (UP, OVERLOADED, 100.0)
    s2 = _next_state(s1, 0.9, cfg, 105.0, True)
    assert (s2.state, s2.pending) == (UP, OVERLOADED)
    s3 = _next_state(s2, 0.85, cfg, 110.0, True)
    assert s3.state == OVERLOADED
    assert _next_state(s3, 0.75, cfg, 111.0, True).state == OVERLOADED  # above overload_clear
    assert _next_state(s3, 0.65, cfg, 112.0, True).state == UP
    dip = _next_state(s1, 0.5, cfg, 105.0, True)  # back to normal before the hold ended
    assert (dip.state, dip.pending) == (UP, None)
    low = _next_state(_next_state(s0, 0.2, cfg, 0.0, True), 0.2, cfg, 10.0, True)
    assert low.state == UNDERLOADED
    assert _next_state(low, 0.35, cfg, 11.0, True).state == UNDERLOADED
    assert _next_state(low, 0.45, cfg, 12.0, True).state == UP
    assert _next_state(low, 0.2, cfg, 12.0, False).state == UP  # at the minimum: not entered
    assert _next_state(s0, 0.1, cfg, 50.0, False).pending is None


def test_overload_scales_out_to_the_owners_cpe_after_the_hold_time() -> None:
    inv = edge_inventory()
    add(inv, "a", "cpe-1", group=GROUP)
    cfg = config()
    first = run(snap(inv, 100, [load(1.5)]), cfg)
    assert first.proposals == ()
    second = run(snap(inv, 111, [load(1.5)]), cfg, first.memory)
    assert kinds(second) == [(OperationKind.SCALE_OUT, "bnb_scale_out_overloaded")]
    proposal = second.proposals[0]
    assert proposal.hosts == ("cpe-1",)
    assert proposal.params == {"_group": GROUP, "_role": "active"}
    assert proposal.owner == "c1" and proposal.function == "iot"
    assert proposal.reason.measured["load"] == 1.5
    assert any(n.rule == "bnb_group_overloaded" for n in second.notes)


def test_scale_out_goes_to_the_cheapest_lender_when_the_owners_cpe_is_full() -> None:
    inv = edge_inventory()
    for k in range(3):
        add(inv, f"a{k}", "cpe-1", group=GROUP)
    memory = BnbMemory(groups={GROUP: GroupState(OVERLOADED, None, 0.0)})
    result = run(snap(inv, 100, [load(1.0)]), config(), memory)
    assert [p.hosts for p in result.proposals if p.kind is OperationKind.SCALE_OUT] == [("cpe-2",)]


def cloud_cost_with_share_back(instances_in_cloud: int) -> float:
    """1000·need/remaining per resource, the leaving instance's share counted as remaining."""
    left = instances_in_cloud - 1
    return (
        1000 * IOT.vcpu / (CLOUD_CAPACITY.vcpu - left * IOT.vcpu)
        + 1000 * IOT.memory_mb / (CLOUD_CAPACITY.memory_mb - left * IOT.memory_mb)
        + 1000 * IOT.bandwidth_mbps / (1000 - left * IOT.bandwidth_mbps)
    )


def test_underload_scales_in_the_most_expensive_instance() -> None:
    inv = edge_inventory()
    add(inv, "home", "cpe-1", group=GROUP)
    add(inv, "guest", "cpe-3", group=GROUP)
    add(inv, "remote", "cloud-1", group=GROUP)
    dear = DEAR.per_vcpu * 1 + DEAR.per_memory_mb * 1024 + DEAR.per_bandwidth_mbps * 10
    costs = {"home": 0.0, "guest": dear, "remote": cloud_cost_with_share_back(1)}
    memory = BnbMemory(groups={GROUP: GroupState(UNDERLOADED, None, 0.0)})
    result = run(snap(inv, 100, [load(0.1)]), config(bnb_standbys=0), memory)
    scale_in = [p for p in result.proposals if p.kind is OperationKind.SCALE_IN]
    assert [p.instances for p in scale_in] == [(max(costs, key=costs.__getitem__),)]
    assert scale_in[0].reason.details["costs"] == pytest.approx(costs)


def test_never_below_the_minimum_and_back_up_to_it() -> None:
    inv = edge_inventory()
    add(inv, "only", "cloud-1", group=GROUP)
    memory = BnbMemory(groups={GROUP: GroupState(UNDERLOADED, None, 0.0)})
    result = run(snap(inv, 100, [load(0.0)]), config(), memory)
    assert not [p for p in result.proposals if p.kind is OperationKind.SCALE_IN]
    empty = edge_inventory()
    result = run(snap(empty, 100), config())  # no load reading needed to reach the minimum
    assert kinds(result) == [(OperationKind.SCALE_OUT, "bnb_scale_out_below_minimum")]
    assert result.proposals[0].hosts == ("cpe-1",)


def test_unknown_or_stale_load_changes_nothing() -> None:
    inv = edge_inventory()
    add(inv, "a", "cpe-1", group=GROUP)
    memory = BnbMemory(groups={GROUP: GroupState(OVERLOADED, None, 0.0)})
    assert run(snap(inv, 100), config(), memory).proposals == ()
    telemetry = TelemetryCache(stale_after=30)
    telemetry.ingest([Reading(source=f"function:{GROUP}", metric="load", value=3.0, timestamp=10)])
    stale = build_snapshot(100, inv, telemetry)
    assert run(stale, config(), memory).proposals == ()


def test_a_group_with_an_operation_in_flight_or_cooling_down_waits() -> None:
    inv = edge_inventory()
    add(inv, "a", "cpe-1", group=GROUP)
    memory = BnbMemory(groups={GROUP: GroupState(OVERLOADED, None, 0.0)})
    op = OperationSummary(
        "op-1",
        OperationKind.SCALE_OUT,
        OperationState.PROCESSING,
        GROUP,
        (),
        ("cpe-1",),
        ("home-1",),
        "bnb_lifecycle",
        95.0,
        None,
    )
    assert run(snap(inv, 100, [load(2.0)], (op,)), config(), memory).proposals == ()
    done = OperationSummary(
        "op-1",
        OperationKind.SCALE_OUT,
        OperationState.COMPLETED,
        GROUP,
        (),
        (),
        (),
        "bnb_lifecycle",
        95.0,
        96.0,
    )
    cooling = config(scale_cooldown_s=30)
    assert run(snap(inv, 100, [load(2.0)], (done,)), cooling, memory).proposals == ()
    assert run(snap(inv, 130, [load(2.0)], (done,)), cooling, memory).proposals != ()


# --- B&B nodes ----------------------------------------------------------------------------------


def test_a_busy_owner_withdraws_the_node_and_its_guests_move() -> None:
    inv = edge_inventory()
    add(inv, "a", "cpe-1", group=GROUP)
    add(inv, "guest", "cpe-2", group=GROUP)
    add(inv, "c2-own", "cpe-2", owner="c2", group="c2-stuff")
    cfg = config(bnb_standbys=0)
    result = run(snap(inv, 100, [load(0.5), usage("cpe-2", 0.9)]), cfg)
    migrations = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    assert [(p.instances, p.sources) for p in migrations] == [(("guest",), ("cpe-2",))]
    assert migrations[0].hosts[0] not in ("cpe-2",)
    assert migrations[0].hosts == ("cpe-1",)  # the owner's own CPE has room and costs nothing
    assert result.memory.withdrawn == frozenset({"cpe-2"})
    assert any(n.rule == "bnb_withdrawn" for n in result.notes)
    # While withdrawn, the node is not offered to anybody else's scale-out.
    for k in range(2):
        add(inv, f"more{k}", "cpe-1", group=GROUP)
    overloaded = BnbMemory(
        groups={GROUP: GroupState(OVERLOADED, None, 0.0)}, withdrawn=frozenset({"cpe-2"})
    )
    out = run(snap(inv, 101, [load(2.0), usage("cpe-2", 0.7)]), cfg, overloaded)
    assert [p.hosts for p in out.proposals if p.kind is OperationKind.SCALE_OUT] == [("cpe-3",)]


def test_a_withdrawn_node_lends_again_after_a_calm_spell() -> None:
    inv = edge_inventory()
    cfg = config(rejoin_hold_s=60, groups={})
    memory = BnbMemory(withdrawn=frozenset({"cpe-2"}))
    m1 = run(snap(inv, 100, [usage("cpe-2", 0.6)]), cfg, memory).memory
    assert m1.withdrawn == {"cpe-2"} and "cpe-2" not in m1.calm_since  # above rejoin_below
    m2 = run(snap(inv, 110, [usage("cpe-2", 0.3)]), cfg, m1).memory
    assert m2.calm_since == {"cpe-2": 110}
    m3 = run(snap(inv, 160, [usage("cpe-2", 0.3)]), cfg, m2).memory
    assert m3.withdrawn == {"cpe-2"}
    r4 = run(snap(inv, 170, [usage("cpe-2", 0.2)]), cfg, m3)
    assert r4.memory.withdrawn == frozenset()
    assert any(n.rule == "bnb_rejoined" for n in r4.notes)


def test_guests_that_no_longer_fit_next_to_the_owners_usage_also_withdraw() -> None:
    inv = edge_inventory()
    for k in range(3):
        add(inv, f"g{k}", "cpe-2", group=GROUP)
    # 0.3 of 4 vCPU for the owner + 3 guests = 4.2 > 4, though 0.3 < withdraw_at.
    result = run(snap(inv, 100, [usage("cpe-2", 0.3)]), config(bnb_standbys=0))
    assert result.memory.withdrawn == frozenset({"cpe-2"})
    assert len([p for p in result.proposals if p.kind is OperationKind.MIGRATE]) == 3


def test_bnb_guests_get_standbys_away_from_the_actives() -> None:
    inv = edge_inventory()
    add(inv, "home", "cpe-1", group=GROUP)
    add(inv, "guest", "cpe-2", group=GROUP)
    result = run(snap(inv, 100, [load(0.5)]), config(bnb_standbys=1))
    standby = [p for p in result.proposals if p.params.get("_role") == "standby"]
    assert len(standby) == 1
    assert standby[0].subject == f"{GROUP}.standby"
    assert standby[0].hosts[0] not in ("cpe-1", "cpe-2")
    add(inv, "spare1", "cpe-3", group=GROUP, role=Role.STANDBY)
    add(inv, "spare2", "cloud-1", group=GROUP, role=Role.STANDBY)
    surplus = run(snap(inv, 100, [load(0.5)]), config(bnb_standbys=1))
    scale_in = [p for p in surplus.proposals if p.kind is OperationKind.SCALE_IN]
    assert [p.instances for p in scale_in] == [("spare2",)]  # the cloud one costs more


def test_instances_move_to_a_cheaper_place_with_margin_and_cooldown() -> None:
    inv = edge_inventory()
    add(inv, "remote", "cloud-1", group=GROUP)
    add(inv, "home", "cpe-1", group=GROUP)
    cfg = config(rebalance_interval_s=60, migration_cooldown_s=600, migration_margin=5)
    result = run(snap(inv, 100, [load(0.5)]), cfg)
    moves = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    assert [(p.instances, p.hosts) for p in moves] == [(("remote",), ("cpe-1",))]
    saving = cloud_cost_with_share_back(1)
    assert moves[0].reason.details["saving"] == pytest.approx(saving)
    again = run(snap(inv, 200, [load(0.5)]), cfg, result.memory)
    assert not [p for p in again.proposals if p.kind is OperationKind.MIGRATE]  # cooldown
    later = run(snap(inv, 800, [load(0.5)]), cfg, again.memory)
    assert [p.instances for p in later.proposals if p.kind is OperationKind.MIGRATE] == [
        ("remote",)
    ]
    stingy = config(rebalance_interval_s=60, migration_margin=saving + 1)
    assert not [
        p
        for p in run(snap(inv, 100, [load(0.5)]), stingy).proposals
        if p.kind is OperationKind.MIGRATE
    ]


def test_the_policy_changes_neither_the_snapshot_nor_its_memory() -> None:
    inv = edge_inventory()
    add(inv, "guest", "cpe-2", group=GROUP)
    snapshot = snap(inv, 100, [load(2.0), usage("cpe-2", 0.95)])
    lends = snapshot.host_table.lends.copy()
    allocated = snapshot.host_table.allocated.copy()
    memory = BnbMemory()
    first = run(snapshot, config(), memory)
    assert (snapshot.host_table.lends == lends).all()
    assert (snapshot.host_table.allocated == allocated).all()
    assert memory == BnbMemory()
    assert run(snapshot, config(), memory).proposals == first.proposals  # deterministic


@settings(max_examples=40, deadline=None)
@given(
    members=st.lists(st.sampled_from(["cpe-1", "cpe-2", "cpe-3", "cloud-1"]), max_size=6),
    loads=st.lists(st.floats(0, 3), min_size=1, max_size=6),
    minimum=st.integers(0, 3),
    maximum=st.integers(3, 5),
)
def test_bounds_are_never_crossed(
    members: list[str], loads: list[float], minimum: int, maximum: int
) -> None:
    inv = edge_inventory()
    for k, host in enumerate(members):
        add(inv, f"m{k}", host, group=GROUP)
    group = {"function": "iot", "owner": "c1", "min_instances": minimum, "max_instances": maximum}
    cfg = config(hold_s=0, groups={GROUP: group}, bnb_standbys=0)
    memory: Any = None
    for step, value in enumerate(loads):
        snapshot = snap(inv, 100 + step, [load(value)])
        result = run(snapshot, cfg, memory)
        memory = result.memory
        outs = [p for p in result.proposals if p.kind is OperationKind.SCALE_OUT]
        ins = [p for p in result.proposals if p.kind is OperationKind.SCALE_IN]
        assert len(outs) + len(ins) <= 1
        if ins:
            assert len(members) > minimum
        if outs:
            assert len(members) < maximum or len(members) < minimum
            host = outs[0].hosts[0]
            free = snapshot.host_table.free[snapshot.host_table.index[host]]
            assert (free > [IOT.vcpu, IOT.memory_mb, IOT.bandwidth_mbps]).all()
