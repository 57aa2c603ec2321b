"""`edgeroam policies`: the built-in policies and their settings, as a policies file."""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from edgeroam.cli.app import app
from edgeroam.policies.registry import PolicyConfigError, default_registry


@app.command()
def policies(
    check: Path | None = typer.Option(
        None, "--check", help="Validate a policies YAML file instead of printing defaults."
    ),
) -> None:
    """Print every built-in policy's settings as YAML (a starting policies file), or --check one."""
    registry = default_registry()
    if check is not None:
        try:
            registry.load_yaml(check)
        except PolicyConfigError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from exc
        typer.echo(f"{check}: valid ({', '.join(registry)})")
        return
    document = {
        "policies": {name: registry.config(name).model_dump(mode="json") for name in registry}
    }
    typer.echo(yaml.safe_dump(document, sort_keys=False), nl=False)
