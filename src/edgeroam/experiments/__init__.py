"""Named experiments behind `edgeroam experiment NAME`; each later issue registers its own."""

from edgeroam.experiments.registry import EXPERIMENTS, Experiment, register

__all__ = ["EXPERIMENTS", "Experiment", "register"]
