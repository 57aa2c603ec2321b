"""Benchmark of one `offload` policy cycle over a large world (target ≤ 100 ms).

The world: two vCPE servers and `cpes` CPEs, every CPE sending traffic of every one of
`functions` functions, so the servers report cpes × functions CPE×function band readings. A
share of the CPEs floods the `security` function. Three cycles are timed on the same snapshot:

- quiet: every band is below the threshold (the usual cycle: only the triggers are evaluated);
- pairs: under the flood, scope cpe_function picks the flooding CPE×function pairs;
- all: under the flood, scope all starts the busiest function on every CPE with room.

The first cycle also builds the map from telemetry rows to host rows (kept in the policy's
memory afterwards); it is reported apart as `cold_ms`. The world's own objects (10^6 telemetry
source ids, 10^5 hosts) are moved out of the garbage collector's sight with `gc.freeze()` once
built, as a long-running controller would after loading its inventory, so a timed cycle does not
pay for scanning the benchmark's setup.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time
from typing import Any

import numpy as np

from edgeroam.inventory import Inventory
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Instance,
    LifecycleStage,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.base import PolicyResult
from edgeroam.policies.offload import (
    BAND_USED,
    OffloadConfig,
    OffloadPolicy,
    function_band_metric,
    pair_band_metric,
)
from edgeroam.snapshot import Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

SERVERS = ("vcpe-1", "vcpe-2")
FLOOD_MBPS = 20.0


def function_names(count: int) -> list[str]:
    names = ["security", "nat", "dns", "dhcp", "voice", "iot", "vpn", "parental"]
    names += [f"fn-{i}" for i in range(len(names), count)]
    return names[:count]


def bench_world(
    cpes: int, functions: int, flood_share: float, seed: int = 0
) -> tuple[Snapshot, dict[str, float]]:
    """A snapshot of the large world with the band readings of one instant.

    CPE×function rates are exponential with mean 0.4 Mbit/s; flooding CPEs add 20 Mbit/s of
    `security`. Each function is served by one of the two servers; their band capacity is set
    so the traffic without the flood uses 60 % of it. Every tenth CPE has no room for a copy.
    """
    rng = np.random.default_rng(seed)
    names = function_names(functions)
    rates = rng.exponential(0.4, size=(functions, cpes))
    flooding = rng.random(cpes) < flood_share
    capacity = float(rates.sum()) / 0.6 / len(SERVERS)
    rates[0, flooding] += FLOOD_MBPS
    hosts = [
        Host(
            id=s,
            kind=HostKind.SERVER,
            site="dc-1",
            capacity=Resources(vcpu=512, memory_mb=1_048_576, bandwidth_mbps=capacity),
        )
        for s in SERVERS
    ]
    hosts += [
        Host(
            id=f"cpe-{n}",
            kind=HostKind.CPE,
            site="homes",
            owner=f"c{n}",
            capacity=Resources(vcpu=2 if n % 10 else 0.25, memory_mb=1024, bandwidth_mbps=1000),
        )
        for n in range(cpes)
    ]
    inv = Inventory()
    inv.load(
        sites=[Site(id="dc-1", kind=SiteKind.DATACENTER), Site(id="homes", kind=SiteKind.HOME)],
        customers=[Customer(id=f"c{n}") for n in range(cpes)],
        flavors=[Flavor(id="small", vcpu=0.5, memory_mb=256)],
        functions=[
            FunctionSpec(name=f, flavor="small", placement=(HostKind.CPE, HostKind.SERVER))
            for f in names
        ],
        hosts=hosts,
        instances=[
            Instance(
                id=f"{f}-shared",
                function=f,
                host=SERVERS[i % 2],
                stage=LifecycleStage.MONITORING,
            )
            for i, f in enumerate(names)
        ],
    )
    telemetry = TelemetryCache(stale_after=30.0)
    used = dict.fromkeys(SERVERS, 0.0)
    for f, name in enumerate(names):
        server = SERVERS[f % 2]
        metric = pair_band_metric(name)
        column = rates[f].tolist()
        for n in range(cpes):
            telemetry.put(f"host:{server}/cpe-{n}", metric, column[n], 0.0)
        total = float(rates[f].sum())
        used[server] += total
        telemetry.put(f"host:{server}", function_band_metric(name), total, 0.0)
    for server in SERVERS:
        telemetry.put(f"host:{server}", BAND_USED, used[server], 0.0)
    facts = {
        "use_ratio": sum(used.values()) / (capacity * len(SERVERS)),
        "flooding_cpes": int(flooding.sum()),
        "pair_readings": cpes * functions,
    }
    return build_snapshot(1.0, inv, telemetry), facts


def _time(
    policy: OffloadPolicy, snapshot: Snapshot, config: OffloadConfig, cycles: int
) -> tuple[float, list[float], list[float], PolicyResult]:
    """The first (cold) cycle's time, the sorted wall-clock and CPU times (ms) of `cycles` warm
    ones, and the last result. CPU time is reported too: on a shared machine it is the steadier
    figure."""
    began = time.perf_counter()
    result = policy.evaluate(snapshot, config, None)
    cold = (time.perf_counter() - began) * 1000
    wall, cpu = [], []
    for _ in range(cycles):
        began, began_cpu = time.perf_counter(), time.process_time()
        result = policy.evaluate(snapshot, config, result.memory)
        wall.append((time.perf_counter() - began) * 1000)
        cpu.append((time.process_time() - began_cpu) * 1000)
    return cold, sorted(wall), sorted(cpu), result


def run_offload_bench(
    cpes: int = 100_000, functions: int = 8, cycles: int = 20, flood_share: float = 0.05
) -> dict[str, Any]:
    started = time.perf_counter()
    print(f"building {cpes} CPEs × {functions} functions …", file=sys.stderr)
    snapshot, facts = bench_world(cpes, functions, flood_share)
    build_s = time.perf_counter() - started
    gc.collect()
    gc.freeze()
    policy = OffloadPolicy()
    total_capacity = float(snapshot.host_table.capacity[: len(SERVERS), 2].sum())
    cases = {
        "quiet": OffloadConfig(threshold=1.5, hold_s=0),  # no band group near it
        "pairs": OffloadConfig(
            threshold=0.7,
            hold_s=0,
            scope="cpe_function",
            selection="above_threshold",
            occupancy_threshold=(FLOOD_MBPS / 2) / total_capacity,  # half a flooder's share
        ),
        "all": OffloadConfig(threshold=0.7, hold_s=0, scope="all", selection="highest"),
    }
    results: dict[str, Any] = {}
    for name, config in cases.items():
        print(f"timing cycle '{name}' …", file=sys.stderr)
        cold, durations, cpu, last = _time(policy, snapshot, config, cycles)
        hosts = sum(len(p.hosts) for p in last.proposals)
        results[name] = {
            "cold_ms": round(cold, 3),
            "median_ms": round(statistics.median(durations), 3),
            "p95_ms": round(durations[int(0.95 * (len(durations) - 1))], 3),
            "max_ms": round(durations[-1], 3),
            "cpu_median_ms": round(statistics.median(cpu), 3),
            "proposals": len(last.proposals),
            "cpes_targeted": hosts,
        }
    gc.unfreeze()
    return {
        "cpes": cpes,
        "functions": functions,
        "pair_readings": facts["pair_readings"],
        "flooding_cpes": facts["flooding_cpes"],
        "use_ratio": round(facts["use_ratio"], 4),
        "cycles": cycles,
        "world_build_s": round(build_s, 3),
        "cases": results,
        "target_ms": 100,
    }
