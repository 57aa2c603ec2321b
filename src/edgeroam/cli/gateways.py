"""`edgeroam gateways`: the vRGW parameter table and cleaning up the vRGW testbed."""

from __future__ import annotations

import json

import typer

from edgeroam.cli.app import app

gateways_app = typer.Typer(help="Virtual residential gateways (seed 003).", no_args_is_help=True)
app.add_typer(gateways_app, name="gateways")


@gateways_app.command("parameters")
def parameters(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """The TR-181 parameters a vRGW supports, and who may write each."""
    from edgeroam.gateways.settings import parameter_table

    rows = parameter_table()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for row in rows:
        typer.echo(f"{row['name']:58} {row['type']:14} {row['access']:9} {row['description']}")


@gateways_app.command("down")
def down(
    prefix: str = typer.Option("er8-", "--prefix", help="Name prefix of the bed to remove."),
) -> None:
    """Remove a vRGW testbed: namespaces, processes, cgroups and files named with PREFIX."""
    from edgeroam.gateways.netns_vrgw import VrgwBed, is_root

    if not is_root():
        typer.echo("needs root", err=True)
        raise typer.Exit(1)
    try:
        report = VrgwBed(prefix=prefix).down()
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(json.dumps(report))
    if report["left_behind"]:
        raise typer.Exit(1)
