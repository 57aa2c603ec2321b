"""A small world for the offload policy's tests: servers, CPEs and band readings by hand.

Each test states the band it wants (per server, function, CPE×function, and what CPE copies
keep off the band) and gets a snapshot as the controller would build it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgeroam.inventory import Inventory
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    HostState,
    Instance,
    LifecycleStage,
    OperationKind,
    OperationState,
    ParameterSpec,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.offload import (
    BAND_USED,
    copy_local_metric,
    copy_processed_metric,
    function_band_metric,
    offload_group,
    pair_band_metric,
    pair_source,
)
from edgeroam.snapshot import OperationSummary, Snapshot, build_snapshot
from edgeroam.telemetry.cache import TelemetryCache

FLAVOR = Flavor(id="small", vcpu=0.5, memory_mb=256)


@dataclass
class World:
    servers: dict[str, float] = field(default_factory=lambda: {"vcpe-1": 1000.0})
    """Server id -> band capacity (Mbit/s)."""
    cpes: dict[str, float] = field(default_factory=dict)
    """CPE id -> vCPU capacity (memory 1024 MB); owner is 'c-<id>'."""
    functions: tuple[str, ...] = ("fa", "fb")
    states: dict[str, HostState] = field(default_factory=dict)
    shared_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    parameters: dict[str, dict[str, ParameterSpec]] = field(default_factory=dict)
    cpe_placement: tuple[str, ...] | None = None
    """Functions allowed on CPEs; None means all."""
    instances: list[Instance] = field(default_factory=list)
    demands: dict[str, float] = field(default_factory=dict)
    """Function -> vCPU of its flavor (default: FLAVOR, 0.5 vCPU and 256 MB)."""
    memory_mb: dict[str, float] = field(default_factory=dict)
    """CPE -> memory capacity (default 1024 MB)."""

    def flavor_id(self, function: str) -> str:
        return f"f-{function}" if function in self.demands else FLAVOR.id

    def inventory(self) -> Inventory:
        inv = Inventory()
        allowed = self.functions if self.cpe_placement is None else self.cpe_placement
        inv.load(
            sites=[Site(id="dc", kind=SiteKind.DATACENTER), Site(id="home", kind=SiteKind.HOME)],
            customers=[Customer(id=owner(c)) for c in self.cpes],
            flavors=[FLAVOR]
            + [Flavor(id=f"f-{f}", vcpu=v, memory_mb=256) for f, v in self.demands.items()],
            functions=[
                FunctionSpec(
                    name=f,
                    flavor=self.flavor_id(f),
                    placement=(HostKind.CPE, HostKind.SERVER)
                    if f in allowed
                    else (HostKind.SERVER,),
                    parameters=self.parameters.get(f, {}),
                )
                for f in self.functions
            ],
            hosts=[
                Host(
                    id=s,
                    kind=HostKind.SERVER,
                    site="dc",
                    capacity=Resources(vcpu=64, memory_mb=65536, bandwidth_mbps=cap),
                )
                for s, cap in self.servers.items()
            ]
            + [
                Host(
                    id=c,
                    kind=HostKind.CPE,
                    site="home",
                    owner=owner(c),
                    capacity=Resources(
                        vcpu=vcpu, memory_mb=self.memory_mb.get(c, 1024), bandwidth_mbps=1000
                    ),
                    state=self.states.get(c, HostState.READY),
                )
                for c, vcpu in self.cpes.items()
            ],
            instances=[
                Instance(
                    id=f"{f}-shared",
                    function=f,
                    host=next(iter(self.servers)),
                    params=self.shared_params.get(f, {}),
                    stage=LifecycleStage.MONITORING,
                )
                for f in self.functions
            ]
            + self.instances,
        )
        return inv


def owner(cpe: str) -> str:
    return f"c-{cpe}"


def copy(function: str, cpe: str, n: int = 1) -> Instance:
    """An offloaded copy as the offload operation leaves it."""
    return Instance(
        id=f"{function}.{cpe}.{n}",
        function=function,
        owner=owner(cpe),
        host=cpe,
        group=offload_group(function),
        stage=LifecycleStage.MONITORING,
    )


@dataclass
class Band:
    """Band readings of one instant; functions' server band is the sum of their pairs unless
    given in `functions`."""

    pairs: Mapping[tuple[str, str, str], float] = field(default_factory=dict)
    """(server, cpe, function) -> Mbit/s."""
    functions: Mapping[tuple[str, str], float] | None = None
    """(server, function) -> Mbit/s; None = sums of `pairs`."""
    extra: Mapping[str, float] = field(default_factory=dict)
    """Server -> band not attributed to a function (forwarded traffic)."""
    local: Mapping[tuple[str, str], float] = field(default_factory=dict)
    """(cpe, function) -> what the copy there answers or drops."""
    processed: Mapping[tuple[str, str], float] = field(default_factory=dict)
    report_pairs: bool = True

    def function_band(
        self, servers: Iterable[str], functions: Iterable[str]
    ) -> dict[tuple[str, str], float]:
        if self.functions is not None:
            return dict(self.functions)
        out = {(s, f): 0.0 for s in servers for f in functions}
        for (s, _, f), v in self.pairs.items():
            out[(s, f)] += v
        return out

    def put(self, cache: TelemetryCache, world: World, t: float) -> None:
        by_function = self.function_band(world.servers, world.functions)
        for s in world.servers:
            used = sum(v for (srv, _), v in by_function.items() if srv == s) + self.extra.get(s, 0)
            cache.put(f"host:{s}", BAND_USED, used, t)
        for (s, f), v in by_function.items():
            cache.put(f"host:{s}", function_band_metric(f), v, t)
        if self.report_pairs:
            for (s, c, f), v in self.pairs.items():
                cache.put(pair_source(s, c), pair_band_metric(f), v, t)
        for (c, f), v in self.local.items():
            cache.put(f"host:{c}", copy_local_metric(f), v, t)
            cache.put(f"host:{c}", copy_processed_metric(f), self.processed.get((c, f), v), t)


def snapshot(
    world: World,
    band: Band | None,
    now: float,
    *,
    inventory: Inventory | None = None,
    cache: TelemetryCache | None = None,
    operations: tuple[OperationSummary, ...] = (),
    reading_age: float = 0.0,
) -> Snapshot:
    inv = inventory if inventory is not None else world.inventory()
    tel = cache if cache is not None else TelemetryCache(stale_after=3.0)
    if band is not None:
        band.put(tel, world, now - reading_age)
    return build_snapshot(now, inv, tel, operations)


def op(
    kind: OperationKind,
    function: str,
    at: float,
    *,
    finished: float | None = None,
    instances: tuple[str, ...] = (),
    policy: str = "offload",
    op_id: str = "op-1",
) -> OperationSummary:
    state = OperationState.COMPLETED if finished is not None else OperationState.PROCESSING
    return OperationSummary(
        id=op_id,
        kind=kind,
        state=state,
        subject=f"{function}@x",
        instances=instances,
        hosts=(),
        sites=(),
        policy=policy,
        created_at=at,
        finished_at=finished,
    )
