"""The offload policy on hand-made snapshots: trigger, selection, scope, revert, guards."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from edgeroam.model import (
    CpeAction,
    HostState,
    Instance,
    LifecycleStage,
    OperationKind,
    ParameterSpec,
    TrafficBehaviour,
)
from edgeroam.policies.base import PolicyResult
from edgeroam.policies.offload import (
    ColumnIndex,
    OffloadConfig,
    OffloadMemory,
    OffloadPolicy,
    offload_group,
    pair_band_metric,
)
from edgeroam.policies.registry import default_registry
from edgeroam.snapshot import build_snapshot
from edgeroam.telemetry.cache import TelemetryCache
from tests.policies.offload_world import FLAVOR, Band, World, copy, op, owner, snapshot

POLICY = OffloadPolicy()


def run(
    world: World,
    bands: dict[float, Band | None],
    config: OffloadConfig,
    *,
    operations: dict[float, tuple[Any, ...]] | None = None,
    memory: Any = None,
) -> dict[float, PolicyResult]:
    """Evaluate the policy at each time of `bands`, carrying memory like the controller."""
    inv = world.inventory()
    cache = TelemetryCache(stale_after=3.0)
    results = {}
    for t, band in bands.items():
        ops = (operations or {}).get(t, ())
        snap = snapshot(world, band, t, inventory=inv, cache=cache, operations=ops)
        result = POLICY.evaluate(snap, config, memory)
        memory = result.memory
        results[t] = result
    return results


def one(world: World, band: Band, config: OffloadConfig, **kw: Any) -> PolicyResult:
    return POLICY.evaluate(snapshot(world, band, 10.0, **kw), config, None)


def hosts_of(result: PolicyResult, kind: OperationKind = OperationKind.OFFLOAD) -> list[str]:
    return [h for p in result.proposals if p.kind is kind for h in p.hosts]


# --- trigger ------------------------------------------------------------------------------------


def test_the_band_must_stay_above_the_threshold_for_the_hold_time() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 2})
    hot = Band(pairs={("vcpe-1", "cpe-1", "fa"): 500, ("vcpe-1", "cpe-2", "fa"): 300})
    results = run(world, dict.fromkeys((0.0, 1.0, 2.0, 3.0), hot), OffloadConfig(hold_s=3))
    assert [len(r.proposals) for r in results.values()] == [0, 0, 0, 1]


def test_a_dip_below_the_threshold_restarts_the_hold_time() -> None:
    world = World(cpes={"cpe-1": 2})
    hot = Band(pairs={("vcpe-1", "cpe-1", "fa"): 800})
    cool = Band(pairs={("vcpe-1", "cpe-1", "fa"): 650})
    bands = {0.0: hot, 1.0: hot, 2.0: cool, 3.0: hot, 4.0: hot, 5.0: hot}
    results = run(world, bands, OffloadConfig(hold_s=2))
    assert [t for t, r in results.items() if r.proposals] == [5.0]


def test_a_band_exactly_at_the_threshold_does_not_trigger() -> None:
    world = World(cpes={"cpe-1": 2})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 700})
    assert one(world, band, OffloadConfig(hold_s=0)).proposals == ()


def test_stale_band_readings_are_unknown_and_move_nothing() -> None:
    world = World(cpes={"cpe-1": 2}, instances=[copy("fa", "cpe-1")])
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 900})
    result = one(world, band, OffloadConfig(hold_s=0), reading_age=5.0)  # stale after 3 s
    assert result.proposals == ()
    assert [n.rule for n in result.notes] == ["band_unknown"]


def test_the_unknown_band_note_is_given_once_per_episode() -> None:
    world = World(cpes={"cpe-1": 2}, instances=[copy("fa", "cpe-1")])
    results = run(world, {0.0: None, 1.0: None}, OffloadConfig())
    assert [len(r.notes) for r in results.values()] == [1, 0]


def test_a_world_without_band_telemetry_is_left_alone_silently() -> None:
    result = one(World(cpes={"cpe-1": 2}), Band(), OffloadConfig(), reading_age=100.0)
    assert result.proposals == () and result.notes == ()


def test_one_server_above_its_own_threshold_triggers_when_per_server() -> None:
    world = World(servers={"vcpe-1": 500.0, "vcpe-2": 500.0}, cpes={"cpe-1": 2})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 400, ("vcpe-2", "cpe-1", "fb"): 50})
    assert (400 + 50) / 1000 <= 0.7 < 400 / 500  # the aggregate is fine, vcpe-1 is not
    assert hosts_of(one(world, band, OffloadConfig(hold_s=0))) == ["cpe-1"]
    assert one(world, band, OffloadConfig(hold_s=0, per_server=False)).proposals == ()


# --- scope all ----------------------------------------------------------------------------------


def test_scope_all_starts_the_function_on_every_cpe_with_room_and_names_the_others() -> None:
    cpes = {"cpe-1": 2.0, "cpe-2": 0.25, "cpe-3": 1.0, "cpe-4": 0.5}
    world = World(cpes=cpes, states={"cpe-3": HostState.CORDONED})
    band = Band(
        pairs={("vcpe-1", "cpe-1", "fb"): 300, ("vcpe-1", "cpe-4", "fb"): 300},
        extra={"vcpe-1": 200},
    )
    result = one(world, band, OffloadConfig(hold_s=0, scope="all"))
    expected = [c for c, vcpu in cpes.items() if vcpu >= FLAVOR.vcpu and c != "cpe-3"]
    (proposal,) = result.proposals
    assert list(proposal.hosts) == expected
    assert proposal.function == "fb"
    assert proposal.params["_owners"] == [owner(c) for c in expected]
    assert proposal.params["_group"] == offload_group("fb")
    skipped = proposal.reason.details["resource_check"]["skipped"]
    assert skipped["count"] == 2
    assert skipped["hosts"]["cpe-3"] == "host is cordoned"
    assert "vcpu 0.5 > free 0.25" in skipped["hosts"]["cpe-2"]
    assert "cpe-2" in proposal.reason.message and "cpe-3" in proposal.reason.message
    measured = proposal.reason.measured
    assert measured["used_mbps"] == 800 and measured["use_ratio"] == 0.8
    assert measured["function_occupancy"] == 0.6


def test_cpes_already_running_a_copy_are_not_offered_another() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 2}, instances=[copy("fa", "cpe-1")])
    band = Band(pairs={("vcpe-1", "cpe-2", "fa"): 900}, local={("cpe-1", "fa"): 0})
    assert hosts_of(one(world, band, OffloadConfig(hold_s=0))) == ["cpe-2"]


def test_functions_not_allowed_on_cpes_never_move() -> None:
    world = World(cpes={"cpe-1": 2}, cpe_placement=("fb",))
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 800, ("vcpe-1", "cpe-1", "fb"): 50})
    (proposal,) = one(world, band, OffloadConfig(hold_s=0)).proposals
    assert proposal.function == "fb"


def test_functions_whose_cpe_copies_would_relieve_nothing_never_move() -> None:
    world = World(cpes={"cpe-1": 2})
    inv = world.inventory()
    inv.put_function(
        inv.functions["fa"].model_copy(
            update={"traffic": TrafficBehaviour(otherwise=CpeAction.FORWARD)}
        )
    )
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 800, ("vcpe-1", "cpe-1", "fb"): 50})
    (proposal,) = one(world, band, OffloadConfig(hold_s=0), inventory=inv).proposals
    assert proposal.function == "fb"


def test_the_copies_get_the_server_copys_parameters_then_the_configured_ones() -> None:
    parameters = {
        "fa": {"destination": ParameterSpec(type="ipv4"), "protocol": ParameterSpec()},
    }
    world = World(
        cpes={"cpe-1": 2},
        parameters=parameters,
        shared_params={"fa": {"destination": "50.1.1.1", "protocol": "icmp-echo"}},
    )
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 900})
    (proposal,) = one(world, band, OffloadConfig(hold_s=0)).proposals
    assert {k: v for k, v in proposal.params.items() if not k.startswith("_")} == {
        "destination": "50.1.1.1",
        "protocol": "icmp-echo",
    }
    config = OffloadConfig(hold_s=0, params={"fa": {"protocol": "udp"}})
    (proposal,) = one(world, band, config).proposals
    assert proposal.params["protocol"] == "udp"
    assert proposal.params["destination"] == "50.1.1.1"


def test_invalid_parameters_for_the_copies_are_a_note_not_a_move() -> None:
    world = World(
        cpes={"cpe-1": 2},
        parameters={"fa": {"destination": ParameterSpec(type="ipv4")}},
        shared_params={"fa": {"destination": "not-an-address"}},
    )
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 900})
    result = one(world, band, OffloadConfig(hold_s=0))
    assert result.proposals == ()
    assert [n.rule for n in result.notes if n.rule == "bad_params"] == ["bad_params"]


def test_large_offloads_are_split_into_operations_of_bounded_size() -> None:
    cpes = {f"cpe-{i:02d}": 2.0 for i in range(23)}
    world = World(cpes=cpes)
    band = Band(pairs={("vcpe-1", c, "fa"): 40 for c in cpes})
    result = one(world, band, OffloadConfig(hold_s=0, max_hosts_per_operation=10))
    assert [len(p.hosts) for p in result.proposals] == [10, 10, 3]
    assert len({p.subject for p in result.proposals}) == 3
    assert [h for p in result.proposals for h in p.hosts] == sorted(cpes)


# --- selection ----------------------------------------------------------------------------------

BANDS = {"fa": 250.0, "fb": 200.0, "fc": 100.0}


def _selection_world() -> tuple[World, Band]:
    world = World(cpes={"cpe-1": 8.0}, functions=tuple(BANDS))
    band = Band(pairs={("vcpe-1", "cpe-1", f): v for f, v in BANDS.items()}, extra={"vcpe-1": 450})
    return world, band


def test_highest_takes_the_function_with_the_largest_occupancy() -> None:
    world, band = _selection_world()
    result = one(world, band, OffloadConfig(hold_s=0, selection="highest"))
    assert [p.function for p in result.proposals] == [max(BANDS, key=BANDS.__getitem__)]


def test_above_threshold_takes_every_function_at_or_above_the_occupancy_threshold() -> None:
    world, band = _selection_world()
    config = OffloadConfig(hold_s=0, selection="above_threshold", occupancy_threshold=0.2)
    result = one(world, band, config)
    assert sorted(p.function for p in result.proposals) == sorted(
        f for f, v in BANDS.items() if v / 1000 >= 0.2
    )


def test_until_below_adds_functions_until_the_projection_reaches_the_threshold() -> None:
    world, band = _selection_world()
    used = sum(BANDS.values()) + 450
    need = used - 0.7 * 1000
    expected, relief = [], 0.0
    for f in sorted(BANDS, key=BANDS.__getitem__, reverse=True):
        if relief >= need:
            break
        expected.append(f)
        relief += BANDS[f]
    result = one(world, band, OffloadConfig(hold_s=0, selection="until_below"))
    assert [p.function for p in result.proposals] == expected
    assert result.proposals[0].reason.measured["projected_use_ratio"] == pytest.approx(
        (used - relief) / 1000
    )


# --- scope cpe_function -------------------------------------------------------------------------


def test_scope_cpe_function_moves_the_busiest_pair_only() -> None:
    pairs = {
        ("vcpe-1", "cpe-1", "fa"): 540.0,
        ("vcpe-1", "cpe-1", "fb"): 60.0,
        ("vcpe-1", "cpe-2", "fa"): 60.0,
        ("vcpe-1", "cpe-2", "fb"): 240.0,
    }
    world = World(cpes={"cpe-1": 2, "cpe-2": 2})
    result = one(world, Band(pairs=pairs), OffloadConfig(hold_s=0, scope="cpe_function"))
    (proposal,) = result.proposals
    top = max(pairs, key=pairs.__getitem__)
    assert (proposal.hosts, proposal.function) == ((top[1],), top[2])
    cpe_total = sum(v for (_, c, _), v in pairs.items() if c == top[1])
    used = sum(pairs.values())
    (pair,) = proposal.reason.measured["pairs"]
    assert pair["occupancy"] == pytest.approx(pairs[top] / 1000)
    assert pair["cpe_occupancy"] == pytest.approx(cpe_total / 1000)
    assert pair["cpe_share_of_used"] == pytest.approx(cpe_total / used)
    assert pair["share_of_cpe"] == pytest.approx(pairs[top] / cpe_total)


def test_pairs_need_the_servers_per_cpe_readings() -> None:
    world = World(cpes={"cpe-1": 2})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 900}, report_pairs=False)
    result = one(world, band, OffloadConfig(hold_s=0, scope="cpe_function"))
    assert result.proposals == ()
    assert "no_pair_band" in {n.rule for n in result.notes}


def test_a_cpe_with_room_for_one_copy_gets_only_the_first_of_its_pairs() -> None:
    world = World(cpes={"cpe-1": 0.5, "cpe-2": 2})
    pairs = {
        ("vcpe-1", "cpe-1", "fa"): 400.0,
        ("vcpe-1", "cpe-1", "fb"): 300.0,
        ("vcpe-1", "cpe-2", "fa"): 200.0,
    }
    config = OffloadConfig(hold_s=0, scope="cpe_function", selection="until_below", threshold=0.3)
    result = one(world, Band(pairs=pairs, extra={"vcpe-1": 100}), config)
    moved = sorted((h, p.function) for p in result.proposals for h in p.hosts)
    assert moved == [("cpe-1", "fa"), ("cpe-2", "fa")]


# --- revert -------------------------------------------------------------------------------------


def _revert_world() -> World:
    return World(
        cpes={"cpe-1": 2, "cpe-2": 2}, instances=[copy("fa", "cpe-1"), copy("fa", "cpe-2")]
    )


def test_copies_return_together_once_band_plus_their_traffic_fits_for_the_hold() -> None:
    band = Band(
        pairs={("vcpe-1", "cpe-1", "fb"): 600}, local={("cpe-1", "fa"): 30, ("cpe-2", "fa"): 20}
    )
    assert 600 + 30 + 20 <= 0.7 * 1000
    results = run(_revert_world(), dict.fromkeys((0.0, 5.0, 10.0), band), OffloadConfig())
    assert [len(r.proposals) for r in results.values()] == [0, 0, 1]
    (proposal,) = results[10.0].proposals
    assert proposal.kind is OperationKind.REVERT
    assert sorted(proposal.instances) == ["fa.cpe-1.1", "fa.cpe-2.1"]
    assert proposal.reason.measured["returning_mbps"] == 50
    assert proposal.reason.measured["projected_use_ratio"] == pytest.approx(0.65)


def test_no_copy_returns_while_all_of_them_would_overload_the_band() -> None:
    band = Band(
        pairs={("vcpe-1", "cpe-1", "fb"): 600}, local={("cpe-1", "fa"): 120, ("cpe-2", "fa"): 20}
    )
    results = run(_revert_world(), {0.0: band, 20.0: band}, OffloadConfig())
    assert all(r.proposals == () for r in results.values())


def test_partial_revert_returns_the_smallest_copies_that_fit() -> None:
    local = {("cpe-1", "fa"): 120.0, ("cpe-2", "fa"): 20.0}
    band = Band(pairs={("vcpe-1", "cpe-1", "fb"): 600}, local=local)
    results = run(_revert_world(), {0.0: band, 20.0: band}, OffloadConfig(partial_revert=True))
    expected = [
        f"fa.{c}.1" for (c, _), v in sorted(local.items(), key=lambda kv: kv[1]) if 600 + v <= 700
    ]
    (proposal,) = results[20.0].proposals
    assert list(proposal.instances) == expected


def test_processed_basis_counts_forwarded_traffic_too() -> None:
    band = Band(
        pairs={("vcpe-1", "cpe-1", "fb"): 600},
        local={("cpe-1", "fa"): 30, ("cpe-2", "fa"): 20},
        processed={("cpe-1", "fa"): 330, ("cpe-2", "fa"): 20},
    )
    local = run(_revert_world(), {0.0: band, 20.0: band}, OffloadConfig())
    processed = run(
        _revert_world(), {0.0: band, 20.0: band}, OffloadConfig(revert_basis="processed")
    )
    assert len(local[20.0].proposals) == 1
    assert processed[20.0].proposals == ()


def test_a_copy_with_unknown_traffic_keeps_its_function_on_the_cpes() -> None:
    band = Band(pairs={("vcpe-1", "cpe-1", "fb"): 100}, local={("cpe-1", "fa"): 0})
    results = run(_revert_world(), {0.0: band, 20.0: band}, OffloadConfig())
    assert all(r.proposals == () for r in results.values())


def test_a_copy_healed_onto_a_server_returns_with_nothing_to_add() -> None:
    moved = copy("fa", "cpe-2").model_copy(update={"host": "vcpe-1"})
    world = World(cpes={"cpe-1": 2, "cpe-2": 2}, instances=[copy("fa", "cpe-1"), moved])
    band = Band(pairs={("vcpe-1", "cpe-1", "fb"): 600}, local={("cpe-1", "fa"): 40})
    results = run(world, {0.0: band, 20.0: band}, OffloadConfig())
    (proposal,) = results[20.0].proposals
    assert sorted(proposal.instances) == ["fa.cpe-1.1", "fa.cpe-2.1"]
    assert proposal.reason.measured["returning_mbps"] == 40


def test_no_revert_while_any_band_is_above_the_threshold() -> None:
    world = World(
        servers={"vcpe-1": 500.0, "vcpe-2": 500.0},
        cpes={"cpe-1": 2},
        instances=[copy("fa", "cpe-1")],
    )
    band = Band(pairs={("vcpe-1", "cpe-1", "fb"): 400}, local={("cpe-1", "fa"): 0})
    results = run(world, {0.0: band, 20.0: band}, OffloadConfig(hold_s=100))
    assert all(r.proposals == () for r in results.values())


def test_revert_waits_the_clear_hold_after_the_last_offload_operation() -> None:
    band = Band(
        pairs={("vcpe-1", "cpe-1", "fb"): 100}, local={("cpe-1", "fa"): 0, ("cpe-2", "fa"): 0}
    )
    offload = op(OperationKind.OFFLOAD, "fa", 15.0, finished=15.0)
    times = (0.0, 20.0, 25.0)
    results = run(
        _revert_world(),
        dict.fromkeys(times, band),
        OffloadConfig(clear_hold_s=10),
        operations=dict.fromkeys(times, (offload,)),
    )
    assert [t for t, r in results.items() if r.proposals] == [25.0]


def test_offload_waits_the_hold_after_the_last_revert_operation() -> None:
    world = World(cpes={"cpe-1": 2})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 900})
    revert = op(OperationKind.REVERT, "fa", 12.0, finished=12.0)
    times = (10.0, 15.0, 16.0, 17.0)  # above the threshold since 10: held long enough at 15
    results = run(
        world,
        dict.fromkeys(times, band),
        OffloadConfig(hold_s=5),
        operations=dict.fromkeys(times, (revert,)),
    )
    assert [t for t, r in results.items() if r.proposals] == [17.0]


def test_no_new_offload_while_one_is_in_flight_or_just_finished() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 2})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 450, ("vcpe-1", "cpe-2", "fb"): 450})
    running = op(OperationKind.OFFLOAD, "fa", 0.0)
    done = op(OperationKind.OFFLOAD, "fa", 0.0, finished=9.0)
    config = OffloadConfig(hold_s=3)
    assert run(world, {10.0: band}, config, operations={10.0: (running,)})[10.0].proposals == ()
    assert run(world, {10.0: band}, config, operations={10.0: (done,)})[10.0].proposals == ()
    assert run(world, {12.0: band}, OffloadConfig(hold_s=0), operations={12.0: (done,)})[
        12.0
    ].proposals


# --- server copies ------------------------------------------------------------------------------


def test_stop_mode_retires_the_owners_server_copy_and_restores_it_on_revert() -> None:
    own = Instance(
        id="fa-own-1",
        function="fa",
        owner=owner("cpe-1"),
        host="vcpe-1",
        stage=LifecycleStage.MONITORING,
    )
    world = World(cpes={"cpe-1": 2, "cpe-2": 2}, instances=[own])
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 800, ("vcpe-1", "cpe-2", "fa"): 50})
    config = OffloadConfig(hold_s=0, server_copy="stop")
    result = one(world, band, config)
    (proposal,) = result.proposals
    assert proposal.instances == ("fa-own-1",)  # the shared copy keeps serving cpe-2
    memory = result.memory
    assert isinstance(memory, OffloadMemory)
    # Later: the copy runs on cpe-1, the owner's server copy is gone, the band is quiet.
    later = World(cpes={"cpe-1": 2, "cpe-2": 2}, instances=[copy("fa", "cpe-1")])
    quiet = Band(pairs={("vcpe-1", "cpe-2", "fa"): 50}, local={("cpe-1", "fa"): 5})
    inv = later.inventory()
    cache = TelemetryCache(stale_after=3.0)
    offload = op(
        OperationKind.OFFLOAD, "fa", 50.0, finished=50.0, instances=("fa-own-1", "fa.cpe-1.1")
    )
    for t in (100.0, 120.0):
        snap = snapshot(later, quiet, t, inventory=inv, cache=cache, operations=(offload,))
        result = POLICY.evaluate(snap, config, memory)
        memory = result.memory
    (revert,) = result.proposals
    assert revert.params["_restore"] == [{"host": "vcpe-1", "owner": owner("cpe-1"), "params": {}}]


def test_keep_mode_never_stops_server_copies() -> None:
    own = Instance(
        id="fa-own-1",
        function="fa",
        owner=owner("cpe-1"),
        host="vcpe-1",
        stage=LifecycleStage.MONITORING,
    )
    world = World(cpes={"cpe-1": 2}, instances=[own])
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 800})
    (proposal,) = one(world, band, OffloadConfig(hold_s=0)).proposals
    assert proposal.instances == ()


# --- memory and configuration -------------------------------------------------------------------


def test_copies_of_accepted_offloads_are_known_without_rescanning() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 2})
    inv = world.inventory()
    cache = TelemetryCache(stale_after=3.0)
    band = Band(pairs={("vcpe-1", "cpe-2", "fb"): 100})
    first = POLICY.evaluate(
        snapshot(world, band, 0.0, inventory=inv, cache=cache), OffloadConfig(), None
    )
    assert isinstance(first.memory, OffloadMemory) and first.memory.copies == frozenset()
    created = copy("fa", "cpe-1")
    inv.put_instance(created)
    offload = op(OperationKind.OFFLOAD, "fa", 1.0, finished=1.0, instances=(created.id,))
    snap = snapshot(world, band, 1.0, inventory=inv, cache=cache, operations=(offload,))
    second = POLICY.evaluate(snap, OffloadConfig(), first.memory)
    assert isinstance(second.memory, OffloadMemory)
    assert second.memory.copies == frozenset({created.id})
    inv.remove("instance", created.id)
    third = POLICY.evaluate(
        snapshot(world, band, 2.0, inventory=inv, cache=cache), OffloadConfig(), second.memory
    )
    assert isinstance(third.memory, OffloadMemory) and third.memory.copies == frozenset()


def test_the_policy_is_pure_for_the_same_snapshot_and_memory() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 0.25})
    band = Band(pairs={("vcpe-1", "cpe-1", "fa"): 700, ("vcpe-1", "cpe-2", "fa"): 200})
    snap = snapshot(world, band, 5.0)
    config = OffloadConfig(hold_s=0, scope="cpe_function", selection="until_below")
    a = POLICY.evaluate(snap, config, None)
    b = POLICY.evaluate(snap, config, None)
    assert [p.model_dump() for p in a.proposals] == [p.model_dump() for p in b.proposals]


def test_clear_level_above_the_threshold_is_refused() -> None:
    with pytest.raises(ValidationError, match="clear_level"):
        OffloadConfig(threshold=0.6, clear_level=0.7)


def test_the_policy_is_built_in_and_configurable_by_name() -> None:
    registry = default_registry()
    assert "offload" in registry
    config = registry.configure("offload", {"threshold": 0.8, "scope": "cpe_function"})
    assert isinstance(config, OffloadConfig) and config.threshold == 0.8


def test_column_index_maps_sources_to_host_rows_and_follows_the_columns() -> None:
    world = World(cpes={"cpe-1": 2, "cpe-2": 2})
    inv = world.inventory()
    cache = TelemetryCache()
    metric = pair_band_metric("fa")
    cache.put("host:vcpe-1/cpe-2", metric, 1.0, 0.0)
    cache.put("host:vcpe-1/cpe-9", metric, 1.0, 0.0)
    index = ColumnIndex()
    snap = build_snapshot(0.0, inv, cache)
    view = snap.telemetry.column(metric)
    assert view is not None
    rows = index.rows(view, snap.host_table.index, snap.host_table.ids)
    table = snap.host_table
    assert rows.server.tolist() == [table.index["vcpe-1"]] * 2
    assert rows.cpe.tolist() == [table.index["cpe-2"], -1]
    # A new source extends the map; a host that appears resolves its pending sources.
    cache.put("host:cpe-1", metric, 1.0, 0.0)
    world_more = World(cpes={"cpe-1": 2, "cpe-2": 2, "cpe-9": 2})
    inv.put_customer(world_more.inventory().customers[owner("cpe-9")])
    inv.put_host(world_more.inventory().hosts["cpe-9"])
    snap = build_snapshot(1.0, inv, cache)
    view = snap.telemetry.column(metric)
    assert view is not None
    rows = index.rows(view, snap.host_table.index, snap.host_table.ids)
    table = snap.host_table
    assert rows.cpe.tolist() == [table.index[h] for h in ("cpe-2", "cpe-9", "cpe-1")]
    assert rows.server.tolist() == [table.index["vcpe-1"]] * 2 + [-1]
    assert np.all(rows.cpe >= 0)
