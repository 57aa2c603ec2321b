"""Managed groups and operator rules (seed 002): inventory, live status, rules reload.

* ``/groups`` — create, read, replace and delete managed groups, like the other inventory kinds;
* ``/groups/{id}/status`` — the group as the elastic policy sees it right now: sizes, load,
  failed members, operations in flight;
* ``/rules`` — the rules in force, runs in progress and the last finished ones;
* ``POST /rules/reload`` — re-read the rules file (or switch to another), validated in full
  before it replaces anything: an invalid file answers 422 and changes nothing.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Body, Depends

from edgeroam.api.auth import RuntimeDep, standard_access
from edgeroam.api.errors import not_found, unprocessable
from edgeroam.api.routes_inventory import add_kind
from edgeroam.model import Group
from edgeroam.policies.groupstate import activity, failed_members, group_index, measure
from edgeroam.policies.registry import PolicyConfigError
from edgeroam.rules.policy import POLICY, RulesConfig, RulesMemory
from edgeroam.rules.reload import reload_rules

router = APIRouter(dependencies=[Depends(standard_access)])
add_kind(router, "group", "groups", Group)


def _number(value: float) -> float | None:
    return round(float(value), 6) if math.isfinite(float(value)) else None


@router.get("/groups/{key}/status", tags=["groups"])
def group_status(key: str, runtime: RuntimeDep) -> dict[str, Any]:
    """Sizes, load and lifecycle activity of one group, computed as the policies do."""
    controller = runtime.controller
    snapshot = controller.snapshot(runtime.now())
    if key not in snapshot.groups:
        raise not_found(f"no group {key!r}")
    index = group_index(snapshot)
    act = activity(snapshot, index)
    failed = failed_members(snapshot, index, act.inst_last_touch, 180.0)
    loads = measure(snapshot, index, failed)
    row = index.pos[key]
    members = [
        {
            "id": name,
            "role": snapshot.instances[name].role.value,
            "stage": snapshot.instances[name].stage.value,
            "host": snapshot.instances[name].host,
            "failed": bool(failed[index.inst_pos[name]]),
            "busy": bool(act.inst_busy[index.inst_pos[name]]),
        }
        for name in index.members[row]
    ]
    return {
        "group": snapshot.groups[key].model_dump(mode="json"),
        "active": int(loads.active[row]),
        "serving": int(loads.serving[row]),
        "standby": int(loads.standby[row]),
        "load": _number(loads.load[row]),
        "operations_in_flight": sum(1 for s in act.own_spans.get(row, ()) if math.isinf(s[2])),
        "members": members,
    }


@router.get("/rules", tags=["rules"])
def list_rules(runtime: RuntimeDep) -> dict[str, Any]:
    controller = runtime.controller
    with controller.lock:
        if POLICY not in controller.registry:
            raise not_found("the rules policy is not registered")
        config = controller.registry.config(POLICY)
        memory = controller.memory.get(POLICY)
    assert isinstance(config, RulesConfig)
    runs = memory.runs.values() if isinstance(memory, RulesMemory) else ()
    finished = memory.finished if isinstance(memory, RulesMemory) else ()

    def run_view(run: Any) -> dict[str, Any]:
        return {
            "id": run.id,
            "rule": run.rule,
            "started_at": run.started_at,
            "status": run.status,
            "steps": {k: {"status": s.status, "message": s.message} for k, s in run.steps.items()},
        }

    return {
        "enabled": config.enabled,
        "file": config.file,
        "rules": [r.model_dump(mode="json", by_alias=True) for r in config.rules],
        "runs": [run_view(r) for r in runs],
        "finished": [run_view(r) for r in finished],
    }


@router.post("/rules/reload", tags=["rules"])
def reload(
    runtime: RuntimeDep,
    body: dict[str, Any] | None = Body(
        default=None, examples=[{"file": "/etc/edgeroam/rules.yaml"}]
    ),
) -> dict[str, Any]:
    """Re-read the rules file; ``{"file": ...}`` switches to another file first (operators
    only, like every write of a router guarded by `standard_access`)."""
    file = (body or {}).get("file")
    if file is not None and not isinstance(file, str):
        raise unprocessable([{"loc": ["body", "file"], "msg": "expected a path", "type": "type"}])
    try:
        config = reload_rules(runtime.controller, file)
    except PolicyConfigError as exc:
        raise unprocessable(str(exc)) from exc
    return {"file": config.file, "rules": [r.name for r in config.rules]}
