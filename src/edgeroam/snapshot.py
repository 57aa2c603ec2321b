"""One consistent, read-only view of the world per control cycle.

Policies see only a Snapshot. It is built under the controller's lock, holds copies of the
numeric columns (hosts' capacity/allocation/state, telemetry per metric) and immutable
mappings of the inventory, so a policy cannot observe a half-applied change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeroam.inventory import HOST_KINDS, HOST_STATES, Inventory
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Group,
    Host,
    HostKind,
    HostState,
    Instance,
    Link,
    OperationKind,
    OperationState,
    Resources,
    Site,
)
from edgeroam.telemetry.cache import Sample, TelemetryCache

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OperationSummary:
    """What the arbiter and policies need to know about a recent or running operation."""

    id: str
    kind: OperationKind
    state: OperationState
    subject: str
    instances: tuple[str, ...]
    hosts: tuple[str, ...]
    sites: tuple[str, ...]
    policy: str
    created_at: float
    finished_at: float | None


@dataclass(frozen=True, slots=True)
class MetricView:
    """One metric across sources: ids, values, ages and a staleness mask."""

    metric: str
    ids: tuple[str, ...]
    index: Mapping[str, int]
    values: FloatArray
    ages: FloatArray
    stale: BoolArray

    def get(self, source: str) -> float | None:
        row = self.index.get(source)
        if row is None or row >= len(self.ids) or self.stale[row]:
            return None
        return float(self.values[row])


@dataclass(frozen=True, slots=True)
class TelemetryView:
    now: float
    metrics: Mapping[str, MetricView]
    _cache: TelemetryCache = field(repr=False)

    def sample(self, source: str, metric: str) -> Sample | None:
        view = self.metrics.get(metric)
        if view is None:
            return None
        row = view.index.get(source)
        if row is None or row >= len(view.ids):
            return None
        return Sample(
            value=float(view.values[row]),
            timestamp=self.now - float(view.ages[row]),
            age=float(view.ages[row]),
            stale=bool(view.stale[row]),
        )

    def value(self, source: str, metric: str) -> float | None:
        """The latest fresh value, or None when missing or stale (unknown, never zero)."""
        view = self.metrics.get(metric)
        return None if view is None else view.get(source)

    def column(self, metric: str) -> MetricView | None:
        return self.metrics.get(metric)

    def history(
        self, source: str, metric: str, since: float | None = None
    ) -> tuple[tuple[float, float], ...]:
        """Recent (timestamp, value) pairs, oldest first, not newer than the snapshot time."""
        points = self._cache.history(source, metric)
        lower = -np.inf if since is None else since
        return tuple(p for p in points if lower <= p[0] <= self.now)


@dataclass(frozen=True, slots=True)
class HostTable:
    """Column-wise host data; rows follow `ids`."""

    ids: tuple[str, ...]
    index: Mapping[str, int]
    capacity: FloatArray  # (n, 3): vcpu, memory_mb, bandwidth_mbps
    allocated: FloatArray  # (n, 3)
    state: IntArray  # codes into HOST_STATES
    kind: IntArray  # codes into HOST_KINDS
    lends: BoolArray  # CPEs lending spare capacity (B&B)

    @property
    def free(self) -> FloatArray:
        result: FloatArray = self.capacity - self.allocated
        return result

    def ready_mask(self) -> BoolArray:
        mask: BoolArray = self.state == HOST_STATES.index(HostState.READY)
        return mask

    def kind_mask(self, kinds: tuple[HostKind, ...]) -> BoolArray:
        codes = [HOST_KINDS.index(k) for k in kinds]
        mask: BoolArray = np.isin(self.kind, codes)
        return mask

    def free_of(self, host_id: str) -> Resources:
        vcpu, mem, bw = self.free[self.index[host_id]]
        return Resources(
            vcpu=max(0.0, float(vcpu)),
            memory_mb=max(0.0, float(mem)),
            bandwidth_mbps=max(0.0, float(bw)),
        )


@dataclass(frozen=True, slots=True)
class Snapshot:
    now: float
    sites: Mapping[str, Site]
    hosts: Mapping[str, Host]
    links: Mapping[str, Link]
    flavors: Mapping[str, Flavor]
    functions: Mapping[str, FunctionSpec]
    customers: Mapping[str, Customer]
    instances: Mapping[str, Instance]
    instances_by_host: Mapping[str, frozenset[str]]
    cpes_by_owner: Mapping[str, frozenset[str]]
    host_table: HostTable
    telemetry: TelemetryView
    operations: tuple[OperationSummary, ...] = ()
    groups: Mapping[str, Group] = field(default_factory=lambda: MappingProxyType({}))
    """Managed groups (functions and managers) by id; see model/group.py."""

    @property
    def busy(self) -> frozenset[str]:
        """Subjects and instances that have an operation in flight."""
        names: set[str] = set()
        for op in self.operations:
            if op.state.in_flight:
                names.add(op.subject)
                names.update(op.instances)
        return frozenset(names)

    def flavor_of(self, function: str) -> Flavor:
        return self.flavors[self.functions[function].flavor]

    def site_of(self, host_id: str) -> str:
        return self.hosts[host_id].site


class SetMapView(Mapping[str, frozenset[str]]):
    """Read-only view of a dict of sets, copying one set only when it is looked up.

    Copying 10^5 sets every cycle would dominate the cycle; the view is safe because the
    inventory only changes under the controller's lock, which a cycle holds throughout.
    """

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, set[str]]) -> None:
        self._data = data

    def __getitem__(self, key: str) -> frozenset[str]:
        found = self._data.get(key)
        if not found:  # empty sets are left out, as in iteration
            raise KeyError(key)
        return frozenset(found)

    def get(self, key: str, default: Any = None) -> Any:
        found = self._data.get(key)
        return default if not found else frozenset(found)

    def __iter__(self) -> Iterator[str]:
        return (k for k, v in self._data.items() if v)

    def __len__(self) -> int:
        return sum(1 for v in self._data.values() if v)


class TableCache:
    """Immutable copies of inventory tables, rebuilt only when the table changed."""

    def __init__(self) -> None:
        self._copies: dict[str, tuple[int, Mapping[str, Any]]] = {}

    def frozen(self, inventory: Inventory, kind: str) -> Mapping[str, Any]:
        version = inventory.versions.get(kind, 0)
        cached = self._copies.get(kind)
        if cached is not None and cached[0] == version:
            return cached[1]
        table = MappingProxyType(dict(inventory.table(kind)))
        self._copies[kind] = (version, table)
        return table


def build_snapshot(
    now: float,
    inventory: Inventory,
    telemetry: TelemetryCache,
    operations: tuple[OperationSummary, ...] = (),
    cache: TableCache | None = None,
) -> Snapshot:
    cache = cache if cache is not None else TableCache()
    cols = inventory.columns
    n = len(cols)
    hosts = HostTable(
        ids=tuple(cols.ids),
        index=MappingProxyType(dict(cols.index)),
        capacity=cols.capacity[:n].copy(),
        allocated=cols.allocated[:n].copy(),
        state=cols.state[:n].copy(),
        kind=cols.kind[:n].copy(),
        lends=cols.lends[:n].copy(),
    )
    metrics: dict[str, MetricView] = {}
    for name, column in telemetry.columns.items():
        m = len(column.ids)
        ages = now - column.stamps[:m]
        metrics[name] = MetricView(
            metric=name,
            ids=tuple(column.ids),
            index=column.index,
            values=column.values[:m].copy(),
            ages=ages,
            stale=ages > telemetry.staleness(name),
        )
    return Snapshot(
        now=now,
        sites=cache.frozen(inventory, "site"),
        hosts=cache.frozen(inventory, "host"),
        links=cache.frozen(inventory, "link"),
        flavors=cache.frozen(inventory, "flavor"),
        functions=cache.frozen(inventory, "function"),
        customers=cache.frozen(inventory, "customer"),
        instances=cache.frozen(inventory, "instance"),
        instances_by_host=SetMapView(inventory.instances_by_host),
        cpes_by_owner=SetMapView(inventory.cpes_by_owner),
        host_table=hosts,
        telemetry=TelemetryView(now=now, metrics=MappingProxyType(metrics), _cache=telemetry),
        operations=operations,
        groups=cache.frozen(inventory, "group"),
    )
