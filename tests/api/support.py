"""Helpers shared by the API and CLI-client tests: a runtime, its tokens and a small world."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from edgeroam.config import DriverSettings, Role, Settings, TokenSpec
from edgeroam.lifecycle import LifecycleConfig
from edgeroam.runtime import Runtime

with warnings.catch_warnings():
    # Starlette nags about httpx in its test client; the client works and is what we test with.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

VIEWER = "viewer-token-0123456789"
OPERATOR = "operator-token-0123456789"
AGENT = "agent-token-h1-0123456789"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class FakeClock:
    """A clock the test moves by hand, so backoffs and timestamps are predictable."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path / 't.db'}",
        "tokens": (
            TokenSpec(name="view", token=VIEWER, role=Role.VIEWER),
            TokenSpec(name="ops", token=OPERATOR, role=Role.OPERATOR),
            TokenSpec(name="agent-h1", token=AGENT, role=Role.AGENT, host="h1"),
        ),
        "lifecycle": LifecycleConfig(max_attempts=2, backoff_base_s=0.5, jitter=0.0),
        "driver": DriverSettings(latency_s=0.0),
        "tick_s": 0.05,
    }
    values.update(overrides)
    return Settings(**values)


@contextmanager
def built_runtime(tmp_path: Path, clock: Any = None, **overrides: Any) -> Iterator[Runtime]:
    runtime = Runtime.build(make_settings(tmp_path, **overrides), clock=clock or FakeClock())
    try:
        yield runtime
    finally:
        runtime.stop()
        if runtime.controller.store is not None:
            runtime.controller.store.close()


WORLD: list[tuple[str, dict[str, Any]]] = [
    ("sites", {"id": "s1", "kind": "edge", "region": "north"}),
    ("sites", {"id": "home-1", "kind": "home"}),
    ("customers", {"id": "c1", "name": "Carol"}),
    ("flavors", {"id": "small", "vcpu": 1, "memory_mb": 512, "bandwidth_mbps": 10}),
    (
        "functions",
        {
            "name": "fw",
            "flavor": "small",
            "parameters": {
                "mode": {"type": "string", "default": "open", "choices": ["open", "strict"]},
                "port": {"type": "port", "default": 8443},
            },
        },
    ),
    (
        "hosts",
        {
            "id": "h1",
            "kind": "server",
            "site": "s1",
            "capacity": {"vcpu": 8, "memory_mb": 8192, "bandwidth_mbps": 1000},
        },
    ),
    (
        "hosts",
        {
            "id": "h2",
            "kind": "server",
            "site": "s1",
            "capacity": {"vcpu": 8, "memory_mb": 8192, "bandwidth_mbps": 1000},
        },
    ),
    (
        "hosts",
        {
            "id": "cpe-1",
            "kind": "cpe",
            "site": "home-1",
            "owner": "c1",
            "capacity": {"vcpu": 2, "memory_mb": 1024, "bandwidth_mbps": 100},
        },
    ),
    ("links", {"id": "l1", "a": "h1", "b": "s1", "capacity_mbps": 1000}),
    ("links", {"id": "l2", "a": "h2", "b": "s1", "capacity_mbps": 1000}),
]


def key_of(plural: str, body: dict[str, Any]) -> str:
    return str(body["name"] if plural == "functions" else body["id"])


def load_world(client: Any, token: str = OPERATOR) -> None:
    """PUT the small world through the API, as an operator would."""
    for plural, body in WORLD:
        response = client.put(
            f"/api/v1/{plural}/{key_of(plural, body)}", json=body, headers=bearer(token)
        )
        assert response.status_code in (200, 201), response.text


__all__ = [
    "AGENT",
    "OPERATOR",
    "VIEWER",
    "WORLD",
    "FakeClock",
    "TestClient",
    "bearer",
    "built_runtime",
    "load_world",
    "make_settings",
]
