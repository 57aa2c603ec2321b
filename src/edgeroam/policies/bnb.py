"""Built-in `bnb_lifecycle` policy: the IoT-B&B system life cycle (seed 001 §4.4–4.5).

Every cycle, for each managed function group:

* **load check** — the group's load (utilisation of its active instances, 1.0 = full, read from
  ``function:<group>``) moves it between *up*, *overloaded* and *underloaded*: a state is entered
  when its raise level has held for `hold_s` and left when the clear level is crossed;
* **overloaded** → scale out by one instance, placed where the configured strategy says
  (owner's CPE, a B&B node or the cloud);
* **underloaded** → scale in the most expensive active instance, never below the minimum;
* below the minimum (a new application) → scale out until it is reached.

For the B&B nodes:

* a lending CPE whose owner's own usage (``owner_usage`` on ``host:<cpe>``, a share of its
  capacity) reaches `withdraw_at`, or leaves too little room for the guests it hosts, stops
  being a B&B node: its guests are migrated away (the paper's migration event). It lends again
  once the usage has stayed below `rejoin_below` for `rejoin_hold_s`;
* every active instance on a B&B node gets `bnb_standbys` standby copies elsewhere;
* every `rebalance_interval_s`, an instance moves to a cheaper place when the saving exceeds both
  margins, at most once per `migration_cooldown_s`.

The policy is pure: the withdrawn nodes, hold timers and migration times travel in its memory.
It is registered disabled so it changes nothing unless a scenario or operator turns it on.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from edgeroam.model import (
    HostKind,
    Identifier,
    Instance,
    Model,
    OperationKind,
    Reason,
    Resources,
    Role,
)
from edgeroam.model.base import NonNegative, Positive
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.placement import (
    CostModel,
    PlacementMode,
    PlacementRequest,
    Placer,
    Strategy,
)
from edgeroam.policies.placement.edge import CPE
from edgeroam.snapshot import Snapshot

POLICY = "bnb_lifecycle"
UP, OVERLOADED, UNDERLOADED = "up", "overloaded", "underloaded"


class BnbGroup(Model):
    """A function group the life cycle manages."""

    function: Identifier
    owner: Identifier | None = Field(
        default=None, description="Customer the group serves (its CPE is the free place)."
    )
    min_instances: int = Field(default=1, ge=0)
    max_instances: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> BnbGroup:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances {self.min_instances} is above max_instances {self.max_instances}"
            )
        return self


class BnbConfig(PolicyConfig):
    enabled: bool = False
    precedence: int = 40
    strategy: Literal["exhaustive", "heuristic"] = "exhaustive"
    mode: PlacementMode = PlacementMode.LOCAL_CLOUD_BNB
    cost: CostModel = CostModel()
    groups: dict[str, BnbGroup] = Field(
        default_factory=dict, description="Managed groups by group key."
    )
    load_metric: str = Field(default="load", pattern=r"^[a-z][a-z0-9_.]*$")
    overload_at: Positive = 0.8
    overload_clear: Positive = 0.7
    underload_at: NonNegative = 0.3
    underload_clear: NonNegative = 0.4
    hold_s: NonNegative = Field(default=10.0, description="How long a raise level must hold.")
    scale_cooldown_s: NonNegative = Field(
        default=30.0, description="Quiet time on a group after its last scaling operation."
    )
    owner_usage_metric: str = Field(default="owner_usage", pattern=r"^[a-z][a-z0-9_.]*$")
    withdraw_at: float = Field(default=0.8, gt=0, le=1)
    rejoin_below: float = Field(default=0.5, ge=0, le=1)
    rejoin_hold_s: NonNegative = 60.0
    bnb_standbys: int = Field(default=1, ge=0, description="Standbys per active B&B guest.")
    rebalance_interval_s: Positive = 120.0
    migration_margin: NonNegative = Field(
        default=5.0, description="Least absolute cost saving for a cheaper-place migration."
    )
    migration_margin_ratio: float = Field(
        default=0.2, ge=0, le=1, description="Least saving as a share of the current cost."
    )
    migration_cooldown_s: NonNegative = 600.0
    max_migrations_per_cycle: int = Field(default=5, ge=0)

    @model_validator(mode="after")
    def _hysteresis(self) -> BnbConfig:
        problems = []
        if self.overload_clear >= self.overload_at:
            problems.append("overload_clear must be below overload_at")
        if self.underload_clear <= self.underload_at:
            problems.append("underload_clear must be above underload_at")
        if self.underload_clear >= self.overload_clear:
            problems.append("underload_clear must be below overload_clear")
        if self.rejoin_below >= self.withdraw_at:
            problems.append("rejoin_below must be below withdraw_at")
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class GroupState:
    state: str = UP
    pending: str | None = None
    since: float = 0.0


@dataclass(frozen=True)
class BnbMemory:
    groups: Mapping[str, GroupState] = field(default_factory=dict)
    withdrawn: frozenset[str] = frozenset()
    calm_since: Mapping[str, float] = field(default_factory=dict)
    last_rebalance: float = -math.inf
    last_migration: Mapping[str, float] = field(default_factory=dict)


@dataclass
class _Cycle:
    """Working state of one evaluation."""

    snapshot: Snapshot
    config: BnbConfig
    placer: Placer
    proposals: list[Proposal] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)
    claimed: set[str] = field(default_factory=set)


class BnbLifecyclePolicy:
    name: ClassVar[str] = POLICY
    config_model: ClassVar[type[PolicyConfig]] = BnbConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, BnbConfig)
        mem = memory if isinstance(memory, BnbMemory) else BnbMemory()
        placer = Placer(snapshot, cost=config.cost)
        cycle = _Cycle(snapshot, config, placer)
        mem = _availability(cycle, mem)
        _evacuate(cycle, mem)
        groups = dict(mem.groups)
        members = _members(snapshot, config)
        for key in sorted(config.groups):
            groups[key] = _load_check(cycle, key, members.get(key, []), groups.get(key))
        for key in sorted(config.groups):
            _standbys(cycle, key, members.get(key, []))
        mem = replace(mem, groups=groups)
        if snapshot.now - mem.last_rebalance >= config.rebalance_interval_s:
            mem = _rebalance(cycle, mem, members)
        return PolicyResult(proposals=tuple(cycle.proposals), memory=mem, notes=tuple(cycle.notes))


# --- helpers ------------------------------------------------------------------------------------


_members_cache: list[tuple[Mapping[str, Instance], tuple[str, ...], dict[str, list[Instance]]]] = []


def _members(snapshot: Snapshot, config: BnbConfig) -> dict[str, list[Instance]]:
    """Instances of each managed group, by id; the scan over all instances is redone only when
    the instance table changed (snapshots share its copy until then)."""
    keys = tuple(sorted(config.groups))
    for instances, cached_keys, found in _members_cache:
        if instances is snapshot.instances and cached_keys == keys:
            return {k: list(v) for k, v in found.items()}
    found = {key: [] for key in keys}
    for instance in snapshot.instances.values():
        members = found.get(instance.group_key)
        if members is not None:
            members.append(instance)
    for items in found.values():
        items.sort(key=lambda i: i.id)
    _members_cache[:] = [(snapshot.instances, keys, found)]
    return {k: list(v) for k, v in found.items()}


def _request(
    cycle: _Cycle, group: BnbGroup, exclude: frozenset[str] = frozenset()
) -> PlacementRequest:
    snap = cycle.snapshot
    function = snap.functions[group.function]
    return PlacementRequest(
        function=group.function,
        demand=snap.flavor_of(group.function).resources,
        kinds=function.placement,
        owner=group.owner,
        exclude_hosts=exclude,
        strategy=Strategy(cycle.config.strategy),
        mode=cycle.config.mode,
    )


def _instance_request(
    cycle: _Cycle, instance: Instance, exclude: frozenset[str]
) -> PlacementRequest:
    snap = cycle.snapshot
    return PlacementRequest(
        function=instance.function,
        demand=snap.flavor_of(instance.function).resources,
        kinds=snap.functions[instance.function].placement,
        owner=instance.owner,
        exclude_hosts=exclude,
        strategy=Strategy(cycle.config.strategy),
        mode=cycle.config.mode,
    )


def _is_guest(snapshot: Snapshot, instance: Instance) -> bool:
    """An instance on another customer's CPE (a B&B guest)."""
    host = snapshot.hosts.get(instance.host)
    return host is not None and host.kind is HostKind.CPE and host.owner != instance.owner


def _last_scaling(snapshot: Snapshot, subject: str) -> float:
    times = [
        op.created_at
        for op in snapshot.operations
        if op.subject == subject and op.kind in (OperationKind.SCALE_OUT, OperationKind.SCALE_IN)
    ]
    return max(times, default=-math.inf)


def _delay_of(snapshot: Snapshot, function: str) -> float | None:
    return snapshot.flavor_of(function).max_delay_ms


# --- B&B availability ---------------------------------------------------------------------------


def _usage(snapshot: Snapshot, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the host table with a fresh owner-usage reading, and the readings."""
    view = snapshot.telemetry.column(metric)
    table = snapshot.host_table
    if view is None or not view.ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    rows = _rows_for(view.ids, table.index)
    keep = (rows >= 0) & ~view.stale[: len(rows)]
    return rows[keep], view.values[: len(rows)][keep]


_row_cache: list[tuple[tuple[str, ...], Mapping[str, int], np.ndarray]] = []


def _rows_for(ids: tuple[str, ...], index: Mapping[str, int]) -> np.ndarray:
    """Host-table row of each `host:<id>` source (-1 otherwise), cached while both are equal."""
    for cached_ids, cached_index, rows in _row_cache:
        if cached_ids == ids and cached_index == index:
            return rows
    rows = np.fromiter(
        (index.get(s[5:], -1) if s.startswith("host:") else -1 for s in ids),
        dtype=np.int64,
        count=len(ids),
    )
    _row_cache[:] = [(ids, index, rows)]
    return rows


def _availability(cycle: _Cycle, mem: BnbMemory) -> BnbMemory:
    """Withdraw lending CPEs whose owners need them back; let calm ones lend again."""
    snap, config = cycle.snapshot, cycle.config
    table = snap.host_table
    rows, usage = _usage(snap, config.owner_usage_metric)
    lending = table.lends[rows] & (table.kind[rows] == CPE)
    cap = table.capacity[rows]
    squeezed = np.any(usage[:, None] * cap + table.allocated[rows] > cap * (1 + 1e-9), axis=1)
    withdraw = lending & ((usage >= config.withdraw_at) | squeezed)
    withdrawn = set(mem.withdrawn)
    calm = dict(mem.calm_since)
    usage_by_host = {
        table.ids[r]: float(u) for r, u in zip(rows.tolist(), usage.tolist(), strict=True)
    }
    for r in np.flatnonzero(withdraw).tolist():
        host = table.ids[int(rows[r])]
        calm.pop(host, None)
        if host not in withdrawn:
            withdrawn.add(host)
            cycle.notes.append(
                Reason(
                    rule="bnb_withdrawn",
                    message=f"{host} stops lending capacity: its owner uses "
                    f"{usage[r]:.0%} of it (withdraw at {config.withdraw_at:.0%})"
                    + (" and its guests no longer fit" if squeezed[r] else ""),
                    measured={"owner_usage": round(float(usage[r]), 4)},
                    thresholds={"withdraw_at": config.withdraw_at},
                    details={"host": host, "guests_fit": not bool(squeezed[r])},
                )
            )
    for host in sorted(withdrawn):
        u = usage_by_host.get(host)
        if host not in snap.hosts:
            withdrawn.discard(host)
            calm.pop(host, None)
            continue
        if u is None or u > config.rejoin_below:
            calm.pop(host, None)
            continue
        since = calm.setdefault(host, snap.now)
        if snap.now - since >= config.rejoin_hold_s:
            withdrawn.discard(host)
            calm.pop(host, None)
            cycle.notes.append(
                Reason(
                    rule="bnb_rejoined",
                    message=f"{host} lends capacity again: owner usage {u:.0%} has stayed at or "
                    f"below {config.rejoin_below:.0%} for {snap.now - since:g} s",
                    measured={"owner_usage": round(u, 4)},
                    thresholds={
                        "rejoin_below": config.rejoin_below,
                        "rejoin_hold_s": config.rejoin_hold_s,
                    },
                    details={"host": host},
                )
            )
    state = cycle.placer.state
    for host in withdrawn:
        row = cycle.placer.row_of(host)
        if row is not None and state.lends[row]:
            state.set_lends(row, False)
    return replace(mem, withdrawn=frozenset(withdrawn), calm_since=calm)


def _evacuate(cycle: _Cycle, mem: BnbMemory) -> None:
    """Migrate the guests of withdrawn B&B nodes (the migration event)."""
    snap = cycle.snapshot
    busy = snap.busy
    for host in sorted(mem.withdrawn):
        owner = snap.hosts[host].owner
        for name in sorted(snap.instances_by_host.get(host, ())):
            instance = snap.instances[name]
            if instance.owner == owner or name in busy or name in cycle.claimed:
                continue
            request = _instance_request(cycle, instance, frozenset({host}))
            result = cycle.placer.place(request, commit=False)
            if result.host is None:
                cycle.notes.append(
                    Reason(
                        rule="bnb_guest_stranded",
                        message=f"{name} must leave withdrawn B&B node {host} but "
                        f"{result.reason.message}",
                        details={"instance": name, "host": host},
                    )
                )
                continue
            _move(cycle, instance, result.host, request.demand)
            cycle.proposals.append(
                Proposal(
                    kind=OperationKind.MIGRATE,
                    subject=name,
                    instances=(name,),
                    function=instance.function,
                    owner=instance.owner,
                    hosts=(result.host,),
                    sources=(host,),
                    priority=3,
                    policy=POLICY,
                    reason=Reason(
                        rule="bnb_node_withdrawn",
                        message=f"{host} no longer lends capacity; move guest {name} to "
                        f"{result.host}",
                        details={"placement": result.reason.model_dump()},
                    ),
                )
            )


def _move(cycle: _Cycle, instance: Instance, target: str, demand: Resources) -> None:
    delay = _delay_of(cycle.snapshot, instance.function)
    cycle.placer.release(instance.host, demand, delay)
    cycle.placer.commit(target, demand, delay)
    cycle.claimed.add(instance.id)


# --- load check and scaling ---------------------------------------------------------------------


def _next_state(
    previous: GroupState, load: float, config: BnbConfig, now: float, can_shrink: bool
) -> GroupState:
    state = previous.state
    cleared = {
        OVERLOADED: load < config.overload_clear,
        UNDERLOADED: load > config.underload_clear or not can_shrink,
    }
    if cleared.get(state, False):
        state = UP
    if state != UP:
        return GroupState(state, None, now)
    if load >= config.overload_at:
        wanted: str | None = OVERLOADED
    elif load <= config.underload_at and can_shrink:
        wanted = UNDERLOADED
    else:
        wanted = None
    if wanted is None:
        return GroupState(UP, None, now)
    since = previous.since if previous.pending == wanted else now
    if now - since >= config.hold_s:
        return GroupState(wanted, None, now)
    return GroupState(UP, wanted, since)


def _load_check(
    cycle: _Cycle, key: str, members: list[Instance], previous: GroupState | None
) -> GroupState:
    snap, config = cycle.snapshot, cycle.config
    group = config.groups[key]
    previous = previous or GroupState(since=snap.now)
    if group.function not in snap.functions:
        cycle.notes.append(
            Reason(
                rule="bnb_unknown_function",
                message=f"group {key}: unknown function {group.function!r}",
                details={"group": key},
            )
        )
        return previous
    active = [m for m in members if m.role is Role.ACTIVE]
    load = snap.telemetry.value(f"function:{key}", config.load_metric)
    quiet = snap.now - _last_scaling(snap, key) >= config.scale_cooldown_s
    free_to_act = key not in snap.busy and quiet
    if len(active) < group.min_instances:
        if free_to_act:
            _scale_out(cycle, key, group, load, "below_minimum")
        return previous
    if load is None:
        return previous  # unknown load: hold the state, never act on a guess
    current = _next_state(previous, load, config, snap.now, len(active) > group.min_instances)
    if current.state != previous.state:
        cycle.notes.append(
            Reason(
                rule=f"bnb_group_{current.state}",
                message=f"group {key} is {current.state} (load {load:.2f})",
                measured={"load": round(load, 4), "active": len(active)},
                thresholds=_thresholds(config),
                details={"group": key, "from": previous.state},
            )
        )
    if not free_to_act:
        return current
    if current.state == OVERLOADED and len(active) < group.max_instances:
        _scale_out(cycle, key, group, load, "overloaded")
    elif current.state == UNDERLOADED and len(active) > group.min_instances:
        _scale_in(cycle, key, group, active, load)
    return current


def _thresholds(config: BnbConfig) -> dict[str, float]:
    return {
        "overload_at": config.overload_at,
        "overload_clear": config.overload_clear,
        "underload_at": config.underload_at,
        "underload_clear": config.underload_clear,
        "hold_s": config.hold_s,
    }


def _scale_out(
    cycle: _Cycle,
    key: str,
    group: BnbGroup,
    load: float | None,
    rule: str,
    *,
    role: Role = Role.ACTIVE,
    exclude: frozenset[str] = frozenset(),
) -> None:
    request = _request(cycle, group, exclude)
    result = cycle.placer.place(request)
    subject = key if role is Role.ACTIVE else f"{key}.standby"
    if result.host is None:
        cycle.notes.append(
            Reason(
                rule="bnb_no_place",
                message=f"group {key} needs another {role.value} instance but "
                f"{result.reason.message}",
                details={"group": key, "placement": result.reason.model_dump()},
            )
        )
        return
    where = result.reason.measured.get("place", "?")
    measured: dict[str, Any] = {"cost": result.reason.measured.get("cost")}
    if load is not None:
        measured["load"] = round(load, 4)
    message = {
        "below_minimum": f"group {key} is below its minimum of {group.min_instances}",
        "overloaded": f"group {key} is overloaded (load {load if load is not None else 0:.2f})",
        "standby": f"group {key} needs a standby for its B&B guests",
    }[rule]
    cycle.proposals.append(
        Proposal(
            kind=OperationKind.SCALE_OUT,
            subject=subject,
            function=group.function,
            owner=group.owner,
            hosts=(result.host,),
            params={"_group": key, "_role": role.value},
            priority=2 if role is Role.ACTIVE else 1,
            policy=POLICY,
            reason=Reason(
                rule=f"bnb_scale_out_{rule}",
                message=f"{message}: scale out to {result.host} ({where})",
                measured=measured,
                thresholds=_thresholds(cycle.config),
                details={"group": key, "placement": result.reason.model_dump()},
            ),
        )
    )


def _scale_in(
    cycle: _Cycle,
    key: str,
    group: BnbGroup,
    candidates: list[Instance],
    load: float | None,
    *,
    subject: str | None = None,
    rule: str = "underloaded",
) -> None:
    busy = cycle.snapshot.busy
    priced = []
    for instance in candidates:
        if instance.id in busy or instance.id in cycle.claimed:
            continue
        request = _instance_request(cycle, instance, frozenset())
        priced.append((cycle.placer.resident_cost(request, instance.host), instance.id, instance))
    if not priced:
        return
    cost, _, victim = max(priced, key=lambda p: (p[0], p[1]))
    demand = cycle.snapshot.flavor_of(victim.function).resources
    cycle.placer.release(victim.host, demand, _delay_of(cycle.snapshot, victim.function))
    cycle.claimed.add(victim.id)
    measured: dict[str, Any] = {"cost": round(cost, 6)}
    if load is not None:
        measured["load"] = round(load, 4)
    cycle.proposals.append(
        Proposal(
            kind=OperationKind.SCALE_IN,
            subject=subject or key,
            instances=(victim.id,),
            function=victim.function,
            owner=victim.owner,
            sources=(victim.host,),
            priority=1,
            policy=POLICY,
            reason=Reason(
                rule=f"bnb_scale_in_{rule}",
                message=f"group {key}: remove {victim.id} on {victim.host}, the most expensive "
                f"of {len(priced)} (cost {cost:.4g})",
                measured=measured,
                thresholds={"min_instances": group.min_instances},
                details={"group": key, "costs": {p[1]: round(p[0], 6) for p in priced}},
            ),
        )
    )


def _standbys(cycle: _Cycle, key: str, members: list[Instance]) -> None:
    """Keep `bnb_standbys` standbys per active guest of a B&B node."""
    snap, config = cycle.snapshot, cycle.config
    group = config.groups[key]
    if group.function not in snap.functions:
        return
    guests = [m for m in members if m.role is Role.ACTIVE and _is_guest(snap, m)]
    standbys = [m for m in members if m.role is Role.STANDBY]
    wanted = len(guests) * config.bnb_standbys
    subject = f"{key}.standby"
    if subject in snap.busy:
        return
    if len(standbys) < wanted:
        avoid = frozenset(m.host for m in members if m.role is Role.ACTIVE)
        _scale_out(cycle, key, group, None, "standby", role=Role.STANDBY, exclude=avoid)
    elif len(standbys) > wanted:
        _scale_in(cycle, key, group, standbys, None, subject=subject, rule="surplus_standby")


# --- cheaper-place migration --------------------------------------------------------------------


def _rebalance(cycle: _Cycle, mem: BnbMemory, members: dict[str, list[Instance]]) -> BnbMemory:
    snap, config = cycle.snapshot, cycle.config
    busy = snap.busy
    last = {k: v for k, v in mem.last_migration.items() if k in snap.instances}
    options = []
    for key in sorted(members):
        active_hosts = frozenset(m.host for m in members[key] if m.role is Role.ACTIVE)
        for instance in members[key]:
            name = instance.id
            if name in busy or name in cycle.claimed:
                continue
            if snap.now - last.get(name, -math.inf) < config.migration_cooldown_s:
                continue
            # A standby never joins an active of its group; an active only leaves its host.
            avoid = active_hosts if instance.role is Role.STANDBY else frozenset()
            request = _instance_request(cycle, instance, avoid | {instance.host})
            current = cycle.placer.resident_cost(request, instance.host)
            result = cycle.placer.place(request, commit=False)
            if result.host is None:
                continue
            target_cost = float(result.reason.measured["cost"])
            saving = current - target_cost
            if (
                saving > config.migration_margin
                and saving >= config.migration_margin_ratio * current
            ):
                options.append((saving, name, instance, request, current, target_cost))
    options.sort(key=lambda o: (-o[0], o[1]))
    moved = 0
    for saving, name, instance, request, current, _ in options:
        if moved >= config.max_migrations_per_cycle:
            break
        result = cycle.placer.place(request, commit=False)  # earlier moves changed the prices
        if result.host is None:
            continue
        target_cost = float(result.reason.measured["cost"])
        if current - target_cost <= config.migration_margin:
            continue
        _move(cycle, instance, result.host, request.demand)
        last[name] = snap.now
        moved += 1
        cycle.proposals.append(
            Proposal(
                kind=OperationKind.MIGRATE,
                subject=name,
                instances=(name,),
                function=instance.function,
                owner=instance.owner,
                hosts=(result.host,),
                sources=(instance.host,),
                priority=0,
                policy=POLICY,
                reason=Reason(
                    rule="bnb_cheaper_place",
                    message=f"move {name} from {instance.host} (cost {current:.4g}) to "
                    f"{result.host} (cost {target_cost:.4g})",
                    measured={"cost_now": round(current, 6), "cost_after": round(target_cost, 6)},
                    thresholds={
                        "migration_margin": config.migration_margin,
                        "migration_margin_ratio": config.migration_margin_ratio,
                    },
                    details={"placement": result.reason.model_dump(), "saving": round(saving, 6)},
                ),
            )
        )
    return replace(mem, last_rebalance=snap.now, last_migration=last)
