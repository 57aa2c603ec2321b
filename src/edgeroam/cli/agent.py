"""`edgeroam agent`: the per-host agent (run it inside the host's network namespace)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgeroam.cli.app import app


@app.command()
def agent(
    config: Path = typer.Option(..., "--config", help="Agent config file (JSON or YAML)."),
    verbose: bool = typer.Option(False, "--verbose", help="Debug logging."),
) -> None:
    """Report this host's resources, links and functions; carry out the controller's actions."""
    from edgeroam.agent.__main__ import run_agent

    raise typer.Exit(run_agent(config, verbose=verbose))
