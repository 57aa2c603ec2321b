"""The `edgeroam` command line; each module adds its commands to the shared app."""

from __future__ import annotations

import importlib

from edgeroam.cli.app import app

_COMMAND_MODULES = (
    "serve",
    "client",
    "demo",
    "policies",
    "simulate",
    "bench",
    "rules",
    "agent",
    "testbed",
    "gateways",
)


def load_commands() -> None:
    """Import every command module; each registers its commands on `app` when imported."""
    for name in _COMMAND_MODULES:
        importlib.import_module(f"edgeroam.cli.{name}")


def main() -> None:
    load_commands()
    app()


__all__ = ["app", "load_commands", "main"]
