"""Instances: reads come from the inventory, changes are lifecycle operations (202).

Creating, moving, healing, re-parametrising or terminating an instance touches the world, so
each request becomes an operation the engine carries out; the answer is that operation, to be
followed at /operations/{id}. PUT records an instance that already runs (adoption) directly.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from edgeroam.api.auth import AnyRole, Principal, RuntimeDep, standard_access
from edgeroam.api.errors import conflict, not_found, operation_errors, unprocessable
from edgeroam.api.routes_inventory import Limit, Offset, page, store_object
from edgeroam.api.schemas import HealBody, InstanceCreate, MigrateBody, ParamsBody
from edgeroam.model import (
    Instance,
    LifecycleStage,
    Operation,
    OperationKind,
    OperationRequest,
    ParameterError,
    Reason,
    validate_params,
)
from edgeroam.runtime import Runtime

router = APIRouter(prefix="/instances", tags=["instances"], dependencies=[Depends(standard_access)])

_ACCEPTED: dict[str, Any] = {
    "status_code": status.HTTP_202_ACCEPTED,
    "response_model": Operation,
}


def _reason(principal: Principal, text: str | None, default: str) -> Reason:
    who = principal.name or principal.role.value
    return Reason(rule="api", message=text or f"{default} (requested by {who})")


def _submit(runtime: Runtime, request: OperationRequest, response: Response) -> Operation:
    with operation_errors():
        op = runtime.controller.request(request, runtime.now())
    response.headers["Location"] = f"/api/v1/operations/{op.id}"
    return op


def _instance(runtime: Runtime, instance_id: str) -> Instance:
    inst = runtime.controller.inventory.instances.get(instance_id)
    if inst is None:
        raise not_found(f"no instance {instance_id!r}")
    return inst


def _bad(field: str, message: str) -> Exception:
    return unprocessable([{"loc": ["body", field], "msg": message, "type": "value_error"}])


@router.get("", response_model=list[Instance])
def list_instances(
    runtime: RuntimeDep,
    response: Response,
    function: str | None = None,
    host: str | None = None,
    owner: str | None = None,
    stage: LifecycleStage | None = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[Instance]:
    inv = runtime.controller.inventory
    with runtime.controller.lock:
        if host is not None:
            candidates = inv.instances_on(host)
        else:
            candidates = [inv.instances[k] for k in sorted(inv.instances)]
    selected = [
        i
        for i in candidates
        if (function is None or i.function == function)
        and (owner is None or i.owner == owner)
        and (stage is None or i.stage is stage)
    ]
    return page(selected, limit, offset, response)


@router.get("/{instance_id}", response_model=Instance)
def get_instance(instance_id: str, runtime: RuntimeDep) -> Instance:
    with runtime.controller.lock:
        return _instance(runtime, instance_id)


@router.put(
    "/{instance_id}",
    response_model=Instance,
    summary="Record an instance that already runs (no operation)",
    responses={201: {"description": "Created"}},
)
def put_instance(instance_id: str, body: Instance, runtime: RuntimeDep, response: Response) -> Any:
    controller = runtime.controller
    with controller.lock:
        # Rewriting a record an operation is changing would undo the operation's bookkeeping.
        if instance_id in controller.engine.busy_names():
            raise conflict(f"instance {instance_id!r} has an operation in flight")
        return store_object(runtime, "instance", body, response, instance_id)


@router.post("", summary="Instantiate a function on a host", **_ACCEPTED)
def create_instance(
    body: InstanceCreate, runtime: RuntimeDep, principal: AnyRole, response: Response
) -> Operation:
    controller = runtime.controller
    inv = controller.inventory
    with controller.lock:
        function = inv.functions.get(body.function)
        if function is None:
            raise _bad("function", f"unknown function {body.function!r}")
        if body.host not in inv.hosts:
            raise _bad("host", f"unknown host {body.host!r}")
        if body.owner is not None and body.owner not in inv.customers:
            raise _bad("owner", f"unknown customer {body.owner!r}")
        try:
            params = validate_params(function, body.params)
        except ParameterError as exc:
            raise _bad("params", str(exc)) from exc
        # The plan reads role and scaling group from underscore parameters.
        params["_role"] = body.role.value
        if body.group is not None:
            params["_group"] = body.group
        request = OperationRequest(
            kind=OperationKind.INSTANTIATE,
            subject=body.group or body.function,
            function=body.function,
            owner=body.owner,
            hosts=(body.host,),
            params=params,
            reason=_reason(principal, body.reason, f"instantiate {body.function} on {body.host}"),
        )
        return _submit(runtime, request, response)


@router.delete("/{instance_id}", summary="Terminate an instance", **_ACCEPTED)
def terminate_instance(
    instance_id: str, runtime: RuntimeDep, principal: AnyRole, response: Response
) -> Operation:
    with runtime.controller.lock:
        inst = _instance(runtime, instance_id)
        request = OperationRequest(
            kind=OperationKind.TERMINATE,
            subject=inst.id,
            instances=(inst.id,),
            function=inst.function,
            owner=inst.owner,
            sources=(inst.host,),
            reason=_reason(principal, None, f"terminate {inst.id}"),
        )
        return _submit(runtime, request, response)


@router.post("/{instance_id}/migrate", summary="Move an instance to another host", **_ACCEPTED)
def migrate_instance(
    instance_id: str,
    body: MigrateBody,
    runtime: RuntimeDep,
    principal: AnyRole,
    response: Response,
) -> Operation:
    with runtime.controller.lock:
        inst = _instance(runtime, instance_id)
        if body.host not in runtime.controller.inventory.hosts:
            raise _bad("host", f"unknown host {body.host!r}")
        if body.host == inst.host:
            raise _bad("host", f"instance {inst.id!r} already runs on {body.host!r}")
        request = OperationRequest(
            kind=OperationKind.MIGRATE,
            subject=inst.id,
            instances=(inst.id,),
            function=inst.function,
            owner=inst.owner,
            hosts=(body.host,),
            sources=(inst.host,),
            reason=_reason(principal, body.reason, f"migrate {inst.id} to {body.host}"),
        )
        return _submit(runtime, request, response)


@router.post(
    "/{instance_id}/heal",
    summary="Re-create an instance (in place, or on the given host)",
    **_ACCEPTED,
)
def heal_instance(
    instance_id: str,
    runtime: RuntimeDep,
    principal: AnyRole,
    response: Response,
    body: Annotated[HealBody | None, Body()] = None,
) -> Operation:
    body = body or HealBody()
    with runtime.controller.lock:
        inst = _instance(runtime, instance_id)
        target = body.host or inst.host
        if target not in runtime.controller.inventory.hosts:
            raise _bad("host", f"unknown host {target!r}")
        request = OperationRequest(
            kind=OperationKind.HEAL,
            subject=inst.id,
            instances=(inst.id,),
            function=inst.function,
            owner=inst.owner,
            hosts=(target,),
            sources=(inst.host,) if target != inst.host else (),
            params=dict(inst.params),
            reason=_reason(principal, body.reason, f"heal {inst.id} on {target}"),
        )
        return _submit(runtime, request, response)


@router.patch("/{instance_id}/params", summary="Change an instance's parameters", **_ACCEPTED)
def update_params(
    instance_id: str,
    body: ParamsBody,
    runtime: RuntimeDep,
    principal: AnyRole,
    response: Response,
) -> Operation:
    controller = runtime.controller
    with controller.lock:
        inst = _instance(runtime, instance_id)
        function = controller.inventory.functions.get(inst.function)
        if function is None:
            raise not_found(f"instance {inst.id!r} refers to unknown function {inst.function!r}")
        try:
            validate_params(function, {**inst.params, **body.params})
        except ParameterError as exc:
            raise _bad("params", str(exc)) from exc
        request = OperationRequest(
            kind=OperationKind.UPDATE,
            subject=inst.id,
            instances=(inst.id,),
            function=inst.function,
            owner=inst.owner,
            hosts=(inst.host,),
            params=dict(body.params),
            reason=_reason(principal, body.reason, f"update parameters of {inst.id}"),
        )
        return _submit(runtime, request, response)
