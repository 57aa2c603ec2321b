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


def build_plan(
    request: OperationRequest,
    now: float,
    instances: dict[str, Instance],
    new_id: Callable[[str], str],
    host_is_up: Callable[[str], bool],
) -> Plan:
    kind = request.kind
    if kind in (OperationKind.INSTANTIATE, OperationKind.SCALE_OUT, OperationKind.OFFLOAD):
        if request.function is None or not request.hosts:
            raise PlanError(f"{kind.value} needs a function and at least one target host")
        plan = Plan(steps=[])
        role = Role(request.params.get("_role", Role.ACTIVE.value))
        params = {k: v for k, v in request.params.items() if not k.startswith("_")}
        group = request.params.get("_group")
        for host in request.hosts:
            name = new_id(request.function)
            plan.new_instances.append(
                Instance(
                    id=name,
                    function=request.function,
                    owner=request.owner,
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
        return plan
    targets = [instances[i] for i in request.instances if i in instances]
    missing = sorted(set(request.instances) - set(instances))
    if missing:
        raise PlanError(f"unknown instance(s) {missing}")
    if not targets:
        if kind in (OperationKind.POWER_OFF, OperationKind.POWER_ON):
            if len(request.hosts) != 1:
                raise PlanError(f"{kind.value} needs exactly one host")
            action = "power_off" if kind is OperationKind.POWER_OFF else "power_on"
            state = (
                "off" if kind is OperationKind.POWER_OFF else request.params.get("state", "ready")
            )
            return Plan(
                steps=[
                    Step(
                        action=action,
                        stage=LifecycleStage.UPDATE,
                        args={"host": request.hosts[0]},
                        effect={"host_state": state, "host": request.hosts[0]},
                    )
                ]
            )
        raise PlanError(f"{kind.value} needs at least one instance")
    steps: list[Step] = []
    if kind in (OperationKind.TERMINATE, OperationKind.SCALE_IN, OperationKind.REVERT):
        for inst in targets:
            steps += _undeploy(inst.id, inst.host, inst.function)
            steps[-1] = steps[-1].model_copy(update={"effect": {"terminate": inst.id}})
        return Plan(steps=steps)
    if kind is OperationKind.UPDATE:
        for inst in targets:
            steps.append(
                Step(
                    action="update_function",
                    stage=LifecycleStage.UPDATE,
                    args={
                        "instance": inst.id,
                        "host": inst.host,
                        "function": inst.function,
                        "params": {**inst.params, **request.params},
                        "previous": inst.params,
                    },
                    effect={"instance": inst.id, "params": {**inst.params, **request.params}},
                )
            )
        return Plan(steps=steps)
    if kind in (OperationKind.MIGRATE, OperationKind.HEAL):
        if len(targets) != 1 or len(request.hosts) != 1:
            raise PlanError(f"{kind.value} moves exactly one instance to exactly one host")
        inst, target = targets[0], request.hosts[0]
        if target == inst.host:
            # Healing in place: restart the function.
            return Plan(
                steps=[
                    Step(
                        action="stop_function",
                        stage=LifecycleStage.HEAL,
                        args={"instance": inst.id, "host": inst.host, "function": inst.function},
                        best_effort=True,
                    ),
                    Step(
                        action="start_function",
                        stage=LifecycleStage.HEAL,
                        args={
                            "instance": inst.id,
                            "host": inst.host,
                            "function": inst.function,
                            "params": inst.params,
                        },
                    ),
                ]
            )
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
        steps += [s.model_copy(update={"stage": LifecycleStage.MONITORING}) for s in cleanup]
        return Plan(steps=steps)
    raise PlanError(f"operation kind {kind.value} is not supported for instances")
