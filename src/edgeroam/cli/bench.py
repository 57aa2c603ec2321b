"""`edgeroam bench …`: the speed targets, measured."""

from __future__ import annotations

import json
import platform
import sys
import time
from typing import Any

import typer

from edgeroam.cli.app import app

bench_app = typer.Typer(
    help="Benchmarks; record results in docs/benchmarks.md.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")


def _print(result: dict[str, Any]) -> None:
    result = {
        **result,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


@bench_app.command("tick")
def bench_tick(
    cpes: int = typer.Option(10_000, min=1, help="CPEs in the generated world."),
    cycles: int = typer.Option(50, min=1, help="Control cycles to time."),
) -> None:
    """One control cycle over a large world with no policies enabled (target ≤ 50 ms)."""
    from edgeroam.bench.tick import run_tick_bench

    _print(run_tick_bench(cpes, cycles))


@bench_app.command("ingest")
def bench_ingest(
    readings: int = typer.Option(200_000, min=1, help="Readings to send in total."),
    batch: int = typer.Option(2_000, min=1, max=10_000, help="Readings per request."),
    clients: int = typer.Option(2, min=1, max=32, help="Concurrent HTTP clients."),
) -> None:
    """Batched telemetry ingestion over HTTP on loopback into SQLite (target ≥ 20,000/s)."""
    from edgeroam.bench.ingest import run_ingest_bench

    _print(run_ingest_bench(readings, batch, clients))
