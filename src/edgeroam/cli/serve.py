"""`edgeroam serve`: the controller loop plus the HTTP API in one process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape

from edgeroam.api import create_app
from edgeroam.cli.app import app
from edgeroam.config import SettingsError, load_settings
from edgeroam.runtime import Runtime
from edgeroam.store.database import StoreError

err = Console(stderr=True)

#: Open event streams would otherwise hold a shutdown up until they end on their own.
GRACEFUL_SHUTDOWN_S = 3


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind (and so reserve) the listening socket before uvicorn starts.

    Port 0 asks the kernel for a free port; binding here and handing uvicorn this very
    socket means the port we report is the one served, with no window for another process.
    The protocol must be given explicitly: asyncio only sets TCP_NODELAY on connections of a
    socket whose `proto` is IPPROTO_TCP, and without it every response waits ~40 ms for a
    delayed ACK (Nagle).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, telling us once it accepts connections and obeying a stop event."""

    def __init__(
        self,
        config: uvicorn.Config,
        on_started: Callable[[], None],
        stop: threading.Event | None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._stop = stop

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._on_started()

    async def on_tick(self, counter: int) -> bool:
        # uvicorn's main loop calls this every 0.1 s; True ends the server.
        if self._stop is not None and self._stop.is_set():
            return True
        return await super().on_tick(counter)


def serve_app(
    runtime: Runtime,
    host: str = "127.0.0.1",
    port: int = 8080,
    duration: float | None = None,
    on_ready: Callable[[str], None] | None = None,
    *,
    stop: threading.Event | None = None,
) -> None:
    """Serve the API of `runtime` until interrupted, `duration` seconds pass or `stop` is set.

    Blocks. In the main thread Ctrl-C stops it; from another thread uvicorn installs no
    signal handlers, so pass `duration` or `stop` there. `on_ready` receives the base URL
    once the server accepts connections. The runtime's loop is neither started nor stopped.
    """
    sock = bind_socket(host, port)
    url = base_url(host, sock.getsockname()[1])
    config = uvicorn.Config(
        create_app(runtime),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )

    def started() -> None:
        if on_ready is not None:
            on_ready(url)

    server = _Server(config, started, stop)

    def request_exit() -> None:
        server.should_exit = True

    timer = threading.Timer(duration, request_exit) if duration is not None else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        server.run(sockets=[sock])
    finally:
        if timer is not None:
            timer.cancel()
        sock.close()


@app.command()
def serve(
    config: Annotated[
        Path | None, typer.Option("--config", help="Settings YAML file.", exists=True)
    ] = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Bind address [settings; 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option("--port", min=0, max=65535, help="Port [settings; 8080]; 0: any free one."),
    ] = None,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help="Overrides the settings' database.")
    ] = None,
) -> None:
    """Run the controller and its HTTP API (loopback only unless --host says otherwise)."""
    try:
        settings = load_settings(config)
    except SettingsError as exc:
        err.print(f"[red]invalid settings[/red]\n{escape(str(exc))}")
        raise typer.Exit(2) from exc
    if database_url is not None:
        settings = settings.model_copy(update={"database_url": database_url})
    bind = host or settings.bind
    listen_port = settings.port if port is None else port
    try:
        runtime = Runtime.build(settings)
    except StoreError as exc:
        err.print(f"[red]cannot start:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    if not settings.tokens:
        err.print("[yellow]no API tokens configured: every /api/v1 request will be refused[/]")

    def ready(url: str) -> None:
        # The URL alone on stdout, first, so scripts can read it (port 0 picks one).
        typer.echo(url)
        typer.echo(f"edgeroam API at {url}/api/v1, docs at {url}/docs", err=True)

    runtime.start()
    try:
        serve_app(runtime, bind, listen_port, on_ready=ready)
    except OSError as exc:
        err.print(f"[red]cannot listen on {bind}:{listen_port}:[/red] {escape(str(exc))}")
        raise typer.Exit(1) from exc
    finally:
        runtime.stop()
        if runtime.controller.store is not None:
            runtime.controller.store.close()
