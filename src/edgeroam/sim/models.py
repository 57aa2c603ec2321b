"""World models: pluggable parts of the simulated world beyond the traffic model.

A world model turns time into readings (a battery draining, a room heating, load on a group)
and adds its own fields to each timeline entry and to the summary. Each issue's simulator
part registers a factory here instead of editing the runner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from edgeroam.model import Reading

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario


class WorldModel(Protocol):
    name: str

    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        """Readings this model's sensors/agents report at time t (before the control cycle)."""
        ...

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        """Add fields to the timeline entry of time t (after the control cycle)."""
        ...

    def summary(self, sim: Simulation) -> dict[str, Any]:
        """Fields merged into the run's summary."""
        ...


WorldModelFactory = Callable[["Scenario"], "WorldModel | None"]

#: Factories tried for every scenario; each returns a model or None when not relevant.
WORLD_MODELS: list[WorldModelFactory] = []


def register_world_model(factory: WorldModelFactory) -> WorldModelFactory:
    WORLD_MODELS.append(factory)
    return factory


#: Modules whose import registers world models (kept explicit so the order is stable).
WORLD_MODEL_MODULES: tuple[str, ...] = (
    "edgeroam.sim.facility",
    "edgeroam.sim.band",
    "edgeroam.sim.bnb",
    "edgeroam.sim.load",
    "edgeroam.sim.rules_actions",
)
