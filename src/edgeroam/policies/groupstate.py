"""What a control cycle knows about managed groups: members, health, loads, lifecycle activity.

Shared by the `elastic`, `ratio` and `rules` policies (and the experiment's naive baseline) so
they all read a group the same way. Everything is computed column-wise: one row per member
instance in flat numpy arrays, aggregated per group with `np.bincount`, so a cycle over 10^4
groups and 10^5 instances does no per-instance Python work once the membership is indexed.
The membership index is rebuilt only when the snapshot's instance or group table changes
(snapshots reuse an unchanged table's frozen copy, so identity is a safe cache key).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from edgeroam.model import Group, GroupKind, Instance, OperationKind, OperationState, Role
from edgeroam.snapshot import MetricView, OperationSummary, Snapshot

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

HEALTH_METRIC = "health"
"""Per-instance health: > 0 healthy, <= 0 failed (a probe or the instance's own agent)."""


@dataclass(frozen=True, eq=False)
class GroupIndex:
    """Membership of the managed groups, as flat arrays over their member instances."""

    ids: tuple[str, ...]
    """Group ids, sorted; row g of every per-group array."""
    pos: Mapping[str, int]
    groups: tuple[Group, ...]
    members: tuple[tuple[str, ...], ...]
    """Member instance ids of each group, sorted."""
    inst_ids: tuple[str, ...]
    inst_pos: Mapping[str, int]
    inst_group: IntArray
    inst_active: BoolArray
    """Role active (being deployed or serving)."""
    inst_serving: BoolArray
    """Lifecycle stage in which the instance serves."""
    inst_host: tuple[str, ...]
    children: Mapping[str, tuple[str, ...]]
    """Manager group id -> ids of the groups it manages."""
    _rows: dict[tuple[int, int], IntArray] = field(default_factory=dict, repr=False)
    _metrics: list[tuple[str, FloatArray, BoolArray]] = field(default_factory=list, repr=False)

    def metric_columns(self) -> list[tuple[str, FloatArray, BoolArray]]:
        """Per metric name: each group's capacity on it (NaN: not its metric) and whether it
        is the group's first metric."""
        if not self._metrics and self.groups:
            names = sorted({m.name for grp in self.groups for m in grp.metrics})
            for name in names:
                capacity = np.array(
                    [
                        next((m.capacity for m in grp.metrics if m.name == name), np.nan)
                        for grp in self.groups
                    ]
                )
                is_first = np.array([grp.metrics[0].name == name for grp in self.groups])
                self._metrics.append((name, capacity, is_first))
        return self._metrics

    def rows_in(self, view: MetricView) -> IntArray:
        """Row of each member in a metric column (-1 when it never reported the metric).

        A telemetry column only appends rows, so the map stays valid until new sources
        appear; it is cached per column and column length.
        """
        key = (id(view.index), len(view.ids))
        found = self._rows.get(key)
        if found is None:
            index = view.index
            limit = len(view.ids)
            rows = np.fromiter(
                (index.get(f"instance:{i}", -1) for i in self.inst_ids),
                dtype=np.int64,
                count=len(self.inst_ids),
            )
            rows[rows >= limit] = -1
            if len(self._rows) > 16:
                self._rows.clear()
            self._rows[key] = found = rows
        return found


_INDEX_CACHE: list[tuple[object, object, GroupIndex]] = []


def group_index(snapshot: Snapshot) -> GroupIndex:
    """The membership index of the snapshot's groups (cached while both tables are unchanged)."""
    for instances, groups, index in _INDEX_CACHE:
        if instances is snapshot.instances and groups is snapshot.groups:
            return index
    index = build_index(snapshot.groups, snapshot.instances)
    _INDEX_CACHE.insert(0, (snapshot.instances, snapshot.groups, index))
    del _INDEX_CACHE[4:]
    return index


def build_index(groups: Mapping[str, Group], instances: Mapping[str, Instance]) -> GroupIndex:
    ids = tuple(sorted(groups))
    pos = {g: i for i, g in enumerate(ids)}
    members: dict[str, list[str]] = {g: [] for g in ids}
    for inst in instances.values():
        bucket = members.get(inst.group_key)
        if bucket is not None:
            bucket.append(inst.id)
    member_lists = tuple(tuple(sorted(members[g])) for g in ids)
    inst_ids = tuple(i for m in member_lists for i in m)
    inst_group = np.repeat(np.arange(len(ids), dtype=np.int64), [len(m) for m in member_lists])
    active = np.fromiter(
        (instances[i].role is Role.ACTIVE for i in inst_ids), dtype=bool, count=len(inst_ids)
    )
    serving = np.fromiter((instances[i].serving for i in inst_ids), dtype=bool, count=len(inst_ids))
    children: dict[str, list[str]] = {}
    for g in ids:
        manager = groups[g].manager
        if manager is not None:
            children.setdefault(manager, []).append(g)
    return GroupIndex(
        ids=ids,
        pos=pos,
        groups=tuple(groups[g] for g in ids),
        members=member_lists,
        inst_ids=inst_ids,
        inst_pos={i: n for n, i in enumerate(inst_ids)},
        inst_group=inst_group,
        inst_active=active,
        inst_serving=serving,
        inst_host=tuple(instances[i].host for i in inst_ids),
        children={k: tuple(v) for k, v in children.items()},
    )


# --- lifecycle activity -------------------------------------------------------------------------


Span = tuple[OperationKind, float, float]
"""(kind, created_at, finished_at) of an operation; finished_at is inf while in flight."""


@dataclass(frozen=True)
class Activity:
    """Operations per group and per member instance, as the lifecycle engine reports them."""

    own_in_flight: BoolArray
    """An operation acts on the group itself or one of its members right now."""
    children_in_flight: IntArray
    """Operations in flight on the groups this group manages (what a manager is running)."""
    own_recent: FloatArray
    """Finish time of the latest operation on the group or its members (-inf: none)."""
    children_recent: FloatArray
    """Finish time of the latest operation on the groups this group manages (-inf: none)."""
    own_spans: Mapping[int, tuple[Span, ...]]
    """Group row -> every known operation on it (in flight or finished within the history)."""
    child_spans: Mapping[int, tuple[Span, ...]]
    """Group row -> every known operation on the groups it manages."""
    inst_last_touch: FloatArray
    """Per member instance: when an operation on it last finished (or started, if running)."""
    inst_busy: BoolArray

    def in_flight_at(self, row: int, t: float) -> tuple[list[OperationKind], int]:
        """Kinds of the group's own operations, and the number of its children's, that were in
        flight when a reading taken at `t` was measured (started before it, ended at or after
        it: a reading taken just before an operation completes still carries its load)."""
        own = [k for k, start, stop in self.own_spans.get(row, ()) if start < t <= stop]
        children = sum(1 for _, start, stop in self.child_spans.get(row, ()) if start < t <= stop)
        return own, children


def activity(snapshot: Snapshot, index: GroupIndex) -> Activity:
    n = len(index.ids)
    own = np.zeros(n, dtype=bool)
    children = np.zeros(n, dtype=np.int64)
    recent = np.full(n, -np.inf)
    children_recent = np.full(n, -np.inf)
    own_spans: dict[int, list[Span]] = {}
    child_spans: dict[int, list[Span]] = {}
    touch = np.full(len(index.inst_ids), -np.inf)
    busy = np.zeros(len(index.inst_ids), dtype=bool)
    for op in snapshot.operations:
        rows = _group_rows(op, index)
        if not rows:
            continue
        member_rows = [index.inst_pos[i] for i in op.instances if i in index.inst_pos]
        flying = op.state.in_flight
        if flying:
            finished = np.inf
        else:
            finished = op.finished_at if op.finished_at is not None else op.created_at
        span = (op.kind, op.created_at, float(finished))
        for g in rows:
            own_spans.setdefault(g, []).append(span)
            manager = index.groups[g].manager
            m = index.pos.get(manager) if manager is not None else None
            if m is not None:
                child_spans.setdefault(m, []).append(span)
            if flying:
                own[g] = True
                if m is not None:
                    children[m] += 1
            else:
                recent[g] = max(recent[g], finished)
                if m is not None:
                    children_recent[m] = max(children_recent[m], finished)
        for r in member_rows:
            if flying:
                busy[r] = True
                touch[r] = max(touch[r], op.created_at)
            else:
                touch[r] = max(touch[r], finished)
    return Activity(
        own_in_flight=own,
        children_in_flight=children,
        own_recent=recent,
        children_recent=children_recent,
        own_spans={g: tuple(x) for g, x in own_spans.items()},
        child_spans={g: tuple(x) for g, x in child_spans.items()},
        inst_last_touch=touch,
        inst_busy=busy,
    )


def _group_rows(op: OperationSummary, index: GroupIndex) -> set[int]:
    rows: set[int] = set()
    if op.subject in index.pos:
        rows.add(index.pos[op.subject])
    for name in (op.subject, *op.instances):
        r = index.inst_pos.get(name)
        if r is not None:
            rows.add(int(index.inst_group[r]))
    return rows


def matching_operation(
    operations: Iterable[OperationSummary],
    *,
    policy: str,
    subject: str,
    kind: OperationKind,
    created_at: float,
) -> OperationSummary | None:
    """The operation a policy's proposal became, found by who, what and when it was created."""
    for op in operations:
        if (
            op.policy == policy
            and op.subject == subject
            and op.kind is kind
            and abs(op.created_at - created_at) < 1e-9
        ):
            return op
    return None


FINAL_FAILURES = frozenset({OperationState.FAILED, OperationState.ROLLED_BACK})


# --- health -------------------------------------------------------------------------------------


def failed_members(
    snapshot: Snapshot,
    index: GroupIndex,
    touch: FloatArray,
    heartbeat_timeout_s: float,
    metric: str = HEALTH_METRIC,
) -> BoolArray:
    """Members whose health says failed, or whose heartbeats stopped.

    Only evidence newer than the last operation on an instance counts (a heal resets the
    alarm); a member that never reported and was never touched is unknown, not failed.
    """
    n = len(index.inst_ids)
    failed = np.zeros(n, dtype=bool)
    view = snapshot.telemetry.column(metric)
    stamp = np.full(n, -np.inf)
    value = np.full(n, np.nan)
    if view is not None and n:
        rows = index.rows_in(view)
        known = rows >= 0
        stamp[known] = snapshot.now - view.ages[rows[known]]
        value[known] = view.values[rows[known]]
    fresh_evidence = stamp > touch
    failed |= fresh_evidence & (value <= 0)
    last_sign = np.maximum(stamp, touch)
    silent = np.isfinite(last_sign) & (snapshot.now - last_sign > heartbeat_timeout_s)
    failed |= silent
    return failed


# --- loads --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loads:
    """Per group: sizes and the measured load (NaN when unknown)."""

    active: IntArray
    """Active-role members (being deployed or serving): what min/max size bound."""
    serving: IntArray
    """Active members serving and healthy: the observed size."""
    standby: IntArray
    standby_ready: IntArray
    """Standby members serving (hot) and healthy."""
    load: FloatArray
    """Worst metric's mean utilisation over serving members with fresh readings."""
    first: FloatArray
    """The first metric's utilisation (operation load is estimated in its unit)."""
    sample_time: FloatArray
    """Newest reading behind `load` (-inf when none)."""
    failed: BoolArray
    """Per member instance."""


def measure(
    snapshot: Snapshot,
    index: GroupIndex,
    failed: BoolArray,
) -> Loads:
    n = len(index.ids)
    g = index.inst_group
    healthy = ~failed
    active = index.inst_active
    standby = ~active
    serving = active & index.inst_serving & healthy

    def count(mask: BoolArray) -> IntArray:
        result: IntArray = np.bincount(g[mask], minlength=n).astype(np.int64)
        return result

    load = np.full(n, np.nan)
    first = np.full(n, np.nan)
    newest = np.full(n, -np.inf)
    for name, capacity, is_first in index.metric_columns():
        view = snapshot.telemetry.column(name)
        if view is None or not len(index.inst_ids):
            continue
        rows = index.rows_in(view)
        usable = serving & (rows >= 0)
        usable[usable] = ~view.stale[rows[usable]]
        values = np.zeros(len(rows))
        values[usable] = view.values[rows[usable]]
        total = np.bincount(g[usable], weights=values[usable], minlength=n)
        known = np.bincount(g[usable], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            util = np.where(known > 0, total / (known * capacity), np.nan)
        load = np.fmax(load, util)
        stamps = np.full(len(rows), -np.inf)
        stamps[usable] = snapshot.now - view.ages[rows[usable]]
        np.maximum.at(newest, g[usable], stamps[usable])
        first = np.where(is_first, util, first)
    return Loads(
        active=count(active),
        serving=count(serving),
        standby=count(standby),
        standby_ready=count(standby & index.inst_serving & healthy),
        load=load,
        first=first,
        sample_time=newest,
        failed=failed,
    )


def kind_mask(index: GroupIndex, kind: GroupKind) -> BoolArray:
    return np.array([grp.kind is kind for grp in index.groups], dtype=bool)
