"""The event log: filtered queries and a live server-sent-events stream.

The stream subscribes before it replays, then skips live events it has already replayed, so
a client resuming with Last-Event-ID sees every stored event exactly once and misses none
that happen while the replay runs.
"""

from __future__ import annotations

import asyncio
import queue
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from edgeroam.api.auth import RuntimeDep, standard_access
from edgeroam.controller import Controller
from edgeroam.model import Event, EventCategory, Severity

router = APIRouter(prefix="/events", tags=["events"], dependencies=[Depends(standard_access)])

#: Seconds between keep-alive comments; proxies close idle connections otherwise.
KEEPALIVE_S = 15.0
#: How often the stream looks at its subscription queue (the queue is a thread one).
POLL_S = 0.1
_REPLAY_PAGE = 500


@dataclass(frozen=True)
class EventFilter:
    category: EventCategory | None = None
    tags: tuple[str, ...] = ()
    severity: Severity | None = None
    since: float | None = None
    until: float | None = None

    def matches(self, event: Event) -> bool:
        return (
            (self.category is None or event.category is self.category)
            and all(t in event.tags for t in self.tags)
            and (self.severity is None or event.severity is self.severity)
            and (self.since is None or event.time >= self.since)
            and (self.until is None or event.time <= self.until)
        )


def query_events(
    controller: Controller,
    where: EventFilter,
    *,
    after_id: int | None = None,
    limit: int = 100,
    newest_first: bool = False,
) -> list[Event]:
    store = controller.store
    if store is not None:
        return store.events(
            category=where.category.value if where.category else None,
            tags=where.tags,
            severity=where.severity.value if where.severity else None,
            since=where.since,
            until=where.until,
            after_id=after_id,
            limit=limit,
            newest_first=newest_first,
        )
    # No database: only the in-memory tail of the log is available.
    found = [
        e
        for e in list(controller.events.recent)
        if where.matches(e) and (after_id is None or (e.id or 0) > after_id)
    ]
    if newest_first:
        found.reverse()
    return found[:limit]


def _filter(
    category: EventCategory | None = None,
    tag: Annotated[list[str] | None, Query(description="Repeatable; all must match.")] = None,
    severity: Severity | None = None,
    since: float | None = None,
    until: float | None = None,
) -> EventFilter:
    return EventFilter(category, tuple(tag or ()), severity, since, until)


Filter = Annotated[EventFilter, Depends(_filter)]


@router.get("", response_model=list[Event])
def list_events(
    runtime: RuntimeDep,
    where: Filter,
    after_id: Annotated[int | None, Query(ge=0)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    order: Literal["asc", "desc"] = "asc",
) -> list[Event]:
    """Stored events by id; `order=desc` gives the newest first."""
    return query_events(
        runtime.controller, where, after_id=after_id, limit=limit, newest_first=order == "desc"
    )


def format_sse(event: Event) -> str:
    return f"id: {event.id}\nevent: {event.category.value}\ndata: {event.model_dump_json()}\n\n"


async def _stream(
    controller: Controller, where: EventFilter, resume_after: int | None, limit: int | None
) -> AsyncIterator[str]:
    log = controller.events
    subscription = log.subscribe()
    sent = 0
    last_id = -1
    try:
        if resume_after is not None:
            last_id = resume_after
            while True:
                batch = await run_in_threadpool(
                    query_events, controller, where, after_id=last_id, limit=_REPLAY_PAGE
                )
                for event in batch:
                    yield format_sse(event)
                    last_id = event.id or last_id
                    sent += 1
                    if limit is not None and sent >= limit:
                        return
                if len(batch) < _REPLAY_PAGE:
                    break
        else:
            yield ": connected\n\n"
        last_write = time.monotonic()
        while True:
            try:
                event = subscription.get_nowait()
            except queue.Empty:
                if time.monotonic() - last_write >= KEEPALIVE_S:
                    yield ": keep-alive\n\n"
                    last_write = time.monotonic()
                await asyncio.sleep(POLL_S)
                continue
            if event.id is not None and event.id <= last_id:
                continue  # already replayed from the store
            if not where.matches(event):
                continue
            yield format_sse(event)
            last_write = time.monotonic()
            last_id = event.id if event.id is not None else last_id
            sent += 1
            if limit is not None and sent >= limit:
                return
    finally:
        # Runs on normal end and when the server cancels the stream on client disconnect.
        log.unsubscribe(subscription)


@router.get(
    "/stream",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "Event stream"}},
)
def stream_events(
    runtime: RuntimeDep,
    where: Filter,
    after_id: Annotated[
        int | None, Query(ge=0, description="Replay stored events after this id first.")
    ] = None,
    limit: Annotated[int | None, Query(ge=1, description="Close after this many events.")] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    """Server-sent events: `id`, `event` (the category) and `data` (the event as JSON)."""
    resume = after_id
    if last_event_id is not None and last_event_id.strip().isdigit():
        resume = int(last_event_id.strip())
    return StreamingResponse(
        _stream(runtime.controller, where, resume, limit),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
