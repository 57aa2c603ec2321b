"""The placement engine: hosts as numpy columns, filters, costs and the decision strategies.

An `EdgeState` holds what a placement needs about every host — remaining resources, incentive
prices, owner, whether it lends capacity (B&B), scheduling state — and the edge↔cloud link
groups. It serves two kinds of caller:

* a one-shot decision (`place()` on a snapshot) evaluates every filter column-wise over all
  hosts, which also yields each filter's verdict for the explanation;
* a run of many decisions (a policy placing several instances in one cycle, the experiments,
  the benchmark) keeps, per demand vector, an incrementally updated array of B&B costs and a
  lazy max-heap of B&B nodes ordered by their scarcest remaining share. A placement changes one
  host, so only that host is re-examined instead of re-filtering or re-sorting every host.

Both paths implement the same rules and break ties the same way — lowest cost, then the kind of
place (owner's CPE, B&B node, server, cloud), then row order — so they agree decision for
decision (the tests check this).
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edgeroam.inventory import HOST_KINDS
from edgeroam.model import HostKind
from edgeroam.policies.placement.costs import (
    CostModel,
    DelayCheck,
    PlacementMode,
    Strategy,
    core_delay,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

CPE = HOST_KINDS.index(HostKind.CPE)
SERVER = HOST_KINDS.index(HostKind.SERVER)
CLOUD = HOST_KINDS.index(HostKind.CLOUD)

#: Tie-break order among equally cheap places; also the names used in explanations.
PLACE_CLASSES = ("own", "bnb", "server", "cloud")
_OWN, _BNB, _SERVER, _CLOUD = range(4)
RESOURCE_NAMES = ("vcpu", "memory", "bandwidth")

Demand = tuple[float, float, float]


@dataclass
class LinkGroup:
    """An edge↔cloud link (or bundle) shared by the cloud hosts behind it."""

    name: str
    budget: float
    used: float = 0.0
    fixed_delay: float = 0.0
    """The link's own propagation delay."""
    external_delay: float | None = None
    """d_ext measured for this cloud; None means the cost model's constant."""
    residents: Counter[float] = field(default_factory=Counter)
    """Max delays of the instances behind the link (used by the `protect` delay check)."""

    @property
    def remaining(self) -> float:
        return self.budget - self.used


@dataclass(frozen=True)
class Request:
    """A placement request in row terms (the snapshot adapter translates ids to rows)."""

    demand: Demand
    owner: int = -1
    """Customer code of the instance's owner; -1 for a shared function."""
    max_delay: float | None = None
    mode: PlacementMode = PlacementMode.LOCAL_CLOUD_BNB
    kinds: tuple[bool, bool, bool] = (True, True, True)
    """Whether a CPE, a server and the cloud may host the function (function's placement)."""
    exclude: frozenset[int] = frozenset()
    avoid: frozenset[int] = frozenset()
    """Rows to use only when nothing else qualifies."""


@dataclass(slots=True)
class Choice:
    row: int | None
    cost: float
    place: str
    """One of PLACE_CLASSES, or "none"."""
    delay: float | None = None
    """Core delay after the placement, when the place is behind a cloud link."""
    eligible: int | None = None
    """How many hosts passed every filter (one-shot decisions only)."""
    filters: dict[str, int] | None = None
    """Hosts removed by each filter in turn (one-shot decisions and failures)."""
    rejects: dict[str, int] | None = None
    """Hosts each filter rejects on its own (failures only)."""


_NO_CHOICE_COST = math.inf
# Enum members as module constants: the scalar paths compare against them on every decision.
_SPREAD, _HEURISTIC = Strategy.SPREAD, Strategy.HEURISTIC
_LOCAL, _WITH_BNB = PlacementMode.LOCAL, PlacementMode.LOCAL_CLOUD_BNB


class _DemandIndex:
    """Per demand vector: the B&B cost array (for exhaustive) and the share heap (heuristic).

    Each is built on first use and then kept up to date from the state's change logs.

    The heap holds (−share, row) entries with a lazy decrease-key: a placement only lowers a
    node's share, so its entry overestimates it and surfaces no later than the node should;
    `EdgeState._heap_top` then re-files it under its true share. Only changes that can raise a
    share or make a node qualify (releases, a node becoming ready or lending) push entries.
    """

    def __init__(self, state: EdgeState, demand: Demand) -> None:
        self.demand = demand
        p = state.prices
        d0, d1, d2 = demand
        self.base: FloatArray = state.cost.redundancy_factor * (p[0] * d0 + p[1] * d1 + p[2] * d2)
        self.base_list: list[float] = self.base.tolist()
        self.cost: FloatArray | None = None
        self.cursor = 0
        self.heap: list[tuple[float, int]] | None = None
        self.grow_cursor = 0

    def qualifying(self, state: EdgeState) -> BoolArray:
        mask: BoolArray = state.bnb_mask() & state.fits_mask(self.demand, None)
        return mask

    def build_cost(self, state: EdgeState) -> FloatArray:
        self.cost = np.where(self.qualifying(state), self.base, np.inf)
        self.cursor = len(state.log)
        return self.cost

    def build_heap(self, state: EdgeState) -> list[tuple[float, int]]:
        rows = np.flatnonzero(self.qualifying(state))
        keys = state.share_keys(rows)
        heap = list(zip((-keys).tolist(), rows.tolist(), strict=True))
        heapq.heapify(heap)
        self.heap = heap
        self.grow_cursor = len(state.grow_log)
        return heap


class EdgeState:
    """Remaining resources and attributes of every host, plus the cloud link groups.

    Arrays are resource-major (`free[r, row]`) so a filter over one resource is a contiguous
    comparison. Mutations go through `allocate`, `release`, `set_ready` and `set_lends`, which
    log the changed row for the incremental indexes.
    """

    def __init__(
        self,
        *,
        ids: list[str],
        kind: IntArray,
        capacity: FloatArray,
        cost: CostModel,
        used: FloatArray | None = None,
        prices: FloatArray | None = None,
        lends: BoolArray | None = None,
        ready: BoolArray | None = None,
        owner: IntArray | None = None,
        group: IntArray | None = None,
        groups: list[LinkGroup] | None = None,
    ) -> None:
        n = len(ids)
        capacity = np.asarray(capacity, dtype=np.float64).reshape(n, 3)
        if used is None:
            used = np.zeros((n, 3))
        self.ids = ids
        self.n = n
        self.cost = cost
        self.kind: IntArray = np.asarray(kind, dtype=np.int64)
        self.capacity: FloatArray = np.ascontiguousarray(capacity.T)
        self.free: FloatArray = np.ascontiguousarray((capacity - np.asarray(used)).T)
        # Python-list twins of `free` and `capacity` for the scalar paths (a list read costs
        # half a numpy scalar read); `allocate` keeps both in step.
        self._free: list[list[float]] = self.free.tolist()
        self._cap: list[list[float]] = self.capacity.tolist()
        self._key: list[float] = [math.nan] * n
        self._key_version: list[int] = [-1] * n
        self.prices: FloatArray = (
            np.zeros((3, n)) if prices is None else np.ascontiguousarray(np.asarray(prices).T)
        )
        # Own copies: set_ready/set_lends must never write into a caller's (snapshot's) array.
        self.lends: BoolArray = np.zeros(n, bool) if lends is None else np.array(lends, bool)
        self.ready: BoolArray = np.ones(n, bool) if ready is None else np.array(ready, bool)
        self.owner: IntArray = (
            np.full(n, -1, np.int64) if owner is None else np.asarray(owner, np.int64)
        )
        self.group: IntArray = (
            np.full(n, -1, np.int64) if group is None else np.asarray(group, np.int64)
        )
        self.groups: list[LinkGroup] = groups or []
        if self.group.max(initial=-1) >= len(self.groups):
            raise ValueError("a row refers to a link group that does not exist")
        if np.any((self.group >= 0) & (self.kind == CPE)):
            raise ValueError("a CPE cannot sit behind a cloud link group")
        coef = np.zeros((3, n))
        coef[:, self.kind == CLOUD] = np.asarray(cost.cloud_coefficients)[:, None]
        coef[:, self.kind == SERVER] = np.asarray(cost.server_coefficients)[:, None]
        self.coefficients: FloatArray = coef
        self.is_cpe: BoolArray = self.kind == CPE
        self.pool_rows: IntArray = np.flatnonzero(~self.is_cpe)
        self._group: list[int] = self.group.tolist()
        self._kind: list[int] = self.kind.tolist()
        self._coef: list[list[float]] = self.coefficients.tolist()
        self._pool_list: list[int] = self.pool_rows.tolist()
        self._pool_set: frozenset[int] = frozenset(self._pool_list)
        self._pool_version = 0
        self._pool_cache: dict[
            tuple[Demand, float | None, tuple[bool, bool, bool]],
            tuple[int, tuple[float, int, int] | None],
        ] = {}
        self.place_class: IntArray = np.select(
            [self.kind == SERVER, self.kind == CLOUD], [_SERVER, _CLOUD], _BNB
        ).astype(np.int64)
        self._class: list[int] = self.place_class.tolist()
        owner_rows: dict[int, list[int]] = {}
        for row in np.flatnonzero(self.is_cpe & (self.owner >= 0)).tolist():
            owner_rows.setdefault(int(self.owner[row]), []).append(row)
        self.owner_rows = owner_rows
        self.versions: list[int] = [0] * n
        # List twins of the flags the scalar paths read.
        self._ready: list[bool] = self.ready.tolist()
        self._lender: list[bool] = (self.is_cpe & self.lends & self.ready).tolist()
        self.log: list[int] = []
        """Rows changed since the indexes last looked (any change)."""
        self.grow_log: list[int] = []
        """Rows whose share may have risen or that may have started to qualify."""
        self._indexes: dict[Demand, _DemandIndex] = {}

    # -- mutations ------------------------------------------------------------------------------
    def _touch(self, row: int, grew: bool = False) -> None:
        self.versions[row] += 1
        if row in self._pool_set:
            self._pool_version += 1
        if self._indexes:
            self.log.append(row)
            if grew:
                self.grow_log.append(row)

    def allocate(
        self, row: int, demand: Demand, max_delay: float | None = None, sign: float = 1.0
    ) -> None:
        """Account an instance of `demand` on `row` (sign -1 releases it)."""
        free, twin = self.free, self._free
        for r in range(3):
            amount = sign * demand[r]
            if amount:
                free[r, row] -= amount
                twin[r][row] -= amount
        g = int(self.group[row])
        if g >= 0:
            link = self.groups[g]
            link.used += sign * demand[2]
            if max_delay is not None:
                link.residents[max_delay] += 1 if sign > 0 else -1
                if link.residents[max_delay] <= 0:
                    del link.residents[max_delay]
        self._touch(row, grew=sign < 0)

    def release(self, row: int, demand: Demand, max_delay: float | None = None) -> None:
        self.allocate(row, demand, max_delay, sign=-1.0)

    def set_ready(self, row: int, ready: bool) -> None:
        self.ready[row] = ready
        self._ready[row] = bool(ready)
        self._lender[row] = bool(self.is_cpe[row] and self.lends[row] and ready)
        self._touch(row, grew=bool(ready))

    def set_lends(self, row: int, lends: bool) -> None:
        self.lends[row] = lends
        self._lender[row] = bool(self.is_cpe[row] and lends and self.ready[row])
        self._touch(row, grew=bool(lends))

    def copy(self) -> EdgeState:
        """An independent copy (without the incremental indexes)."""
        clone = EdgeState.__new__(EdgeState)
        clone.__dict__.update(self.__dict__)
        for name in ("free", "lends", "ready"):
            setattr(clone, name, getattr(self, name).copy())
        clone._ready = list(self._ready)
        clone._lender = list(self._lender)
        clone.groups = [
            LinkGroup(
                g.name, g.budget, g.used, g.fixed_delay, g.external_delay, Counter(g.residents)
            )
            for g in self.groups
        ]
        clone._free = [list(values) for values in self._free]
        clone._key = list(self._key)
        clone._key_version = list(self._key_version)
        clone.versions = list(self.versions)
        clone.log = []
        clone.grow_log = []
        clone._indexes = {}
        clone._pool_cache = {}
        return clone

    # -- column helpers -------------------------------------------------------------------------
    def bnb_mask(self) -> BoolArray:
        """CPEs that could host another customer's instance (ignoring resources)."""
        mask: BoolArray = self.is_cpe & self.lends & self.ready
        return mask

    def fits_mask(self, demand: Demand, rows: IntArray | None) -> BoolArray:
        strict = self.cost.strict_headroom
        free = self.free if rows is None else self.free[:, rows]
        mask: BoolArray = np.ones(free.shape[1], dtype=bool)
        for r in range(3):
            mask &= _fits(free[r], demand[r], strict)
        return mask

    def fits_row(self, row: int, demand: Demand) -> bool:
        strict = self.cost.strict_headroom
        free = self._free
        for r in range(3):
            f = free[r][row]
            d = demand[r]
            if d > 0:
                if not (f > d if strict else f >= d):
                    return False
            elif f < d:
                return False
        return True

    def share_keys(self, rows: IntArray) -> FloatArray:
        """The heuristic's sort key: the scarcest remaining resource as a share of capacity."""
        cap = self.capacity[:, rows]
        safe = np.where(cap > 0, cap, 1.0)
        share = np.where(cap > 0, self.free[:, rows] / safe, 1.0)
        keys: FloatArray = share.min(axis=0)
        return keys

    def share_key(self, row: int) -> float:
        """Scalar twin of `share_keys`, cached per row version (every index asks for it)."""
        version = self.versions[row]
        if self._key_version[row] == version:
            return self._key[row]
        best = math.inf
        free, cap = self._free, self._cap
        for r in range(3):
            c = cap[r][row]
            s = free[r][row] / c if c > 0 else 1.0
            best = s if s < best else best
        self._key[row] = best
        self._key_version[row] = version
        return best

    def group_delay(self, g: int, after: float = 0.0) -> float:
        """Core delay of link group `g` with `after` more bandwidth in use."""
        link = self.groups[g]
        ext = self.cost.external_delay if link.external_delay is None else link.external_delay
        return core_delay(self.cost, link.remaining - after, link.fixed_delay + ext)

    def _group_ok(self, g: int, demand: Demand, max_delay: float | None) -> bool:
        link = self.groups[g]
        if self.cost.delay_check is DelayCheck.BEFORE:
            return max_delay is None or self.group_delay(g) < max_delay
        limit = math.inf if max_delay is None else max_delay
        if link.residents:
            limit = min(limit, min(link.residents))
        return limit == math.inf or self.group_delay(g, demand[2]) < limit

    # -- filters --------------------------------------------------------------------------------
    def filter_masks(
        self, req: Request, rows: IntArray | None = None
    ) -> list[tuple[str, BoolArray]]:
        """Every filter's mask over `rows` (all rows when None), in evaluation order."""
        sel = slice(None) if rows is None else rows
        kind = self.kind[sel]
        is_cpe = self.is_cpe[sel]
        own = is_cpe & (self.owner[sel] == req.owner) & (req.owner >= 0)
        foreign = is_cpe & ~own
        if req.mode is PlacementMode.LOCAL:
            by_mode = own
        elif req.mode is PlacementMode.LOCAL_CLOUD:
            by_mode = own | ~is_cpe
        else:
            by_mode = np.ones(len(kind), dtype=bool)
        allowed_kinds = np.asarray(req.kinds, dtype=bool)
        excluded = np.zeros(len(kind), dtype=bool)
        if req.exclude:
            positions = np.arange(self.n)[sel]
            excluded = np.isin(positions, np.fromiter(req.exclude, np.int64, len(req.exclude)))
        strict = self.cost.strict_headroom
        free = self.free[:, sel]
        group = self.group[sel]
        in_group = group >= 0
        masks: list[tuple[str, BoolArray]] = [
            ("state_ready", self.ready[sel].copy()),
            ("host_kind", allowed_kinds[kind]),
            ("placement_mode", by_mode),
            ("cpe_access", ~is_cpe | (req.owner >= 0)),
            ("bnb_opt_in", ~foreign | self.lends[sel]),
            ("not_excluded", ~excluded),
        ]
        for r, name in enumerate(RESOURCE_NAMES):
            masks.append((f"headroom_{name}", _fits(free[r], req.demand[r], strict)))
        link_ok = np.ones(len(kind), dtype=bool)
        delay_ok = np.ones(len(kind), dtype=bool)
        if self.groups and in_group.any():
            remaining = np.array([g.remaining for g in self.groups])
            group_rows = np.flatnonzero(in_group)
            link_ok[group_rows] = _fits(remaining[group[group_rows]], req.demand[2], strict)
            ok = np.array(
                [self._group_ok(g, req.demand, req.max_delay) for g in range(len(self.groups))]
            )
            delay_ok[group_rows] = ok[group[group_rows]]
        masks.append(("cloud_link_bandwidth", link_ok))
        masks.append(("cloud_core_delay", delay_ok))
        return masks

    # -- costs ----------------------------------------------------------------------------------
    def costs(self, rows: IntArray, req: Request, *, resident: bool = False) -> FloatArray:
        """Cost of placing `req` on each of `rows`; with `resident`, the cost of keeping an
        instance already there (its own share counted as remaining)."""
        d = req.demand
        out = np.zeros(len(rows))
        is_cpe = self.is_cpe[rows]
        own = is_cpe & (self.owner[rows] == req.owner) & (req.owner >= 0)
        foreign = is_cpe & ~own
        if foreign.any():
            fr = rows[foreign]
            p = self.prices
            out[foreign] = self.cost.redundancy_factor * (
                p[0, fr] * d[0] + p[1, fr] * d[1] + p[2, fr] * d[2]
            )
        pool = ~is_cpe
        if pool.any():
            out[pool] = self._pool_costs(rows[pool], d, resident)
        return out

    def _pool_costs(self, rows: IntArray, d: Demand, resident: bool = False) -> FloatArray:
        eps = self.cost.epsilon
        back = 1.0 if resident else 0.0
        avail = self.free[:, rows] + back * np.asarray(d)[:, None]
        group = self.group[rows]
        if self.groups and (group >= 0).any():
            remaining = np.array([g.remaining for g in self.groups]) + back * d[2]
            avail[2] = np.where(group >= 0, remaining[np.maximum(group, 0)], avail[2])
        total = np.zeros(len(rows))
        coef = self.coefficients[:, rows]
        for r in range(3):
            if d[r] > 0:
                denominator = avail[r] + eps
                with np.errstate(divide="ignore"):
                    term = np.where(
                        denominator > 0,
                        coef[r] * d[r] / np.where(denominator > 0, denominator, 1.0),
                        np.inf,
                    )
                total += term
        return total

    # -- decisions ------------------------------------------------------------------------------
    def eligible(self, req: Request) -> BoolArray:
        alive = np.ones(self.n, dtype=bool)
        for _, mask in self.filter_masks(req):
            alive &= mask
        return alive

    def verdicts(
        self, req: Request, *, rejects: bool = True
    ) -> tuple[BoolArray, dict[str, int], dict[str, int]]:
        """Survivors, hosts removed by each filter in turn, and (when asked, or when nothing
        survives) each filter's own rejections."""
        alive = np.ones(self.n, dtype=bool)
        removed: dict[str, int] = {}
        masks = self.filter_masks(req)
        for name, mask in masks:
            removed[name] = int(np.count_nonzero(alive & ~mask))
            alive &= mask
        own: dict[str, int] = {}
        if rejects or not alive.any():
            own = {name: int(np.count_nonzero(~mask)) for name, mask in masks}
        return alive, removed, own

    def choose(self, req: Request, strategy: Strategy, *, incremental: bool = False) -> Choice:
        """The place `strategy` picks for `req`, without changing the state.

        `incremental` uses (and builds on first use) the per-demand indexes, which pays off
        when many decisions are taken on the same state; the answer is the same.
        """
        if strategy is _SPREAD:
            raise ValueError("the spread strategy works on snapshots, not on an EdgeState")
        if incremental and not req.avoid:
            choice = self._choose_incremental(req, strategy)
            if choice.row is not None:
                return choice
            _, removed, rejects = self.verdicts(req)
            return Choice(
                None, _NO_CHOICE_COST, "none", eligible=0, filters=removed, rejects=rejects
            )
        return self._choose_one_shot(req, strategy)

    def _choose_one_shot(self, req: Request, strategy: Strategy) -> Choice:
        alive, removed, rejects = self.verdicts(req, rejects=False)
        survivors = np.flatnonzero(alive)
        if survivors.size == 0:
            return Choice(
                None, _NO_CHOICE_COST, "none", eligible=0, filters=removed, rejects=rejects
            )
        pool = survivors
        if req.avoid:
            avoid = np.isin(survivors, np.fromiter(req.avoid, np.int64, len(req.avoid)))
            if not avoid.all():
                pool = survivors[~avoid]
        costs = self.costs(pool, req)
        classes = self.place_class[pool].copy()
        own = self.is_cpe[pool] & (self.owner[pool] == req.owner) & (req.owner >= 0)
        classes[own] = _OWN
        if strategy is Strategy.HEURISTIC:
            keep = self._heuristic_subset(pool, classes)
            pool, costs, classes = pool[keep], costs[keep], classes[keep]
        best = _best(pool, costs, classes)
        return self._result(
            int(pool[best]),
            float(costs[best]),
            int(classes[best]),
            req,
            int(survivors.size),
            removed,
        )

    def _heuristic_subset(self, pool: IntArray, classes: IntArray) -> BoolArray:
        """Owner's CPE if any qualifies; else the top B&B node by share, and every pool host."""
        keep = np.zeros(len(pool), dtype=bool)
        own = classes == _OWN
        if own.any():
            keep[np.flatnonzero(own)[0]] = True
            return keep
        bnb = np.flatnonzero(classes == _BNB)
        if bnb.size:
            keys = self.share_keys(pool[bnb])
            keep[bnb[int(np.argmax(keys))]] = True
        keep |= classes >= _SERVER
        return keep

    def _result(
        self,
        row: int,
        cost: float,
        cls: int,
        req: Request,
        eligible: int | None,
        removed: dict[str, int] | None,
    ) -> Choice:
        g = self._group[row]
        delay = self.group_delay(g, req.demand[2]) if g >= 0 else None
        return Choice(row, cost, PLACE_CLASSES[cls], delay, eligible, removed)

    def _index(self, demand: Demand) -> _DemandIndex:
        index = self._indexes.get(demand)
        if index is None:
            index = self._indexes[demand] = _DemandIndex(self, demand)
        return index

    def _cost_array(self, index: _DemandIndex) -> FloatArray:
        """The index's B&B cost array, brought up to date with every change since last time."""
        cost = index.cost
        if cost is None:
            return index.build_cost(self)
        log = self.log
        if index.cursor < len(log):
            lender = self._lender
            base = index.base
            demand = index.demand
            for row in set(log[index.cursor :]):
                cost[row] = base[row] if lender[row] and self.fits_row(row, demand) else np.inf
            index.cursor = len(log)
            self._trim_logs()
        return cost

    def _share_heap(self, index: _DemandIndex) -> list[tuple[float, int]]:
        """The index's heap, with an entry pushed for every node whose share may have risen."""
        heap = index.heap
        if heap is None or len(heap) > 4 * self.n + 1024:
            return index.build_heap(self)
        grown = self.grow_log
        if index.grow_cursor < len(grown):
            lender = self._lender
            for row in set(grown[index.grow_cursor :]):
                if lender[row] and self.fits_row(row, index.demand):
                    heapq.heappush(heap, (-self.share_key(row), row))
            index.grow_cursor = len(grown)
            self._trim_logs()
        return heap

    def _trim_logs(self) -> None:
        """Forget log entries every index has seen (bounded memory in long runs)."""
        if len(self.log) < 65_536:
            return
        indexes = self._indexes.values()
        if all(i.cost is None or i.cursor == len(self.log) for i in indexes) and all(
            i.heap is None or i.grow_cursor == len(self.grow_log) for i in indexes
        ):
            self.log.clear()
            self.grow_log.clear()
            for i in indexes:
                i.cursor = 0
                i.grow_cursor = 0

    def _choose_incremental(self, req: Request, strategy: Strategy) -> Choice:
        d = req.demand
        exclude = req.exclude
        cpe_allowed = req.kinds[CPE]
        if req.owner >= 0 and cpe_allowed:
            ready = self._ready
            for row in self.owner_rows.get(req.owner, ()):
                if ready[row] and row not in exclude and self.fits_row(row, d):
                    return self._result(row, 0.0, _OWN, req, None, None)
        # An owner's CPE still in the running here is not ready or does not fit, so the B&B
        # index (ready rows that fit) cannot offer it; only exclusions need skipping.
        best: tuple[float, int, int] | None = None
        mode = req.mode
        if mode is _WITH_BNB and req.owner >= 0 and cpe_allowed:
            index = self._index(d)
            top = (
                self._heap_top(index, exclude)
                if strategy is _HEURISTIC
                else _argmin_skipping(self._cost_array(index), exclude)
            )
            if top is not None:
                best = (index.base_list[top], _BNB, top)
        if mode is not _LOCAL:
            pool_best = self._pool_best_cached(req)
            if pool_best is not None and (best is None or pool_best < best):
                best = pool_best
        if best is None:
            return Choice(None, _NO_CHOICE_COST, "none")
        return self._result(best[2], best[0], best[1], req, None, None)

    def _pool_best_cached(self, req: Request) -> tuple[float, int, int] | None:
        """`_pool_best`, remembered until a pool host changes (pools do not depend on the
        owner, and most decisions in a run leave them untouched)."""
        if req.exclude and not self._pool_set.isdisjoint(req.exclude):
            return self._pool_best(req, set(req.exclude))
        key = (req.demand, req.max_delay, req.kinds)
        hit = self._pool_cache.get(key)
        if hit is not None and hit[0] == self._pool_version:
            return hit[1]
        best = self._pool_best(req, set())
        self._pool_cache[key] = (self._pool_version, best)
        return best

    def _pool_best(
        self, req: Request, skip: set[int] | frozenset[int]
    ) -> tuple[float, int, int] | None:
        """Cheapest (cost, class, row) pool host, row by row: pools are few, and a scalar pass
        beats a dozen numpy calls on a handful of rows."""
        d = req.demand
        kinds = req.kinds
        kind = self._kind
        ready = self._ready
        group = self._group
        classes = self._class
        strict = self.cost.strict_headroom
        ok_group: dict[int, bool] = {}
        best: tuple[float, int, int] | None = None
        for row in self._pool_list:
            if not ready[row] or not kinds[kind[row]] or row in skip:
                continue
            if not self.fits_row(row, d):
                continue
            g = group[row]
            if g >= 0:
                remaining = self.groups[g].remaining
                if d[2] > 0 and not (remaining > d[2] if strict else remaining >= d[2]):
                    continue
                if d[2] <= 0 and remaining < d[2]:
                    continue
                if g not in ok_group:
                    ok_group[g] = self._group_ok(g, d, req.max_delay)
                if not ok_group[g]:
                    continue
            candidate = (self._pool_cost(row, d), classes[row], row)
            if best is None or candidate < best:
                best = candidate
        return best

    def _pool_cost(self, row: int, d: Demand) -> float:
        """Scalar twin of `_pool_costs` (same operations in the same order)."""
        eps = self.cost.epsilon
        g = self._group[row]
        coef = self._coef
        total = 0.0
        for r in range(3):
            if d[r] > 0:
                avail = self.groups[g].remaining if (r == 2 and g >= 0) else self._free[r][row]
                denominator = avail + eps
                if denominator <= 0:
                    return math.inf
                total += coef[r][row] * d[r] / denominator
        return total

    def _heap_top(self, index: _DemandIndex, skip: frozenset[int]) -> int | None:
        """The qualifying node with the largest share (lowest row among equals), not in skip."""
        heap = self._share_heap(index)
        lender = self._lender
        demand = index.demand
        held: list[tuple[float, int]] = []
        found: int | None = None
        while heap:
            negkey, row = heap[0]
            if row in skip:
                held.append(heapq.heappop(heap))
                continue
            if not (lender[row] and self.fits_row(row, demand)):
                heapq.heappop(heap)  # a grow event re-files it if it qualifies again
                continue
            key = self.share_key(row)
            if -negkey != key:
                if key < -negkey:
                    heapq.heapreplace(heap, (-key, row))  # re-file under its true share
                else:
                    heapq.heappop(heap)  # an older, lower duplicate of a risen node
                continue
            found = row
            break
        for entry in held:
            heapq.heappush(heap, entry)
        return found

    def commit(self, choice: Choice, req: Request) -> None:
        """Account the chosen placement."""
        if choice.row is None:
            raise ValueError("nothing to commit: the choice has no host")
        self.allocate(choice.row, req.demand, req.max_delay)


def _fits(free: FloatArray, demand: float, strict: bool) -> BoolArray:
    if demand > 0:
        mask: BoolArray = free > demand if strict else free >= demand
    else:
        mask = free >= demand
    return mask


def _best(rows: IntArray, costs: FloatArray, classes: IntArray) -> int:
    """Position of the lowest (cost, class, row)."""
    low = costs.min()
    tied = np.flatnonzero(costs == low)
    if tied.size == 1:
        return int(tied[0])
    order = classes[tied].astype(np.int64) * (int(rows.max()) + 1) + rows[tied]
    return int(tied[int(np.argmin(order))])


def _argmin_skipping(costs: FloatArray, skip: frozenset[int]) -> int | None:
    """Lowest finite cost (first row among ties), leaving out `skip`."""
    if len(costs) == 0:
        return None
    if not skip:
        row = int(np.argmin(costs))
        return row if math.isfinite(costs[row]) else None
    saved = [(r, costs[r]) for r in skip if r < len(costs)]
    for r, _ in saved:
        costs[r] = np.inf
    try:
        row = int(np.argmin(costs))
        return row if math.isfinite(costs[row]) else None
    finally:
        for r, value in saved:
            costs[r] = value
