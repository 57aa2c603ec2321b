"""Built-in `rules` policy: operators' rules evaluated every cycle, purely.

A rule whose condition held for `occurrences` consecutive cycles (and is out of its cooldown)
starts a *run*: its actions become steps that wait for their triggers (`after`, or the previous
action in sequence mode), then for their timer (`delay_s`), then for their precondition (up to
`wait_s`). A ready built-in action becomes a proposal like any policy's; a ready notify or
custom action goes to the memory's outbox, where the action runner (`rules.runner`, outside
the pure cycle) executes it and files the result back. A step is complete when its operation
completed (seen in the snapshot) or the runner reported success; a failure stops the run.

The rules live in this policy's configuration, so they are validated like any configuration
and replaced atomically: with `file`, the configuration reads the rules from that YAML file
every time it is applied — which is how rules are reloaded without a restart.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from edgeroam.model import HostState, OperationKind, OperationState, Reason, Role
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.elastic import MemberPlacement
from edgeroam.policies.groupstate import (
    FINAL_FAILURES,
    GroupIndex,
    activity,
    failed_members,
    group_index,
    matching_operation,
    measure,
)
from edgeroam.policies.placement import PlacementRequest, place
from edgeroam.rules.model import (
    ActionSpec,
    AllOf,
    AnyOf,
    Condition,
    HostCondition,
    InstanceCondition,
    MetricCondition,
    Not,
    OperationCondition,
    Rule,
    RulesError,
    load_rules,
)
from edgeroam.snapshot import Snapshot

POLICY = "rules"

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}


class RulesConfig(PolicyConfig):
    precedence: int = 20
    rules: tuple[Rule, ...] = ()
    file: str | None = Field(
        default=None,
        description="YAML rules file, read every time this configuration is applied (reload); "
        "its rules replace `rules`.",
    )
    heartbeat_timeout_s: float = Field(default=180.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _read_file(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("file"):
            try:
                ruleset = load_rules(str(data["file"]))
            except RulesError as exc:
                raise ValueError(str(exc)) from None
            data = {**data, "rules": ruleset.rules}
        return data

    @model_validator(mode="after")
    def _unique(self) -> RulesConfig:
        names = [r.name for r in self.rules]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule name(s) {duplicates}")
        return self


# --- memory -------------------------------------------------------------------------------------

StepStatus = Literal["waiting", "ready", "running", "done", "failed", "skipped", "cancelled"]


@dataclass(frozen=True)
class StepState:
    status: StepStatus = "waiting"
    since: float = 0.0
    """When the step entered its status (for timers, preconditions and reports)."""
    operation: tuple[str, str, float] | None = None
    """(subject, kind, created_at) of the operation a built-in action became."""
    message: str = ""


@dataclass(frozen=True)
class Run:
    id: str
    rule: str
    started_at: float
    steps: Mapping[str, StepState]
    status: Literal["running", "completed", "failed"] = "running"


@dataclass(frozen=True)
class ExternalAction:
    """A notify or custom action for the runner; `key` is ``run-id/action-id``."""

    key: str
    rule: str
    run: str
    action: ActionSpec
    queued_at: float


@dataclass(frozen=True)
class ActionResult:
    ok: bool
    message: str
    finished_at: float


@dataclass(frozen=True)
class RulesMemory:
    streak: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    fired_at: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    runs: Mapping[str, Run] = field(default_factory=lambda: MappingProxyType({}))
    finished: tuple[Run, ...] = ()
    """The last finished runs (newest last), for the API."""
    outbox: tuple[ExternalAction, ...] = ()
    results: Mapping[str, ActionResult] = field(default_factory=lambda: MappingProxyType({}))
    counter: int = 0

    def with_results(self, results: Mapping[str, ActionResult]) -> RulesMemory:
        """This memory with the runner's results filed (the runner's only way in)."""
        return replace(self, results=MappingProxyType({**self.results, **results}))

    def pending(self) -> tuple[ExternalAction, ...]:
        """Outbox entries the runner has not reported on yet."""
        return tuple(a for a in self.outbox if a.key not in self.results)


# --- conditions ---------------------------------------------------------------------------------


@dataclass
class _View:
    """Lazily computed group figures a cycle's conditions share."""

    snapshot: Snapshot
    heartbeat_timeout_s: float
    _groups: dict[str, dict[str, float]] | None = None
    _index: GroupIndex | None = None

    @property
    def index(self) -> GroupIndex:
        if self._index is None:
            self._index = group_index(self.snapshot)
        return self._index

    def group(self, gid: str) -> dict[str, float] | None:
        if self._groups is None:
            snapshot, index = self.snapshot, self.index
            act = activity(snapshot, index)
            failed = failed_members(snapshot, index, act.inst_last_touch, self.heartbeat_timeout_s)
            loads = measure(snapshot, index, failed)
            failed_count = np.bincount(
                index.inst_group[failed & index.inst_active], minlength=len(index.ids)
            )
            self._groups = {
                g: {
                    "load": float(loads.load[r]),
                    "active": float(loads.active[r]),
                    "serving": float(loads.serving[r]),
                    "standby": float(loads.standby[r]),
                    "failed": float(failed_count[r]),
                }
                for r, g in enumerate(index.ids)
            }
        return self._groups.get(gid)

    def group_metric(self, gid: str, metric: str) -> float | None:
        row = self.index.pos.get(gid)
        if row is None:
            return None
        values = [
            self.snapshot.telemetry.value(f"instance:{name}", metric)
            for name in self.index.members[row]
            if self.snapshot.instances[name].role is Role.ACTIVE
            and self.snapshot.instances[name].serving
        ]
        known = [v for v in values if v is not None]
        return sum(known) / len(known) if known else None


def holds(condition: Condition, view: _View) -> bool:
    """Whether a condition holds in the snapshot; unknown values make a comparison false."""
    snapshot = view.snapshot
    if isinstance(condition, AllOf):
        return all(holds(c, view) for c in condition.all)
    if isinstance(condition, AnyOf):
        return any(holds(c, view) for c in condition.any)
    if isinstance(condition, Not):
        return not holds(condition.not_, view)
    if isinstance(condition, MetricCondition):
        value: float | None
        kind, _, ident = condition.source.partition(":")
        if kind == "group":
            figures = view.group(ident)
            if figures is not None and condition.metric in figures:
                value = figures[condition.metric]
            else:
                value = view.group_metric(ident, condition.metric)
        else:
            value = snapshot.telemetry.value(condition.source, condition.metric)
        if value is None or math.isnan(value):
            return False
        return _COMPARE[condition.op](value, condition.value)
    if isinstance(condition, InstanceCondition):
        inst = snapshot.instances.get(condition.instance)
        if not condition.exists:
            return inst is None
        if inst is None:
            return False
        return (condition.stage is None or inst.stage is condition.stage) and (
            condition.role is None or inst.role is condition.role
        )
    if isinstance(condition, HostCondition):
        host = snapshot.hosts.get(condition.host)
        return host is not None and host.state is condition.state
    assert isinstance(condition, OperationCondition)
    return _operation_seen(condition, view)


def _operation_seen(condition: OperationCondition, view: _View) -> bool:
    snapshot = view.snapshot
    members: frozenset[str] = frozenset()
    if condition.group is not None:
        row = view.index.pos.get(condition.group)
        members = frozenset(view.index.members[row]) if row is not None else frozenset()
    for op in snapshot.operations:
        if condition.operation != "any" and op.kind.value != condition.operation:
            continue
        if condition.subject is not None and op.subject != condition.subject:
            continue
        if condition.group is not None and not (
            op.subject == condition.group or members & set(op.instances)
        ):
            continue
        if op.state is not condition.state:
            continue
        if op.state.in_flight:
            return True
        finished = op.finished_at if op.finished_at is not None else op.created_at
        if snapshot.now - finished <= condition.within_s:
            return True
    return False


# --- the policy ---------------------------------------------------------------------------------


@dataclass
class _Cycle:
    snapshot: Snapshot
    config: RulesConfig
    view: _View
    placement: MemberPlacement
    proposals: list[Proposal] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)
    outbox: list[ExternalAction] = field(default_factory=list)


class RulesPolicy:
    name: ClassVar[str] = POLICY
    config_model: ClassVar[type[PolicyConfig]] = RulesConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, RulesConfig)
        mem = memory if isinstance(memory, RulesMemory) else RulesMemory()
        if not config.rules and not mem.runs:
            return PolicyResult(memory=mem)
        now = snapshot.now
        cycle = _Cycle(
            snapshot,
            config,
            _View(snapshot, config.heartbeat_timeout_s),
            MemberPlacement(snapshot),
        )
        rules = {r.name: r for r in config.rules}
        runs = dict(mem.runs)
        finished = list(mem.finished)
        # Runs in progress first: their steps may complete, trigger others, or fail.
        for run_id in sorted(runs):
            run = runs[run_id]
            rule = rules.get(run.rule)
            if rule is None:  # the rule was removed by a reload: stop its run
                run = replace(run, status="failed")
                cycle.notes.append(_note(run, "rule_removed", f"rule {run.rule} was removed"))
            else:
                run = self._advance(cycle, rule, run, mem.results)
            if run.status != "running":
                del runs[run_id]
                finished.append(run)
            else:
                runs[run_id] = run
        # Then the conditions.
        streak = dict(mem.streak)
        fired_at = dict(mem.fired_at)
        counter = mem.counter
        active_rules = {r.rule for r in runs.values()}
        for rule in config.rules:
            if not rule.enabled:
                streak.pop(rule.name, None)
                continue
            streak[rule.name] = streak.get(rule.name, 0) + 1 if holds(rule.when, cycle.view) else 0
            if (
                streak[rule.name] < rule.occurrences
                or rule.name in active_rules
                or now - fired_at.get(rule.name, -math.inf) < rule.cooldown_s
            ):
                continue
            counter += 1
            run = Run(
                id=f"run-{counter:06d}",
                rule=rule.name,
                started_at=now,
                steps=MappingProxyType(
                    {str(a.id): StepState("waiting", now) for a in rule.actions}
                ),
            )
            fired_at[rule.name] = now
            streak[rule.name] = 0
            cycle.notes.append(
                _note(
                    run,
                    "rule_fired",
                    f"rule {rule.name} fired ({rule.occurrences} cycle(s)); run {run.id} "
                    f"starts {len(rule.actions)} action(s) in {rule.mode}",
                )
            )
            run = self._advance(cycle, rule, run, mem.results)
            if run.status == "running":
                runs[run.id] = run
            else:
                finished.append(run)
        # The outbox keeps what the runner has not reported on; results of finished keys go.
        live = {f"{r.id}/" for r in runs.values()}
        outbox = tuple(
            a
            for a in (*mem.outbox, *cycle.outbox)
            if a.key not in mem.results and any(a.key.startswith(p) for p in live)
        )
        results = {k: v for k, v in mem.results.items() if any(k.startswith(p) for p in live)}
        new = RulesMemory(
            streak=MappingProxyType(streak),
            fired_at=MappingProxyType(fired_at),
            runs=MappingProxyType(runs),
            finished=tuple(finished[-50:]),
            outbox=outbox,
            results=MappingProxyType(results),
            counter=counter,
        )
        return PolicyResult(proposals=tuple(cycle.proposals), memory=new, notes=tuple(cycle.notes))

    # -- runs ---------------------------------------------------------------------------------
    def _advance(
        self, cycle: _Cycle, rule: Rule, run: Run, results: Mapping[str, ActionResult]
    ) -> Run:
        now = cycle.snapshot.now
        steps = dict(run.steps)
        # 1. What the world says about running steps.
        for action in rule.actions:
            aid = str(action.id)
            state = steps.get(aid, StepState("waiting", run.started_at))
            if state.status == "running":
                steps[aid] = self._observe(cycle, run, action, state, results)
        failed = [a for a, s in steps.items() if s.status == "failed"]
        if failed:
            for aid, s in steps.items():
                if s.status in ("waiting", "ready"):
                    steps[aid] = StepState("cancelled", now, message=f"after {failed[0]} failed")
            done = replace(run, steps=MappingProxyType(steps), status="failed")
            cycle.notes.append(
                _note(
                    done,
                    "run_failed",
                    f"run {run.id} of rule {rule.name} stopped: "
                    f"{failed[0]} failed ({steps[failed[0]].message})",
                )
            )
            return done
        # 2. Triggers, timers and preconditions; start what is ready.
        for i, action in enumerate(rule.actions):
            aid = str(action.id)
            state = steps[aid]
            if state.status == "waiting":
                deps = rule.dependencies(i)
                if all(steps[d].status in ("done", "skipped") for d in deps):
                    since = max((steps[d].since for d in deps), default=run.started_at)
                    state = steps[aid] = StepState("ready", max(since, run.started_at))
            if state.status != "ready" or now < state.since + action.delay_s:
                continue
            if action.precondition is not None and not holds(action.precondition, cycle.view):
                if now - (state.since + action.delay_s) >= action.wait_s:
                    steps[aid] = StepState("failed", now, message="precondition not met")
                    return self._advance(cycle, rule, replace(run, steps=steps), results)
                continue
            steps[aid] = self._start(cycle, rule, run, action)
        if any(s.status == "failed" for s in steps.values()):
            return self._advance(cycle, rule, replace(run, steps=steps), results)
        if all(s.status in ("done", "skipped") for s in steps.values()):
            done = replace(run, steps=MappingProxyType(steps), status="completed")
            cycle.notes.append(
                _note(done, "run_completed", f"run {run.id} of rule {rule.name} completed")
            )
            return done
        return replace(run, steps=MappingProxyType(steps))

    def _observe(
        self,
        cycle: _Cycle,
        run: Run,
        action: ActionSpec,
        state: StepState,
        results: Mapping[str, ActionResult],
    ) -> StepState:
        now = cycle.snapshot.now
        if action.external:
            result = results.get(f"{run.id}/{action.id}")
            if result is None:
                return state
            return StepState("done" if result.ok else "failed", now, message=result.message)
        assert state.operation is not None
        subject, kind, created = state.operation
        op = matching_operation(
            cycle.snapshot.operations,
            policy=POLICY,
            subject=subject,
            kind=OperationKind(kind),
            created_at=created,
        )
        if op is None:
            if now > created:
                return StepState("failed", now, message="the operation was refused")
            return state
        if op.state is OperationState.COMPLETED:
            return StepState("done", now, state.operation, f"{op.id} completed")
        if op.state in FINAL_FAILURES:
            return StepState("failed", now, state.operation, f"{op.id} {op.state.value}")
        return state

    def _start(self, cycle: _Cycle, rule: Rule, run: Run, action: ActionSpec) -> StepState:
        now = cycle.snapshot.now
        if action.external:
            cycle.outbox.append(
                ExternalAction(
                    key=f"{run.id}/{action.id}",
                    rule=rule.name,
                    run=run.id,
                    action=action,
                    queued_at=now,
                )
            )
            return StepState("running", now)
        built = _proposal(cycle, rule, run, action)
        if isinstance(built, str):
            status: StepStatus = "skipped" if built.startswith("skip:") else "failed"
            return StepState(status, now, message=built.removeprefix("skip:"))
        cycle.proposals.append(built)
        return StepState("running", now, (built.subject, built.kind.value, now))


def _note(run: Run, rule_name: str, message: str) -> Reason:
    return Reason(
        rule=rule_name,
        message=message,
        details={
            "run": run.id,
            "rule": run.rule,
            "steps": {k: v.status for k, v in run.steps.items()},
        },
    )


def _proposal(cycle: _Cycle, rule: Rule, run: Run, action: ActionSpec) -> Proposal | str:
    """The proposal of a built-in action, or why there is none ("skip:" = nothing to do)."""
    snapshot = cycle.snapshot
    why = Reason(
        rule=f"rule:{rule.name}",
        message=f"rule {rule.name} (run {run.id}) action {action.id}: {action.do}",
        details={"rule": rule.name, "run": run.id, "action": action.id},
    )
    if action.do == "scale":
        assert action.group is not None
        group = snapshot.groups.get(action.group)
        if group is None:
            return f"unknown group {action.group!r}"
        index = cycle.view.index
        row = index.pos[group.id]
        names = [n for n in index.members[row] if snapshot.instances[n].role is Role.ACTIVE]
        if action.direction == "out":
            room = group.max_size - len(names)
            if room <= 0:
                return f"skip:{group.id} is at its maximum size {group.max_size}"
            hosts = []
            for _ in range(min(action.count, room)):
                placed = cycle.placement.place(group)
                if placed.host is None:
                    break
                hosts.append(placed.host)
            if not hosts:
                return f"no host can take another {group.id} member"
            return Proposal(
                kind=OperationKind.SCALE_OUT,
                subject=group.id,
                function=group.function,
                hosts=tuple(hosts),
                params={"_group": group.id},
                reason=why,
            )
        spare = len(names) - group.min_size
        if spare <= 0:  # never below the minimum, and no proposal at it
            return f"skip:{group.id} is at its minimum size {group.min_size}"
        victims = sorted(names, key=lambda n: (-snapshot.instances[n].created_at, n))
        return Proposal(
            kind=OperationKind.SCALE_IN,
            subject=group.id,
            instances=tuple(victims[: min(action.count, spare)]),
            function=group.function,
            reason=why,
        )
    assert action.instance is not None
    inst = snapshot.instances.get(action.instance)
    if inst is None:
        return f"unknown instance {action.instance!r}"
    if action.do == "heal":
        target = action.to or inst.host
        kind = OperationKind.HEAL
    else:
        if action.to is not None:
            target = action.to
        else:
            function = snapshot.functions[inst.function]
            placed = place(
                snapshot,
                PlacementRequest(
                    function=inst.function,
                    demand=snapshot.flavor_of(inst.function).resources,
                    kinds=action.kinds or function.placement,
                    owner=inst.owner,
                    exclude_hosts=frozenset({inst.host}),
                ),
                cycle.placement.reserved,
            )
            if placed.host is None:
                return f"nowhere to migrate {inst.id}: {placed.reason.message}"
            target = placed.host
        kind = OperationKind.MIGRATE
    host = snapshot.hosts.get(target)
    if host is None:
        return f"unknown host {target!r}"
    if kind is OperationKind.MIGRATE and host.state is not HostState.READY:
        return f"host {target} is {host.state.value}"
    return Proposal(
        kind=kind,
        subject=inst.id,
        instances=(inst.id,),
        function=inst.function,
        owner=inst.owner,
        hosts=(target,),
        sources=(inst.host,),
        params=dict(inst.params),
        reason=why,
    )


__all__ = [
    "ActionResult",
    "ExternalAction",
    "RulesConfig",
    "RulesMemory",
    "RulesPolicy",
    "Run",
    "StepState",
    "holds",
]
