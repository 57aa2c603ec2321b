"""/api/v1/alarms: the facility policy's ETSI-style alarms, listed and acknowledged."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from edgeroam.api.routes_alarms import router
from edgeroam.model import (
    EventCategory,
    Host,
    HostKind,
    Reading,
    Resources,
    Severity,
    Site,
    SiteKind,
)
from edgeroam.runtime import Runtime
from tests.api.support import OPERATOR, VIEWER, FakeClock, TestClient, bearer, built_runtime


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[tuple[Runtime, TestClient, FakeClock]]:
    clock = FakeClock()
    with built_runtime(tmp_path, clock) as runtime:
        app = FastAPI()
        app.state.runtime = runtime
        app.include_router(router, prefix="/api/v1")
        c = runtime.controller
        c.put("site", Site(id="dc", kind=SiteKind.DATACENTER), clock.now)
        cap = Resources(vcpu=8, memory_mb=8192)
        for host in ("h1", "h2"):
            c.put("host", Host(id=host, kind=HostKind.SERVER, site="dc", capacity=cap), clock.now)
        with TestClient(app) as client:
            yield runtime, client, clock


def heat(runtime: Runtime, clock: FakeClock, value: float) -> None:
    runtime.controller.ingest(
        [
            Reading(
                source="host:h1", metric="facility.temperature_c", value=value, timestamp=clock.now
            )
        ]
    )
    runtime.controller.tick(clock.now)


def test_alarms_are_listed_filtered_and_acknowledged(
    rig: tuple[Runtime, TestClient, FakeClock],
) -> None:
    runtime, client, clock = rig
    viewer, operator = bearer(VIEWER), bearer(OPERATOR)
    assert client.get("/api/v1/alarms", headers=viewer).json() == []
    assert client.get("/api/v1/alarms").status_code == 401

    heat(runtime, clock, 41.0)  # beyond the failed level: CRITICAL
    listed = client.get("/api/v1/alarms", headers=viewer).json()
    assert len(listed) == 1
    alarm = listed[0]
    assert alarm["managed_object"] == "host:h1"
    assert alarm["event_type"] == "ENVIRONMENTAL_ALARM"
    assert alarm["perceived_severity"] == "CRITICAL"
    assert alarm["ack_state"] == "UNACKNOWLEDGED"
    assert any("temperature_c=41" in d for d in alarm["fault_details"])
    assert client.get("/api/v1/alarms?severity=MAJOR", headers=viewer).json() == []
    one = client.get(f"/api/v1/alarms/{alarm['id']}", headers=viewer)
    assert one.status_code == 200 and one.json()["id"] == alarm["id"]
    assert client.get("/api/v1/alarms/alarm-424242", headers=viewer).status_code == 404

    # The raise is an ALARM event with the alarm's severity.
    raised = [e for e in runtime.controller.events.recent if "alarm_raised" in e.tags]
    assert raised and raised[0].category is EventCategory.ALARM
    assert raised[0].severity is Severity.CRITICAL

    body = {"ack_state": "ACKNOWLEDGED"}
    path = f"/api/v1/alarms/{alarm['id']}"
    assert client.patch(path, json=body, headers=viewer).status_code == 403
    assert client.patch(path, json={"ack_state": "NOPE"}, headers=operator).status_code == 422
    clock.advance(5)
    acked = client.patch(path, json=body, headers=operator)
    assert acked.status_code == 200, acked.text
    assert acked.json()["ack_state"] == "ACKNOWLEDGED"
    assert acked.json()["acknowledged_by"] == "ops"
    assert acked.json()["acknowledged_at"] == clock.now
    again = client.patch(path, json=body, headers=operator)
    assert again.status_code == 409 and "already acknowledged by ops" in again.json()["detail"]
    assert client.patch("/api/v1/alarms/nope", json=body, headers=operator).status_code == 404
    assert any("alarm_acknowledged" in e.tags for e in runtime.controller.events.recent)

    # The acknowledgement survives the next cycles; the alarm clears once the host is normal
    # for the hold time, and is then listed under state=cleared.
    heat(runtime, clock, 41.0)
    assert client.get(path, headers=viewer).json()["ack_state"] == "ACKNOWLEDGED"
    for _ in range(80):
        clock.advance(1)
        heat(runtime, clock, 24.0)
    assert client.get("/api/v1/alarms", headers=viewer).json() == []
    cleared = client.get("/api/v1/alarms?state=cleared", headers=viewer).json()
    assert [a["id"] for a in cleared] == [alarm["id"]]
    assert cleared[0]["perceived_severity"] == "CLEARED"
    assert cleared[0]["cleared_at"] is not None
