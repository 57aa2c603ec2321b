"""The experiment registry: a name, a one-line description and a runner."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable[[Path | None, Progress], dict[str, Any]]
    """Runs the experiment, writes CSV/PNG into the directory if given, returns the JSON."""


EXPERIMENTS: dict[str, Experiment] = {}

#: Modules that register experiments when imported.
_MODULES = (
    "edgeroam.experiments.healing",
    "edgeroam.experiments.offload",
    "edgeroam.experiments.iotbnb",
    "edgeroam.experiments.facility",
    "edgeroam.experiments.elastic",
    "edgeroam.experiments.gateways",
)


def register(experiment: Experiment) -> Experiment:
    if experiment.name in EXPERIMENTS:
        raise ValueError(f"experiment {experiment.name!r} registered twice")
    EXPERIMENTS[experiment.name] = experiment
    return experiment


def load_all() -> dict[str, Experiment]:
    for module in _MODULES:
        importlib.import_module(module)
    return EXPERIMENTS
