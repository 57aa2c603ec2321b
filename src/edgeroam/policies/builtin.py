"""The list of built-in policies; each later policy module adds itself here."""

from __future__ import annotations

from edgeroam.policies.base import Policy, PolicyConfig
from edgeroam.policies.heal import HealPolicy


def builtin_policies() -> list[tuple[Policy, PolicyConfig | None]]:
    return [(HealPolicy(), None)]
