"""Reloading rules while the controller runs.

The rules are the `rules` policy's configuration; reloading is re-applying that configuration,
which re-reads the rules file. It is validated in full before it replaces anything, under the
controller's lock, so a cycle sees the old rules or the new ones, and a broken file changes
nothing (the error names each faulty place).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgeroam.policies.registry import PolicyConfigError
from edgeroam.rules.policy import POLICY, RulesConfig

if TYPE_CHECKING:
    from edgeroam.controller import Controller


def reload_rules(controller: Controller, file: str | None = None) -> RulesConfig:
    """Re-read the rules file (or switch to `file`); raise PolicyConfigError if it is invalid."""
    with controller.lock:
        registry = controller.registry
        if POLICY not in registry:
            raise PolicyConfigError(f"policies.{POLICY}: the rules policy is not registered")
        current = registry.config(POLICY)
        assert isinstance(current, RulesConfig)
        path = file or current.file
        if path is None:
            raise PolicyConfigError(
                f"policies.{POLICY}.file: no rules file configured; give one to load"
            )
        config = registry.configure(POLICY, {"file": path})
        assert isinstance(config, RulesConfig)
        return config
