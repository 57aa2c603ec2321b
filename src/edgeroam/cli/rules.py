"""`edgeroam rules check|reload`: validate a rules file here, or make a running controller
re-read its rules without a restart.

Exit codes: 0 success, 1 invalid rules or refused by the server, 3 controller unreachable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

from edgeroam.cli.app import app
from edgeroam.cli.client import (
    DEFAULT_URL,
    EXIT_REFUSED,
    EXIT_UNREACHABLE,
    Token,
    Url,
    _describe,
    _headers,
)
from edgeroam.rules.model import RulesError, load_rules

rules_app = typer.Typer(help="Operator rules (validate, reload).", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
err = Console(stderr=True, highlight=False)


@rules_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Rules YAML file.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the parsed rules as JSON.")
    ] = False,
) -> None:
    """Validate a rules file; every problem is printed with its place in the file."""
    try:
        ruleset = load_rules(file)
    except RulesError as exc:
        err.print(f"[red]invalid rules[/red]\n{exc}", markup=True, soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    if as_json:
        typer.echo(json.dumps(ruleset.model_dump(mode="json", by_alias=True)))
        return
    for rule in ruleset.rules:
        actions = ", ".join(f"{a.id}:{a.do}" for a in rule.actions)
        typer.echo(f"{rule.name}: {rule.mode} [{actions}]")
    err.print(f"{len(ruleset.rules)} rule(s) valid")


@rules_app.command("reload")
def reload(
    file: Annotated[
        str | None,
        typer.Option("--file", help="Switch to this rules file (a path on the controller)."),
    ] = None,
    url: Url = DEFAULT_URL,
    token: Token = None,
) -> None:
    """Make a running controller re-read its rules file (validated before it applies)."""
    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, headers=_headers(token), timeout=30.0) as client:
            response = client.post("/api/v1/rules/reload", json={"file": file} if file else None)
    except httpx.TransportError as exc:
        err.print(f"[red]error:[/red] cannot reach edgeroam at {base}: {exc}", markup=True)
        raise typer.Exit(EXIT_UNREACHABLE) from exc
    if response.status_code >= 400:
        err.print(f"[red]error:[/red] {_describe(response)}", markup=True, soft_wrap=True)
        raise typer.Exit(EXIT_REFUSED)
    data = response.json()
    typer.echo(f"{len(data['rules'])} rule(s) loaded from {data['file']}")
