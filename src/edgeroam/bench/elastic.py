"""Benchmark of the elastic, failover and ratio policies over many branches.

A world of `branches` branches (seed 002 ¶0066: hundreds to thousands of branches with about
8 functions each), each with a local manager group and `functions` function groups of
`members` active members plus one standby, under a cloud manager. Every cycle each member
reports a fresh load; what is timed is each policy's `evaluate` on the cycle's snapshot.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from edgeroam.inventory import Inventory
from edgeroam.model import (
    Flavor,
    FunctionSpec,
    Group,
    GroupKind,
    Host,
    HostKind,
    Instance,
    LifecycleStage,
    LoadMetric,
    Ratio,
    Resources,
    Role,
    Site,
    SiteKind,
)
from edgeroam.policies.base import Policy, PolicyConfig
from edgeroam.policies.elastic import ElasticConfig, ElasticPolicy
from edgeroam.policies.ratio import FailoverConfig, FailoverPolicy, RatioConfig, RatioPolicy
from edgeroam.snapshot import TableCache, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache


def build_world(branches: int, functions: int, members: int) -> tuple[Inventory, list[str]]:
    """The inventory and the ids of every member that reports load."""
    inv = Inventory()
    sites = [Site(id="cloud", kind=SiteKind.CLOUD)]
    hosts = [
        Host(
            id="cloud-1",
            kind=HostKind.CLOUD,
            site="cloud",
            capacity=Resources(vcpu=1e6, memory_mb=1e9, bandwidth_mbps=1e9),
        )
    ]
    groups = [
        Group(
            id="cvnfm",
            kind=GroupKind.CLOUD_MANAGER,
            function="mgr",
            site="cloud",
            max_size=64,
            metrics=(LoadMetric(name="jobs", capacity=100.0),),
        )
    ]
    instances = [
        Instance(
            id="cvnfm-1",
            function="mgr",
            group="cvnfm",
            host="cloud-1",
            stage=LifecycleStage.MONITORING,
        )
    ]
    for b in range(branches):
        site, host, manager = f"branch-{b}", f"srv-{b}", f"lvnfm-{b}"
        sites.append(Site(id=site, kind=SiteKind.BRANCH))
        hosts.append(
            Host(
                id=host,
                kind=HostKind.SERVER,
                site=site,
                capacity=Resources(vcpu=64, memory_mb=262144, bandwidth_mbps=10000),
            )
        )
        groups.append(
            Group(
                id=manager,
                kind=GroupKind.LOCAL_MANAGER,
                function="mgr",
                site=site,
                manager="cvnfm",
                metrics=(LoadMetric(name="jobs", capacity=10.0),),
            )
        )
        instances.append(
            Instance(
                id=f"{manager}-1",
                function="mgr",
                group=manager,
                host=host,
                stage=LifecycleStage.MONITORING,
            )
        )
        for f in range(functions):
            gid = f"vnf{f}-{b}"
            groups.append(
                Group(
                    id=gid,
                    function="vnf",
                    site=site,
                    manager=manager,
                    min_size=1,
                    max_size=members + 4,
                    ratio=Ratio(active=members, standby=1),
                )
            )
            for m in range(members + 1):
                instances.append(
                    Instance(
                        id=f"{gid}.{m}",
                        function="vnf",
                        host=host,
                        group=gid,
                        role=Role.ACTIVE if m < members else Role.STANDBY,
                        stage=LifecycleStage.MONITORING,
                    )
                )
    inv.load(
        sites=sites,
        flavors=[Flavor(id="one", vcpu=1, memory_mb=1024)],
        functions=[
            FunctionSpec(name="vnf", flavor="one", placement=(HostKind.SERVER, HostKind.CLOUD)),
            FunctionSpec(name="mgr", flavor="one", placement=(HostKind.SERVER, HostKind.CLOUD)),
        ],
        hosts=hosts,
        groups=groups,
        instances=instances,
    )
    return inv, [i.id for i in instances]


def run_elastic_bench(
    branches: int = 1000,
    functions: int = 8,
    members: int = 2,
    cycles: int = 20,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    inventory, reporters = build_world(branches, functions, members)
    telemetry = TelemetryCache(stale_after=180.0)
    built = time.perf_counter() - started
    rng = np.random.default_rng(0)
    cache = TableCache()
    policies: list[tuple[Policy, PolicyConfig]] = [
        (ElasticPolicy(), ElasticConfig()),
        (FailoverPolicy(), FailoverConfig()),
        (RatioPolicy(), RatioConfig()),
    ]
    memories: dict[str, Any] = {}
    timings: dict[str, list[float]] = {p.name: [] for p, _ in policies}
    proposals = 0
    cpu_column = None
    for cycle in range(cycles):
        now = 60.0 * cycle
        # Readings go straight into the columns: ingestion is benchmarked elsewhere.
        loads = rng.uniform(0.3, 0.7, len(reporters))
        for name, value in zip(reporters, loads, strict=True):
            telemetry.put(f"instance:{name}", "cpu", float(value), now)
            telemetry.put(f"instance:{name}", "jobs", float(value) * 5, now)
            telemetry.put(f"instance:{name}", "health", 1.0, now)
        snapshot = build_snapshot(now, inventory, telemetry, (), cache)
        cpu_column = snapshot.telemetry.column("cpu")
        for policy, config in policies:
            began = time.perf_counter()
            result = policy.evaluate(snapshot, config, memories.get(policy.name))
            timings[policy.name].append((time.perf_counter() - began) * 1000)
            memories[policy.name] = result.memory
            proposals += len(result.proposals)
        if progress is not None and (cycle + 1) % 5 == 0:
            progress(f"cycle {cycle + 1}/{cycles}")
    assert cpu_column is not None
    steady = {name: sorted(values[1:] or values) for name, values in timings.items()}
    return {
        "branches": branches,
        "groups": len(inventory.groups),
        "instances": len(inventory.instances),
        "cycles": cycles,
        "world_build_s": round(built, 3),
        "first_cycle_ms": {n: round(v[0], 3) for n, v in timings.items()},
        "median_ms": {n: round(statistics.median(v), 3) for n, v in steady.items()},
        "p95_ms": {n: round(v[int(0.95 * (len(v) - 1))], 3) for n, v in steady.items()},
        "proposals": proposals,
    }
