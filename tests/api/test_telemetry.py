"""Telemetry batches: all stored or none, precise errors, agents confined to their host."""

from __future__ import annotations

from typing import Any

import pytest

from edgeroam.api.schemas import MAX_READINGS_PER_REQUEST
from edgeroam.runtime import Runtime
from tests.api.support import AGENT, VIEWER, TestClient, bearer


def reading(
    source: str = "host:h1", metric: str = "cpu", value: float = 0.5, t: float = 1.0
) -> dict[str, Any]:
    return {"source": source, "metric": metric, "value": value, "timestamp": t}


def stored(runtime: Runtime) -> int:
    assert runtime.controller.store is not None
    return runtime.controller.store.count_readings()


def test_batch_is_stored_cached_and_readable(world: TestClient, runtime: Runtime) -> None:
    batch = [reading(t=float(i), value=i / 10) for i in range(5)]
    batch.append(reading("link:l1", "rx_mbps", 12.0, 3.0))
    response = world.post("/api/v1/telemetry", json={"readings": batch})
    assert response.status_code == 200
    assert response.json() == {"accepted": 6}
    assert stored(runtime) == 6
    assert runtime.controller.telemetry.received == 6
    series = world.get("/api/v1/telemetry", params={"source": "host:h1", "metric": "cpu"}).json()
    assert [r["value"] for r in series] == [0.0, 0.1, 0.2, 0.3, 0.4]
    window = world.get("/api/v1/telemetry", params={"since": 1.0, "until": 3.0, "limit": 10}).json()
    assert [r["timestamp"] for r in window] == [1.0, 2.0, 3.0, 3.0]
    assert len(world.get("/api/v1/telemetry", params={"limit": 2}).json()) == 2
    assert world.get("/api/v1/telemetry", headers=bearer(VIEWER)).status_code == 200


def test_one_bad_reading_rejects_the_whole_batch(world: TestClient, runtime: Runtime) -> None:
    batch: list[dict[str, Any]] = [reading(t=float(i)) for i in range(10)]
    batch[3] = reading(source="toaster:1")
    batch[7] = {**reading(), "timestamp": -5}
    del batch[8]["metric"]
    response = world.post("/api/v1/telemetry", json={"readings": batch})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {(d["index"], d["field"]) for d in detail} == {
        (3, "source"),
        (7, "timestamp"),
        (8, "metric"),
    }
    assert all(d["loc"][:3] == ["body", "readings", d["index"]] for d in detail)
    assert all(d["msg"] for d in detail)
    assert stored(runtime) == 0
    assert runtime.controller.telemetry.received == 0


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"readings": 5}', b'{"readings": [], "extra": 1}', b"[]"],
)
def test_malformed_bodies_are_422(world: TestClient, body: bytes) -> None:
    response = world.post(
        "/api/v1/telemetry", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert isinstance(response.json()["detail"], list)


def test_non_finite_values_are_refused(world: TestClient) -> None:
    body = b'{"readings": [{"source": "host:h1", "metric": "cpu", "value": NaN, "timestamp": 1}]}'
    response = world.post(
        "/api/v1/telemetry", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422


def test_too_many_readings_is_413(world: TestClient, runtime: Runtime) -> None:
    batch = [reading(t=float(i)) for i in range(MAX_READINGS_PER_REQUEST + 1)]
    response = world.post("/api/v1/telemetry", json={"readings": batch})
    assert response.status_code == 413
    assert f"at most {MAX_READINGS_PER_REQUEST} readings" in response.json()["detail"]
    assert stored(runtime) == 0
    exact = world.post("/api/v1/telemetry", json={"readings": batch[:-1]})
    assert exact.json() == {"accepted": MAX_READINGS_PER_REQUEST}


def test_huge_body_is_413_before_parsing(world: TestClient) -> None:
    response = world.post(
        "/api/v1/telemetry",
        content=b" " * (9 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_agent_reports_its_host_instances_and_links(world: TestClient, runtime: Runtime) -> None:
    op = world.post("/api/v1/instances", json={"function": "fw", "host": "h1"}).json()
    name = op["created_instances"][0]
    batch = [
        reading("host:h1", "heartbeat", 1.0),
        reading(f"instance:{name}", "cpu", 0.2),
        reading("link:l1", "rx_mbps", 5.0),
    ]
    response = world.post("/api/v1/telemetry", json={"readings": batch}, headers=bearer(AGENT))
    assert response.status_code == 200
    assert response.json() == {"accepted": 3}
    assert stored(runtime) == 3


@pytest.mark.parametrize("foreign", ["host:h2", "link:l2", "instance:fw.999", "site:s1"])
def test_agent_sending_another_hosts_readings_is_403(
    world: TestClient, runtime: Runtime, foreign: str
) -> None:
    batch = [reading("host:h1"), reading("host:h1", t=2.0), reading(foreign)]
    response = world.post("/api/v1/telemetry", json={"readings": batch}, headers=bearer(AGENT))
    assert response.status_code == 403
    detail = response.json()["detail"]
    assert f"reading 2 has source {foreign!r}" in detail
    assert "nothing of this batch was stored" in detail
    assert stored(runtime) == 0


def test_viewer_cannot_post_telemetry(world: TestClient) -> None:
    response = world.post(
        "/api/v1/telemetry", json={"readings": [reading()]}, headers=bearer(VIEWER)
    )
    assert response.status_code == 403
    assert "needs role operator or agent" in response.json()["detail"]


def test_unusable_facility_readings_are_refused_with_the_reason(
    world: TestClient, runtime: Runtime
) -> None:
    before = stored(runtime)
    batch = [
        reading("host:h1", "facility.battery_pct", 80.0),
        reading("host:h1", "facility.battery_pct", 180.0),  # beyond 100 %
        reading("link:l1", "facility.battery_pct", 50.0),  # facility readings are about places
    ]
    response = world.post("/api/v1/telemetry", json={"readings": batch})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert [d["index"] for d in detail] == [1, 2]
    assert "link:" in detail[1]["msg"]
    assert stored(runtime) == before
