"""`edgeroam demo`: a controller + API on loopback over a simulated world, in real time.

The world is the demo world of `edgeroam.sim.worlds` (a vCPE data center, a cloud and 20
customer CPEs with functions and traffic). Traffic and scheduled failures are fed from the
simulation's models against the wall clock, so the API shows live telemetry, decisions and
operations while the same Controller code runs as it would against real hosts.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from pathlib import Path

import typer

from edgeroam.cli.app import app
from edgeroam.config import DriverSettings, Role, Settings, TokenSpec
from edgeroam.runtime import Runtime
from edgeroam.sim.runner import Simulation
from edgeroam.sim.worlds import demo_world


def build_demo(
    customers: int, database_url: str, tick_s: float, tokens: tuple[TokenSpec, ...]
) -> tuple[Runtime, Simulation]:
    """A runtime whose controller is the demo simulation's controller, fed in real time."""
    world = demo_world(customers, duration_s=10**9, tick_s=tick_s)
    sim = Simulation(world, database_url=database_url)
    settings = Settings(
        database_url=database_url,
        tick_s=tick_s,
        tokens=tokens,
        driver=DriverSettings(latency_s=world.driver.latency_s),
    )
    started = time.time()
    runtime = Runtime(settings, sim.controller, clock=lambda: time.time() - started)
    runtime.hooks.append(sim.feed)
    return runtime, sim


@app.command()
def demo(
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="0 picks a free port."),
    host: str = typer.Option("127.0.0.1", "--host", help="Bind address (loopback by default)."),
    duration: float | None = typer.Option(
        None, "--duration", min=0.0, help="Stop after this many seconds (exit code 0)."
    ),
    customers: int = typer.Option(20, "--customers", min=1, max=5000),
    tick_s: float = typer.Option(1.0, "--tick", min=0.05, help="Control cycle, seconds."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Default: a fresh SQLite file in a temporary directory."
    ),
) -> None:
    """Serve a controller + API on a simulated world until interrupted (or --duration)."""
    from edgeroam.cli.serve import serve_app

    workdir = Path(tempfile.mkdtemp(prefix="edgeroam-demo-"))
    url = database_url or f"sqlite:///{workdir / 'demo.db'}"
    viewer = TokenSpec(name="demo-viewer", token=secrets.token_urlsafe(24), role=Role.VIEWER)
    operator = TokenSpec(name="demo-operator", token=secrets.token_urlsafe(24), role=Role.OPERATOR)
    runtime, _sim = build_demo(customers, url, tick_s, (viewer, operator))

    def ready(base_url: str) -> None:
        typer.echo(base_url)
        typer.echo(f"viewer token:   {viewer.token}")
        typer.echo(f"operator token: {operator.token}")
        typer.echo(f"try: curl -H 'Authorization: Bearer {viewer.token}' {base_url}/api/v1/hosts")
        typer.echo(f"     curl {base_url}/health   (docs: {base_url}/docs)")

    runtime.start()
    try:
        serve_app(runtime, host, port, duration, ready)
    finally:
        runtime.stop()
