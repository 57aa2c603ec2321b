"""Built-in `elastic` policy: scale functions and their managers between branch and cloud.

One decision per managed group per cycle, from the group's aggregated load (seed 002, FIGs.
5A, 5B and 6):

* overload / underload thresholds per group, underload strictly below overload, each static or
  relative to the group's peers (follow the most loaded peer, or rise while many peers are
  loaded), confirmed by N consecutive samples (a load past `saturation` confirms at once);
* an overloaded group scales out by as many members as bring it back to its target load, on
  its home branch while the branch stays under its own limit, else in the cloud; an underloaded
  group scales in, never below its minimum (and never proposes anything at the minimum);
  a cooldown follows every action;
* lifecycle awareness (claims 5–7): no scaling while the group runs an operation of its own,
  has one planned within `before_s` or finished one within `after_s`; a manager running
  operations on the groups it manages waits too (or, configured so, acts on its load minus
  what those operations cost); the load an operation itself causes is estimated and
  subtracted before any comparison;
* each action is verified against the group's observed size instead of trusting the request;
* a congested branch sends members to the cloud, most relief per unit of cost first.

All maths is done column-wise over the groups (see `groupstate`); Python only runs for the
groups that actually act this cycle.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, ValidationError, field_validator, model_validator

from edgeroam.model import (
    Group,
    HostKind,
    HostState,
    Model,
    OperationKind,
    OperationState,
    Reason,
    Resources,
)
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.groupstate import (
    FINAL_FAILURES,
    BoolArray,
    FloatArray,
    GroupIndex,
    IntArray,
    Loads,
    activity,
    failed_members,
    group_index,
    matching_operation,
    measure,
)
from edgeroam.policies.placement import PlacementRequest, PlacementResult, Reservations, place
from edgeroam.snapshot import Snapshot

# --- configuration ------------------------------------------------------------------------------


class Threshold(Model):
    """A load level (utilisation, 1.0 = full), optionally moved by the peers' loads.

    * `peer_within`: the level is at least (1 - peer_within) × the most loaded peer's load,
      so when everyone is busy only the groups near the top act (seed ¶0105's "within 5 % of
      the highest load");
    * `raise_by` / `raise_when_peers` / `raise_peer_level`: the level rises by `raise_by`
      while at least `raise_when_peers` peers are at or above `raise_peer_level`.
    """

    level: float = Field(gt=0)
    peer_within: float | None = Field(default=None, gt=0, le=1)
    raise_by: float = Field(default=0.0, ge=0)
    raise_when_peers: int | None = Field(default=None, ge=1)
    raise_peer_level: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _raise_complete(self) -> Threshold:
        parts = (self.raise_when_peers is not None, self.raise_peer_level is not None)
        if self.raise_by > 0 and not all(parts):
            raise ValueError("raise_by needs both raise_when_peers and raise_peer_level")
        if any(parts) and self.raise_by == 0:
            raise ValueError("raise_when_peers/raise_peer_level need a positive raise_by")
        return self


def _threshold(value: Any) -> Any:
    """Let a config write `overload: 0.8` for a static threshold."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"level": value}
    return value


class Scaling(Model):
    """How one group is scaled; `ElasticConfig.groups` overrides fields per group."""

    overload: Threshold = Threshold(level=0.8)
    underload: Threshold = Threshold(level=0.3)
    target: float | None = Field(
        default=None,
        gt=0,
        description="Load the group is sized for after an action; default midway between "
        "the thresholds.",
    )
    overload_occurrences: int = Field(default=2, ge=1)
    underload_occurrences: int = Field(default=5, ge=1)
    saturation: float | None = Field(
        default=1.0,
        gt=0,
        description="A load at or above this confirms an overload at once (waiting for more "
        "samples while members are saturated only prolongs the outage); None disables.",
    )
    cooldown_out_s: float = Field(default=300.0, ge=0)
    cooldown_in_s: float = Field(default=900.0, ge=0)
    max_step_out: int = Field(default=4, ge=1)
    max_step_in: int = Field(default=1, ge=1)
    operation_load: dict[OperationKind, float] = Field(
        default_factory=dict,
        description="Estimated load an operation in flight on the group adds to it, in units "
        "of the group's first metric (e.g. state sync while a member is added).",
    )
    child_operation_load: float = Field(
        default=0.0,
        ge=0,
        description="For managers: load each operation in flight on a managed group adds, in "
        "units of the manager's first metric (e.g. lifecycle jobs).",
    )

    _thresholds = field_validator("overload", "underload", mode="before")(_threshold)

    @field_validator("operation_load")
    @classmethod
    def _non_negative(cls, value: dict[OperationKind, float]) -> dict[OperationKind, float]:
        bad = sorted(k.value for k, v in value.items() if v < 0)
        if bad:
            raise ValueError(f"operation load of {bad} must not be negative")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if self.underload.level >= self.overload.level:
            raise ValueError(
                f"underload level {self.underload.level} must be below overload level "
                f"{self.overload.level}"
            )
        target = self.effective_target
        if not self.underload.level < target < self.overload.level:
            raise ValueError(
                f"target {target} must lie between the underload ({self.underload.level}) and "
                f"overload ({self.overload.level}) levels"
            )
        return self

    @property
    def effective_target(self) -> float:
        if self.target is not None:
            return self.target
        return (self.overload.level + self.underload.level) / 2


class LifecycleWindows(Model):
    before_s: float = Field(
        default=600.0, ge=0, description="No scaling this long before a planned operation."
    )
    after_s: float = Field(
        default=300.0, ge=0, description="No scaling this long after an operation finished."
    )
    while_managing: Literal["hold", "subtract"] = Field(
        default="hold",
        description="A manager running operations on its groups: wait (claim 7) or act on its "
        "load minus those operations' estimated load (¶0127).",
    )


class BranchRelief(Model):
    enabled: bool = True
    overload: float = Field(
        default=0.9,
        gt=0,
        le=1,
        description="Share of a branch's server vCPU allocated above which members move to the "
        "cloud; scale-outs stay at home only while they keep the branch under it.",
    )
    occurrences: int = Field(default=3, ge=1, description="Consecutive cycles above the limit.")
    cooldown_s: float = Field(default=900.0, ge=0)


class ElasticConfig(PolicyConfig):
    precedence: int = 40
    defaults: Scaling = Scaling()
    groups: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per group id: Scaling fields overriding `defaults`."
    )
    lifecycle: LifecycleWindows = LifecycleWindows()
    branch: BranchRelief = BranchRelief()
    verify_after_s: float = Field(
        default=600.0,
        gt=0,
        description="How long an action may take to show in the group's observed size.",
    )
    heartbeat_timeout_s: float = Field(
        default=180.0, gt=0, description="Silence after which a member counts as failed."
    )

    @model_validator(mode="after")
    def _overrides_valid(self) -> ElasticConfig:
        problems = []
        for name in self.groups:
            try:
                self.scaling_for(name)
            except ValidationError as exc:
                for error in exc.errors():
                    loc = ".".join(str(part) for part in error["loc"])
                    message = error["msg"].removeprefix("Value error, ")
                    problems.append(f"groups.{name}{'.' + loc if loc else ''}: {message}")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def scaling_for(self, group: str) -> Scaling:
        data = self.groups.get(group)
        if not data:
            return self.defaults
        return Scaling.model_validate({**self.defaults.model_dump(), **data})


# --- memory -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """An action taken, waiting to be seen in the group's observed size."""

    kind: OperationKind
    decided_at: float
    expected: int
    operation: str | None = None


@dataclass(frozen=True)
class ElasticMemory:
    ids: tuple[str, ...] = ()
    over: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    under: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    last_sample: FloatArray = field(default_factory=lambda: np.zeros(0))
    last_out: FloatArray = field(default_factory=lambda: np.zeros(0))
    last_in: FloatArray = field(default_factory=lambda: np.zeros(0))
    pending: Mapping[str, Pending] = field(default_factory=lambda: MappingProxyType({}))
    held: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """Group -> the hold rule last reported, so a hold is noted once, not every cycle."""
    branch_over: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    branch_last: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def aligned(self, ids: tuple[str, ...]) -> ElasticMemory:
        """The same memory re-indexed on another (sorted) group list; new groups start fresh."""
        if ids == self.ids:
            return self
        old = {g: i for i, g in enumerate(self.ids)}
        rows = np.array([old.get(g, -1) for g in ids], dtype=np.int64)
        known = rows >= 0

        def take(array: Any, fill: float) -> Any:
            out = np.full(len(ids), fill, dtype=array.dtype)
            out[known] = array[rows[known]]
            return out

        return replace(
            self,
            ids=ids,
            over=take(self.over, 0),
            under=take(self.under, 0),
            last_sample=take(self.last_sample, -np.inf),
            last_out=take(self.last_out, -np.inf),
            last_in=take(self.last_in, -np.inf),
            pending=MappingProxyType({g: p for g, p in self.pending.items() if g in ids}),
            held=MappingProxyType({g: r for g, r in self.held.items() if g in ids}),
        )


# --- per-group parameter columns ----------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    settings: tuple[Scaling, ...]
    over_level: FloatArray
    under_level: FloatArray
    occ_out: IntArray
    occ_in: IntArray
    saturation: FloatArray
    cooldown_out: FloatArray
    cooldown_in: FloatArray
    min_size: IntArray
    max_size: IntArray
    capacity_first: FloatArray
    manager_row: IntArray
    """Row of each group's manager, -1 when it has none (or an unknown one)."""
    planned_rows: tuple[int, ...]
    homes: tuple[str, ...]
    """Home sites of the groups, sorted."""
    relative_rows: tuple[int, ...]
    """Groups with a threshold that depends on their peers."""


_COLUMN_CACHE: list[tuple[object, object, _Columns]] = []


def _columns(config: ElasticConfig, index: GroupIndex) -> _Columns:
    for cfg, idx, cols in _COLUMN_CACHE:
        if cfg is config and idx is index:
            return cols
    settings = tuple(config.scaling_for(g) for g in index.ids)
    cols = _Columns(
        settings=settings,
        over_level=np.array([s.overload.level for s in settings]),
        under_level=np.array([s.underload.level for s in settings]),
        occ_out=np.array([s.overload_occurrences for s in settings], dtype=np.int64),
        occ_in=np.array([s.underload_occurrences for s in settings], dtype=np.int64),
        saturation=np.array(
            [s.saturation if s.saturation is not None else np.inf for s in settings]
        ),
        cooldown_out=np.array([s.cooldown_out_s for s in settings]),
        cooldown_in=np.array([s.cooldown_in_s for s in settings]),
        min_size=np.array([g.min_size for g in index.groups], dtype=np.int64),
        max_size=np.array([g.max_size for g in index.groups], dtype=np.int64),
        capacity_first=np.array([g.metrics[0].capacity for g in index.groups]),
        manager_row=np.array(
            [index.pos.get(g.manager, -1) if g.manager else -1 for g in index.groups],
            dtype=np.int64,
        ),
        planned_rows=tuple(r for r, g in enumerate(index.groups) if g.planned),
        homes=tuple(sorted({g.site for g in index.groups if g.site is not None})),
        relative_rows=tuple(
            r
            for r, s in enumerate(settings)
            if any(t.peer_within is not None or t.raise_by > 0 for t in (s.overload, s.underload))
        ),
    )
    _COLUMN_CACHE.insert(0, (config, index, cols))
    del _COLUMN_CACHE[4:]
    return cols


# --- thresholds relative to peers ---------------------------------------------------------------


def peer_loads(index: GroupIndex, load: FloatArray, row: int) -> FloatArray:
    """Known loads of a group's peers (explicit list, else every other group of its kind)."""
    group = index.groups[row]
    if group.peers is not None:
        rows = [index.pos[p] for p in group.peers if p in index.pos]
    else:
        rows = [r for r, g in enumerate(index.groups) if g.kind is group.kind and r != row]
    values = load[np.array(rows, dtype=np.int64)] if rows else np.zeros(0)
    result: FloatArray = values[~np.isnan(values)]
    return result


def effective_level(threshold: Threshold, peers: FloatArray) -> float:
    """A threshold's level this cycle given the peers' known loads."""
    level = threshold.level
    if threshold.raise_by > 0:
        assert threshold.raise_peer_level is not None and threshold.raise_when_peers is not None
        if int(np.count_nonzero(peers >= threshold.raise_peer_level)) >= (
            threshold.raise_when_peers
        ):
            level += threshold.raise_by
    if threshold.peer_within is not None and peers.size:
        level = max(level, (1.0 - threshold.peer_within) * float(peers.max()))
    return level


def effective_thresholds(
    index: GroupIndex, cols: _Columns, load: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """(overload, underload) level per group; underload is always strictly below overload."""
    over = cols.over_level.copy()
    under = cols.under_level.copy()
    for row in cols.relative_rows:
        s = cols.settings[row]
        peers = peer_loads(index, load, row)
        over[row] = effective_level(s.overload, peers)
        under[row] = effective_level(s.underload, peers)
    clash = under >= over
    under[clash] = over[clash] * (cols.under_level[clash] / cols.over_level[clash])
    return over, under


# --- the policy ---------------------------------------------------------------------------------


@dataclass
class _Cycle:
    """Per-cycle working state shared by the decision helpers."""

    snapshot: Snapshot
    config: ElasticConfig
    index: GroupIndex
    loads: Loads
    placement: MemberPlacement
    homes: tuple[str, ...] = ()


class ElasticPolicy:
    name: ClassVar[str] = "elastic"
    config_model: ClassVar[type[PolicyConfig]] = ElasticConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, ElasticConfig)
        index = group_index(snapshot)
        mem = memory if isinstance(memory, ElasticMemory) else ElasticMemory()
        mem = mem.aligned(index.ids)
        if not index.ids:
            return PolicyResult(memory=mem)
        now = snapshot.now
        act = activity(snapshot, index)
        failed = failed_members(snapshot, index, act.inst_last_touch, config.heartbeat_timeout_s)
        loads = measure(snapshot, index, failed)
        cols = _columns(config, index)
        notes: list[Reason] = []

        # What operations cost, estimated and taken out of the measured load (claims 5-7).
        # The operations that count are those in flight when the load was measured.
        extra = np.zeros(len(index.ids))
        for row in sorted({*act.own_spans, *act.child_spans}):
            s = cols.settings[row]
            kinds, child_ops = act.in_flight_at(row, float(loads.sample_time[row]))
            extra[row] = sum(s.operation_load.get(k, 0.0) for k in kinds)
            extra[row] += child_ops * s.child_operation_load
        with np.errstate(invalid="ignore", divide="ignore"):
            extra_util = np.where(
                loads.serving > 0, extra / (loads.serving * cols.capacity_first), 0.0
            )
        first = np.clip(loads.first - extra_util, 0.0, None)
        corrected = np.where(np.isnan(loads.first), loads.load, np.fmax(first, _others(loads)))

        over_eff, under_eff = effective_thresholds(index, cols, corrected)

        # Occurrence counting: only a new, known sample moves the counters; a gap resets them.
        known = ~np.isnan(corrected)
        new = known & (loads.sample_time > mem.last_sample)
        over = np.where(new, np.where(corrected >= over_eff, mem.over + 1, 0), mem.over)
        under = np.where(new, np.where(corrected <= under_eff, mem.under + 1, 0), mem.under)
        over = np.where(known, over, 0)
        under = np.where(known, under, 0)
        last_sample = np.where(new, loads.sample_time, mem.last_sample)
        confirmed_out = (over >= cols.occ_out) | (new & (corrected >= cols.saturation))
        confirmed_in = under >= cols.occ_in

        # Verify earlier actions against the observed size before deciding anything new.
        pending = dict(mem.pending)
        last_out = mem.last_out.copy()
        last_in = mem.last_in.copy()
        for gid, p in sorted(mem.pending.items()):
            row = index.pos[gid]
            verdict = _verify(snapshot, config, gid, p, int(loads.serving[row]))
            if verdict is None:
                continue
            rule, message, cleared = verdict
            notes.append(
                Reason(
                    rule=rule,
                    message=message,
                    measured={"observed_size": int(loads.serving[row])},
                    details={"group": gid, "expected": p.expected, "kind": p.kind.value},
                )
            )
            del pending[gid]
            if cleared:  # the action did not happen: allow a corrective one at once
                last_out[row] = -np.inf
                last_in[row] = -np.inf

        # Lifecycle holds.
        windows = config.lifecycle
        planned = _planned(index, cols, now, windows.before_s)
        recent = now - act.own_recent < windows.after_s
        # Claim 7: a manager waits while it runs, is about to run, or just ran operations on
        # the groups it manages (unless configured to act on the corrected load instead).
        managing = (act.children_in_flight > 0) | (now - act.children_recent < windows.after_s)
        has_manager = cols.manager_row >= 0
        manager_down = has_manager & (loads.serving[np.maximum(cols.manager_row, 0)] == 0)
        awaiting = np.zeros(len(index.ids), dtype=bool)
        awaiting[[index.pos[g] for g in pending]] = True
        hold_reason = np.full(len(index.ids), "", dtype=object)
        for mask, rule in (
            (manager_down, "manager_unavailable"),
            (managing & (windows.while_managing == "hold"), "managing_operations"),
            (recent, "recent_operation"),
            (planned, "planned_operation"),
            (act.own_in_flight, "own_operation"),
            (awaiting, "awaiting_verification"),
        ):
            hold_reason[mask] = rule

        cooled_out = now - last_out >= cols.cooldown_out
        cooled_in = now - last_in >= cols.cooldown_in
        since_any = np.minimum(now - last_out, now - last_in)
        cooled_out &= since_any >= cols.cooldown_out
        cooled_in &= since_any >= cols.cooldown_in
        below_min = loads.active < cols.min_size
        want_out = (confirmed_out & (loads.active < cols.max_size)) | below_min
        want_in = confirmed_in & (loads.active > cols.min_size) & ~want_out
        wanting = want_out | want_in

        limit = config.branch.overload if config.branch.enabled else 1.0
        cycle = _Cycle(snapshot, config, index, loads, MemberPlacement(snapshot, limit), cols.homes)
        proposals: list[Proposal] = []
        held = dict(mem.held)
        decided: set[str] = set()
        for found in np.flatnonzero(wanting):
            row = int(found)
            gid = index.ids[row]
            group = index.groups[row]
            rule = str(hold_reason[row])
            if rule:
                if held.get(gid) != rule:
                    held[gid] = rule
                    notes.append(_hold_note(group, rule, want_out[row], corrected[row], act, row))
                continue
            held.pop(gid, None)
            if (want_out[row] and not cooled_out[row]) or (want_in[row] and not cooled_in[row]):
                continue
            s = cols.settings[row]
            common = {
                "load": _round(loads.load[row]),
                "operation_load": _round(extra_util[row]),
                "corrected_load": _round(corrected[row]),
                "active": int(loads.active[row]),
                "serving": int(loads.serving[row]),
            }
            thresholds = {
                "overload": _round(over_eff[row]),
                "underload": _round(under_eff[row]),
                "target": s.effective_target,
                "min_size": group.min_size,
                "max_size": group.max_size,
            }
            if want_out[row]:
                proposal = _scale_out(cycle, row, s, corrected[row], common, thresholds, over[row])
                if proposal is None:
                    continue
                last_out[row] = now
            else:
                proposal = _scale_in(cycle, row, s, corrected[row], common, thresholds, under[row])
                if proposal is None:
                    continue
                last_in[row] = now
            proposals.append(proposal)
            decided.add(gid)
            size = int(loads.serving[row])
            step = (
                len(proposal.hosts)
                if proposal.kind is OperationKind.SCALE_OUT
                else -len(proposal.instances)
            )
            pending[gid] = Pending(kind=proposal.kind, decided_at=now, expected=size + step)
        for gid in list(held):
            row = index.pos[gid]
            if not wanting[row]:
                del held[gid]

        branch_over, branch_last = dict(mem.branch_over), dict(mem.branch_last)
        if config.branch.enabled:
            proposals += _relieve_branches(
                cycle, hold_reason, decided, branch_over, branch_last, act.inst_busy
            )

        new_memory = ElasticMemory(
            ids=index.ids,
            over=over.astype(np.int64),
            under=under.astype(np.int64),
            last_sample=last_sample,
            last_out=last_out,
            last_in=last_in,
            pending=MappingProxyType(pending),
            held=MappingProxyType(held),
            branch_over=MappingProxyType(branch_over),
            branch_last=MappingProxyType(branch_last),
        )
        return PolicyResult(proposals=tuple(proposals), memory=new_memory, notes=tuple(notes))


def _others(loads: Loads) -> FloatArray:
    """Load of the metrics other than the first (the group load where the first is not worst)."""
    others: FloatArray = np.where(loads.load > loads.first, loads.load, np.nan)
    return others


def _round(value: float) -> float:
    return round(float(value), 4) if math.isfinite(float(value)) else float(value)


def _planned_soon(group: Group, now: float, before_s: float) -> bool:
    return any(p.at - before_s <= now < p.at + p.duration_s for p in group.planned)


def _planned(index: GroupIndex, cols: _Columns, now: float, before_s: float) -> BoolArray:
    """Groups with a planned operation of their own, or (managers) of a group they manage,
    starting within `before_s` or running now."""
    result = np.zeros(len(index.ids), dtype=bool)
    for row in cols.planned_rows:
        if _planned_soon(index.groups[row], now, before_s):
            result[row] = True
            if cols.manager_row[row] >= 0:
                result[cols.manager_row[row]] = True
    return result


def _hold_note(group: Group, rule: str, out: bool, load: float, act: Any, row: int) -> Reason:
    direction = "scale out" if out else "scale in"
    text = {
        "manager_unavailable": f"its manager {group.manager} has no serving instance",
        "managing_operations": f"it runs (or just ran) {int(act.children_in_flight[row])} "
        "operation(s) on the groups it manages",
        "recent_operation": "an operation on it finished within the after-window",
        "planned_operation": "an operation on it is planned within the before-window",
        "own_operation": "an operation on it is in flight",
        "awaiting_verification": "its previous action is not yet seen in its size",
    }[rule]
    return Reason(
        rule=f"hold_{rule}",
        message=f"{group.id} would {direction} (load {_round(load)}) but waits: {text}",
        measured={"load": _round(load)},
        details={"group": group.id},
    )


def _verify(
    snapshot: Snapshot, config: ElasticConfig, gid: str, p: Pending, observed: int
) -> tuple[str, str, bool] | None:
    """(rule, message, action_missing) once a pending action is settled, else None."""
    op = matching_operation(
        snapshot.operations,
        policy=ElasticPolicy.name,
        subject=gid,
        kind=p.kind,
        created_at=p.decided_at,
    )
    verb = "scale-out" if p.kind is OperationKind.SCALE_OUT else "scale-in"
    if op is None:
        if snapshot.now > p.decided_at:
            return (
                "scaling_not_executed",
                f"{verb} of {gid} decided at {p.decided_at:g} s never became an operation "
                "(refused or dry-run)",
                True,
            )
        return None
    if op.state in FINAL_FAILURES:
        return (
            "scaling_failed",
            f"{verb} of {gid} ({op.id}) ended {op.state.value}; size stays {observed}",
            True,
        )
    reached = (
        observed >= p.expected if p.kind is OperationKind.SCALE_OUT else (observed <= p.expected)
    )
    if op.state is OperationState.COMPLETED and reached:
        return (
            "scaling_verified",
            f"{verb} of {gid} ({op.id}) verified: observed size {observed}",
            False,
        )
    if snapshot.now - p.decided_at >= config.verify_after_s:
        return (
            "scaling_not_verified",
            f"{verb} of {gid} ({op.id}, {op.state.value}) not seen after "
            f"{config.verify_after_s:g} s: expected size {p.expected}, observed {observed}",
            True,
        )
    return None


# --- placement helpers --------------------------------------------------------------------------

_READY = list(HostState).index(HostState.READY)


@dataclass(frozen=True)
class _SiteColumns:
    names: tuple[str, ...]
    pos: Mapping[str, int]
    code: IntArray
    """Per host-table row: index of the host's site, -1 for CPEs (never part of a branch)."""


_SITE_CACHE: list[tuple[object, object, _SiteColumns]] = []


def _site_columns(snapshot: Snapshot) -> _SiteColumns:
    """Site of every host row, cached while the host table is unchanged."""
    table = snapshot.host_table
    for hosts, ids, cols in _SITE_CACHE:
        if hosts is snapshot.hosts and ids == table.ids:
            return cols
    names = tuple(sorted(snapshot.sites))
    pos = {s: i for i, s in enumerate(names)}
    code = np.full(len(table.ids), -1, dtype=np.int64)
    for row, host_id in enumerate(table.ids):
        host = snapshot.hosts.get(host_id)
        if host is not None and host.kind is not HostKind.CPE:
            code[row] = pos.get(host.site, -1)
    cols = _SiteColumns(names=names, pos=pos, code=code)
    _SITE_CACHE.insert(0, (snapshot.hosts, table.ids, cols))
    del _SITE_CACHE[2:]
    return cols


class MemberPlacement:
    """Where a new member of a group goes: its home branch first, while the branch stays under
    its allocation limit, else the cloud, else anywhere placement allows.

    Holds the cycle's reservations, so several placements in one cycle do not overbook.
    """

    def __init__(self, snapshot: Snapshot, branch_limit: float = 1.0) -> None:
        self.snapshot = snapshot
        self.branch_limit = branch_limit
        self.reserved = Reservations()
        self._sites = _site_columns(snapshot)
        table = snapshot.host_table
        counted = (self._sites.code >= 0) & (table.state == _READY)
        n = len(self._sites.names)
        self._capacity = np.bincount(
            self._sites.code[counted], weights=table.capacity[counted, 0], minlength=n
        )
        self._allocated = np.bincount(
            self._sites.code[counted], weights=table.allocated[counted, 0], minlength=n
        )

    def congested(self, sites: tuple[str, ...], limit: float) -> set[str]:
        """Sites (of `sites`) whose allocated share exceeds `limit`, in one vectorised pass."""
        codes = np.array([self._sites.pos.get(s, -1) for s in sites], dtype=np.int64)
        known = codes >= 0
        capacity = np.where(known, self._capacity[np.maximum(codes, 0)], 0.0)
        allocated = np.where(known, self._allocated[np.maximum(codes, 0)], 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(capacity > 0, allocated / capacity, 0.0)
        return {sites[i] for i in np.flatnonzero(share > limit)}

    def site_allocation(self, site: str, extra_vcpu: float = 0.0) -> float | None:
        """Share of a site's ready server vCPU allocated, with this cycle's reservations."""
        code = self._sites.pos.get(site)
        if code is None or self._capacity[code] <= 0:
            return None
        used = float(self._allocated[code]) + extra_vcpu
        table = self.snapshot.host_table
        for host, amount in self.reserved.by_host.items():
            row = table.index.get(host)
            if row is not None and self._sites.code[row] == code and table.state[row] == _READY:
                used += amount.vcpu
        return used / float(self._capacity[code])

    def place(self, group: Group, exclude: frozenset[str] = frozenset()) -> PlacementResult:
        snapshot = self.snapshot
        function = snapshot.functions[group.function]
        demand = snapshot.flavor_of(group.function).resources
        request = PlacementRequest(
            function=group.function,
            demand=demand,
            kinds=function.placement,
            exclude_hosts=exclude,
        )
        if group.site is not None and group.site in snapshot.sites:
            others = frozenset(s for s in snapshot.sites if s != group.site)
            home = place(snapshot, replace(request, avoid_sites=others), self.reserved)
            if home.host is not None and snapshot.hosts[home.host].site == group.site:
                after = self.site_allocation(group.site, demand.vcpu)
                if after is not None and after <= self.branch_limit + 1e-9:
                    return self._take(home, demand)
        cloud_kinds = tuple(k for k in function.placement if k is HostKind.CLOUD)
        if cloud_kinds:
            cloud = place(snapshot, replace(request, kinds=cloud_kinds), self.reserved)
            if cloud.host is not None:
                return self._take(cloud, demand)
        return self._take(place(snapshot, request, self.reserved), demand)

    def _take(self, result: PlacementResult, demand: Resources) -> PlacementResult:
        if result.host is not None:
            self.reserved.add(result.host, demand)
        return result


def _scale_out(
    cycle: _Cycle,
    row: int,
    s: Scaling,
    load: float,
    measured: dict[str, Any],
    thresholds: dict[str, Any],
    count: int,
) -> Proposal | None:
    group = cycle.index.groups[row]
    loads = cycle.loads
    active, serving = int(loads.active[row]), int(loads.serving[row])
    total = load * serving if math.isfinite(load) else 0.0
    needed = max(group.min_size, math.ceil(total / s.effective_target - 1e-9))
    step = max(1, min(s.max_step_out, needed - active, group.max_size - active))
    below_min = active < group.min_size
    hosts: list[str] = []
    reasons: list[dict[str, Any]] = []
    for _ in range(step):
        result = cycle.placement.place(group)
        reasons.append(result.reason.model_dump(mode="json"))
        if result.host is None:
            break
        hosts.append(result.host)
    if not hosts:
        return None
    sites = sorted({cycle.snapshot.hosts[h].site for h in hosts})
    via = f" via {group.manager}" if group.manager else ""
    if below_min and count < s.overload_occurrences:
        rule = "below_minimum"
        why = f"{group.id} has {active} active member(s), below its minimum {group.min_size}"
    else:
        rule = "group_overloaded"
        why = f"{group.id} load {_round(load)} ≥ {thresholds['overload']} for {count} sample(s)"
    return Proposal(
        kind=OperationKind.SCALE_OUT,
        subject=group.id,
        function=group.function,
        hosts=tuple(hosts),
        params={"_group": group.id},
        priority=2,
        reason=Reason(
            rule=rule,
            message=f"{why}: add {len(hosts)} member(s) on {', '.join(sites)}{via}",
            measured={**measured, "occurrences": int(count)},
            thresholds={**thresholds, "occurrences": s.overload_occurrences},
            details={"group": group.id, "manager": group.manager, "placement": reasons},
        ),
    )


def _scale_in(
    cycle: _Cycle,
    row: int,
    s: Scaling,
    load: float,
    measured: dict[str, Any],
    thresholds: dict[str, Any],
    count: int,
) -> Proposal | None:
    group = cycle.index.groups[row]
    snapshot = cycle.snapshot
    loads = cycle.loads
    active, serving = int(loads.active[row]), int(loads.serving[row])
    needed = max(group.min_size, math.ceil(load * serving / s.effective_target - 1e-9))
    step = min(s.max_step_in, active - max(group.min_size, needed))
    if step <= 0:
        return None
    candidates = []
    for name in cycle.index.members[row]:
        inst = snapshot.instances[name]
        r = cycle.index.inst_pos[name]
        if not cycle.index.inst_active[r] or not cycle.index.inst_serving[r]:
            continue
        away = group.site is not None and snapshot.hosts[inst.host].site != group.site
        # Leave the cloud first, then the newest member.
        candidates.append((not away, -inst.created_at, _natural(name), name))
    candidates.sort()
    victims = tuple(c[3] for c in candidates[:step])
    if not victims:
        return None
    via = f" via {group.manager}" if group.manager else ""
    return Proposal(
        kind=OperationKind.SCALE_IN,
        subject=group.id,
        instances=victims,
        function=group.function,
        priority=0,
        reason=Reason(
            rule="group_underloaded",
            message=f"{group.id} load {_round(load)} ≤ {thresholds['underload']} for {count} "
            f"sample(s): remove {', '.join(victims)}{via} (size {active} → "
            f"{active - len(victims)}, minimum {group.min_size})",
            measured={**measured, "occurrences": int(count)},
            thresholds={**thresholds, "occurrences": s.underload_occurrences},
            details={"group": group.id, "manager": group.manager},
        ),
    )


def _natural(name: str) -> tuple[str, int]:
    """Sort key putting fw.10 after fw.9."""
    head, _, tail = name.rpartition(".")
    return (head, -int(tail)) if tail.isdigit() else (name, 0)


# --- branch relief ------------------------------------------------------------------------------


def _relieve_branches(
    cycle: _Cycle,
    hold_reason: Any,
    decided: set[str],
    branch_over: dict[str, int],
    branch_last: dict[str, float],
    inst_busy: Any,
) -> list[Proposal]:
    """Move one member per congested branch to the cloud: most vCPU freed per unit of cost."""
    snapshot, index, config = cycle.snapshot, cycle.index, cycle.config
    settings = config.branch
    proposals: list[Proposal] = []
    congested = cycle.placement.congested(cycle.homes, settings.overload)
    for site in [s for s in branch_over if s not in congested]:
        del branch_over[site]
    for site in sorted(congested):
        if site not in snapshot.sites or snapshot.sites[site].kind.value == "cloud":
            continue
        share = cycle.placement.site_allocation(site)
        if share is None or share <= settings.overload:
            continue
        branch_over[site] = branch_over.get(site, 0) + 1
        if branch_over[site] < settings.occurrences:
            continue
        if snapshot.now - branch_last.get(site, -np.inf) < settings.cooldown_s:
            continue
        best: tuple[float, str, int] | None = None
        for r, name in enumerate(index.inst_ids):
            g = int(index.inst_group[r])
            group = index.groups[g]
            host = snapshot.hosts.get(index.inst_host[r])
            if host is None or host.site != site or host.kind is HostKind.CPE:
                continue
            if (
                not index.inst_active[r]
                or not index.inst_serving[r]
                or inst_busy[r]
                or cycle.loads.failed[r]
                or hold_reason[g]
                or group.id in decided
                or HostKind.CLOUD not in snapshot.functions[group.function].placement
            ):
                continue
            vcpu = snapshot.flavor_of(group.function).vcpu
            score = vcpu / max(group.cloud_cost, 1e-6)
            key = (-score, name, r)
            if best is None or key < best:
                best = key
        if best is None:
            continue
        r = best[2]
        name = index.inst_ids[r]
        group = index.groups[int(index.inst_group[r])]
        demand = snapshot.flavor_of(group.function).resources
        target = place(
            snapshot,
            PlacementRequest(function=group.function, demand=demand, kinds=(HostKind.CLOUD,)),
            cycle.placement.reserved,
        )
        if target.host is None:
            continue
        cycle.placement.reserved.add(target.host, demand)
        branch_last[site] = snapshot.now
        branch_over[site] = 0
        decided.add(group.id)
        proposals.append(
            Proposal(
                kind=OperationKind.MIGRATE,
                subject=name,
                instances=(name,),
                function=group.function,
                hosts=(target.host,),
                sources=(index.inst_host[r],),
                priority=1,
                reason=Reason(
                    rule="branch_overloaded",
                    message=f"branch {site} has {share:.0%} of its vCPU allocated (limit "
                    f"{settings.overload:.0%}): move {name} of {group.id} to {target.host} "
                    f"({-best[0]:.2f} vCPU freed per unit of cost)",
                    measured={"allocated_share": round(share, 4)},
                    thresholds={"overload": settings.overload, "occurrences": settings.occurrences},
                    details={
                        "group": group.id,
                        "cloud_cost": group.cloud_cost,
                        "placement": target.reason.model_dump(mode="json"),
                    },
                ),
            )
        )
    return proposals


__all__ = [
    "BranchRelief",
    "ElasticConfig",
    "ElasticMemory",
    "ElasticPolicy",
    "LifecycleWindows",
    "MemberPlacement",
    "Pending",
    "Scaling",
    "Threshold",
    "effective_level",
    "effective_thresholds",
]
