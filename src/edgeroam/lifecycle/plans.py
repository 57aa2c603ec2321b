"""Turning a request into a plan: the ordered driver steps of each operation kind.

Plans are data (persisted with the operation), so a restarted controller continues exactly
where the crashed one stopped. Migrations are make-before-break: the new copy starts before
the old one stops.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgeroam.model import (
    Instance,
    LifecycleStage,
    OperationKind,
    OperationRequest,
    Role,
    Step,
)


class PlanError(ValueError):
    """The request cannot be turned into a plan (missing target, unknown instance…)."""


@dataclass
class Plan:
    steps: list[Step]
    new_instances: list[Instance] = field(default_factory=list)


def _deploy(instance: str, host: str, function: str, params: dict[str, Any]) -> list[Step]:
    base = {"instance": instance, "host": host, "function": function}
    return [
        Step(action="create_sandbox", stage=LifecycleStage.VI_DEPLOYMENT, args=base),
        Step(
            action="start_function",
            stage=LifecycleStage.DEPLOYMENT,
            args={**base, "params": params},
            effect={"instance": instance, "host": host},
        ),
    ]


def _undeploy(instance: str, host: str, function: str, *, best_effort: bool = False) -> list[Step]:
    base = {"instance": instance, "host": host, "function": function}
    return [
        Step(
            action="stop_function",
            stage=LifecycleStage.UNDEPLOYMENT,
            args=base,
            best_effort=best_effort,
        ),
        Step(
            action="remove_sandbox",
            stage=LifecycleStage.UNDEPLOYMENT,
            args=base,
            best_effort=best_effort,
        ),
    ]


def _restore(request: OperationRequest, now: float, new_id: Callable[[str], str]) -> Plan:
    """A revert first re-creates the server copies its offload stopped (make before break):
    params ``_restore`` lists ``{host, owner, params}``."""
    plan = Plan(steps=[])
    for item in request.params.get("_restore") or []:
        if request.function is None or "host" not in item:
            raise PlanError("revert with _restore needs a function and a host per entry")
        name = new_id(request.function)
        params = dict(item.get("params") or {})
        plan.new_instances.append(
            Instance(
                id=name,
                function=request.function,
                owner=item.get("owner"),
                host=item["host"],
                params=params,
                stage=LifecycleStage.ONBOARDING,
                created_at=now,
                updated_at=now,
            )
        )
        plan.steps += _deploy(name, item["host"], request.function, params)
    return plan


def _create(
    request: OperationRequest,
    now: float,
    instances: dict[str, Instance],
    new_id: Callable[[str], str],
) -> Plan:
    """instantiate / scale-out / offload: one new instance per target host."""
    kind = request.kind
    if request.function is None or not request.hosts:
        raise PlanError(f"{kind.value} needs a function and at least one target host")
    plan = Plan(steps=[])
    role = Role(request.params.get("_role", Role.ACTIVE.value))
    params = {k: v for k, v in request.params.items() if not k.startswith("_")}
    group = request.params.get("_group")
    # An offload to many CPEs gives each new copy its CPE's owner (one per host, in order).
    owners = request.params.get("_owners") or [request.owner] * len(request.hosts)
    if len(owners) != len(request.hosts):
        raise PlanError(f"_owners has {len(owners)} entries for {len(request.hosts)} hosts")
    for host, owner in zip(request.hosts, owners, strict=True):
        name = new_id(request.function)
        plan.new_instances.append(
            Instance(
                id=name,
                function=request.function,
                owner=owner,
                host=host,
                role=role,
                group=group,
                params=params,
                stage=LifecycleStage.ONBOARDING,
                created_at=now,
                updated_at=now,
            )
        )
        plan.steps += _deploy(name, host, request.function, params)
    if kind is OperationKind.OFFLOAD:
        # Server copies the CPE copies replace (policy knob) stop once those all run.
        for name in request.instances:
            if name not in instances:
                raise PlanError(f"unknown instance(s) {[name]}")
            old = instances[name]
            plan.steps += _undeploy(old.id, old.host, old.function)
            plan.steps[-1] = plan.steps[-1].model_copy(update={"effect": {"terminate": name}})
    return plan


#: Host-state operations: the driver action and the host's state afterwards. Cordoning is
#: scheduling state only, so its step is a no-op whose effect is the new state (rolled back
#: like any other effect).
_HOST_STATE: dict[OperationKind, tuple[str, str]] = {
    OperationKind.POWER_OFF: ("power_off", "off"),
    OperationKind.POWER_ON: ("power_on", "ready"),
    OperationKind.CORDON: ("noop", "cordoned"),
    OperationKind.UNCORDON: ("noop", "ready"),
}


def _host_state(request: OperationRequest) -> Plan:
    kind = request.kind
    if request.instances:
        raise PlanError(f"{kind.value} acts on a host, not on instances")
    if len(request.hosts) != 1:
        raise PlanError(f"{kind.value} needs exactly one host")
    action, state = _HOST_STATE[kind]
    if kind is OperationKind.POWER_ON:
        state = request.params.get("state", state)
    host = request.hosts[0]
    return Plan(
        steps=[
            Step(
                action=action,
                stage=LifecycleStage.UPDATE,
                args={"host": host},
                effect={"host_state": state, "host": host},
            )
        ]
    )


def _remove(
    request: OperationRequest,
    targets: list[Instance],
    now: float,
    new_id: Callable[[str], str],
) -> Plan:
    """terminate / scale-in / revert (a revert may first restore the server copies)."""
    plan = _restore(request, now, new_id) if request.kind is OperationKind.REVERT else Plan([])
    for inst in targets:
        steps = _undeploy(inst.id, inst.host, inst.function)
        steps[-1] = steps[-1].model_copy(update={"effect": {"terminate": inst.id}})
        plan.steps += steps
    return plan


def _promote(targets: list[Instance]) -> Plan:
    """A role flip, the fast half of healing: the first instance (a standby) becomes active,
    the others (usually the failed active it replaces) step down to standby. Restarting or
    redeploying the failed one is a separate, slower operation."""
    first, *rest = targets
    steps = [
        Step(
            action="update_function",
            stage=LifecycleStage.HEAL,
            args={
                "instance": first.id,
                "host": first.host,
                "function": first.function,
                "params": first.params,
                "previous": first.params,
                "role": Role.ACTIVE.value,
            },
            effect={
                "instance": first.id,
                "role": Role.ACTIVE.value,
                "previous_role": first.role.value,
            },
        )
    ]
    for inst in rest:
        steps.append(
            Step(
                action="noop",
                stage=LifecycleStage.FAIL,
                args={"instance": inst.id},
                best_effort=True,
                effect={
                    "instance": inst.id,
                    "role": Role.STANDBY.value,
                    "previous_role": inst.role.value,
                },
            )
        )
    return Plan(steps=steps)


def _update(request: OperationRequest, targets: list[Instance]) -> Plan:
    """New parameters, live; with an owner on an unowned instance it is a claim (a pooled
    vRGW becomes the customer's and active in the step that applies its settings)."""
    steps: list[Step] = []
    for inst in targets:
        merged = {**inst.params, **request.params}
        args: dict[str, Any] = {
            "instance": inst.id,
            "host": inst.host,
            "function": inst.function,
            "params": merged,
            "previous": inst.params,
        }
        effect: dict[str, Any] = {"instance": inst.id, "params": merged}
        if request.owner is not None and request.owner != inst.owner:
            if inst.owner is not None:
                raise PlanError(f"instance {inst.id} belongs to customer {inst.owner!r}")
            args |= {
                "owner": request.owner,
                "role": Role.ACTIVE.value,
                "previous_owner": None,
                "previous_role": inst.role.value,
            }
            effect |= {
                "owner": request.owner,
                "previous_owner": None,
                "owner_role": Role.ACTIVE.value,
                "previous_owner_role": inst.role.value,
            }
        steps.append(
            Step(action="update_function", stage=LifecycleStage.UPDATE, args=args, effect=effect)
        )
    return Plan(steps=steps)


def _restart_in_place(inst: Instance) -> Plan:
    base = {"instance": inst.id, "host": inst.host, "function": inst.function}
    return Plan(
        steps=[
            Step(action="stop_function", stage=LifecycleStage.HEAL, args=base, best_effort=True),
            Step(
                action="start_function",
                stage=LifecycleStage.HEAL,
                args={**base, "params": inst.params},
            ),
        ]
    )


def _move(
    request: OperationRequest, targets: list[Instance], host_is_up: Callable[[str], bool]
) -> Plan:
    """migrate / heal: make before break, or a restart when the target is the same host."""
    kind = request.kind
    if len(targets) != 1 or len(request.hosts) != 1:
        raise PlanError(f"{kind.value} moves exactly one instance to exactly one host")
    inst, target = targets[0], request.hosts[0]
    if target == inst.host:
        return _restart_in_place(inst)
    steps = _deploy(inst.id, target, inst.function, inst.params)
    # Once the new copy runs, the instance serves from the target (stage monitoring) while
    # the old copy is cleaned up. The source of a heal is usually dead: cleaning it up must
    # not block the operation.
    cleanup = _undeploy(
        inst.id,
        inst.host,
        inst.function,
        best_effort=kind is OperationKind.HEAL or not host_is_up(inst.host),
    )
    cleanup = [s.model_copy(update={"stage": LifecycleStage.MONITORING}) for s in cleanup]
    mode = request.params.get("_migration")
    if mode is not None:
        # Cold migration of a stateful function (seed 003): the driver is told the mode and
        # the other end. "image" stops the source first (suspend, move, resume); "context"
        # prepares the target while the source serves and cuts over in the target's
        # start_function.
        if mode not in ("context", "image"):
            raise PlanError(f"_migration must be 'context' or 'image', not {mode!r}")
        extra = {"migration": mode, "source": inst.host, "target": target}
        steps = [s.model_copy(update={"args": {**s.args, **extra}}) for s in steps]
        cleanup = [s.model_copy(update={"args": {**s.args, **extra}}) for s in cleanup]
        if mode == "image":
            stop = cleanup[0].model_copy(update={"stage": LifecycleStage.UPDATE})
            return Plan(steps=[stop, *steps, cleanup[1]])
    return Plan(steps=steps + cleanup)


_CREATES = frozenset({OperationKind.INSTANTIATE, OperationKind.SCALE_OUT, OperationKind.OFFLOAD})
_REMOVES = frozenset({OperationKind.TERMINATE, OperationKind.SCALE_IN, OperationKind.REVERT})
_MOVES = frozenset({OperationKind.MIGRATE, OperationKind.HEAL})


def build_plan(
    request: OperationRequest,
    now: float,
    instances: dict[str, Instance],
    new_id: Callable[[str], str],
    host_is_up: Callable[[str], bool],
) -> Plan:
    kind = request.kind
    if kind in _CREATES:
        return _create(request, now, instances, new_id)
    if kind in _HOST_STATE:
        return _host_state(request)
    missing = sorted(set(request.instances) - set(instances))
    if missing:
        raise PlanError(f"unknown instance(s) {missing}")
    targets = [instances[i] for i in request.instances]
    if not targets:
        raise PlanError(f"{kind.value} needs at least one instance")
    if kind in _REMOVES:
        return _remove(request, targets, now, new_id)
    if kind is OperationKind.PROMOTE:
        return _promote(targets)
    if kind is OperationKind.UPDATE:
        return _update(request, targets)
    if kind in _MOVES:
        return _move(request, targets, host_is_up)
    raise PlanError(f"operation kind {kind.value} is not supported for instances")
