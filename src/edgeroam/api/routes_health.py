"""Health in seed 002's codes; open to all so load balancers and probes need no token."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from edgeroam.api.auth import RuntimeDep
from edgeroam.api.schemas import HealthView

router = APIRouter(tags=["health"])


def _health(runtime: RuntimeDep) -> JSONResponse:
    health = runtime.health()
    body = HealthView(code=health.code, message=health.message, details=health.details)
    # 2xxx: serving (perhaps degraded); 5xxx: not serving, take it out of rotation.
    return JSONResponse(body.model_dump(), status_code=200 if health.ok else 503)


_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"model": HealthView, "description": "Running (2000, or 2xxx when degraded)"},
    503: {"model": HealthView, "description": "Not serving (5xxx)"},
}

router.add_api_route("/health", _health, methods=["GET"], responses=_RESPONSES, name="health")
router.add_api_route(
    "/api/v1/health", _health, methods=["GET"], responses=_RESPONSES, name="health_v1"
)
