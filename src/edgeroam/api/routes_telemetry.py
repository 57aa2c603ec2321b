"""Telemetry in (batched, all-or-nothing) and out (the stored history).

This is the hottest path of the API — every agent reports here — so the body is parsed by
pydantic-core straight from bytes in one call, authorisation is a set look-up per reading,
and the store writes a whole batch in one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from edgeroam.api.auth import Principal as Caller
from edgeroam.api.auth import Reader, RuntimeDep, TelemetrySender, get_runtime
from edgeroam.api.errors import unprocessable
from edgeroam.api.schemas import MAX_READINGS_PER_REQUEST, Accepted, TelemetryBatch
from edgeroam.config import Role
from edgeroam.controller import Controller
from edgeroam.model import Reading
from edgeroam.runtime import Runtime
from edgeroam.telemetry.facility import PREFIX as FACILITY_PREFIX
from edgeroam.telemetry.facility import reading_problem

router = APIRouter(prefix="/telemetry", tags=["telemetry"])

#: Far above what 10,000 readings need (~1.5 MB), low enough to refuse a flood early.
MAX_BODY_BYTES = 8 * 1024 * 1024

_BATCH = TypeAdapter(TelemetryBatch)


def _too_large(message: str) -> HTTPException:
    return HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, message)


def _batch_schema() -> dict[str, Any]:
    schema = TelemetryBatch.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    return schema


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large(f"request body of {declared} bytes exceeds {MAX_BODY_BYTES} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large(f"request body exceeds {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_batch(body: bytes) -> list[Reading]:
    """Validate a whole batch; 413 when too many readings, 422 naming every bad field."""
    try:
        readings = _BATCH.validate_json(body).readings
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        if any(e["type"] == "too_long" and tuple(e["loc"]) == ("readings",) for e in errors):
            raise _too_large(
                f"at most {MAX_READINGS_PER_REQUEST} readings per request; split the batch"
            ) from exc
        detail: list[dict[str, Any]] = []
        for e in errors:
            loc = list(e["loc"])
            item: dict[str, Any] = {"loc": ["body", *loc], "msg": e["msg"], "type": e["type"]}
            if len(loc) >= 2 and loc[0] == "readings" and isinstance(loc[1], int):
                item["index"] = loc[1]
                item["field"] = ".".join(str(p) for p in loc[2:]) or None
            detail.append(item)
        raise unprocessable(detail) from exc
    # Facility readings have units and code tables of their own (power, water, codes…).
    facility = [
        {"loc": ["body", "readings", i], "index": i, "msg": problem, "type": "facility_reading"}
        for i, r in enumerate(readings)
        if r.metric.startswith(FACILITY_PREFIX) and (problem := reading_problem(r)) is not None
    ]
    if facility:
        raise unprocessable(facility)
    return readings


def agent_sources(controller: Controller, host: str) -> set[str]:
    """What an agent may speak for: its host, the instances on it and the links touching it."""
    inv = controller.inventory
    allowed = {f"host:{host}"}
    allowed.update(f"instance:{name}" for name in inv.instances_by_host.get(host, ()))
    allowed.update(f"link:{lk.id}" for lk in inv.links.values() if host in (lk.a, lk.b))
    return allowed


def ingest(runtime: Runtime, caller: Caller, body: bytes) -> Accepted:
    readings = parse_batch(body)
    controller = runtime.controller
    with controller.lock:
        if caller.role is Role.AGENT:
            host = caller.host or ""
            allowed = agent_sources(controller, host)
            # A server breaks its band down per CPE as host:<server>/<cpe> (offload policy).
            own_pairs = f"host:{host}/"
            for index, reading in enumerate(readings):
                if reading.source not in allowed and not (
                    reading.source.startswith(own_pairs)
                    and reading.source[len(own_pairs) :] in controller.inventory.hosts
                ):
                    raise HTTPException(
                        status.HTTP_403_FORBIDDEN,
                        f"reading {index} has source {reading.source!r}: the agent of host "
                        f"{host!r} may only report host:{host}, host:{host}/<host>, its "
                        "instances and its links; "
                        "nothing of this batch was stored",
                    )
        accepted = controller.ingest(readings)
    return Accepted(accepted=accepted)


@router.post(
    "",
    response_model=Accepted,
    summary=f"Report up to {MAX_READINGS_PER_REQUEST} readings (all stored or none)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _batch_schema()}},
        }
    },
    responses={
        403: {"description": "An agent reported a source that is not its host's"},
        413: {"description": "Too many readings or too large a body"},
    },
)
async def post_telemetry(request: Request, caller: TelemetrySender) -> Accepted:
    # async only to read the raw body; the parsing and the database write go to a thread.
    body = await _read_body(request)
    return await run_in_threadpool(ingest, get_runtime(request), caller, body)


@router.get("", response_model=list[Reading])
def get_telemetry(
    runtime: RuntimeDep,
    _: Reader,
    source: str | None = None,
    metric: str | None = None,
    since: float | None = None,
    until: float | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> list[Reading]:
    """Stored readings, oldest first."""
    store = runtime.controller.store
    if store is None:
        return []
    return store.readings(source=source, metric=metric, since=since, until=until, limit=limit)
