"""Simulator side of the rules engine: run the rules' notify and custom actions each tick.

Not a model of the world: the action runner is controller-side I/O, and in a live controller
the runtime's loop calls it. A simulation has no such loop, so this world model calls it before
each simulated cycle, for scenarios whose `policies.rules` has rules or a rules file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgeroam.model import Reading
from edgeroam.rules.policy import POLICY, RulesMemory
from edgeroam.rules.runner import ActionRunner
from edgeroam.sim.models import register_world_model

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario


class RulesActions:
    """World model that only runs the rules' actions before each simulated cycle."""

    name = "rules"

    def __init__(self) -> None:
        self.runner = ActionRunner()

    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        self.runner.run(sim.controller, t)
        return []

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        del sim, t, entry

    def summary(self, sim: Simulation) -> dict[str, Any]:
        memory = sim.controller.memory.get(POLICY)
        runs = list(memory.finished) if isinstance(memory, RulesMemory) else []
        return {
            "rules": {
                "runs": [
                    {"id": r.id, "rule": r.rule, "started_at": r.started_at, "status": r.status}
                    for r in runs
                ],
                "actions": [
                    {"key": key, "ok": result.ok, "message": result.message}
                    for key, result in self.runner.executed
                ],
            }
        }


@register_world_model
def _factory(scenario: Scenario) -> RulesActions | None:
    settings = scenario.policies.get(POLICY, {})
    if not settings.get("rules") and not settings.get("file"):
        return None
    return RulesActions()
