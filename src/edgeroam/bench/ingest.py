"""Benchmark of batched telemetry ingestion over HTTP on loopback into SQLite.

Measures the whole path an agent's report takes: HTTP, authentication, parsing and
validation, the agent/ownership checks, one database transaction per batch and the update of
the latest-value cache. Bodies are encoded before the clock starts, so the figure is the
server's, not the load generator's (both share the process, and so the GIL, though).
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from edgeroam.cli.serve import serve_app
from edgeroam.config import Role, Settings, TokenSpec
from edgeroam.runtime import Runtime

_METRICS = ("cpu", "memory", "rx_mbps", "tx_mbps", "heartbeat")


def make_bodies(readings: int, batch: int, start: float, sources: int = 1000) -> list[bytes]:
    """JSON bodies of `batch` readings each (the last may be shorter), `readings` in all."""
    bodies: list[bytes] = []
    for first in range(0, readings, batch):
        items = [
            {
                "source": f"host:bench-{i % sources}",
                "metric": _METRICS[(i // sources) % len(_METRICS)],
                "value": (i * 7919) % 1000 / 10.0,
                "timestamp": start + i * 1e-4,
            }
            for i in range(first, min(first + batch, readings))
        ]
        bodies.append(json.dumps({"readings": items}, separators=(",", ":")).encode())
    return bodies


def _post_all(url: str, token: str, bodies: list[bytes], errors: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    with httpx.Client(base_url=url, headers=headers, timeout=120.0) as client:
        client.get("/health")  # open the keep-alive connection before the clock matters
        for body in bodies:
            response = client.post("/api/v1/telemetry", content=body)
            if response.status_code != 200:
                errors.append(f"{response.status_code}: {response.text[:300]}")
                return


def run_ingest_bench(readings: int, batch: int, clients: int) -> dict[str, Any]:
    """Send `readings` readings in batches of `batch` from `clients` threads; check the store.

    Raises RuntimeError when a request fails or the store does not hold exactly the readings
    that were sent, so a fast but lossy path can never report a figure.
    """
    if readings < 1 or batch < 1 or clients < 1:
        raise ValueError("readings, batch and clients must be positive")
    token = secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="edgeroam-bench-") as tmp:
        settings = Settings(
            database_url=f"sqlite:///{Path(tmp) / 'bench.db'}",
            tokens=(TokenSpec(name="bench", token=token, role=Role.OPERATOR),),
        )
        runtime = Runtime.build(settings)
        store = runtime.controller.store
        assert store is not None
        ready = threading.Event()
        stop = threading.Event()
        found: list[str] = []

        def on_ready(url: str) -> None:
            found.append(url)
            ready.set()

        server = threading.Thread(
            target=serve_app,
            args=(runtime, "127.0.0.1", 0),
            kwargs={"on_ready": on_ready, "stop": stop},
            name="edgeroam-bench-server",
            daemon=True,
        )
        runtime.start()
        server.start()
        try:
            if not ready.wait(30):
                raise RuntimeError("the API server did not start within 30 s")
            # Recent timestamps: the loop prunes readings older than the retention period.
            bodies = make_bodies(readings, batch, start=time.time())
            shares = [bodies[i::clients] for i in range(clients)]
            errors: list[str] = []
            workers = [
                threading.Thread(target=_post_all, args=(found[0], token, share, errors))
                for share in shares
            ]
            began = time.perf_counter()
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            seconds = time.perf_counter() - began
        finally:
            stop.set()
            server.join(30)
            runtime.stop()
        try:
            if errors:
                raise RuntimeError(f"{len(errors)} request(s) failed, first: {errors[0]}")
            stored = store.count_readings()
            if stored != readings:
                raise RuntimeError(f"sent {readings} readings but the store holds {stored}")
        finally:
            store.close()
    return {
        "readings": readings,
        "seconds": round(seconds, 3),
        "readings_per_s": round(readings / seconds, 1),
        "batch": batch,
        "clients": clients,
        "database": "sqlite",
    }
