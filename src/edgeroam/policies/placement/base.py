"""Types shared by placement strategies."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeroam.model import HostKind, Reason, Resources
from edgeroam.policies.placement.costs import PlacementMode, Strategy


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
    strategy: Strategy | None = None
    """Cost strategy for this request; None means the caller's choice (default: spread)."""
    mode: PlacementMode | None = None
    """Which places the cost strategies may use; None means local + cloud + B&B (or local +
    cloud when `allow_bnb` is false)."""
    max_delay_ms: float | None = None
    """Delay limit for the cloud's core-delay filter; None means the function's flavor's."""


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
