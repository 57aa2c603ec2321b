"""/health codes and the Prometheus exposition."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from edgeroam.api import create_app
from edgeroam.runtime import Runtime
from tests.api.support import TestClient, built_runtime


def test_loop_not_running_is_5010_and_503(client: TestClient) -> None:
    for path in ("/health", "/api/v1/health"):
        response = client.get(path)
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == 5010
        assert "control loop not running" in body["message"]
        assert body["details"]["database"] == "reachable"


def test_running_loop_is_2000(tmp_path: Path) -> None:
    with built_runtime(tmp_path, clock=time.time) as runtime:
        runtime.start()
        with TestClient(create_app(runtime)) as client:
            deadline = time.monotonic() + 10
            while runtime.controller.ticks == 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            response = client.get("/health")
            assert response.status_code == 200
            assert response.json()["code"] == 2000
            assert response.json()["message"] == "Services running."


def test_no_tokens_is_degraded_2030_but_healthy(tmp_path: Path) -> None:
    with built_runtime(tmp_path, clock=time.time, tokens=()) as runtime:
        runtime.start()
        with TestClient(create_app(runtime)) as client:
            response = client.get("/health")
            assert response.status_code == 200
            assert response.json()["code"] == 2030


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_metrics(world: TestClient, runtime: Runtime) -> None:
    world.post("/api/v1/instances", json={"function": "fw", "host": "h1"})
    reading = {"source": "host:h1", "metric": "cpu", "value": 1.0, "timestamp": 1.0}
    world.post("/api/v1/telemetry", json={"readings": [reading, reading]})
    runtime.controller.tick(runtime.now())

    response = world.get("/metrics", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)
    assert samples[("edgeroam_hosts", (("state", "ready"),))] == 3
    assert samples[("edgeroam_hosts", (("state", "down"),))] == 0
    assert samples[("edgeroam_instances", (("stage", "monitoring"),))] == 1
    assert samples[("edgeroam_operations", (("state", "COMPLETED"),))] == 1
    assert samples[("edgeroam_operations_completed_total", ())] == 1
    assert samples[("edgeroam_readings_received_total", ())] == 2
    assert samples[("edgeroam_ticks_total", ())] == 1
    assert samples[("edgeroam_tick_duration_seconds", ())] > 0
    assert samples[("edgeroam_health_code", ())] == 5010
    inventory = samples[
        ("edgeroam_events_total", (("category", "inventory"), ("severity", "info")))
    ]
    assert inventory >= 10


def test_each_app_has_its_own_registry(runtime: Runtime) -> None:
    # Two apps in one process must not clash over metric names (the global registry would).
    first, second = create_app(runtime), create_app(runtime)
    assert first.state.metrics is not second.state.metrics
    with TestClient(first) as a, TestClient(second) as b:
        assert "edgeroam_hosts" in a.get("/metrics").text
        assert "edgeroam_hosts" in b.get("/metrics").text
