"""Event queries and the server-sent-events stream."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from edgeroam.model import EventCategory, Severity
from edgeroam.runtime import Runtime
from tests.api.support import TestClient


def emit(runtime: Runtime, n: int, category: EventCategory = EventCategory.ALARM) -> None:
    log = runtime.controller.events
    for i in range(n):
        log.emit(
            runtime.now(),
            category,
            f"test event {i}",
            tags=("test", f"n{i}"),
            severity=Severity.WARNING if i % 2 else Severity.INFO,
            data={"i": i},
        )
    log.flush()


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Events of an SSE body as {'id', 'event', 'data'}; comments are dropped."""
    found = []
    for block in text.split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            if line.startswith(":") or ": " not in line:
                continue
            name, value = line.split(": ", 1)
            fields[name] = value
        if fields:
            fields["data"] = json.loads(fields["data"])
            found.append(fields)
    return found


def test_filters(world: TestClient, runtime: Runtime) -> None:
    emit(runtime, 4)
    alarms = world.get("/api/v1/events", params={"category": "alarm"}).json()
    assert [e["message"] for e in alarms] == [f"test event {i}" for i in range(4)]
    assert [e["data"]["i"] for e in world.get("/api/v1/events?tag=n2").json()] == [2]
    assert world.get("/api/v1/events", params=[("tag", "test"), ("tag", "n1")]).json()[0][
        "data"
    ] == {"i": 1}
    warnings = world.get("/api/v1/events", params={"category": "alarm", "severity": "warning"})
    assert [e["data"]["i"] for e in warnings.json()] == [1, 3]
    after = world.get("/api/v1/events", params={"after_id": alarms[1]["id"], "category": "alarm"})
    assert [e["data"]["i"] for e in after.json()] == [2, 3]
    newest = world.get("/api/v1/events", params={"limit": 2, "order": "desc"}).json()
    assert [e["data"]["i"] for e in newest] == [3, 2]
    now = runtime.now()
    assert len(world.get("/api/v1/events", params={"since": now, "category": "alarm"}).json()) == 4
    assert world.get("/api/v1/events", params={"until": now - 1, "category": "alarm"}).json() == []
    assert world.get("/api/v1/events?category=gossip").status_code == 422


def test_stream_replays_stored_events_then_stops_at_the_limit(
    world: TestClient, runtime: Runtime
) -> None:
    emit(runtime, 5)
    first = world.get("/api/v1/events", params={"category": "alarm"}).json()[0]["id"]
    with world.stream(
        "GET",
        "/api/v1/events/stream",
        params={"category": "alarm", "after_id": first, "limit": 3},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        body = response.read().decode()
    events = parse_sse(body)
    assert [int(e["id"]) for e in events] == [first + 1, first + 2, first + 3]
    assert {e["event"] for e in events} == {"alarm"}
    assert [e["data"]["data"]["i"] for e in events] == [1, 2, 3]
    assert events[0]["data"]["message"] == "test event 1"
    assert body.startswith(f"id: {first + 1}\nevent: alarm\ndata: {{")
    # The subscription was dropped when the stream ended.
    assert not runtime.controller.events._subscribers


def test_stream_resumes_from_last_event_id(world: TestClient, runtime: Runtime) -> None:
    emit(runtime, 3)
    ids = [e["id"] for e in world.get("/api/v1/events", params={"category": "alarm"}).json()]
    response = world.get(
        "/api/v1/events/stream",
        params={"limit": 1, "category": "alarm", "after_id": 0},
        headers={"Last-Event-ID": str(ids[1])},
    )
    [event] = parse_sse(response.text)
    assert int(event["id"]) == ids[2]


def test_stream_delivers_live_events(world: TestClient, runtime: Runtime) -> None:
    # Emitted shortly after the stream has started (and subscribed), then streamed live.
    timer = threading.Timer(0.3, emit, args=(runtime, 2, EventCategory.OPERATION))
    timer.start()
    try:
        response = world.get("/api/v1/events/stream", params={"category": "operation", "limit": 2})
    finally:
        timer.join()
    assert response.text.startswith(": connected\n\n")
    events = parse_sse(response.text)
    assert [e["data"]["message"] for e in events] == ["test event 0", "test event 1"]
    assert [e["event"] for e in events] == ["operation", "operation"]


def test_stream_sends_keepalive_comments(
    world: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgeroam.api import routes_events

    monkeypatch.setattr(routes_events, "KEEPALIVE_S", 0.05)
    timer = threading.Timer(0.5, emit, args=(runtime, 1))
    timer.start()
    try:
        response = world.get("/api/v1/events/stream", params={"category": "alarm", "limit": 1})
    finally:
        timer.join()
    assert ": keep-alive\n\n" in response.text
    assert len(parse_sse(response.text)) == 1
