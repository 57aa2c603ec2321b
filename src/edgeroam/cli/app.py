"""The typer application every `edgeroam` sub-command module registers itself on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="edgeroam",
    help="Decide where customer network functions run — for real and in simulation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
