"""From a controller snapshot to the placement engine, and back to host ids and reasons.

`Placer` builds one `EdgeState` from a snapshot (column copies plus a few per-host attributes
cached while the host table is unchanged) and answers `PlacementRequest`s with
`PlacementResult`s whose `Reason` carries the cost, the place kind and every filter's verdict.
A policy that places several instances in one cycle keeps one `Placer` and commits each choice,
so later decisions see earlier ones (the role `Reservations` plays for the spread strategy).

How the snapshot maps onto the model:

* incentive prices are the hosts' `incentives` (per vCPU, per MB of memory, per Mbit/s);
* each cloud host's edge↔cloud link is the set of `core` links touching its site or itself;
  their capacities add up to the link budget, the largest `delay_ms` is the link's own delay,
  and the bandwidth demanded by the instances on the site's cloud hosts is what the link
  carries (the reference model: residue = budget − bandwidth of the remote instances);
* a fresh `external_delay_ms` reading on `site:<cloud site>` overrides the cost model's
  constant d_ext — stale or missing means the constant, never zero.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from edgeroam.inventory import HOST_KINDS
from edgeroam.model import Host, HostKind, Link, LinkKind, Reason, Resources
from edgeroam.policies.placement.base import PlacementRequest, PlacementResult, Reservations
from edgeroam.policies.placement.costs import CostModel, DelayCheck, PlacementMode, Strategy
from edgeroam.policies.placement.edge import (
    CLOUD,
    Choice,
    EdgeState,
    LinkGroup,
    Request,
)
from edgeroam.snapshot import Snapshot

EXTERNAL_DELAY_METRIC = "external_delay_ms"


@dataclass(frozen=True)
class _Structure:
    """Per-host attributes that change only when the host or link tables change."""

    hosts: Mapping[str, Host]
    links: Mapping[str, Link]
    ids: tuple[str, ...]
    prices: npt.NDArray[np.float64]
    owner: npt.NDArray[np.int64]
    customers: dict[str, int]
    site: npt.NDArray[np.int64]
    sites: dict[str, int]
    group: npt.NDArray[np.int64]
    group_specs: tuple[tuple[str, float, float], ...]
    """(cloud site, link budget, link delay) per group."""


_cache: list[_Structure] = []


def _structure(snapshot: Snapshot) -> _Structure:
    table = snapshot.host_table
    for cached in _cache:
        if (
            cached.hosts is snapshot.hosts
            and cached.links is snapshot.links
            and cached.ids == table.ids
        ):
            return cached
    n = len(table.ids)
    prices = np.zeros((n, 3))
    owner = np.full(n, -1, dtype=np.int64)
    site = np.zeros(n, dtype=np.int64)
    customers: dict[str, int] = {}
    sites: dict[str, int] = {}
    cloud_sites: dict[str, list[int]] = {}
    for row, host_id in enumerate(table.ids):
        host = snapshot.hosts[host_id]
        inc = host.incentives
        prices[row] = (inc.per_vcpu, inc.per_memory_mb, inc.per_bandwidth_mbps)
        if host.kind is HostKind.CPE and host.owner is not None:
            owner[row] = customers.setdefault(host.owner, len(customers))
        site[row] = sites.setdefault(host.site, len(sites))
        if host.kind is HostKind.CLOUD:
            cloud_sites.setdefault(host.site, []).append(row)
    group = np.full(n, -1, dtype=np.int64)
    specs: list[tuple[str, float, float]] = []
    for cloud_site, rows in sorted(cloud_sites.items()):
        members = {cloud_site, *(table.ids[r] for r in rows)}
        core = [
            lk
            for lk in snapshot.links.values()
            if lk.kind is LinkKind.CORE and (lk.a in members or lk.b in members)
        ]
        if not core:
            continue
        group[rows] = len(specs)
        specs.append(
            (
                cloud_site,
                float(sum(lk.capacity_mbps for lk in core)),
                float(max(lk.delay_ms for lk in core)),
            )
        )
    built = _Structure(
        snapshot.hosts,
        snapshot.links,
        table.ids,
        prices,
        owner,
        customers,
        site,
        sites,
        group,
        tuple(specs),
    )
    _cache[:] = [built]
    return built


def _resources(amount: Resources) -> tuple[float, float, float]:
    return (amount.vcpu, amount.memory_mb, amount.bandwidth_mbps)


class Placer:
    """Placement decisions on one snapshot; `commit` makes later decisions see earlier ones."""

    def __init__(
        self,
        snapshot: Snapshot,
        reserved: Reservations | None = None,
        cost: CostModel | None = None,
        *,
        incremental: bool = True,
    ) -> None:
        self.snapshot = snapshot
        self.cost = cost or CostModel()
        self.incremental = incremental
        s = _structure(snapshot)
        self._s = s
        table = snapshot.host_table
        used = table.allocated.copy()
        if reserved is not None:
            for host, amount in reserved.by_host.items():
                row = table.index.get(host)
                if row is not None:
                    used[row] += _resources(amount)
        groups: list[LinkGroup] = []
        for g, (site_id, budget, link_delay) in enumerate(s.group_specs):
            members = np.flatnonzero(s.group == g)
            external = snapshot.telemetry.value(f"site:{site_id}", EXTERNAL_DELAY_METRIC)
            residents: Counter[float] = Counter()
            if self.cost.delay_check is DelayCheck.PROTECT:
                residents = self._residents([table.ids[r] for r in members])
            groups.append(
                LinkGroup(
                    name=site_id,
                    budget=budget,
                    used=float(used[members, 2].sum()),
                    fixed_delay=link_delay,
                    external_delay=external,
                    residents=residents,
                )
            )
        self.state = EdgeState(
            ids=list(table.ids),
            kind=table.kind,
            capacity=table.capacity,
            used=used,
            cost=self.cost,
            prices=s.prices,
            lends=table.lends,
            ready=table.ready_mask(),
            owner=s.owner,
            group=s.group,
            groups=groups,
        )

    def _residents(self, hosts: list[str]) -> Counter[float]:
        found: Counter[float] = Counter()
        snap = self.snapshot
        for host in hosts:
            for name in snap.instances_by_host.get(host, ()):
                instance = snap.instances.get(name)
                if instance is None or instance.function not in snap.functions:
                    continue
                limit = snap.flavor_of(instance.function).max_delay_ms
                if limit is not None:
                    found[limit] += 1
        return found

    # -- translation ----------------------------------------------------------------------------
    def row_of(self, host: str) -> int | None:
        return self.snapshot.host_table.index.get(host)

    def max_delay(self, request: PlacementRequest) -> float | None:
        if request.max_delay_ms is not None:
            return request.max_delay_ms
        if request.function in self.snapshot.functions:
            return self.snapshot.flavor_of(request.function).max_delay_ms
        return None

    def request(self, request: PlacementRequest) -> Request:
        s = self._s
        # An owner without a CPE gets a code no row carries: B&B nodes, never an own node.
        unknown = len(s.customers)
        owner = -1 if request.owner is None else s.customers.get(request.owner, unknown)
        mode = request.mode or PlacementMode.LOCAL_CLOUD_BNB
        if not request.allow_bnb and mode is PlacementMode.LOCAL_CLOUD_BNB:
            mode = PlacementMode.LOCAL_CLOUD
        index = self.snapshot.host_table.index
        exclude = frozenset(index[h] for h in request.exclude_hosts if h in index)
        avoid: frozenset[int] = frozenset()
        if request.avoid_sites:
            codes = [s.sites[x] for x in request.avoid_sites if x in s.sites]
            avoid = frozenset(np.flatnonzero(np.isin(s.site, codes)).tolist())
        kinds = tuple(k in request.kinds for k in HOST_KINDS)
        return Request(
            demand=_resources(request.demand),
            owner=owner,
            max_delay=self.max_delay(request),
            mode=mode,
            kinds=(kinds[0], kinds[1], kinds[2]),
            exclude=exclude,
            avoid=avoid,
        )

    # -- decisions ------------------------------------------------------------------------------
    def place(
        self,
        request: PlacementRequest,
        *,
        strategy: Strategy | str | None = None,
        commit: bool = True,
    ) -> PlacementResult:
        chosen = Strategy(strategy or request.strategy or Strategy.EXHAUSTIVE)
        if chosen is Strategy.SPREAD:
            raise ValueError("Placer implements the cost strategies; spread is `simple.place`")
        if chosen is Strategy.OPTIMAL:
            chosen = Strategy.EXHAUSTIVE  # one instance: the integer program's optimum
        req = self.request(request)
        choice = self.state.choose(req, chosen, incremental=self.incremental)
        if choice.row is None:
            return PlacementResult(None, self.explain_failure(request, req, choice, chosen))
        if commit:
            self.state.commit(choice, req)
        return PlacementResult(
            self.state.ids[choice.row], self.explain(request, req, choice, chosen)
        )

    def commit(self, host: str, demand: Resources, max_delay: float | None = None) -> None:
        """Account an instance on `host` decided elsewhere (e.g. by the batch solver)."""
        row = self.row_of(host)
        if row is not None:
            self.state.allocate(row, _resources(demand), max_delay)

    def release(self, host: str, demand: Resources, max_delay: float | None = None) -> None:
        """Give back what an instance leaving `host` held (planned scale-in or migration)."""
        row = self.row_of(host)
        if row is not None:
            self.state.release(row, _resources(demand), max_delay)

    def resident_cost(self, request: PlacementRequest, host: str) -> float:
        """What keeping an instance of `request` on `host` costs now (its share counted back)."""
        row = self.row_of(host)
        if row is None:
            return math.inf
        rows = np.array([row], dtype=np.int64)
        return float(self.state.costs(rows, self.request(request), resident=True)[0])

    def place_batch(
        self,
        requests: Sequence[PlacementRequest],
        *,
        commit: bool = True,
        time_limit_s: float = 30.0,
    ) -> list[PlacementResult]:
        """Place a batch jointly with the 0-1 integer program (every instance or none)."""
        from edgeroam.policies.placement.optimal import solve_batch

        reqs = [self.request(r) for r in requests]
        solution = solve_batch(self.state, reqs, time_limit_s=time_limit_s)
        results: list[PlacementResult] = []
        for request, req, row, cost in zip(
            requests, reqs, solution.rows, solution.costs, strict=True
        ):
            if row is None:
                reason = Reason(
                    rule="batch_infeasible",
                    message=f"the batch of {len(requests)} instances cannot be placed jointly "
                    f"({solution.status})",
                    details={"status": solution.status, "strategy": Strategy.OPTIMAL.value},
                )
                results.append(PlacementResult(None, reason))
                continue
            place = _place_name(self.state, row, req)
            choice = Choice(row, cost, place)
            results.append(
                PlacementResult(
                    self.state.ids[row], self.explain(request, req, choice, Strategy.OPTIMAL)
                )
            )
        if commit:
            for req, row in zip(reqs, solution.rows, strict=True):
                if row is not None:
                    self.state.allocate(row, req.demand, req.max_delay)
        return results

    # -- explanations ---------------------------------------------------------------------------
    def explain(
        self, request: PlacementRequest, req: Request, choice: Choice, strategy: Strategy
    ) -> Reason:
        assert choice.row is not None
        host = self.state.ids[choice.row]
        how = {
            Strategy.EXHAUSTIVE: "the cheapest eligible place",
            Strategy.HEURISTIC: "the heuristic's pick (owner's CPE, else the roomiest B&B node "
            "or the cheapest pool host)",
            Strategy.OPTIMAL: "the batch optimum",
        }[strategy]
        measured: dict[str, Any] = {"cost": round(choice.cost, 6), "place": choice.place}
        if choice.delay is not None:
            measured["core_delay_ms"] = round(choice.delay, 6)
        if choice.eligible is not None:
            measured["eligible"] = choice.eligible
        thresholds: dict[str, Any] = {}
        if req.max_delay is not None:
            thresholds["max_delay_ms"] = req.max_delay
        details: dict[str, Any] = {"strategy": strategy.value, "mode": req.mode.value}
        if choice.filters is not None:
            details["filters"] = choice.filters
        return Reason(
            rule=f"placement_{strategy.value}",
            message=f"{host} ({choice.place}) at cost {choice.cost:.4g} for {request.function}: "
            f"{how}",
            measured=measured,
            thresholds=thresholds,
            details=details,
        )

    def explain_failure(
        self, request: PlacementRequest, req: Request, choice: Choice, strategy: Strategy
    ) -> Reason:
        filters = choice.filters or {}
        rejects = choice.rejects or {}
        parts = [f"{name} removed {count}" for name, count in filters.items()]
        clouds: list[dict[str, Any]] = []
        for g, link in enumerate(self.state.groups):
            delay = self.state.group_delay(g)
            clouds.append(
                {
                    "site": link.name,
                    "link_remaining": round(link.remaining, 6),
                    "core_delay_ms": None if math.isinf(delay) else round(delay, 6),
                }
            )
        delays = ""
        if clouds and req.max_delay is not None:
            delays = (
                " ("
                + ", ".join(
                    f"{c['site']} core delay {c['core_delay_ms']} ms vs max {req.max_delay:g} ms"
                    for c in clouds
                )
                + ")"
            )
        return Reason(
            rule="no_eligible_host",
            message=f"no host can take {request.function}: " + ", ".join(parts) + delays,
            measured={"hosts": self.state.n},
            thresholds={"max_delay_ms": req.max_delay} if req.max_delay is not None else {},
            details={
                "filters": filters,
                "rejects": rejects,
                "demand": request.demand.model_dump(),
                "strategy": strategy.value,
                "mode": req.mode.value,
                "clouds": clouds,
            },
        )


def _place_name(state: EdgeState, row: int, req: Request) -> str:
    if state.kind[row] == CLOUD:
        return "cloud"
    if not state.is_cpe[row]:
        return "server"
    return "own" if req.owner >= 0 and state.owner[row] == req.owner else "bnb"


def place_cost_based(
    snapshot: Snapshot,
    request: PlacementRequest,
    reserved: Reservations | None = None,
    *,
    strategy: Strategy,
    cost: CostModel | None = None,
) -> PlacementResult:
    """One decision with a cost strategy (the column-wise pass; nothing is kept)."""
    placer = Placer(snapshot, reserved, cost, incremental=False)
    return placer.place(request, strategy=strategy, commit=False)
