"""`edgeroam simulate` and `edgeroam experiment`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from edgeroam.cli.app import app
from edgeroam.policies.registry import PolicyConfigError
from edgeroam.sim.report import write_report
from edgeroam.sim.runner import Simulation
from edgeroam.sim.scenario import ScenarioError, load_scenario

err = Console(stderr=True)


def _emit(document: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(document, sys.stdout, indent=None, separators=(",", ":"), default=str)
        sys.stdout.write("\n")
    else:
        err.print_json(data=document.get("summary", document), default=str)


@app.command()
def simulate(
    scenario: Path = typer.Argument(..., help="Scenario YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    out: Path | None = typer.Option(None, "--out", help="Also write CSV series and PNG plots."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Persist the run's operations and events (default: none)."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Run SCENARIO with the real controller on a virtual clock and report what happened."""
    try:
        loaded = load_scenario(scenario)
        sim = Simulation(loaded, database_url=database_url)
    except (ScenarioError, PolicyConfigError) as exc:
        typer.echo(f"invalid scenario\n{exc}", err=True)
        raise typer.Exit(2) from exc
    if quiet:
        result = sim.run()
    else:
        with Progress(
            TextColumn(f"[bold]{loaded.name}"),
            BarColumn(),
            TextColumn("t={task.completed:.0f}/{task.total:.0f} s"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as bar:
            task = bar.add_task("run", total=loaded.duration_s)
            result = sim.run(lambda t, _d: bar.update(task, completed=min(t, loaded.duration_s)))
    if out is not None:
        written = write_report(result, out)
        err.print(f"wrote {len(written)} files to {out}")
    _emit(result, as_json)


@app.command()
def experiment(
    name: str = typer.Argument(..., help="Experiment name; `edgeroam experiment list` lists."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    out: Path | None = typer.Option(None, "--out", help="Directory for CSV and PNG output."),
) -> None:
    """Run a named experiment (CSV + PNG into --out, JSON to stdout)."""
    from edgeroam.experiments.registry import load_all

    experiments = load_all()
    if name == "list":
        for item in sorted(experiments.values(), key=lambda e: e.name):
            typer.echo(f"{item.name:28} {item.description}")
        return
    if name not in experiments:
        err.print(
            f"[red]unknown experiment {name!r}[/red]; known: {', '.join(sorted(experiments))}"
        )
        raise typer.Exit(2)
    result = experiments[name].run(out, lambda msg: err.print(f"[dim]{name}: {msg}[/dim]"))
    if out is not None:
        err.print(f"wrote results to {out}")
    if as_json:
        json.dump(result, sys.stdout, default=str)
        sys.stdout.write("\n")
    else:
        err.print_json(data=result, default=str)
