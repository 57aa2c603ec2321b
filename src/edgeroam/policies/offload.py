"""Built-in `offload` policy (seed 000): relieve the CPE↔vCPE-server band by running the
functions that load it on the customers' own CPEs, and bring them back when it is safe.

Trigger. The vCPE servers report the band they use (`band.used_mbps`), per function and per
CPE×function. The use ratio of the monitored band (the sum over the servers, and each server on
its own when `per_server`) must stay above `threshold` for `hold_s` before anything moves.

Selection. Occupancy is the share of the band's *capacity* a function (or CPE×function pair)
uses, as in the seed's worked examples, so the occupancies of a band add up to its use ratio.
`highest` takes the item with the largest occupancy, `above_threshold` every item at or above
`occupancy_threshold`, `until_below` items in descending order until the projected use ratio is
back at the threshold. Scope `all` starts a selected function on every CPE with the free
resources for it (the others are named in the reason); scope `cpe_function` only on the
CPE×function pairs selected.

Revert. A function's copies come back together when the band used plus the traffic they keep
off it (reported by the CPEs) is at or below `clear_level` for `clear_hold_s`; with
`partial_revert` they come back smallest first, as many as fit. Offload and revert of one
function are kept apart by the hold times (measured from the operations this policy started),
so noise gives at most one offload/revert pair per hold time.

The per-CPE arithmetic is done on numpy arrays indexed by the snapshot's host rows; the map
from telemetry rows to host rows is kept in the policy's memory and only extended for new
sources, so a cycle over 10^5 CPEs has no per-CPE Python loop unless it moves something.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from edgeroam.inventory import HOST_KINDS
from edgeroam.model import (
    FunctionSpec,
    HostKind,
    Identifier,
    OperationKind,
    ParameterError,
    Reason,
    validate_params,
)
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.snapshot import MetricView, Snapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Group of the copies this policy starts on CPEs: marks them as offloaded copies (to be
#: returned) and keeps them out of any scaling group of the function.
OFFLOAD_GROUP_PREFIX = "offload."
_RESOURCES = ("vcpu", "memory_mb", "bandwidth_mbps")

# --- telemetry names ----------------------------------------------------------------------------

BAND_USED = "band.used_mbps"
"""Source ``host:<server>``: band used between the CPEs and that server."""

_NOT_METRIC_CHAR = re.compile(r"[^a-z0-9_]")


def metric_part(name: str) -> str:
    """A function name as one metric level: lowercase, any char outside [a-z0-9_] becomes _."""
    return _NOT_METRIC_CHAR.sub("_", name.lower())


def function_band_metric(function: str) -> str:
    """Source ``host:<server>``: band that server's copies of `function` use."""
    return f"band.fn.{metric_part(function)}.used_mbps"


def pair_band_metric(function: str) -> str:
    """Source ``host:<server>/<cpe>``: band one CPE's traffic of `function` uses at a server."""
    return f"band.cpe.{metric_part(function)}.used_mbps"


def copy_processed_metric(function: str) -> str:
    """Source ``host:<cpe>``: everything the CPE's local copy of `function` handles."""
    return f"offload.{metric_part(function)}.processed_mbps"


def copy_local_metric(function: str) -> str:
    """Source ``host:<cpe>``: the part of it the copy answers or drops (kept off the band)."""
    return f"offload.{metric_part(function)}.local_mbps"


def pair_source(server: str, cpe: str) -> str:
    return f"host:{server}/{cpe}"


def offload_group(function: str) -> str:
    return f"{OFFLOAD_GROUP_PREFIX}{function}"


# --- configuration ------------------------------------------------------------------------------


class Selection(StrEnum):
    HIGHEST = "highest"
    ABOVE_THRESHOLD = "above_threshold"
    UNTIL_BELOW = "until_below"


class Scope(StrEnum):
    ALL = "all"
    CPE_FUNCTION = "cpe_function"


class ServerCopy(StrEnum):
    KEEP = "keep"
    """The server copy keeps running (it still serves the customers without a CPE copy)."""
    STOP = "stop"
    """A customer's own server copy stops once its CPE copy runs and is re-created on revert.
    Shared server copies always keep running."""


class RevertBasis(StrEnum):
    LOCAL = "local"
    """Count what the copies answer or drop: exactly what returns to the band on revert."""
    PROCESSED = "processed"
    """Count everything the copies handle (the seed's literal wording; more cautious)."""


def check_param_overrides(function: FunctionSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate parameters given for offloaded copies; required ones may come from the server
    copy, so only the names and values given are checked."""
    relaxed = function.model_copy(
        update={
            "parameters": {
                name: spec.model_copy(update={"required": False, "default": None})
                for name, spec in function.parameters.items()
            }
        }
    )
    return validate_params(relaxed, dict(values))


class OffloadConfig(PolicyConfig):
    precedence: int = 40
    threshold: float = Field(
        default=0.7, gt=0, description="Use ratio of the band above which functions move."
    )
    clear_level: float | None = Field(
        default=None,
        gt=0,
        description="Copies return when used + kept-off band is at or below this use ratio; "
        "null means the threshold (the seed's condition).",
    )
    hold_s: float = Field(default=5.0, ge=0, description="How long the band must stay above.")
    clear_hold_s: float = Field(
        default=10.0, ge=0, description="How long the revert condition must hold."
    )
    selection: Selection = Selection.HIGHEST
    occupancy_threshold: float = Field(
        default=0.3, gt=0, le=1, description="Occupancy an item needs under above_threshold."
    )
    scope: Scope = Scope.ALL
    servers: tuple[Identifier, ...] = Field(
        default=(), description="Monitored vCPE servers; empty means every server reporting."
    )
    per_server: bool = Field(default=True, description="Also trigger on one server's band.")
    functions: tuple[Identifier, ...] = Field(
        default=(), description="Functions that may move; empty means all allowed on a CPE."
    )
    params: dict[Identifier, dict[str, Any]] = Field(
        default_factory=dict,
        description="Per function, parameters for the CPE copies over those of the server copy.",
    )
    revert_basis: RevertBasis = RevertBasis.LOCAL
    server_copy: ServerCopy = ServerCopy.KEEP
    partial_revert: bool = Field(
        default=False,
        description="Return copies one by one, smallest first, while the sum fits; by default "
        "a function's copies return together once all of them fit (the seed's condition).",
    )
    max_hosts_per_operation: int = Field(default=100, ge=1, le=10_000)
    max_named: int = Field(default=20, ge=0, le=1000, description="Hosts named in a reason.")

    @model_validator(mode="after")
    def _levels(self) -> OffloadConfig:
        if self.clear_level is not None and self.clear_level > self.threshold:
            raise ValueError(
                f"clear_level {self.clear_level} must not exceed threshold {self.threshold}"
            )
        return self

    @property
    def clear(self) -> float:
        return self.threshold if self.clear_level is None else self.clear_level


# --- memory -------------------------------------------------------------------------------------


@dataclass
class _Rows:
    """Host rows of one telemetry column's sources, extended as the column grows."""

    parsed: int = 0
    first: str | None = None
    server: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    cpe: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    keep: dict[tuple[int, ...], BoolArray] = field(default_factory=dict)
    """Server rows -> which sources are CPEs reported by one of those servers."""

    def reported_by(self, servers: tuple[int, ...], hosts: int) -> BoolArray:
        mask = self.keep.get(servers)
        if mask is None:
            in_group = np.zeros(hosts + 1, dtype=bool)  # the extra last slot is "no host"
            in_group[list(servers)] = True
            mask = self.keep[servers] = in_group[self.server] & (self.cpe >= 0)
        return mask


class ColumnIndex:
    """Maps telemetry rows to host-table rows; a derived cache, never part of a decision.

    Telemetry columns only ever append sources, so rows already mapped stay valid while the
    host table keeps its order; any other change of the host table drops the cache.
    """

    def __init__(self) -> None:
        self.host_ids: tuple[str, ...] = ()
        self.columns: dict[str, _Rows] = {}
        self._hosts: Mapping[str, Any] | None = None
        self._ids: npt.NDArray[np.object_] = np.zeros(0, dtype=object)
        self._owners: npt.NDArray[np.object_] = np.zeros(0, dtype=object)

    def ids_and_owners(
        self, snapshot: Snapshot
    ) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
        """Host id and owner per host row as object arrays (so picking 10^5 of them is one
        fancy index); rebuilt only when the snapshot's host table is a new one."""
        ids = snapshot.host_table.ids
        if self._hosts is not snapshot.hosts or len(self._ids) != len(ids):
            self._hosts = snapshot.hosts
            self._ids = np.array(ids, dtype=object)
            self._owners = np.array([snapshot.hosts[h].owner for h in ids], dtype=object)
        return self._ids, self._owners

    def _sync_hosts(self, host_ids: tuple[str, ...]) -> None:
        if host_ids is self.host_ids:
            return
        n = len(self.host_ids)
        if len(host_ids) >= n and host_ids[:n] == self.host_ids:
            if len(host_ids) > n:  # hosts were added: unresolved sources may resolve now
                for rows in self.columns.values():
                    rows.parsed = min(rows.parsed, _first_unresolved(rows))
        else:
            self.columns.clear()
        self.host_ids = host_ids

    def rows(
        self, view: MetricView, host_index: Mapping[str, int], host_ids: tuple[str, ...]
    ) -> _Rows:
        """(server row, cpe row) per source of `view`; -1 where a part is not a known host.

        ``host:<cpe>`` gives server -1; ``host:<server>/<cpe>`` gives both.
        """
        self._sync_hosts(host_ids)
        rows = self.columns.get(view.metric)
        m = len(view.ids)
        if rows is not None and m and (rows.first != view.ids[0] or rows.parsed > m):
            rows = None  # a different telemetry store (restart): start over
        if rows is None:
            rows = self.columns[view.metric] = _Rows(first=view.ids[0] if m else None)
        if rows.parsed < m:
            start = rows.parsed
            server = np.full(m, -1, dtype=np.int64)
            cpe = np.full(m, -1, dtype=np.int64)
            server[:start] = rows.server[:start]
            cpe[:start] = rows.cpe[:start]
            for i in range(start, m):
                source = view.ids[i]
                if not source.startswith("host:"):
                    continue
                name = source[5:]
                slash = name.find("/")
                if slash < 0:
                    cpe[i] = host_index.get(name, -1)
                else:
                    server[i] = host_index.get(name[:slash], -1)
                    cpe[i] = host_index.get(name[slash + 1 :], -1)
            rows.server, rows.cpe, rows.parsed = server, cpe, m
            rows.keep = {}
            if rows.first is None and m:
                rows.first = view.ids[0]
        return rows


def _first_unresolved(rows: _Rows) -> int:
    missing = np.flatnonzero(rows.cpe[: rows.parsed] < 0)
    return int(missing[0]) if missing.size else rows.parsed


@dataclass(frozen=True)
class OffloadMemory:
    """What the policy carries between cycles (timers, known copies) plus a derived index."""

    above_since: Mapping[str, float] = field(default_factory=dict)
    """Band group -> since when its use ratio has been above the threshold."""
    revert_since: Mapping[str, float] = field(default_factory=dict)
    """Function -> since when returning some of its copies has been possible."""
    copies: frozenset[str] = frozenset()
    """Ids of the offloaded copies known to exist."""
    harvested: frozenset[str] = frozenset()
    """Ids of this policy's offload operations whose copies are already in `copies`."""
    noted: frozenset[str] = frozenset()
    """Conditions already reported as notes (reported again only after they end)."""
    retired: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(function, CPE) -> server whose copy owned by the CPE's owner an offload stops."""
    index: ColumnIndex = field(default_factory=ColumnIndex, compare=False, repr=False)


# --- the policy ---------------------------------------------------------------------------------


@dataclass
class _Band:
    """One band group: a set of servers measured together."""

    name: str
    servers: list[int]  # positions in the monitored server list
    used: float
    capacity: float

    @property
    def ratio(self) -> float:
        return self.used / self.capacity


@dataclass
class _Cycle:
    """Per-cycle working data shared by the offload and revert halves."""

    snapshot: Snapshot
    config: OffloadConfig
    server_ids: list[str]
    server_rows: IntArray
    functions: list[str]
    fn_band: FloatArray  # (servers, functions); nan = unknown
    groups: list[_Band]
    is_cpe: BoolArray
    ready: BoolArray
    free: FloatArray
    copies_by_function: dict[str, list[str]]
    has_copy: dict[str, BoolArray]
    retired: dict[tuple[str, str], str] = field(default_factory=dict)
    pair_cache: dict[tuple[str, str], FloatArray | None] = field(default_factory=dict)
    owned_cache: dict[str, dict[str | None, list[str]]] | None = None

    def server_copies(self, function: str) -> dict[str | None, list[str]]:
        """Owner (None = shared) -> copies of `function` on the monitored servers, by id."""
        if self.owned_cache is None:
            snap = self.snapshot
            found: dict[str, dict[str | None, list[str]]] = {}
            for server in self.server_ids:
                for name in sorted(snap.instances_by_host.get(server, ())):
                    inst = snap.instances[name]
                    found.setdefault(inst.function, {}).setdefault(inst.owner, []).append(name)
            self.owned_cache = found
        return self.owned_cache.get(function, {})

    def pair_band(self, function: str, group: _Band, index: ColumnIndex) -> FloatArray | None:
        """Band per host row of one function's CPE traffic on the group's servers (nan =
        unknown); None when the servers do not report per CPE×function."""
        key = (function, group.name)
        if key not in self.pair_cache:
            self.pair_cache[key] = _pair_band(self, function, group, index)
        return self.pair_cache[key]


def _pair_band(cycle: _Cycle, function: str, group: _Band, index: ColumnIndex) -> FloatArray | None:
    snap = cycle.snapshot
    view = snap.telemetry.column(pair_band_metric(function))
    if view is None or not view.ids:
        return None
    table = snap.host_table
    rows = index.rows(view, table.index, table.ids)
    servers = tuple(int(r) for r in cycle.server_rows[group.servers])
    keep = rows.reported_by(servers, len(table.ids))
    if not keep.any():
        return None
    values = np.where(view.stale, np.nan, view.values) if view.stale.any() else view.values
    band = np.bincount(rows.cpe[keep], weights=values[keep], minlength=len(table.ids))
    return band.astype(np.float64, copy=False)


def _value_by_host(snapshot: Snapshot, metric: str, index: ColumnIndex) -> FloatArray:
    """A ``host:<id>`` metric as an array over host rows; nan where unknown or stale."""
    table = snapshot.host_table
    out = np.full(len(table.ids), np.nan)
    view = snapshot.telemetry.column(metric)
    if view is None or not view.ids:
        return out
    rows = index.rows(view, table.index, table.ids)
    keep = (rows.server < 0) & (rows.cpe >= 0) & ~view.stale
    out[rows.cpe[keep]] = view.values[keep]
    return out


def _named(ids: Sequence[str], limit: int) -> dict[str, Any]:
    return {"count": len(ids), "hosts": list(ids[:limit])}


def _r(x: float) -> float:
    return round(float(x), 6)


class OffloadPolicy:
    name: ClassVar[str] = "offload"
    config_model: ClassVar[type[PolicyConfig]] = OffloadConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, OffloadConfig)
        mem = memory if isinstance(memory, OffloadMemory) else None
        copies, harvested = _known_copies(snapshot, mem)
        mem = mem or OffloadMemory()
        index = mem.index
        cycle = _prepare(snapshot, config, copies)
        table = snapshot.host_table
        cycle.retired = {
            (f, cpe): server
            for (f, cpe), server in mem.retired.items()
            if f in cycle.has_copy and cpe in table.index and cycle.has_copy[f][table.index[cpe]]
        }
        notes: list[Reason] = []
        noted: set[str] = set()

        def note(key: str, reason: Reason) -> None:
            """Report a condition once, when it starts; it is reported again after it ends."""
            noted.add(key)
            if key not in mem.noted:
                notes.append(reason)

        if not cycle.groups:
            # Unknown is not zero: without a fresh band reading nothing moves either way.
            if cycle.copies_by_function:
                note(
                    "band_unknown",
                    Reason(
                        rule="band_unknown",
                        message="no fresh band reading from the monitored servers; offloaded "
                        "copies stay where they are until the band is known again",
                    ),
                )
            new = OffloadMemory(
                copies=copies,
                harvested=harvested,
                noted=frozenset(noted),
                retired=cycle.retired,
                index=index,
            )
            return PolicyResult((), new, tuple(notes))

        now = snapshot.now
        above: dict[str, float] = {}
        pressured: list[_Band] = []
        for group in cycle.groups:
            if group.ratio > config.threshold:
                since = mem.above_since.get(group.name, now)
                above[group.name] = since
                if now - since >= config.hold_s:
                    pressured.append(group)
        last_offload, last_revert = _last_operations(snapshot, self.name)

        proposals: list[Proposal] = []
        for group in cycle.groups:
            key = f"pressure:{group.name}"
            if group.name in above and key in mem.noted:
                noted.add(key)  # the episode goes on: already reported
        chosen: dict[str, BoolArray] = {}
        # The band shows an offload's effect only once its copies run: until then, and for a
        # hold time after, the readings may still count the traffic they take off it.
        settling = False
        for op in snapshot.operations:
            if op.policy == self.name and op.kind is OperationKind.OFFLOAD:
                ended = op.finished_at if op.finished_at is not None else np.inf
                settling = settling or now - ended < config.hold_s
        for group in pressured if not settling else []:
            note(
                f"pressure:{group.name}",
                Reason(
                    rule="band_pressure",
                    message=f"band {group.name} at {group.ratio:.1%} has been above "
                    f"{config.threshold:.0%} for {now - above[group.name]:.0f} s",
                    measured={"used_mbps": _r(group.used), "use_ratio": _r(group.ratio)},
                    thresholds={"threshold": config.threshold, "hold_s": config.hold_s},
                ),
            )
            made, group_notes = _offload(cycle, group, index, chosen, last_revert, self.name)
            if made:
                above[group.name] = now  # let the band settle a full hold time before more
            proposals += made
            for reason in group_notes:
                note(f"{reason.rule}:{group.name}:{reason.details.get('function', '')}", reason)

        revert_since: dict[str, float] = {}
        if not above and cycle.copies_by_function:
            made, revert_since = _revert(cycle, mem, index, last_offload, self.name)
            proposals += made
        new_memory = OffloadMemory(
            above_since=above,
            revert_since=revert_since,
            copies=copies,
            harvested=harvested,
            noted=frozenset(noted),
            retired=cycle.retired,
            index=index,
        )
        return PolicyResult(tuple(proposals), new_memory, tuple(notes))


# --- cycle preparation --------------------------------------------------------------------------


def _known_copies(
    snapshot: Snapshot, memory: OffloadMemory | None
) -> tuple[frozenset[str], frozenset[str]]:
    """Offloaded copies alive now: a full scan the first time, then the copies of new offload
    operations (this policy's or an operator's); copies that ended are dropped."""
    instances = snapshot.instances
    ops = [o for o in snapshot.operations if o.kind is OperationKind.OFFLOAD]
    if memory is None:
        found = {
            i.id
            for i in instances.values()
            if i.group is not None and i.group.startswith(OFFLOAD_GROUP_PREFIX)
        }
    else:
        found = {c for c in memory.copies if c in instances}
        for op in ops:
            if op.id not in memory.harvested:
                for name in op.instances:
                    inst = instances.get(name)
                    if inst is not None and inst.group == offload_group(inst.function):
                        found.add(name)
    return frozenset(found), frozenset(o.id for o in ops)


def _last_operations(snapshot: Snapshot, policy: str) -> tuple[dict[str, float], dict[str, float]]:
    """When this policy last started an offload / a revert of each function."""
    offload: dict[str, float] = {}
    revert: dict[str, float] = {}
    for op in snapshot.operations:
        if op.policy != policy or op.kind not in (OperationKind.OFFLOAD, OperationKind.REVERT):
            continue
        function = op.subject.split("@", 1)[0]
        target = offload if op.kind is OperationKind.OFFLOAD else revert
        target[function] = max(target.get(function, -np.inf), op.created_at)
    return offload, revert


def _prepare(snapshot: Snapshot, config: OffloadConfig, copies: frozenset[str]) -> _Cycle:
    table = snapshot.host_table
    telemetry = snapshot.telemetry
    if config.servers:
        candidates = [s for s in config.servers if s in table.index]
    else:
        server_code = HOST_KINDS.index(HostKind.SERVER)
        candidates = sorted(table.ids[r] for r in np.flatnonzero(table.kind == server_code))
    server_ids: list[str] = []
    used: list[float] = []
    capacity: list[float] = []
    for server in candidates:
        value = telemetry.value(f"host:{server}", BAND_USED)
        cap = float(table.capacity[table.index[server], 2])
        if value is None or cap <= 0:
            continue
        server_ids.append(server)
        used.append(value)
        capacity.append(cap)
    functions = sorted(snapshot.functions)
    fn_band = np.full((len(server_ids), len(functions)), np.nan)
    for s, server in enumerate(server_ids):
        for f, function in enumerate(functions):
            value = telemetry.value(f"host:{server}", function_band_metric(function))
            if value is not None:
                fn_band[s, f] = value
    groups: list[_Band] = []
    if server_ids:
        groups.append(_Band("all", list(range(len(server_ids))), sum(used), sum(capacity)))
        if config.per_server and len(server_ids) > 1:
            groups += [
                _Band(server, [s], used[s], capacity[s]) for s, server in enumerate(server_ids)
            ]
    n = len(table.ids)
    copies_by_function: dict[str, list[str]] = {}
    has_copy: dict[str, BoolArray] = {}
    for name in sorted(copies):
        inst = snapshot.instances[name]
        copies_by_function.setdefault(inst.function, []).append(name)
        mask = has_copy.get(inst.function)
        if mask is None:
            mask = has_copy[inst.function] = np.zeros(n, dtype=bool)
        row = table.index.get(inst.host)
        if row is not None:
            mask[row] = True
    return _Cycle(
        snapshot=snapshot,
        config=config,
        server_ids=server_ids,
        server_rows=np.array([table.index[s] for s in server_ids], dtype=np.int64),
        functions=functions,
        fn_band=fn_band,
        groups=groups,
        is_cpe=table.kind_mask((HostKind.CPE,)),
        ready=table.ready_mask(),
        free=table.free,  # a fresh array: the property computes it
        copies_by_function=copies_by_function,
        has_copy=has_copy,
    )


# --- offload ------------------------------------------------------------------------------------


@dataclass
class _Item:
    """A candidate move: one function on a set of CPE rows, with its expected relief."""

    function: str
    rows: IntArray
    occupancy: float
    saving: float
    skipped: list[tuple[int, str]]
    """(row, why) of CPEs that could not take it, at most `max_named` of them."""
    skipped_count: int = 0
    pairs: list[dict[str, Any]] = field(default_factory=list)
    """Pairs only: the first `max_named` pairs picked, with their occupancies."""


def _demand(snapshot: Snapshot, function: str) -> FloatArray:
    flavor = snapshot.flavor_of(function)
    return np.array([flavor.vcpu, flavor.memory_mb, flavor.bandwidth_mbps])


def _why_not(cycle: _Cycle, row: int, demand: FloatArray, spent: FloatArray | None = None) -> str:
    if not cycle.ready[row]:
        state = cycle.snapshot.hosts[cycle.snapshot.host_table.ids[row]].state.value
        return f"host is {state}"
    free = cycle.free[row] - (spent[row] if spent is not None else 0.0)
    short = [
        f"{name} {need:g} > free {max(0.0, have):g}"
        for name, need, have in zip(_RESOURCES, demand, free, strict=True)
        if need > have
    ]
    return "needs " + ", ".join(short)


def _offloadable(
    cycle: _Cycle, last_revert: Mapping[str, float]
) -> tuple[list[tuple[int, str, dict[str, Any]]], list[Reason]]:
    """(column, name, copy parameters) of the functions allowed to move now."""
    config, snap = cycle.config, cycle.snapshot
    result = []
    notes = []
    for f, name in enumerate(cycle.functions):
        spec = snap.functions[name]
        if config.functions and name not in config.functions:
            continue
        if HostKind.CPE not in spec.placement or len(offload_group(name)) > 128:
            continue
        if not spec.traffic.can_relieve:
            continue  # its CPE copies would forward or pass everything: no relief to gain
        if snap.now - last_revert.get(name, -np.inf) < config.hold_s:
            continue  # returned too recently: one offload/revert pair per hold time
        try:
            params = _copy_params(snap, cycle, name)
        except ParameterError as exc:
            notes.append(
                Reason(
                    rule="bad_params",
                    message=f"{name} cannot move to CPEs: its copies' parameters are invalid "
                    f"({exc})",
                    details={"function": name},
                )
            )
            continue
        result.append((f, name, params))
    return result, notes


def _copy_params(snapshot: Snapshot, cycle: _Cycle, function: str) -> dict[str, Any]:
    """Parameters travel with the function: the server copy's, then the configured ones."""
    shared = cycle.server_copies(function).get(None)
    params = dict(snapshot.instances[shared[0]].params) if shared else {}
    params.update(cycle.config.params.get(function, {}))
    return validate_params(snapshot.functions[function], params)


def _offload(
    cycle: _Cycle,
    group: _Band,
    index: ColumnIndex,
    chosen: dict[str, BoolArray],
    last_revert: Mapping[str, float],
    policy: str,
) -> tuple[list[Proposal], list[Reason]]:
    config, snap = cycle.config, cycle.snapshot
    group_band = cycle.fn_band[group.servers]
    fn_band = np.nansum(group_band, axis=0)
    fn_known = ~np.all(np.isnan(group_band), axis=0)
    # What this cycle's earlier choices (for another band group) already take off this one.
    used = group.used
    for function, mask in chosen.items():
        pairs = cycle.pair_band(function, group, index)
        f = cycle.functions.index(function)
        used -= float(np.nansum(pairs[mask])) if pairs is not None else float(fn_band[f])
    if used / group.capacity <= config.threshold:
        return [], []
    need = used - config.threshold * group.capacity
    movable, notes = _offloadable(cycle, last_revert)
    params = {name: values for _, name, values in movable}
    candidates: list[tuple[int, str, BoolArray, BoolArray, FloatArray]] = []
    fits_by_demand: dict[tuple[float, ...], BoolArray] = {}
    for f, function, _ in movable:
        if not fn_known[f] or fn_band[f] <= 0:
            continue
        demand = _demand(snap, function)
        open_rows = cycle.is_cpe.copy()
        taken = cycle.has_copy.get(function)
        if taken is not None:
            open_rows &= ~taken
        if function in chosen:
            open_rows &= ~chosen[function]
        key = tuple(demand.tolist())
        if key not in fits_by_demand:
            fits_by_demand[key] = cycle.ready & np.all(cycle.free >= demand, axis=1)
        candidates.append((f, function, open_rows, fits_by_demand[key], demand))
    if config.scope is Scope.ALL:
        picked, passed_over = _select_functions(cycle, group, index, candidates, fn_band, need)
    else:
        picked, passed_over, more = _select_pairs(cycle, group, index, candidates, need)
        notes += more
    if not picked:
        if passed_over:
            notes.append(
                Reason(
                    rule="nothing_to_offload",
                    message=f"band {group.name} is at {group.ratio:.1%} but no selected function "
                    "can move to a CPE with the free resources for it",
                    details={
                        "skipped": [_skipped(cycle, it, config.max_named) for it in passed_over]
                    },
                )
            )
        return [], notes
    made = _proposals(cycle, group, picked, passed_over, fn_band, chosen, params, index, policy)
    return made, notes


def _select_functions(
    cycle: _Cycle,
    group: _Band,
    index: ColumnIndex,
    candidates: list[tuple[int, str, BoolArray, BoolArray, FloatArray]],
    fn_band: FloatArray,
    need: float,
) -> tuple[list[_Item], list[_Item]]:
    """Functions to move to every CPE with room (scope all), in descending occupancy; each
    pick's copies count against the CPEs' free resources before the next is checked."""
    config = cycle.config
    spent = np.zeros_like(cycle.free)
    fits_by_demand: dict[tuple[float, ...], BoolArray] = {}  # valid until the next pick
    picked: list[_Item] = []
    passed_over: list[_Item] = []
    relief = 0.0
    for f, function, open_rows, first_fits, demand in sorted(
        candidates, key=lambda c: (-fn_band[c[0]], c[1])
    ):
        occupancy = float(fn_band[f]) / group.capacity
        if config.selection is Selection.ABOVE_THRESHOLD and occupancy < (
            config.occupancy_threshold
        ):
            break
        key = tuple(demand.tolist())
        if not picked:
            fits = first_fits  # nothing spent yet: the candidates' own check holds
        elif key in fits_by_demand:
            fits = fits_by_demand[key]
        else:
            fits = fits_by_demand[key] = cycle.ready & np.all(cycle.free - spent >= demand, axis=1)
        rows = np.flatnonzero(open_rows & fits)
        lacking = np.flatnonzero(open_rows & ~fits)
        skipped = [
            (int(r), _why_not(cycle, int(r), demand, spent)) for r in lacking[: config.max_named]
        ]
        pairs = cycle.pair_band(function, group, index)
        saving = float(np.nansum(pairs[rows])) if pairs is not None else float(fn_band[f])
        item = _Item(function, rows, occupancy, saving, skipped, int(lacking.size))
        if rows.size == 0:
            passed_over.append(item)
            continue
        picked.append(item)
        spent[rows] += demand
        fits_by_demand.clear()
        relief += saving
        if config.selection is Selection.HIGHEST:
            break
        if config.selection is Selection.UNTIL_BELOW and relief >= need - 1e-9 * group.capacity:
            break
    return picked, passed_over


def _descending(values: FloatArray) -> Iterator[IntArray]:
    """Yield index blocks of `values` in descending order (ties by index), sorting only as much
    as the caller consumes: most selections stop after a few items of 10^5–10^6."""
    n = len(values)
    done = 0
    k = 256
    while done < n:
        if k >= n:
            top = np.arange(n)
        else:
            kth = np.partition(values, n - k)[n - k]
            top = np.flatnonzero(values >= kth)
        top = top[np.lexsort((top, -values[top]))]
        yield top[done:]
        done = len(top)
        k *= 16


def _select_pairs(
    cycle: _Cycle,
    group: _Band,
    index: ColumnIndex,
    candidates: list[tuple[int, str, BoolArray, BoolArray, FloatArray]],
    need: float,
) -> tuple[list[_Item], list[_Item], list[Reason]]:
    """CPE×function pairs to move, best first, checking each CPE's resources as picks add up.

    Pairs are taken in blocks of descending band; within a block the resource check is one
    array comparison, except for CPEs picked more than once (several functions), which are
    checked one after the other in order.
    """
    config = cycle.config
    notes: list[Reason] = []
    floor = config.occupancy_threshold * group.capacity
    values_parts, rows_parts, fn_parts, fit_parts = [], [], [], []
    names: list[str] = []
    demands: list[FloatArray] = []
    for _, function, open_rows, fits, demand in candidates:
        pairs = cycle.pair_band(function, group, index)
        if pairs is None:
            notes.append(
                Reason(
                    rule="no_pair_band",
                    message=f"scope cpe_function needs the band per CPE×function from the servers "
                    f"of band {group.name}; none is reported for {function}",
                    details={"function": function, "metric": pair_band_metric(function)},
                )
            )
            continue
        if config.selection is Selection.ABOVE_THRESHOLD:
            hot = np.flatnonzero(open_rows & (pairs >= floor))  # nan (unknown) never passes
        else:
            hot = np.flatnonzero(open_rows & (pairs > 0))
        values_parts.append(pairs[hot])
        rows_parts.append(hot)
        fn_parts.append(np.full(hot.size, len(names), dtype=np.int64))
        fit_parts.append(fits[hot])
        names.append(function)
        demands.append(demand)
    if not names:
        return [], [], notes
    values = np.concatenate(values_parts)
    rows = np.concatenate(rows_parts)
    fns = np.concatenate(fn_parts)
    fits = np.concatenate(fit_parts)
    demand_of = np.array(demands)
    spent = np.zeros_like(cycle.free)
    touched = np.zeros(len(cycle.free), dtype=bool)
    relief = 0.0
    taken_parts: list[IntArray] = []
    refused_parts: list[IntArray] = []
    for block in _descending(values):
        last = False
        if config.selection is Selection.ABOVE_THRESHOLD:
            keep = values[block] >= floor
            if not keep.all():
                block, last = block[keep], True
        brow = rows[block]
        ok = fits[block].copy()
        # CPEs met twice (in this block or an earlier one) are checked one pick at a time.
        _, first, counts = np.unique(brow, return_index=True, return_counts=True)
        again = np.ones(len(block), dtype=bool)
        again[first[counts == 1]] = False
        again |= touched[brow]
        left: dict[int, FloatArray] = {}
        for i in np.flatnonzero(again & ok):
            row = int(brow[i])
            room = left.get(row, cycle.free[row] - spent[row])
            need_here = demand_of[fns[block[i]]]
            if np.all(room >= need_here):
                left[row] = room - need_here
            else:
                ok[i] = False
        cut = len(block)
        if config.selection is Selection.HIGHEST and ok.any():
            cut = int(np.argmax(ok)) + 1
        elif config.selection is Selection.UNTIL_BELOW:
            gained = relief + np.cumsum(np.where(ok, values[block], 0.0))
            enough = np.flatnonzero(gained >= need - 1e-9 * group.capacity)
            if enough.size:
                cut = int(enough[0]) + 1
        taken = block[:cut][ok[:cut]]
        taken_parts.append(taken)
        refused_parts.append(block[:cut][~ok[:cut]])
        np.add.at(spent, rows[taken], demand_of[fns[taken]])
        touched[rows[taken]] = True
        relief += float(values[taken].sum())
        if last or cut < len(block) or (config.selection is Selection.HIGHEST and taken.size):
            break
    taken = np.concatenate(taken_parts) if taken_parts else np.zeros(0, dtype=np.int64)
    refused = np.concatenate(refused_parts) if refused_parts else np.zeros(0, dtype=np.int64)
    totals = _cpe_totals(cycle, group, index, np.concatenate([rows[taken], rows[refused]]))
    picked: list[_Item] = []
    passed_over: list[_Item] = []
    for fn, function in enumerate(names):
        mine = taken[fns[taken] == fn]
        if mine.size:
            item = _Item(
                function,
                rows[mine],
                float(values[mine[0]]) / group.capacity,
                float(values[mine].sum()),
                [],
            )
            for i in mine[: config.max_named]:
                row = int(rows[i])
                total = totals.get(row, 0.0)
                item.pairs.append(
                    {
                        "cpe": cycle.snapshot.host_table.ids[row],
                        "occupancy": _r(values[i] / group.capacity),
                        "cpe_occupancy": _r(total / group.capacity),
                        "cpe_share_of_used": _r(total / group.used),
                        "share_of_cpe": _r(values[i] / total) if total > 0 else None,
                    }
                )
            picked.append(item)
        lost = refused[fns[refused] == fn]
        if lost.size:
            skipped = [
                (int(rows[i]), _why_not(cycle, int(rows[i]), demands[fn], spent))
                for i in lost[: config.max_named]
            ]
            empty = np.zeros(0, dtype=np.int64)
            passed_over.append(
                _Item(function, empty, float(values[lost[0]]) / group.capacity, 0.0, skipped)
            )
            passed_over[-1].skipped_count = int(lost.size)
    return picked, passed_over, notes


def _cpe_totals(
    cycle: _Cycle, group: _Band, index: ColumnIndex, rows: IntArray
) -> dict[int, float]:
    """Band of all functions per CPE row, for the few rows a reason names."""
    wanted = np.unique(rows)[: 10 * cycle.config.max_named + 10]
    total = np.zeros(len(wanted))
    for function in cycle.functions:
        pairs = cycle.pair_band(function, group, index)
        if pairs is not None:
            total += np.nan_to_num(pairs[wanted])
    return {int(r): float(t) for r, t in zip(wanted, total, strict=True)}


def _skipped(cycle: _Cycle, item: _Item, limit: int) -> dict[str, Any]:
    ids = cycle.snapshot.host_table.ids
    return {
        "function": item.function,
        "hosts": {ids[r]: why for r, why in item.skipped[:limit]},
    }


def _proposals(
    cycle: _Cycle,
    group: _Band,
    picked: list[_Item],
    passed_over: list[_Item],
    fn_band: FloatArray,
    chosen: dict[str, BoolArray],
    params: Mapping[str, dict[str, Any]],
    index: ColumnIndex,
    policy: str,
) -> list[Proposal]:
    """One offload operation per function and chunk of CPEs, each with the full reason."""
    config, snap = cycle.config, cycle.snapshot
    table = snap.host_table
    by_function: dict[str, list[_Item]] = {}
    for it in picked:
        by_function.setdefault(it.function, []).append(it)
    relief = sum(it.saving for it in picked)
    projected = (group.used - relief) / group.capacity
    occupancy = {
        name: _r(fn_band[f] / group.capacity)
        for f, name in enumerate(cycle.functions)
        if fn_band[f] > 0
    }
    proposals: list[Proposal] = []
    for function, its in by_function.items():
        rows = np.concatenate([it.rows for it in its])
        demand = _demand(snap, function)
        cycle.free[rows] -= demand  # rows are distinct; later choices of this cycle see it
        mask = chosen.get(function)
        if mask is None:
            mask = chosen[function] = np.zeros(len(table.ids), dtype=bool)
        mask[rows] = True
        others = [it for it in passed_over if it.function == function]
        skipped = [s for it in its + others for s in it.skipped]
        skipped_count = sum(it.skipped_count for it in its + others)
        ids, owners_of = index.ids_and_owners(snap)
        hosts: list[str] = ids[rows].tolist()
        owner_list: list[str | None] = owners_of[rows].tolist()
        f = cycle.functions.index(function)
        measured: dict[str, Any] = {
            "band": group.name,
            "servers": [cycle.server_ids[s] for s in group.servers],
            "used_mbps": _r(group.used),
            "capacity_mbps": _r(group.capacity),
            "use_ratio": _r(group.ratio),
            "occupancy": occupancy,
            "function_occupancy": _r(fn_band[f] / group.capacity),
            "expected_relief_mbps": _r(sum(it.saving for it in its)),
            "projected_use_ratio": _r(projected),
        }
        pairs = [pair for it in its for pair in it.pairs]
        if config.scope is Scope.CPE_FUNCTION:
            measured["pairs"] = pairs
        if config.scope is Scope.ALL:
            what = f"{len(hosts)} CPE(s)"
        else:
            what = ", ".join(
                f"{pair['cpe']} (its traffic: {pair['cpe_occupancy']:.0%} of the band's "
                f"capacity, {pair['cpe_share_of_used']:.0%} of its use, "
                f"{pair['share_of_cpe'] or 0:.0%} of it {function})"
                for pair in pairs[:3]
            )
            what += f" and {len(hosts) - 3} more CPE(s)" if len(hosts) > 3 else ""
        message = (
            f"band {group.name} at {group.ratio:.0%} > {config.threshold:.0%}; {function} "
            f"occupies {fn_band[f] / group.capacity:.0%}: start it on {what}"
        )
        if skipped_count:
            named = ", ".join(table.ids[r] for r, _ in skipped[: config.max_named])
            more = ", …" if skipped_count > len(skipped[: config.max_named]) else ""
            message += f"; {skipped_count} CPE(s) skipped, lacking free resources ({named}{more})"
        reason = Reason(
            rule="band_pressure",
            message=message,
            measured=measured,
            thresholds={
                "threshold": config.threshold,
                "hold_s": config.hold_s,
                "selection": config.selection.value,
                "scope": config.scope.value,
                **(
                    {"occupancy_threshold": config.occupancy_threshold}
                    if config.selection is Selection.ABOVE_THRESHOLD
                    else {}
                ),
            },
            details={
                "resource_check": {
                    "demand": dict(zip(_RESOURCES, demand.tolist(), strict=True)),
                    "passed": len(hosts),
                    "skipped": {
                        "count": skipped_count,
                        "hosts": {table.ids[r]: why for r, why in skipped[: config.max_named]},
                    },
                },
                "params": params[function],
            },
        )
        step = config.max_hosts_per_operation
        busy = snap.busy
        template: Proposal | None = None
        for start in range(0, len(hosts), step):
            chunk = hosts[start : start + step]
            owners = owner_list[start : start + step]
            retire: list[str] = []
            if config.server_copy is ServerCopy.STOP:
                own = cycle.server_copies(function)
                for host, owner in zip(chunk, owners, strict=True):
                    for name in own.get(owner, ()):
                        if name not in busy:
                            retire.append(name)
                            cycle.retired[(function, host)] = snap.instances[name].host
            fields = {
                "subject": f"{function}@{chunk[0]}",
                "hosts": tuple(chunk),
                "instances": tuple(retire),
                "params": {
                    **params[function],
                    "_owners": owners,
                    "_group": offload_group(function),
                },
            }
            if template is None:
                template = Proposal(
                    kind=OperationKind.OFFLOAD,
                    function=function,
                    priority=int(snap.functions[function].criticality),
                    policy=policy,
                    reason=reason,
                    **fields,
                )
                proposals.append(template)
            else:  # same types as the validated first chunk: a copy is 10^3 chunks cheaper
                proposals.append(template.model_copy(update=fields))
    return proposals


# --- revert -------------------------------------------------------------------------------------


def _revert(
    cycle: _Cycle,
    memory: OffloadMemory,
    index: ColumnIndex,
    last_offload: Mapping[str, float],
    policy: str,
) -> tuple[list[Proposal], dict[str, float]]:
    """Return copies while used band + what they keep off it stays ≤ clear_level."""
    config, snap = cycle.config, cycle.snapshot
    table = snap.host_table
    band = cycle.groups[0]  # the aggregate: copies' traffic may return to any server
    limit = config.clear * band.capacity
    used = band.used
    busy = snap.busy
    now = snap.now
    since: dict[str, float] = {}
    proposals: list[Proposal] = []
    for function in sorted(cycle.copies_by_function):
        names = [c for c in cycle.copies_by_function[function] if c not in busy]
        if not names or (
            not config.partial_revert and len(names) < len(cycle.copies_by_function[function])
        ):
            continue  # copies still starting (or stopping) are not settled enough to judge
        metric = (
            copy_local_metric(function)
            if config.revert_basis is RevertBasis.LOCAL
            else copy_processed_metric(function)
        )
        by_host = _value_by_host(snap, metric, index)
        rows = np.array(
            [table.index.get(snap.instances[c].host, -1) for c in names], dtype=np.int64
        )
        returning = np.where(rows >= 0, by_host[np.maximum(rows, 0)], np.nan)
        # A copy healed onto a server (its CPE died) already sends its traffic over the band:
        # returning it adds nothing.
        returning[(rows >= 0) & ~cycle.is_cpe[np.maximum(rows, 0)]] = 0.0
        known = ~np.isnan(returning)
        if not known.any():
            continue
        order = np.flatnonzero(known)
        if config.partial_revert:  # smallest first, so as many copies as possible return
            order = order[np.lexsort((rows[order], returning[order]))]
        if not config.partial_revert and not known.all():
            continue  # some copy's traffic is unknown: the sum of all of them is unknown
        total = np.cumsum(returning[order])
        fit = int(np.searchsorted(total, limit - used + 1e-9, side="right"))
        if fit == 0 or (not config.partial_revert and fit < len(order)):
            continue
        started = memory.revert_since.get(function, now)
        since[function] = started
        if now - started < config.clear_hold_s:
            continue
        if now - last_offload.get(function, -np.inf) < config.clear_hold_s:
            continue
        back = order[:fit]
        back_mbps = float(total[fit - 1])
        projected = (used + back_mbps) / band.capacity
        used += back_mbps
        copies = [names[i] for i in back]
        hosts = [snap.instances[c].host for c in copies]
        reason = Reason(
            rule="band_relieved",
            message=f"band {band.used:.0f} + {back_mbps:.0f} Mbit/s kept off it by {len(copies)} "
            f"copy(ies) of {function} = {projected:.0%} ≤ {config.clear:.0%} for "
            f"{now - started:.0f} s: return {function} to the server",
            measured={
                "band": band.name,
                "used_mbps": _r(band.used),
                "capacity_mbps": _r(band.capacity),
                "use_ratio": _r(band.ratio),
                "returning_mbps": _r(back_mbps),
                "projected_use_ratio": _r(projected),
                "copies": len(copies),
                "copies_staying": len(names) - len(copies),
            },
            thresholds={
                "clear_level": config.clear,
                "clear_hold_s": config.clear_hold_s,
                "revert_basis": config.revert_basis.value,
            },
            details={"hosts": _named(hosts, config.max_named)},
        )
        step = config.max_hosts_per_operation
        for start in range(0, len(copies), step):
            chunk = copies[start : start + step]
            restore = _restore_entries(cycle, function, chunk)
            proposals.append(
                Proposal(
                    kind=OperationKind.REVERT,
                    subject=f"{function}@{snap.instances[chunk[0]].host}",
                    instances=tuple(chunk),
                    function=function,
                    hosts=tuple(snap.instances[c].host for c in chunk),
                    params={"_restore": restore} if restore else {},
                    priority=int(snap.functions[function].criticality),
                    policy=policy,
                    reason=reason,
                )
            )
    return proposals, since


def _restore_entries(cycle: _Cycle, function: str, copies: list[str]) -> list[dict[str, Any]]:
    """Server copies to re-create before `copies` stop (server_copy = stop): on the server the
    offload stopped one on, else — memory lost in a restart — on the first ready monitored
    server when the owner would otherwise have no copy of the function there at all."""
    if cycle.config.server_copy is not ServerCopy.STOP:
        return []
    snap = cycle.snapshot
    existing = cycle.server_copies(function)
    ready = [s for s in cycle.server_ids if cycle.ready[snap.host_table.index[s]]]
    entries = []
    for name in copies:
        inst = snap.instances[name]
        if existing.get(inst.owner):
            continue  # the owner still has a server copy (its stop never ran)
        server = cycle.retired.get((function, inst.host))
        if server is None and existing.get(None):
            continue  # a shared copy serves the owner; nothing is known to restore
        if server is None or server not in ready:
            if not ready:
                continue
            server = ready[0]
        entries.append({"host": server, "owner": inst.owner, "params": dict(inst.params)})
    return entries
