"""The lifecycle engine: the only caller of drivers.

An operation is written to the store (STARTING) before anything touches the world, moves to
PROCESSING when its first step is submitted, and records each finished step, so a crash at any
point leaves a record the next controller can finish or undo. Failed steps are retried with
capped, jittered exponential backoff; when attempts run out the operation waits in FAILED_TEMP
for an operator to retry, roll back or fail it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from pydantic import Field

from edgeroam.drivers.base import Driver, Outcome, reverse
from edgeroam.events import EventLog
from edgeroam.inventory import Inventory
from edgeroam.lifecycle.plans import PlanError, build_plan
from edgeroam.model import (
    EventCategory,
    HostState,
    Instance,
    LifecycleStage,
    Model,
    Operation,
    OperationKind,
    OperationRequest,
    OperationState,
    ParameterError,
    Role,
    Severity,
    Step,
    validate_params,
)
from edgeroam.snapshot import OperationSummary
from edgeroam.store import Store

S = OperationState


class OperationError(ValueError):
    """A request or an operator action that cannot be carried out; nothing was changed."""


class BusyError(OperationError):
    """The subject already has an operation in flight."""


class LifecycleConfig(Model):
    max_attempts: int = Field(default=4, ge=1, description="Tries per step before FAILED_TEMP.")
    backoff_base_s: float = Field(default=1.0, gt=0)
    backoff_cap_s: float = Field(default=60.0, gt=0)
    jitter: float = Field(default=0.5, ge=0, le=1, description="Fraction of the delay randomised.")
    recovery: Literal["resume", "failed_temp"] = Field(
        default="resume",
        description="What to do with PROCESSING operations found at start-up.",
    )
    history_s: float = Field(
        default=3600.0,
        gt=0,
        description="How long finished operations "
        "stay visible to the arbiter (cooldowns, rate limits).",
    )
    seed: int = 0


class LifecycleEngine:
    def __init__(
        self,
        store: Store | None,
        inventory: Inventory,
        driver: Driver,
        events: EventLog,
        config: LifecycleConfig | None = None,
    ) -> None:
        self.store = store
        self.inventory = inventory
        self.driver = driver
        self.events = events
        self.config = config or LifecycleConfig()
        self.active: dict[str, Operation] = {}
        self.finished: deque[Operation] = deque(maxlen=100_000)
        self.counters: dict[str, int] = {"operation": 0, "instance": 0}
        self._rng = np.random.default_rng(self.config.seed)
        self.completed_count = 0

    # -- ids ----------------------------------------------------------------------------------
    def _next(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    def _instance_id(self, function: str) -> str:
        return f"{function}.{self._next('instance')}"

    # -- requests -----------------------------------------------------------------------------
    def busy_names(self) -> set[str]:
        names: set[str] = set()
        for op in self.active.values():
            names.add(op.subject)
            names.update(op.instances)
        return names

    def submit(self, request: OperationRequest, now: float) -> Operation:
        """Persist a new operation (STARTING); it starts at the next `advance`."""
        busy = self.busy_names()
        clash = sorted({request.subject, *request.instances} & busy)
        if clash:
            holder = next(
                op.id for op in self.active.values() if {op.subject, *op.instances} & set(clash)
            )
            raise BusyError(f"{clash[0]} is busy with operation {holder}; try again when it ends")
        self._validate(request)
        try:
            plan = build_plan(
                request,
                now,
                dict(self.inventory.instances),
                self._instance_id,
                lambda h: self.inventory.hosts[h].state not in (HostState.DOWN, HostState.OFF),
            )
        except PlanError as exc:
            raise OperationError(str(exc)) from exc
        steps = [self._remember(step) for step in plan.steps]
        instances = tuple(request.instances) + tuple(i.id for i in plan.new_instances)
        op = Operation(
            id=f"op-{self._next('operation'):06d}",
            kind=request.kind,
            state=S.STARTING,
            subject=request.subject,
            instances=instances,
            function=request.function,
            owner=request.owner,
            hosts=request.hosts,
            sources=request.sources,
            params=request.params,
            reason=request.reason,
            policy=request.policy,
            deadline=request.deadline,
            created_instances=tuple(i.id for i in plan.new_instances),
            plan=tuple(steps),
            created_at=now,
            updated_at=now,
        )
        self._save(op, instances=plan.new_instances)
        for inst in plan.new_instances:
            self.inventory.put_instance(inst)
        self._reserve(op)
        self.active[op.id] = op
        self._event(op, now, f"{op.kind.value} {op.subject} accepted: {op.reason.message}")
        return op

    def _remember(self, step: Step) -> Step:
        """Record in a step's effect what it replaces, so a rollback can restore it."""
        effect = dict(step.effect)
        if "host_state" in effect:
            effect["previous_state"] = self.inventory.hosts[effect["host"]].state.value
        elif "host" in effect and "instance" in effect:
            current = self.inventory.instances.get(effect["instance"])
            effect["from"] = current.host if current is not None else None
        else:
            return step
        return step.model_copy(update={"effect": effect})

    def _validate(self, request: OperationRequest) -> None:
        inv = self.inventory
        for host in (*request.hosts, *request.sources):
            if host not in inv.hosts:
                raise OperationError(f"unknown host {host!r}")
        if request.function is not None and request.function not in inv.functions:
            raise OperationError(f"unknown function {request.function!r}")
        if request.owner is not None and request.owner not in inv.customers:
            raise OperationError(f"unknown customer {request.owner!r}")
        for name in request.instances:
            if name not in inv.instances:
                raise OperationError(f"unknown instance {name!r}")
        self._validate_params(request)
        if request.kind in (
            OperationKind.INSTANTIATE,
            OperationKind.SCALE_OUT,
            OperationKind.OFFLOAD,
            OperationKind.MIGRATE,
        ):
            for host in request.hosts:
                state = inv.hosts[host].state
                if state is not HostState.READY:
                    raise OperationError(
                        f"host {host!r} is {state.value}; only ready hosts receive functions"
                    )

    def _validate_params(self, request: OperationRequest) -> None:
        """Function parameters are checked against the function's schema before anything runs;
        keys starting with '_' are the engine's own (role, group) and are not parameters."""
        inv = self.inventory
        given = {k: v for k, v in request.params.items() if not k.startswith("_")}
        try:
            if request.kind is OperationKind.UPDATE:
                for name in request.instances:
                    inst = inv.instances[name]
                    validate_params(inv.functions[inst.function], {**inst.params, **given})
            elif request.function is not None and request.kind in (
                OperationKind.INSTANTIATE,
                OperationKind.SCALE_OUT,
                OperationKind.OFFLOAD,
            ):
                validate_params(inv.functions[request.function], given)
        except ParameterError as exc:
            raise OperationError(str(exc)) from exc

    def _reserve(self, op: Operation) -> None:
        if op.kind in (OperationKind.MIGRATE, OperationKind.HEAL) and op.instances:
            inst = self.inventory.instances.get(op.instances[0])
            if inst is not None and op.hosts and op.hosts[0] != inst.host:
                self.inventory.reserve(op.id, op.hosts[0], inst.function)

    # -- operator actions (API) ---------------------------------------------------------------
    def _waiting(self, op_id: str, action: str) -> Operation:
        op = self.active.get(op_id)
        if op is None:
            stored = self.store.operation(op_id) if self.store else None
            if stored is None:
                raise OperationError(f"no operation {op_id!r}")
            raise OperationError(
                f"operation {op_id} is {stored.state.value}; {action} needs FAILED_TEMP"
            )
        if op.state is not S.FAILED_TEMP:
            raise OperationError(
                f"operation {op_id} is {op.state.value}; {action} needs FAILED_TEMP"
            )
        return op

    def retry(self, op_id: str, now: float) -> Operation:
        op = self._waiting(op_id, "retry")
        state = S.ROLLING_BACK if op.params.get("_rolling_back") else S.PROCESSING
        op = self._update(
            op,
            now,
            state=state,
            attempt=0,
            next_attempt_at=now,
            error=None,
            params=self._next_round(op),
        )
        self._event(op, now, f"{op.id} retried by operator")
        return op

    def rollback(self, op_id: str, now: float) -> Operation:
        op = self._waiting(op_id, "rollback")
        op = self._update(
            op,
            now,
            state=S.ROLLING_BACK,
            attempt=0,
            next_attempt_at=now,
            params={**self._next_round(op), "_rolling_back": True},
        )
        self._event(op, now, f"{op.id} rolling back on operator request")
        return op

    @staticmethod
    def _next_round(op: Operation) -> dict[str, Any]:
        """Params starting a new round of attempts after an operator action.

        Attempts restart at 0, so without a round number the driver keys would repeat those
        of actions that already failed, and polling them would return the old failure
        instead of trying again.
        """
        return {**op.params, "_round": int(op.params.get("_round", 0)) + 1}

    def fail(self, op_id: str, now: float) -> Operation:
        op = self._waiting(op_id, "fail")
        changed = [self._stage(i, LifecycleStage.FAIL, now) for i in op.created_instances]
        op = self._finish(op, now, S.FAILED, [c for c in changed if c is not None])
        return op

    # -- execution ----------------------------------------------------------------------------
    def advance(self, now: float) -> list[Operation]:
        """Drive every in-flight operation as far as it can go at time `now`."""
        changed: list[Operation] = []
        for op_id in sorted(self.active):
            op = self.active[op_id]
            before = (op.state, op.step, op.attempt)
            op = self._drive(op, now)
            if (op.state, op.step, op.attempt) != before:
                changed.append(op)
        return changed

    def _drive(self, op: Operation, now: float) -> Operation:
        for _ in range(2 * len(op.plan) + 4):
            if op.state is S.STARTING:
                op = self._update(op, now, state=S.PROCESSING)
            if op.state is S.PROCESSING:
                if op.step >= len(op.plan):
                    return self._complete(op, now)
                progressed, op = self._run_step(op, now, undo=False)
            elif op.state is S.ROLLING_BACK:
                if op.step < 0 or not any(s.done for s in op.plan):
                    return self._rolled_back(op, now)
                progressed, op = self._run_step(op, now, undo=True)
            else:
                return op
            if not progressed:
                return op
        return op

    def _key(self, op: Operation, undo: bool) -> str:
        key = f"{op.id}/{'undo' if undo else 'do'}/{op.step}/{op.attempt}"
        round_ = op.params.get("_round")
        return f"{key}/r{round_}" if round_ else key

    def _run_step(self, op: Operation, now: float, *, undo: bool) -> tuple[bool, Operation]:
        if op.next_attempt_at is not None and now < op.next_attempt_at:
            return False, op
        if undo:
            # Undo the last completed step.
            index = max(i for i, s in enumerate(op.plan) if s.done)
            if index != op.step:
                op = self._update(op, now, step=index)
            step = op.plan[index]
            action, args = reverse(step.action, step.args)
        else:
            step = op.plan[op.step]
            action, args = step.action, step.args
            self._stage_of_step(op, step, now)
        key = self._key(op, undo)
        status = self.driver.poll(key, now)
        if status.outcome is Outcome.UNKNOWN:
            self.driver.submit(key, action, args, now)
            status = self.driver.poll(key, now)
        if status.outcome is Outcome.PENDING:
            return False, op
        if status.outcome is Outcome.DONE or step.best_effort:
            if status.outcome is not Outcome.DONE:
                self._event(
                    op,
                    now,
                    f"{op.id}: best-effort {action} failed ({status.message})",
                    severity=Severity.WARNING,
                )
            return True, self._step_done(op, now, undo=undo)
        return False, self._step_failed(op, now, status.message or f"{action} failed")

    def _step_done(self, op: Operation, now: float, *, undo: bool) -> Operation:
        plan = list(op.plan)
        step = plan[op.step]
        changed: list[Instance] = []
        if undo:
            plan[op.step] = step.model_copy(update={"done": False})
            changed += self._apply_effect(op, step.effect, now, undo=True)
            nxt = op.step - 1
        else:
            plan[op.step] = step.model_copy(update={"done": True})
            changed += self._apply_effect(op, step.effect, now, undo=False)
            nxt = op.step + 1
        return self._update(
            op,
            now,
            plan=tuple(plan),
            step=nxt,
            attempt=0,
            next_attempt_at=None,
            error=None,
            instances_changed=changed,
        )

    def _step_failed(self, op: Operation, now: float, message: str) -> Operation:
        attempt = op.attempt + 1
        if attempt >= self.config.max_attempts:
            op = self._update(
                op, now, state=S.FAILED_TEMP, error=message, attempt=attempt, next_attempt_at=None
            )
            self._event(
                op,
                now,
                f"{op.id} needs an operator after {attempt} attempts: {message}",
                severity=Severity.ERROR,
            )
            return op
        delay = min(self.config.backoff_cap_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        delay *= 1 - self.config.jitter * float(self._rng.random())
        op = self._update(op, now, attempt=attempt, next_attempt_at=now + delay, error=message)
        self._event(
            op,
            now,
            f"{op.id} attempt {attempt} failed ({message}); retrying in {delay:.2f} s",
            severity=Severity.WARNING,
        )
        return op

    def _apply_effect(
        self, op: Operation, effect: dict[str, Any], now: float, *, undo: bool
    ) -> list[Instance]:
        if not effect:
            return []
        inv = self.inventory
        changed: list[Instance] = []
        if "host_state" in effect:
            host = inv.hosts[effect["host"]]
            state = HostState(effect["previous_state"] if undo else effect["host_state"])
            new_host = host.model_copy(update={"state": state})
            inv.put_host(new_host)
            if self.store:
                self.store.put("host", new_host)
        name = effect.get("instance") or effect.get("terminate")
        inst = inv.instances.get(name) if name else None
        if inst is None:
            return changed
        if "terminate" in effect and not undo:
            gone = inst.model_copy(update={"stage": LifecycleStage.TERMINATED, "updated_at": now})
            inv.put_instance(gone)
            changed.append(gone)
        elif "host" in effect:
            target = effect["host"] if not undo else effect.get("from")
            if target is not None and target != inst.host:
                moved = inst.model_copy(update={"host": target, "updated_at": now})
                inv.put_instance(moved)
                changed.append(moved)
        elif "role" in effect:
            role = Role(effect["previous_role"] if undo else effect["role"])
            if role is not inst.role:
                flipped = inst.model_copy(update={"role": role, "updated_at": now})
                inv.put_instance(flipped)
                changed.append(flipped)
        elif "params" in effect:
            params = effect["params"] if not undo else dict(op.plan[op.step].args["previous"])
            update: dict[str, Any] = {"params": params, "updated_at": now}
            if "owner" in effect:  # a claim of a pooled instance (see plans.py, UPDATE)
                update["owner"] = effect["previous_owner"] if undo else effect["owner"]
                role = effect["previous_owner_role"] if undo else effect["owner_role"]
                update["role"] = Role(role)
            updated = inst.model_copy(update=update)
            inv.put_instance(updated)
            changed.append(updated)
        return changed

    def _stage_of_step(self, op: Operation, step: Step, now: float) -> None:
        name = step.args.get("instance")
        inst = self.inventory.instances.get(name) if name else None
        if inst is None or step.stage == inst.stage.value:
            return
        stage = LifecycleStage(step.stage)
        if op.kind is OperationKind.HEAL and stage in (
            LifecycleStage.VI_DEPLOYMENT,
            LifecycleStage.DEPLOYMENT,
        ):
            stage = LifecycleStage.HEAL
        if op.kind in (OperationKind.SCALE_OUT, OperationKind.SCALE_IN) and name not in (
            op.created_instances
        ):
            stage = LifecycleStage.SCALE
        changed = self._stage(inst.id, stage, now)
        if changed is not None and self.store:
            self.store.put("instance", changed)

    def _stage(self, name: str, stage: LifecycleStage, now: float) -> Instance | None:
        inst = self.inventory.instances.get(name)
        if inst is None or inst.stage is stage:
            return None
        updated = inst.model_copy(update={"stage": stage, "updated_at": now})
        self.inventory.put_instance(updated)
        self.events.emit(
            now,
            EventCategory.LIFECYCLE,
            f"{name}: {inst.stage.value} → {stage.value}",
            tags=(name, stage.value),
            data={"instance": name, "from": inst.stage.value, "to": stage.value},
        )
        return updated

    def _complete(self, op: Operation, now: float) -> Operation:
        changed: list[Instance] = []
        for name in op.instances:
            if name in self.inventory.instances:
                updated = self._stage(name, LifecycleStage.MONITORING, now)
                if updated is not None:
                    changed.append(updated)
        self.completed_count += 1
        return self._finish(op, now, S.COMPLETED, changed)

    def _rolled_back(self, op: Operation, now: float) -> Operation:
        changed: list[Instance] = []
        for name in op.created_instances:
            inst = self.inventory.instances.get(name)
            if inst is not None:
                gone = inst.model_copy(
                    update={"stage": LifecycleStage.TERMINATED, "updated_at": now}
                )
                self.inventory.put_instance(gone)
                changed.append(gone)
        for name in op.instances:
            if name not in op.created_instances:
                updated = self._stage(name, LifecycleStage.MONITORING, now)
                if updated is not None:
                    changed.append(updated)
        return self._finish(op, now, S.ROLLED_BACK, changed)

    def _finish(
        self, op: Operation, now: float, state: OperationState, changed: list[Instance]
    ) -> Operation:
        op = self._update(op, now, state=state, finished_at=now, instances_changed=changed)
        self.active.pop(op.id, None)
        self.inventory.release(op.id)
        self.finished.append(op)
        severity = Severity.INFO if state is S.COMPLETED else Severity.WARNING
        self._event(
            op, now, f"{op.id} {op.kind.value} {op.subject}: {state.value}", severity=severity
        )
        return op

    def _update(
        self,
        op: Operation,
        now: float,
        *,
        instances_changed: Iterable[Instance] = (),
        **fields: Any,
    ) -> Operation:
        new = op.model_copy(update={**fields, "updated_at": now})
        if new.state is not op.state:
            self.events.emit(
                now,
                EventCategory.OPERATION,
                f"{op.id} {op.kind.value}: {op.state.value} → {new.state.value}",
                tags=(op.id, op.kind.value, new.state.value),
                data={"operation": op.id, "from": op.state.value, "to": new.state.value},
            )
        changed = list(instances_changed)
        gone = [i.id for i in changed if i.stage is LifecycleStage.TERMINATED]
        self._save(
            new,
            instances=[i for i in changed if i.stage is not LifecycleStage.TERMINATED],
            removed=gone,
        )
        if new.id in self.active or new.state.in_flight:
            self.active[new.id] = new
        return new

    def _save(
        self, op: Operation, *, instances: Iterable[Instance] = (), removed: Iterable[str] = ()
    ) -> None:
        if self.store is not None:
            self.store.save_operation(
                op,
                instances=list(instances),
                removed_instances=list(removed),
                counters=dict(self.counters),
            )

    def _event(
        self, op: Operation, now: float, message: str, severity: Severity = Severity.INFO
    ) -> None:
        self.events.emit(
            now,
            EventCategory.OPERATION,
            message,
            tags=(op.id, op.kind.value, op.policy),
            severity=severity,
            data={
                "operation": op.id,
                "kind": op.kind.value,
                "state": op.state.value,
                "instances": list(op.instances),
                "hosts": list(op.hosts),
                "reason": op.reason.model_dump(),
            },
        )

    # -- recovery and views -------------------------------------------------------------------
    def recover(self, now: float) -> list[Operation]:
        """Take over the operations a previous controller left in flight."""
        if self.store is None:
            return []
        self.counters.update(self.store.counters())
        found = self.store.operations(
            states=[S.STARTING, S.PROCESSING, S.ROLLING_BACK, S.FAILED_TEMP], limit=1_000_000
        )
        recent = self.store.operations(since=now - self.config.history_s, limit=100_000)
        self.finished.extend(op for op in recent if op.state.final)
        result = []
        for op in found:
            self.active[op.id] = op
            self._reserve(op)
            if op.state is S.STARTING:
                # Nothing reached the driver yet: undo the bookkeeping only.
                op = self._rolled_back(op, now)
            elif op.state is S.PROCESSING and self.config.recovery == "failed_temp":
                op = self._update(
                    op, now, state=S.FAILED_TEMP, error="controller restarted during the operation"
                )
            self._event(
                op,
                now,
                f"{op.id} recovered after restart in state {op.state.value}",
                severity=Severity.WARNING,
            )
            result.append(op)
        return result

    def summaries(self, now: float) -> tuple[OperationSummary, ...]:
        horizon = now - self.config.history_s
        while self.finished and (self.finished[0].finished_at or 0) < horizon:
            self.finished.popleft()
        ops = [*self.finished, *self.active.values()]
        hosts = self.inventory.hosts
        result = []
        for op in ops:
            touched = {*op.hosts, *op.sources}
            touched.update(
                self.inventory.instances[i].host
                for i in op.instances
                if i in self.inventory.instances
            )
            result.append(
                OperationSummary(
                    id=op.id,
                    kind=op.kind,
                    state=op.state,
                    subject=op.subject,
                    instances=op.instances,
                    hosts=op.hosts,
                    sites=tuple(sorted({hosts[h].site for h in touched if h in hosts})),
                    policy=op.policy,
                    created_at=op.created_at,
                    finished_at=op.finished_at,
                )
            )
        return tuple(result)
