"""Built-in `failover` and `ratio` policies: heal group members and keep N:M standbys.

For every managed group with a `ratio` (seed 002 ¶0133–0134, claim 9):

`failover` (precedence 5, it must not wait for anything):

* a failed active member (health ≤ 0, or heartbeats silent past `heartbeat_timeout_s`) is
  replaced at once by promoting a ready standby — a role flip, not a redeploy — and steps down
  to standby itself;
* a failed member is then restarted in place, and after `max_restarts` failed tries redeployed
  on another host, each try after an exponentially growing backoff; evidence older than the
  last operation on the member is ignored, so each heal resets its alarm;
* healing is masked while another operation acts on the same member.

`ratio` (precedence 45, after `elastic`): the standby count follows the ratio of the current
active count; standbys used up or lost are re-created (away from the actives' hosts when
placement allows), surplus ones removed. Its operations take the group as subject, like the
elastic policy's, so the arbiter never starts both on one group in one cycle, and it waits
while the group has any operation in flight.

Division of labour with the built-in `heal` policy: members on a host that is down or off are
promoted away from here (failover runs first and its promotion claims the failed member in
arbitration) but re-created elsewhere by `heal`, which owns host failures.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, model_validator

from edgeroam.model import Group, HostState, OperationKind, Reason, Role
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.elastic import MemberPlacement
from edgeroam.policies.groupstate import (
    Activity,
    BoolArray,
    GroupIndex,
    activity,
    failed_members,
    group_index,
)
from edgeroam.snapshot import Snapshot

_DOWN = frozenset({HostState.DOWN, HostState.OFF})


class FailoverConfig(PolicyConfig):
    precedence: int = 5
    heartbeat_timeout_s: float = Field(
        default=180.0, gt=0, description="Silence after which a member counts as failed."
    )
    backoff_base_s: float = Field(default=60.0, gt=0, description="Wait before the 2nd heal.")
    backoff_cap_s: float = Field(default=1800.0, gt=0)
    max_restarts: int = Field(
        default=2, ge=0, description="In-place restarts before redeploying on another host."
    )
    reset_after_s: float = Field(
        default=900.0, ge=0, description="Healthy this long after a heal: backoff forgotten."
    )
    max_silent_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="When more of a group's members than this look failed only because they "
        "went silent, suspect telemetry and heal nothing in that group.",
    )

    @model_validator(mode="after")
    def _backoff_ordered(self) -> FailoverConfig:
        if self.backoff_cap_s < self.backoff_base_s:
            raise ValueError(
                f"backoff_cap_s {self.backoff_cap_s} is below backoff_base_s {self.backoff_base_s}"
            )
        return self


class RatioConfig(PolicyConfig):
    precedence: int = 45
    heartbeat_timeout_s: float = Field(
        default=180.0, gt=0, description="Silence after which a member counts as failed."
    )


@dataclass(frozen=True)
class HealState:
    """Alarm and backoff of one member."""

    attempts: int = 0
    next_at: float = float("-inf")
    failed_at: float = float("-inf")


@dataclass(frozen=True)
class FailoverMemory:
    heal: Mapping[str, HealState] = field(default_factory=lambda: MappingProxyType({}))
    noted: frozenset[str] = frozenset()
    """Situations already reported (e.g. a group without a ready standby), to note each once."""


@dataclass(frozen=True)
class _RatioColumns:
    has_ratio: BoolArray
    active: npt.NDArray[np.float64]
    standby: npt.NDArray[np.float64]


_RATIO_CACHE: list[tuple[GroupIndex, _RatioColumns]] = []


def _ratio_columns(index: GroupIndex) -> _RatioColumns:
    for idx, cols in _RATIO_CACHE:
        if idx is index:
            return cols
    ratios = [g.ratio for g in index.groups]
    cols = _RatioColumns(
        has_ratio=np.array([r is not None for r in ratios], dtype=bool),
        active=np.array([r.active if r is not None else 1 for r in ratios], dtype=float),
        standby=np.array([r.standby if r is not None else 0 for r in ratios], dtype=float),
    )
    _RATIO_CACHE.insert(0, (index, cols))
    del _RATIO_CACHE[4:]
    return cols


def backoff(config: FailoverConfig, attempts: int) -> float:
    """Wait after the `attempts`-th heal try before the next one."""
    if attempts <= 0:
        return 0.0
    return float(min(config.backoff_cap_s, config.backoff_base_s * 2 ** (attempts - 1)))


@dataclass
class _Members:
    """A group's members split by role, as this cycle sees them."""

    active: list[str]
    standby: list[str]
    ready: list[str]
    """Standbys able to take over now: serving, healthy, idle, on a ready host."""


def _split(snapshot: Snapshot, index: GroupIndex, row: int, failed: Any, busy: Any) -> _Members:
    members = _Members([], [], [])
    for name in index.members[row]:
        r = index.inst_pos[name]
        if index.inst_active[r]:
            members.active.append(name)
            continue
        members.standby.append(name)
        if (
            index.inst_serving[r]
            and not failed[r]
            and not busy[r]
            and snapshot.hosts[index.inst_host[r]].state is HostState.READY
        ):
            members.ready.append(name)
    return members


@dataclass
class _Cycle:
    snapshot: Snapshot
    config: FailoverConfig
    index: GroupIndex
    act: Activity
    failed: BoolArray
    placement: MemberPlacement
    heal: dict[str, HealState]
    noted_before: frozenset[str]
    claimed: set[str] = field(default_factory=set)
    proposals: list[Proposal] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)
    noted: set[str] = field(default_factory=set)

    def note_once(self, key: str, reason: Reason) -> None:
        self.noted.add(key)
        if key not in self.noted_before:
            self.notes.append(reason)


class FailoverPolicy:
    name: ClassVar[str] = "failover"
    config_model: ClassVar[type[PolicyConfig]] = FailoverConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, FailoverConfig)
        mem = memory if isinstance(memory, FailoverMemory) else FailoverMemory()
        if not snapshot.groups:
            return PolicyResult(memory=mem)
        index = group_index(snapshot)
        act = activity(snapshot, index)
        failed = failed_members(snapshot, index, act.inst_last_touch, config.heartbeat_timeout_s)
        # Members failed only by silence (no fresh "I am down" report): the telemetry fault test.
        explicit = failed_members(snapshot, index, act.inst_last_touch, float("inf"))
        silent_only = failed & ~explicit
        cycle = _Cycle(
            snapshot=snapshot,
            config=config,
            index=index,
            act=act,
            failed=failed,
            placement=MemberPlacement(snapshot),
            heal=dict(mem.heal),
            noted_before=mem.noted,
        )
        # Only groups with a failed member need a look (a column-wise test, then Python).
        ratios = _ratio_columns(index)
        touched = np.unique(index.inst_group[failed])
        for found in touched[ratios.has_ratio[touched]] if touched.size else touched:
            row = int(found)
            group = index.groups[row]
            rows = np.array([index.inst_pos[m] for m in index.members[row]], dtype=np.int64)
            silent = int(np.count_nonzero(silent_only[rows]))
            if silent and silent > config.max_silent_fraction * len(rows):
                cycle.note_once(
                    f"silent:{group.id}",
                    Reason(
                        rule="suspect_telemetry",
                        message=f"{silent} of {len(rows)} members of {group.id} went silent "
                        "at once; suspecting telemetry, not healing",
                        measured={"silent": silent, "members": len(rows)},
                        thresholds={"max_silent_fraction": config.max_silent_fraction},
                        details={"group": group.id},
                    ),
                )
                continue
            self._group(cycle, row, group)
        now = snapshot.now
        # Forget the backoff of members healthy for long enough, and of members gone.
        for name, state in list(cycle.heal.items()):
            r = index.inst_pos.get(name)
            gone = r is None
            recovered = not gone and not failed[r] and now - state.failed_at >= config.reset_after_s
            if gone or recovered:
                del cycle.heal[name]
        return PolicyResult(
            proposals=tuple(cycle.proposals),
            memory=FailoverMemory(heal=MappingProxyType(cycle.heal), noted=frozenset(cycle.noted)),
            notes=tuple(cycle.notes),
        )

    def _group(self, cycle: _Cycle, row: int, group: Group) -> None:
        snapshot, index = cycle.snapshot, cycle.index
        now = snapshot.now
        members = _split(snapshot, index, row, cycle.failed, cycle.act.inst_busy)

        # 1. Failed actives: promote a ready standby at once.
        for name in members.active:
            r = index.inst_pos[name]
            if not cycle.failed[r] or cycle.act.inst_busy[r] or name in cycle.claimed:
                continue
            if not index.inst_serving[r]:
                continue  # being deployed or already out of service: not a failover case
            state = cycle.heal.get(name, HealState())
            cycle.heal[name] = HealState(state.attempts, state.next_at, now)
            standby = self._pick_standby(cycle, name, members.ready)
            if standby is None:
                cycle.note_once(
                    f"nostandby:{name}",
                    Reason(
                        rule="no_ready_standby",
                        message=f"active {name} of {group.id} failed and no standby is ready; "
                        "healing it where it is",
                        details={"group": group.id, "instance": name},
                    ),
                )
                self._heal(cycle, group, name)
                continue
            members.ready.remove(standby)
            cycle.claimed.update((name, standby))
            host = snapshot.instances[name].host
            cycle.proposals.append(
                Proposal(
                    kind=OperationKind.PROMOTE,
                    subject=name,
                    instances=(standby, name),
                    function=group.function,
                    priority=3,
                    reason=Reason(
                        rule="active_failed",
                        message=f"active {name} of {group.id} on {host} failed: promote "
                        f"standby {standby} in its place",
                        measured={"health": snapshot.telemetry.value(f"instance:{name}", "health")},
                        details={"group": group.id, "failed": name, "standby": standby},
                    ),
                )
            )

        # 2. Failed standbys (including actives demoted earlier): restart or redeploy.
        for name in members.standby:
            r = index.inst_pos[name]
            if cycle.failed[r] and not cycle.act.inst_busy[r] and name not in cycle.claimed:
                state = cycle.heal.get(name, HealState())
                cycle.heal[name] = HealState(state.attempts, state.next_at, now)
                self._heal(cycle, group, name)

    def _pick_standby(self, cycle: _Cycle, failed: str, ready: list[str]) -> str | None:
        """The ready standby on another host than the failed one, same site first."""
        snapshot = cycle.snapshot
        if not ready:
            return None
        failed_host = snapshot.instances[failed].host
        failed_site = snapshot.hosts[failed_host].site

        def key(name: str) -> tuple[bool, bool, str]:
            host = snapshot.instances[name].host
            return (host == failed_host, snapshot.hosts[host].site != failed_site, name)

        return min(ready, key=key)

    def _heal(self, cycle: _Cycle, group: Group, name: str) -> None:
        snapshot, config = cycle.snapshot, cycle.config
        inst = snapshot.instances[name]
        host = snapshot.hosts[inst.host]
        state = cycle.heal.get(name, HealState())
        if host.state in _DOWN:
            return  # host failures are the built-in heal policy's (it re-creates elsewhere)
        if snapshot.now < state.next_at:
            return
        attempts = state.attempts + 1
        target = inst.host
        how = "restart in place"
        placement: dict[str, Any] = {}
        if attempts > config.max_restarts:
            result = cycle.placement.place(group, exclude=frozenset({inst.host}))
            if result.host is not None:
                target, how = result.host, f"redeploy on {result.host}"
                placement = result.reason.model_dump(mode="json")
        wait = backoff(config, attempts)
        cycle.heal[name] = HealState(attempts, snapshot.now + wait, state.failed_at)
        cycle.claimed.add(name)
        cycle.proposals.append(
            Proposal(
                kind=OperationKind.HEAL,
                subject=name,
                instances=(name,),
                function=inst.function,
                owner=inst.owner,
                hosts=(target,),
                sources=(inst.host,),
                params=dict(inst.params),
                priority=2,
                reason=Reason(
                    rule="member_failed",
                    message=f"{inst.role.value} {name} of {group.id} failed: {how} "
                    f"(try {attempts}; next try no sooner than {wait:g} s)",
                    measured={"attempts": attempts},
                    thresholds={"max_restarts": config.max_restarts, "backoff_s": wait},
                    details={"group": group.id, "placement": placement},
                ),
            )
        )


class RatioPolicy:
    name: ClassVar[str] = "ratio"
    config_model: ClassVar[type[PolicyConfig]] = RatioConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, RatioConfig)
        if not snapshot.groups:
            return PolicyResult(memory=memory)
        index = group_index(snapshot)
        act = activity(snapshot, index)
        failed = failed_members(snapshot, index, act.inst_last_touch, config.heartbeat_timeout_s)
        placement = MemberPlacement(snapshot)
        proposals: list[Proposal] = []
        # Column-wise: which groups hold another standby count than their ratio wants.
        ratios = _ratio_columns(index)
        n = len(index.ids)
        active = np.bincount(index.inst_group[index.inst_active], minlength=n)
        standby = np.bincount(index.inst_group[~index.inst_active], minlength=n)
        wanted = np.where(
            active > 0, np.ceil(active * ratios.standby / ratios.active - 1e-9), 0
        ).astype(np.int64)
        off = ratios.has_ratio & ~act.own_in_flight & (wanted != standby)
        for found in np.flatnonzero(off):
            row = int(found)
            group = index.groups[row]
            members = _split(snapshot, index, row, failed, act.inst_busy)
            proposal = _maintain(snapshot, index, placement, group, members, failed, act)
            if proposal is not None:
                proposals.append(proposal)
        return PolicyResult(proposals=tuple(proposals), memory=memory)


def _maintain(
    snapshot: Snapshot,
    index: GroupIndex,
    placement: MemberPlacement,
    group: Group,
    members: _Members,
    failed: Any,
    act: Activity,
) -> Proposal | None:
    """One proposal bringing the standby count to what the ratio wants, or None."""
    assert group.ratio is not None
    active, standby = members.active, members.standby
    wanted = group.ratio.standbys_for(len(active))
    have = len(standby)
    ratio = f"{group.ratio.active}:{group.ratio.standby}"
    measured = {"active": len(active), "standby": have}
    thresholds = {"ratio": ratio, "standby_wanted": wanted}
    if have < wanted:
        # Away from the actives' hosts when possible, so one host failure cannot take both.
        avoid = frozenset(snapshot.instances[a].host for a in active)
        hosts: list[str] = []
        for _ in range(wanted - have):
            result = placement.place(group, exclude=avoid)
            if result.host is None:
                result = placement.place(group)
            if result.host is None:
                break
            hosts.append(result.host)
        if not hosts:
            return None
        return Proposal(
            kind=OperationKind.SCALE_OUT,
            subject=group.id,
            function=group.function,
            hosts=tuple(hosts),
            params={"_group": group.id, "_role": Role.STANDBY.value},
            priority=1,
            reason=Reason(
                rule="ratio_below",
                message=f"{group.id} has {have} standby(s) for {len(active)} active (ratio "
                f"{ratio} wants {wanted}): add {len(hosts)} on {', '.join(hosts)}",
                measured=measured,
                thresholds=thresholds,
                details={"group": group.id},
            ),
        )
    if have > wanted:
        idle = [s for s in standby if not act.inst_busy[index.inst_pos[s]]]

        def key(name: str) -> tuple[bool, bool, float, str]:
            inst = snapshot.instances[name]
            home = group.site is None or snapshot.hosts[inst.host].site == group.site
            return (not bool(failed[index.inst_pos[name]]), home, -inst.created_at, name)

        surplus = tuple(sorted(idle, key=key)[: have - wanted])
        if not surplus:
            return None
        return Proposal(
            kind=OperationKind.SCALE_IN,
            subject=group.id,
            instances=surplus,
            function=group.function,
            priority=0,
            reason=Reason(
                rule="ratio_above",
                message=f"{group.id} has {have} standby(s) for {len(active)} active (ratio "
                f"{ratio} wants {wanted}): remove {', '.join(surplus)}",
                measured=measured,
                thresholds=thresholds,
                details={"group": group.id},
            ),
        )
    return None


__all__ = [
    "FailoverConfig",
    "FailoverMemory",
    "FailoverPolicy",
    "HealState",
    "RatioConfig",
    "RatioPolicy",
    "backoff",
]
