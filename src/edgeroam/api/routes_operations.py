"""Operations: listing and the operator's three answers to a FAILED_TEMP operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from edgeroam.api.auth import RuntimeDep, standard_access
from edgeroam.api.errors import not_found, operation_errors
from edgeroam.api.routes_inventory import Offset
from edgeroam.model import Operation, OperationKind, OperationState
from edgeroam.runtime import Runtime

router = APIRouter(
    prefix="/operations", tags=["operations"], dependencies=[Depends(standard_access)]
)


@router.get("", response_model=list[Operation])
def list_operations(
    runtime: RuntimeDep,
    state: Annotated[list[OperationState] | None, Query(description="Repeatable.")] = None,
    kind: OperationKind | None = None,
    subject: str | None = None,
    since: Annotated[float | None, Query(description="Updated at or after (seconds).")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    offset: Offset = 0,
) -> list[Operation]:
    """Oldest first. The store has every operation; in-flight ones are taken from the engine,
    which may be a step ahead of what the last write recorded."""
    controller = runtime.controller
    states = tuple(state or ())

    def wanted(op: Operation) -> bool:
        return (
            (not states or op.state in states)
            and (kind is None or op.kind is kind)
            and (subject is None or op.subject == subject)
            and (since is None or op.updated_at >= since)
        )

    with controller.lock:
        active = dict(controller.engine.active)
        if controller.store is None:
            pool = {op.id: op for op in controller.engine.finished}
            pool.update(active)
            ops = sorted(
                (op for op in pool.values() if wanted(op)), key=lambda o: (o.created_at, o.id)
            )
            return ops[offset : offset + limit]
        stored = controller.store.operations(
            states=states,
            kind=kind.value if kind is not None else None,
            subject=subject,
            since=since,
            limit=limit,
            offset=offset,
        )
    return [active.get(op.id, op) for op in stored]


@router.get("/{op_id}", response_model=Operation)
def get_operation(op_id: str, runtime: RuntimeDep) -> Operation:
    with runtime.controller.lock:
        op = runtime.controller.operation(op_id)
    if op is None:
        raise not_found(f"no operation {op_id!r}")
    return op


def _act(runtime: Runtime, op_id: str, action: Callable[[str, float], Operation]) -> Operation:
    controller = runtime.controller
    with controller.lock:
        if controller.operation(op_id) is None:
            raise not_found(f"no operation {op_id!r}")
        now = runtime.now()
        with operation_errors():
            op = action(op_id, now)
        # Start the work now rather than at the next tick, as controller.request does.
        controller.engine.advance(now)
        controller.events.flush()
        return controller.operation(op.id) or op


_ACTION: dict[str, Any] = {"status_code": status.HTTP_202_ACCEPTED, "response_model": Operation}


@router.post("/{op_id}/retry", summary="Retry a FAILED_TEMP operation", **_ACTION)
def retry_operation(op_id: str, runtime: RuntimeDep) -> Operation:
    return _act(runtime, op_id, runtime.controller.engine.retry)


@router.post("/{op_id}/rollback", summary="Undo a FAILED_TEMP operation's steps", **_ACTION)
def rollback_operation(op_id: str, runtime: RuntimeDep) -> Operation:
    return _act(runtime, op_id, runtime.controller.engine.rollback)


@router.post("/{op_id}/fail", summary="Give up on a FAILED_TEMP operation (FAILED)", **_ACTION)
def fail_operation(op_id: str, runtime: RuntimeDep) -> Operation:
    return _act(runtime, op_id, runtime.controller.engine.fail)
