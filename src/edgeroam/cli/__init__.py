"""The `edgeroam` command line; each module adds its commands to the shared app."""

from __future__ import annotations

import importlib

from edgeroam.cli.app import app

_COMMAND_MODULES = ("serve", "client", "demo", "simulate", "bench")


def main() -> None:
    for name in _COMMAND_MODULES:
        try:
            importlib.import_module(f"edgeroam.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"edgeroam.cli.{name}":
                raise
    app()


__all__ = ["app", "main"]
