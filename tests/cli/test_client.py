"""`serve_app` for real on loopback, and the `edgeroam` client commands against it."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from edgeroam.cli.app import app
from edgeroam.cli.client import DEFAULT_URL  # importing registers the client commands
from edgeroam.cli.serve import serve_app
from edgeroam.model import EventCategory
from edgeroam.runtime import Runtime
from tests.api.support import AGENT, OPERATOR, VIEWER, bearer, built_runtime, load_world

runner = CliRunner()


@dataclass
class Live:
    url: str
    runtime: Runtime


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """A runtime served by uvicorn on a free loopback port, in a background thread."""
    with built_runtime(tmp_path, clock=time.time) as runtime:
        ready = threading.Event()
        stop = threading.Event()
        urls: list[str] = []

        def on_ready(url: str) -> None:
            urls.append(url)
            ready.set()

        thread = threading.Thread(
            target=serve_app,
            args=(runtime, "127.0.0.1", 0),
            kwargs={"on_ready": on_ready, "stop": stop},
            daemon=True,
        )
        thread.start()
        try:
            assert ready.wait(20), "server did not start"
            with httpx.Client(base_url=urls[0]) as client:
                load_world(client)
            yield Live(urls[0], runtime)
        finally:
            stop.set()
            thread.join(20)
        assert not thread.is_alive()


def test_default_url_is_loopback() -> None:
    assert DEFAULT_URL == "http://127.0.0.1:8080"


def test_served_over_loopback_on_a_free_port(live: Live) -> None:
    assert live.url.startswith("http://127.0.0.1:")
    assert int(live.url.rsplit(":", 1)[1]) > 0
    with httpx.Client(base_url=live.url) as client:
        assert client.get("/health").json()["code"] == 5010
        assert client.get("/api/v1/hosts").status_code == 401
        hosts = client.get("/api/v1/hosts", headers=bearer(VIEWER)).json()
        assert [h["id"] for h in hosts] == ["cpe-1", "h1", "h2"]


def test_hosts_json(live: Live) -> None:
    result = runner.invoke(app, ["hosts", "--json", "--url", live.url, "--token", VIEWER])
    assert result.exit_code == 0, result.output
    assert [h["id"] for h in json.loads(result.stdout)] == ["cpe-1", "h1", "h2"]
    filtered = runner.invoke(
        app,
        ["hosts", "--json", "--kind", "cpe"],
        env={"EDGEROAM_URL": live.url, "EDGEROAM_TOKEN": VIEWER},
    )
    assert [h["id"] for h in json.loads(filtered.stdout)] == ["cpe-1"]


def test_tables(live: Live) -> None:
    with httpx.Client(base_url=live.url, headers=bearer(OPERATOR)) as client:
        op = client.post("/api/v1/instances", json={"function": "fw", "host": "h2"}).json()
    name = op["created_instances"][0]
    env = {"EDGEROAM_URL": live.url, "EDGEROAM_TOKEN": VIEWER, "COLUMNS": "200"}
    hosts = runner.invoke(app, ["hosts", "--site", "s1"], env=env)
    assert hosts.exit_code == 0, hosts.output
    assert "h1" in hosts.stdout and "h2" in hosts.stdout and "cpe-1" not in hosts.stdout
    instances = runner.invoke(app, ["instances", "--host", "h2"], env=env)
    assert name in instances.stdout and "monitoring" in instances.stdout
    operations = runner.invoke(app, ["operations", "--state", "COMPLETED"], env=env)
    assert op["id"] in operations.stdout and "instantiate" in operations.stdout
    as_json = runner.invoke(app, ["operations", "--json", "--kind", "migrate"], env=env)
    assert json.loads(as_json.stdout) == []
    events = runner.invoke(app, ["events", "--category", "operation", "--limit", "3"], env=env)
    assert events.exit_code == 0
    assert len(events.stdout.strip().splitlines()) == 3
    assert "COMPLETED" in events.stdout


def test_errors_are_clear_and_non_zero(live: Live) -> None:
    missing = runner.invoke(app, ["hosts", "--url", live.url], env={"EDGEROAM_TOKEN": ""})
    assert missing.exit_code == 1
    assert "401" in missing.stderr and "authentication required" in missing.stderr
    agent = runner.invoke(app, ["instances", "--url", live.url, "--token", AGENT])
    assert agent.exit_code == 1
    assert "needs role viewer or operator" in agent.stderr
    bad = runner.invoke(app, ["hosts", "--url", live.url, "--token", VIEWER, "--state", "x"])
    assert bad.exit_code == 1
    assert "query.state" in bad.stderr


def test_unreachable_controller(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = runner.invoke(app, ["operations", "--url", url, "--token", VIEWER])
    assert result.exit_code == 3
    assert f"cannot reach edgeroam at {url}" in result.stderr


def test_event_stream_over_a_real_socket_ends_on_disconnect(live: Live) -> None:
    log = live.runtime.controller.events
    with (
        httpx.Client(base_url=live.url, headers=bearer(VIEWER), timeout=10) as client,
        client.stream("GET", "/api/v1/events/stream", params={"category": "alarm"}) as response,
    ):
        assert response.status_code == 200
        lines = (line for line in response.iter_lines() if line)
        assert next(lines) == ": connected"
        log.emit(time.time(), EventCategory.ALARM, "smoke detected", tags=("room-1",))
        log.flush()
        received = []
        for line in lines:
            received.append(line)
            if line.startswith("data: "):
                break
        assert received[0].startswith("id: ")
        assert received[1] == "event: alarm"
        assert json.loads(received[2].removeprefix("data: "))["message"] == "smoke detected"
    # The client went away: the server notices and drops the subscription.
    deadline = time.monotonic() + 5
    while log._subscribers and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not log._subscribers


def test_serve_app_stops_after_duration(tmp_path: Path) -> None:
    with built_runtime(tmp_path) as runtime:
        urls: list[str] = []
        began = time.monotonic()
        serve_app(runtime, "127.0.0.1", 0, duration=0.5, on_ready=urls.append)
        assert urls and urls[0].startswith("http://127.0.0.1:")
        assert 0.4 < time.monotonic() - began < 10
