"""Benchmark of one control cycle over a large world with no policies enabled.

What is measured is the controller's fixed cost per cycle: advancing the lifecycle engine,
building the snapshot (array copies, mappings) and flushing events.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Instance,
    LifecycleStage,
    Link,
    Reading,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.registry import default_registry


def large_world(cpes: int) -> Controller:
    registry = default_registry()
    for name in list(registry):
        registry.configure(name, {"enabled": False})
    c = Controller(SimDriver(), store=None, registry=registry, persist_readings=False)
    inv = c.inventory
    sites = [Site(id="dc-1", kind=SiteKind.DATACENTER)]
    hosts = [
        Host(
            id="vcpe-1",
            kind=HostKind.SERVER,
            site="dc-1",
            capacity=Resources(vcpu=4096, memory_mb=4_194_304, bandwidth_mbps=400_000),
        )
    ]
    customers, links, instances = [], [], []
    for n in range(cpes):
        cid, cpe = f"c{n}", f"cpe-{n}"
        customers.append(Customer(id=cid))
        sites.append(Site(id=f"home-{n}", kind=SiteKind.HOME))
        hosts.append(
            Host(
                id=cpe,
                kind=HostKind.CPE,
                site=f"home-{n}",
                owner=cid,
                capacity=Resources(vcpu=2, memory_mb=1024, bandwidth_mbps=100),
            )
        )
        links.append(Link(id=f"access-{n}", a=cpe, b="dc-1", capacity_mbps=100))
        instances.append(
            Instance(
                id=f"dhcp.{n}",
                function="dhcp",
                owner=cid,
                host=cpe,
                stage=LifecycleStage.MONITORING,
            )
        )
    inv.load(
        sites=sites,
        customers=customers,
        flavors=[Flavor(id="tiny", vcpu=0.25, memory_mb=64)],
        functions=[
            FunctionSpec(name="dhcp", flavor="tiny", placement=(HostKind.CPE, HostKind.SERVER))
        ],
        hosts=hosts,
        links=links,
        instances=instances,
    )
    return c


def run_tick_bench(cpes: int = 10_000, cycles: int = 50) -> dict[str, Any]:
    started = time.perf_counter()
    controller = large_world(cpes)
    build_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    durations = []
    for i in range(cycles):
        now = float(i)
        values = rng.uniform(0, 100, cpes)
        controller.ingest(
            [
                Reading(
                    source=f"link:access-{n}",
                    metric="used_mbps",
                    value=float(values[n]),
                    timestamp=now,
                )
                for n in range(cpes)
            ]
        )
        began = time.perf_counter()
        controller.tick(now)
        durations.append((time.perf_counter() - began) * 1000)
    durations.sort()
    return {
        "cpes": cpes,
        "hosts": len(controller.inventory.hosts),
        "instances": len(controller.inventory.instances),
        "cycles": cycles,
        "world_build_s": round(build_s, 3),
        "tick_ms_median": round(statistics.median(durations), 3),
        "tick_ms_p95": round(durations[int(0.95 * (len(durations) - 1))], 3),
        "tick_ms_max": round(durations[-1], 3),
        "target_ms": 50,
    }
