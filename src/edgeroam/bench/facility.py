"""Benchmark of the `facility` policy's cycle in a large world.

The world is the tick benchmark's (N customer CPEs, one function each) plus S edge sites of K
servers with a few functions each. Every site reports its battery and every server its inlet
temperature each cycle. Three situations are timed, policy evaluation only (the snapshot is
built outside the timing, as the controller does once for all policies):

* **steady** — every reading normal: the policy's fixed cost;
* **evacuating** — one site's battery is degraded and falling: cordons, deadlines from the
  trend, placement of the most urgent functions;
* **storm** — every site degraded at once: the suspicion rule.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

from edgeroam.bench.tick import large_world
from edgeroam.model import (
    Criticality,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Instance,
    LifecycleStage,
    Reading,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.facility import FacilityConfig, FacilityPolicy

Progress = Callable[[str], None]

TARGET_MS = {"steady": 5, "evacuating": 50, "storm": 50}
"""Median per cycle at 10^5 CPEs and 200 servers: a quiet facility must cost next to nothing;
an emergency may use the whole cycle budget of the tick benchmark (50 ms)."""


def _quantiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median": round(statistics.median(ordered), 3),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "max": round(ordered[-1], 3),
    }


def run_facility_bench(
    cpes: int = 100_000,
    sites: int = 20,
    servers: int = 10,
    functions: int = 5,
    cycles: int = 30,
    progress: Progress | None = None,
) -> dict[str, Any]:
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    say(f"building {cpes} CPEs and {sites}×{servers} servers")
    c = large_world(cpes)
    inv = c.inventory
    site_list = [Site(id=f"edge-{s}", kind=SiteKind.EDGE, rooms=("r1",)) for s in range(sites)]
    servers_list = [
        Host(
            id=f"srv-{s}-{k}",
            kind=HostKind.SERVER,
            site=f"edge-{s}",
            room="r1",
            capacity=Resources(vcpu=64, memory_mb=262_144, bandwidth_mbps=40_000),
        )
        for s in range(sites)
        for k in range(servers)
    ]
    inv.load(
        sites=site_list,
        flavors=[Flavor(id="svc", vcpu=2, memory_mb=2048, bandwidth_mbps=100)],
        functions=[
            FunctionSpec(name="gw", flavor="svc", criticality=Criticality.CRITICAL),
            FunctionSpec(name="fw", flavor="svc", criticality=Criticality.NORMAL),
        ],
        hosts=servers_list,
        instances=[
            Instance(
                id=f"{h.id}.{j}",
                function="gw" if j % 2 == 0 else "fw",
                host=h.id,
                stage=LifecycleStage.MONITORING,
            )
            for h in servers_list
            for j in range(functions)
        ],
    )
    build_s = time.perf_counter() - started
    policy = FacilityPolicy()
    config = FacilityConfig()

    def feed(now: float, battery: Callable[[int], float], temperature: float) -> None:
        readings = [
            Reading(
                source=f"site:edge-{s}",
                metric="facility.battery_pct",
                value=battery(s),
                timestamp=now,
            )
            for s in range(sites)
        ]
        readings += [
            Reading(source=f"host:{h.id}", metric="facility.temperature_c", value=temperature,
                    timestamp=now)
            for h in servers_list
        ]  # fmt: skip
        c.ingest(readings)

    phases: dict[str, dict[str, Any]] = {}
    memory: Any = None
    now = 0.0

    def falling(k: int) -> Callable[[int], float]:
        """Site 0 below its Deg level (50 %) and falling 0.2 %/s; the others full."""
        return lambda s: 49.0 - 0.2 * k if s == 0 else 100.0

    for phase, proposals_wanted in (("steady", False), ("evacuating", True), ("storm", False)):
        say(f"{phase}: {cycles} cycles")
        times: list[float] = []
        proposals = 0
        for k in range(cycles):
            now += 1.0
            level = {
                "steady": lambda s: 100.0,
                "evacuating": falling(k),
                "storm": lambda s: 30.0,
            }[phase]
            feed(now, level, 24.0)
            snapshot = c.snapshot(now)
            began = time.perf_counter()
            result = policy.evaluate(snapshot, config, memory)
            times.append((time.perf_counter() - began) * 1000)
            memory = result.memory
            proposals = len(result.proposals)
        phases[phase] = {**_quantiles(times), "proposals_last_cycle": proposals}
        if proposals_wanted and proposals == 0:
            raise RuntimeError("the evacuating phase proposed nothing; the benchmark is broken")
    return {
        "cpes": cpes,
        "servers": len(servers_list),
        "sites": sites,
        "instances": len(inv.instances),
        "cycles_per_phase": cycles,
        "world_build_s": round(build_s, 3),
        "evaluate_ms": phases,
        "target_ms": TARGET_MS,
    }
