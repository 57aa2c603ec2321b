"""A small B&B edge as an inventory, shared by the snapshot-level placement and bnb tests.

Customers c1..c4 with one CPE each (4 vCPU, 4096 MB, 100 Mbit/s): cpe-1 does not lend,
cpe-2 lends cheaply, cpe-3 lends dearly, cpe-4 lends nothing. An edge server and a cloud host
behind a core link of `link_mbps`. Flavor `iot` (1 vCPU, 1024 MB, 10 Mbit/s, 200 ms).
"""

from __future__ import annotations

from edgeroam.inventory import Inventory
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Incentives,
    Instance,
    LifecycleStage,
    Link,
    LinkKind,
    Resources,
    Role,
    Site,
    SiteKind,
)
from edgeroam.snapshot import Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

CPE_CAPACITY = Resources(vcpu=4, memory_mb=4096, bandwidth_mbps=100)
CHEAP = Incentives(per_vcpu=2, per_memory_mb=0.002, per_bandwidth_mbps=0.2)
DEAR = Incentives(per_vcpu=6, per_memory_mb=0.006, per_bandwidth_mbps=0.6)
SERVER_CAPACITY = Resources(vcpu=16, memory_mb=32768, bandwidth_mbps=1000)
CLOUD_CAPACITY = Resources(vcpu=64, memory_mb=65536, bandwidth_mbps=1000)
IOT = Flavor(id="iot", vcpu=1, memory_mb=1024, bandwidth_mbps=10, max_delay_ms=200)


def edge_inventory(*, link_mbps: float = 1000.0, server: bool = True) -> Inventory:
    inv = Inventory()
    sites = [Site(id=f"home-{i}", kind=SiteKind.HOME) for i in range(1, 5)]
    sites += [Site(id="metro", kind=SiteKind.EDGE), Site(id="cloud", kind=SiteKind.CLOUD)]
    hosts = [
        Host(
            id=f"cpe-{i}",
            kind=HostKind.CPE,
            site=f"home-{i}",
            owner=f"c{i}",
            lends_capacity=i in (2, 3),
            incentives={2: CHEAP, 3: DEAR}.get(i, Incentives()),
            capacity=CPE_CAPACITY,
        )
        for i in range(1, 5)
    ]
    if server:
        hosts.append(
            Host(id="edge-1", kind=HostKind.SERVER, site="metro", capacity=SERVER_CAPACITY)
        )
    hosts.append(Host(id="cloud-1", kind=HostKind.CLOUD, site="cloud", capacity=CLOUD_CAPACITY))
    links = [
        Link(id=f"access-{i}", a=f"cpe-{i}", b="metro", capacity_mbps=100) for i in range(1, 5)
    ]
    links.append(
        Link(
            id="core", a="metro", b="cloud", capacity_mbps=link_mbps, kind=LinkKind.CORE, delay_ms=5
        )
    )
    inv.load(
        sites=sites,
        customers=[Customer(id=f"c{i}") for i in range(1, 5)],
        flavors=[IOT],
        functions=[
            FunctionSpec(
                name="iot",
                flavor="iot",
                placement=(HostKind.CPE, HostKind.SERVER, HostKind.CLOUD),
            ),
            FunctionSpec(name="dns", flavor="iot"),
        ],
        hosts=hosts,
        links=links,
    )
    return inv


def add(
    inv: Inventory,
    name: str,
    host: str,
    *,
    owner: str | None = "c1",
    function: str = "iot",
    group: str | None = None,
    role: Role = Role.ACTIVE,
) -> Instance:
    instance = Instance(
        id=name,
        function=function,
        owner=owner,
        host=host,
        group=group,
        role=role,
        stage=LifecycleStage.MONITORING,
    )
    inv.put_instance(instance)
    return instance


def snapshot(
    inv: Inventory, now: float = 100.0, telemetry: TelemetryCache | None = None
) -> Snapshot:
    return build_snapshot(now, inv, telemetry or TelemetryCache())
