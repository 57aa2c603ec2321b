"""The FastAPI application: one per Runtime, routes under /api/v1, probes at the top level.

Handlers are plain functions run in the server's thread pool; they reach the controller
through `app.state.runtime` and take `controller.lock` whenever they read or change more than
one structure, the same lock the control cycle holds.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from edgeroam import __version__
from edgeroam.api import (
    metrics,
    routes_agent_commands,
    routes_agents,
    routes_alarms,
    routes_elastic,
    routes_events,
    routes_gateways,
    routes_health,
    routes_instances,
    routes_inventory,
    routes_operations,
    routes_policies,
    routes_telemetry,
)
from edgeroam.api.auth import AnyRole
from edgeroam.api.errors import not_found
from edgeroam.runtime import Runtime
from edgeroam.store.database import StoreError

API_PREFIX = "/api/v1"

_DESCRIPTION = """\
Controller deciding where vCPE and edge network functions run.

Every `/api/v1` endpoint needs `Authorization: Bearer <token>`: *viewer* tokens read,
*operator* tokens read and write, *agent* tokens report telemetry for their own host and read
its commands. `/health`, `/metrics` and these docs are open.
"""


def _fallback() -> APIRouter:
    """Unknown /api/v1 paths: authenticate first, so nothing is learned without a token."""
    router = APIRouter()

    @router.api_route(
        "/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
        include_in_schema=False,
    )
    def unknown(path: str, _: AnyRole) -> None:
        raise not_found(f"no endpoint {API_PREFIX}/{path}")

    return router


def create_app(runtime: Runtime) -> FastAPI:
    app = FastAPI(
        title="edgeroam",
        version=__version__,
        description=_DESCRIPTION,
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.runtime = runtime
    app.state.metrics = metrics.build_registry(runtime)

    @app.exception_handler(StoreError)
    def _store_down(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.get("/", include_in_schema=False)
    def index() -> dict[str, Any]:
        return {"name": "edgeroam", "api": API_PREFIX, "docs": "/docs", "health": "/health"}

    app.include_router(routes_health.router)
    app.include_router(metrics.router)
    for module in (
        routes_inventory,
        routes_instances,
        routes_operations,
        routes_telemetry,
        routes_events,
        routes_policies,
        routes_agents,
        routes_agent_commands,
        routes_gateways,
        routes_alarms,
        routes_elastic,
    ):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(_fallback(), prefix=API_PREFIX)
    return app
