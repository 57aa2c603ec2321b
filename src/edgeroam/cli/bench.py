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


@bench_app.command("facility")
def bench_facility(
    cpes: int = typer.Option(100_000, min=1, help="Customer CPEs (one function each)."),
    sites: int = typer.Option(20, min=1, help="Edge sites reporting facility readings."),
    servers: int = typer.Option(10, min=1, help="Servers per site (5 functions each)."),
    cycles: int = typer.Option(30, min=1, help="Cycles timed per situation."),
) -> None:
    """The facility policy's cycle: quiet, one site evacuating, every site degraded at once."""
    from rich.console import Console

    from edgeroam.bench.facility import run_facility_bench

    err = Console(stderr=True)
    progress = lambda m: err.print(f"[dim]{m}[/dim]")  # noqa: E731
    _print(run_facility_bench(cpes, sites, servers, cycles=cycles, progress=progress))


@bench_app.command("ingest")
def bench_ingest(
    readings: int = typer.Option(200_000, min=1, help="Readings to send in total."),
    batch: int = typer.Option(2_000, min=1, max=10_000, help="Readings per request."),
    clients: int = typer.Option(2, min=1, max=32, help="Concurrent HTTP clients."),
) -> None:
    """Batched telemetry ingestion over HTTP on loopback into SQLite (target ≥ 20,000/s)."""
    from edgeroam.bench.ingest import run_ingest_bench

    _print(run_ingest_bench(readings, batch, clients))


@bench_app.command("placement")
def bench_placement(
    nodes: int = typer.Option(10_000, min=2, help="CPE nodes in the random edge (plus a cloud)."),
    decisions: int = typer.Option(5_000, min=1, help="Decisions to time per strategy."),
    fill: bool = typer.Option(True, "--fill/--no-fill", help="Also time filling the edge."),
    as_json: bool = typer.Option(True, "--json/--no-json", help="JSON on stdout (default)."),
    seed: int = typer.Option(1, help="Seed of the random edge and requests."),
    repeats: int = typer.Option(3, min=1, help="Runs per figure; the fastest is reported."),
) -> None:
    """µs per placement decision per strategy (targets at 10,000 nodes: exhaustive ≤ 200 µs,
    heuristic ≤ 20 µs, filling the edge ≤ 10 s)."""
    from rich.console import Console

    from edgeroam.bench.placement import run_placement_bench

    err = Console(stderr=True)
    result = run_placement_bench(
        nodes,
        decisions,
        seed=seed,
        with_fill=fill,
        repeats=repeats,
        progress=lambda m: err.print(f"[dim]{m}[/dim]"),
    )
    if as_json:
        _print(result)
    else:
        for name, t in result["strategies"].items():
            typer.echo(
                f"{name:11} {t['decide_us_median']:8.1f} µs median, {t['decide_us_mean']:8.1f} mean"
            )
        for name, f in result.get("fill", {}).items():
            typer.echo(f"fill {name:11} {f['instances']} instances in {f['seconds']} s")


@bench_app.command("elastic")
def bench_elastic(
    branches: int = typer.Option(1000, min=1, help="Branches (8 function groups + a manager)."),
    functions: int = typer.Option(8, min=1, help="Function groups per branch."),
    members: int = typer.Option(2, min=1, help="Active members per function group."),
    cycles: int = typer.Option(20, min=2, help="Control cycles to time."),
) -> None:
    """Elastic, failover and ratio policies over many managed groups (target ≤ 50 ms)."""
    from edgeroam.bench.elastic import run_elastic_bench

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    _print(run_elastic_bench(branches, functions, members, cycles, progress))


@bench_app.command("offload")
def bench_offload(
    cpes: int = typer.Option(100_000, min=10, help="CPEs, each sending every function's traffic."),
    functions: int = typer.Option(8, min=1, max=64, help="Functions per CPE."),
    cycles: int = typer.Option(20, min=1, help="Warm policy cycles to time per case."),
    flood_share: float = typer.Option(0.05, min=0.0, max=1.0, help="Share of CPEs flooding."),
) -> None:
    """One offload policy cycle over CPEs × functions band readings (target ≤ 100 ms)."""
    from edgeroam.bench.offload import run_offload_bench

    _print(run_offload_bench(cpes, functions, cycles, flood_share))


@bench_app.command("testbed")
def bench_testbed(
    cpes: int = typer.Option(200, min=1, max=5000, help="CPEs of the bed (one terminal each)."),
    flood_runs: int = typer.Option(3, min=0, max=20, help="Ping-flood scenario runs (0: none)."),
    prefix: str = typer.Option("er7b-", help="Name prefix of the benchmark beds."),
) -> None:
    """Needs root: build and tear down a bed of CPEs; time the ping-flood reaction
    (targets: reaction_s ≤ 1.0 and after_mbps ≤ 10 % of the link at 250 ms telemetry)."""
    from edgeroam.bench.testbed import run_testbed_bench

    def progress(message: str) -> None:
        typer.echo(message, err=True)

    _print(run_testbed_bench(cpes, flood_runs, prefix, progress))
