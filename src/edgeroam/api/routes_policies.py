"""Policies and the arbiter: read and change their configuration while the loop runs.

Changes are validated in full before anything is replaced, and made under the controller
lock, so a control cycle sees either the old configuration or the new one.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import ValidationError

from edgeroam.api.auth import RuntimeDep, standard_access
from edgeroam.api.errors import not_found, unprocessable, validation_detail
from edgeroam.api.schemas import DryRunBody, PolicyView
from edgeroam.arbiter import ArbiterConfig
from edgeroam.policies.registry import PolicyConfigError, PolicyRegistry
from edgeroam.runtime import Runtime

router = APIRouter(tags=["policies"], dependencies=[Depends(standard_access)])


def _view(registry: PolicyRegistry, name: str) -> PolicyView:
    config = registry.config(name)
    return PolicyView(
        name=name,
        enabled=config.enabled,
        precedence=config.precedence,
        dry_run=config.dry_run,
        config=config.model_dump(mode="json"),
    )


def _known(registry: PolicyRegistry, name: str) -> None:
    if name not in registry:
        raise not_found(f"no policy {name!r}; known: {sorted(registry)}")


def _configure(runtime: Runtime, name: str, data: dict[str, Any]) -> PolicyView:
    controller = runtime.controller
    with controller.lock:
        registry = controller.registry
        _known(registry, name)
        merged = {**registry.config(name).model_dump(), **data}
        try:
            # Validate here first for structured errors; configure() re-checks and applies.
            registry.policy(name).config_model.model_validate(merged)
            registry.configure(name, data)
        except ValidationError as exc:
            raise unprocessable(validation_detail(exc)) from exc
        except PolicyConfigError as exc:
            raise unprocessable(str(exc)) from exc
        return _view(registry, name)


@router.get("/policies", response_model=list[PolicyView])
def list_policies(runtime: RuntimeDep) -> list[PolicyView]:
    """In order of precedence (the order the arbiter honours)."""
    with runtime.controller.lock:
        registry = runtime.controller.registry
        return [_view(registry, name) for name in registry]


@router.get("/policies/{name}", response_model=PolicyView)
def get_policy(name: str, runtime: RuntimeDep) -> PolicyView:
    with runtime.controller.lock:
        registry = runtime.controller.registry
        _known(registry, name)
        return _view(registry, name)


@router.put(
    "/policies/{name}/config",
    response_model=PolicyView,
    summary="Change some settings of a policy (others keep their values)",
)
def put_policy_config(
    name: str, runtime: RuntimeDep, body: dict[str, Any] = Body(...)
) -> PolicyView:
    return _configure(runtime, name, body)


@router.post("/policies/{name}/enable", response_model=PolicyView)
def enable_policy(name: str, runtime: RuntimeDep) -> PolicyView:
    return _configure(runtime, name, {"enabled": True})


@router.post("/policies/{name}/disable", response_model=PolicyView)
def disable_policy(name: str, runtime: RuntimeDep) -> PolicyView:
    return _configure(runtime, name, {"enabled": False})


@router.post("/policies/{name}/dry-run", response_model=PolicyView)
def dry_run_policy(name: str, body: DryRunBody, runtime: RuntimeDep) -> PolicyView:
    return _configure(runtime, name, {"dry_run": body.dry_run})


@router.get("/arbiter", response_model=ArbiterConfig, tags=["arbiter"])
def get_arbiter(runtime: RuntimeDep) -> ArbiterConfig:
    return runtime.controller.arbiter


@router.put(
    "/arbiter",
    response_model=ArbiterConfig,
    tags=["arbiter"],
    summary="Change arbiter settings (global dry-run, rate limits); others keep their values",
)
def put_arbiter(runtime: RuntimeDep, body: dict[str, Any] = Body(...)) -> ArbiterConfig:
    controller = runtime.controller
    with controller.lock:
        try:
            updated = ArbiterConfig.model_validate({**controller.arbiter.model_dump(), **body})
        except ValidationError as exc:
            raise unprocessable(validation_detail(exc)) from exc
        controller.arbiter = updated
        return updated
