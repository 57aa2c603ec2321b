"""Properties of the offload policy over generated worlds and noisy closed-loop runs."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeroam.inventory import Inventory
from edgeroam.model import HostKind, HostState, Instance, LifecycleStage, OperationKind
from edgeroam.policies.offload import OffloadConfig, OffloadPolicy
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import parse_scenario
from edgeroam.telemetry.cache import TelemetryCache
from tests.policies.offload_world import Band, World, copy, owner, snapshot

POLICY = OffloadPolicy()
FUNCTIONS = ("fa", "fb", "fc")

configs = st.builds(
    OffloadConfig,
    hold_s=st.just(0.0),
    threshold=st.sampled_from([0.3, 0.5, 0.7]),
    scope=st.sampled_from(["all", "cpe_function"]),
    selection=st.sampled_from(["highest", "above_threshold", "until_below"]),
    occupancy_threshold=st.sampled_from([0.01, 0.05, 0.2]),
    per_server=st.booleans(),
    max_hosts_per_operation=st.integers(1, 4),
)


@st.composite
def worlds(draw: st.DrawFn) -> tuple[World, Band, Inventory]:
    n = draw(st.integers(1, 7))
    cpes = {f"cpe-{i}": draw(st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0])) for i in range(n)}
    states = {
        c: draw(st.sampled_from([HostState.READY, HostState.READY, HostState.CORDONED]))
        for c in cpes
    }
    demands = {f: draw(st.sampled_from([0.25, 0.5, 1.0])) for f in FUNCTIONS}
    memory = {c: draw(st.sampled_from([256.0, 512.0, 1024.0])) for c in cpes}
    servers = {"vcpe-1": 1000.0, "vcpe-2": 500.0}
    # Functions already placed on CPEs by their owners use part of the CPEs' resources.
    placed = []
    for c in cpes:
        for f in FUNCTIONS:
            if draw(st.integers(0, 4)) == 0:
                placed.append(
                    Instance(
                        id=f"{f}-own-{c}",
                        function=f,
                        owner=owner(c),
                        host=c,
                        stage=LifecycleStage.MONITORING,
                    )
                )
    world = World(
        servers=servers,
        cpes=cpes,
        functions=FUNCTIONS,
        states=states,
        demands=demands,
        memory_mb=memory,
        instances=placed,
    )
    pairs = {
        (s, c, f): draw(st.floats(0, 400))
        for s in servers
        for c in cpes
        for f in FUNCTIONS
        if draw(st.booleans())
    }
    return world, Band(pairs=pairs), world.inventory()


@given(worlds(), configs)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_no_function_starts_on_a_cpe_without_the_free_resources(
    drawn: tuple[World, Band, Inventory], config: OffloadConfig
) -> None:
    world, band, inv = drawn
    snap = snapshot(world, band, 1.0, inventory=inv)
    result = POLICY.evaluate(snap, config, None)
    table = snap.host_table
    wanted = np.zeros_like(table.capacity)
    for proposal in result.proposals:
        assert proposal.kind is OperationKind.OFFLOAD
        assert proposal.function is not None
        flavor = snap.flavor_of(proposal.function)
        for host in proposal.hosts:
            assert snap.hosts[host].kind is HostKind.CPE
            assert snap.hosts[host].state is HostState.READY
            wanted[table.index[host]] += (flavor.vcpu, flavor.memory_mb, flavor.bandwidth_mbps)
    # All copies proposed in one cycle fit together in what each CPE has free.
    targets = np.any(wanted > 0, axis=1)
    free = table.capacity - table.allocated
    assert np.all(wanted[targets] <= free[targets] + 1e-9)


@st.composite
def revert_cases(draw: st.DrawFn) -> tuple[World, Band, dict[str, float | None], float]:
    n = draw(st.integers(1, 5))
    cpes = {f"cpe-{i}": 2.0 for i in range(n)}
    world = World(cpes=cpes, instances=[copy("fa", c) for c in cpes])
    local: dict[str, float | None] = {
        c: draw(st.one_of(st.none(), st.floats(0, 300))) for c in cpes
    }
    used = draw(st.floats(0, 900))
    band = Band(
        pairs={("vcpe-1", "cpe-0", "fb"): used},
        local={(c, "fa"): v for c, v in local.items() if v is not None},
    )
    return world, band, local, used


@given(
    revert_cases(),
    st.sampled_from([0.5, 0.7]),
    st.booleans(),
    st.sampled_from([0.0, 4.0, 10.0]),
)
@settings(max_examples=150, deadline=None)
def test_copies_return_only_when_the_revert_condition_holds(
    case: tuple[World, Band, dict[str, float | None], float],
    clear: float,
    partial: bool,
    clear_hold: float,
) -> None:
    world, band, local, used = case
    config = OffloadConfig(
        threshold=0.7, clear_level=clear, clear_hold_s=clear_hold, partial_revert=partial
    )
    limit = clear * 1000
    inv = world.inventory()
    cache = TelemetryCache(stale_after=3.0)
    memory: Any = None
    proposed: dict[float, list[str]] = {}
    for t in (0.0, clear_hold / 2, clear_hold):
        result = POLICY.evaluate(
            snapshot(world, band, t, inventory=inv, cache=cache), config, memory
        )
        memory = result.memory
        returned = [i for p in result.proposals for i in p.instances]
        proposed[t] = returned
        # Whatever returns, the band plus the traffic coming back stays within the limit.
        if returned:
            back = sum(local[name.split(".")[1]] or 0.0 for name in returned)
            assert used + back <= limit + 1e-6
        if returned and not partial:
            assert all(v is not None for v in local.values())
            assert len(returned) == len(local)
    # And when the seed's condition holds for the whole hold time, everything returns then.
    known = [v for v in local.values() if v is not None]
    holds = len(known) == len(local) and used + sum(known) <= limit
    if not partial:
        assert bool(proposed[clear_hold]) == holds
        if clear_hold > 0:
            assert proposed[0.0] == []


def _noisy_scenario(
    seed: int, noise: float, level: float, hold: float, clear_hold: float
) -> dict[str, Any]:
    cpes = 4
    return {
        "name": "noisy",
        "seed": seed,
        "duration_s": 120,
        "tick_s": 1,
        "controller": {"arbiter": {"cooldown_s": 0}},  # the policy's own hysteresis alone
        "band": {"servers": ["vcpe-1"]},
        "policies": {"offload": {"threshold": 0.7, "hold_s": hold, "clear_hold_s": clear_hold}},
        "topology": {
            "sites": [{"id": "dc", "kind": "datacenter"}]
            + [{"id": f"home-{i}", "kind": "home"} for i in range(cpes)],
            "hosts": [
                {
                    "id": "vcpe-1",
                    "kind": "server",
                    "site": "dc",
                    "capacity": {"vcpu": 8, "memory_mb": 8192, "bandwidth_mbps": 1000},
                }
            ]
            + [
                {
                    "id": f"cpe-{i}",
                    "kind": "cpe",
                    "site": f"home-{i}",
                    "owner": f"c{i}",
                    "capacity": {"vcpu": 2, "memory_mb": 1024},
                }
                for i in range(cpes)
            ],
            "links": [
                {"id": f"l{i}", "a": f"cpe-{i}", "b": "dc", "capacity_mbps": 1000}
                for i in range(cpes)
            ]
            + [{"id": "up", "a": "dc", "b": "vcpe-1", "capacity_mbps": 10000}],
        },
        "flavors": [{"id": "small", "vcpu": 0.5, "memory_mb": 256}],
        "functions": [{"name": "fa", "flavor": "small", "placement": ["cpe", "server"]}],
        "customers": [{"id": f"c{i}"} for i in range(cpes)],
        "instances": [{"id": "fa-shared", "function": "fa", "host": "vcpe-1"}],
        "flows": [
            {
                "id": f"f{i}",
                "customer": f"c{i}",
                "function": "fa",
                "rate_mbps": {"kind": "constant", "mbps": level * 1000 / cpes, "noise_pct": noise},
            }
            for i in range(cpes)
        ],
    }


@given(
    seed=st.integers(0, 10_000),
    noise=st.floats(1, 15),
    level=st.floats(0.62, 0.78),
    hold=st.sampled_from([2.0, 3.0, 5.0]),
    clear_hold=st.sampled_from([0.0, 1.0, 3.0]),
)
@settings(max_examples=12, deadline=None)
def test_noise_around_the_threshold_gives_at_most_one_pair_per_hold_time(
    seed: int, noise: float, level: float, hold: float, clear_hold: float
) -> None:
    scenario = parse_scenario(_noisy_scenario(seed, noise, level, hold, clear_hold))
    result = Simulation(scenario).run()
    events = sorted(
        {(op["t"], op["operation"]) for op in result["operations"]},
    )
    for (t0, k0), (t1, k1) in itertools.pairwise(events):
        if (k0, k1) == ("revert", "offload"):
            assert t1 - t0 >= hold
        if (k0, k1) == ("offload", "revert"):
            assert t1 - t0 >= clear_hold
    # Hence no window of one hold time holds more than one offload/revert pair.
    for start, _ in events:
        inside = [k for t, k in events if start <= t < start + hold]
        pairs = sum(1 for a, b in itertools.pairwise(inside) if (a, b) == ("offload", "revert"))
        assert pairs <= 1
        assert inside.count("offload") <= 1
