"""Types shared by placement strategies."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeroam.model import HostKind, Reason, Resources


@dataclass(frozen=True)
class PlacementRequest:
    function: str
    demand: Resources
    kinds: tuple[HostKind, ...]
    owner: str | None = None
    exclude_hosts: frozenset[str] = frozenset()
    avoid_sites: frozenset[str] = frozenset()
    """Sites to use only when nothing else fits (location-aware evacuation)."""
    allow_bnb: bool = True
    """Whether other customers' CPEs that lend capacity may host an owned function."""


@dataclass
class Reservations:
    """Resources promised to earlier proposals of the same cycle, per host."""

    by_host: dict[str, Resources] = field(default_factory=dict)

    def add(self, host: str, amount: Resources) -> None:
        self.by_host[host] = self.by_host.get(host, Resources()) + amount


@dataclass(frozen=True)
class PlacementResult:
    host: str | None
    reason: Reason
