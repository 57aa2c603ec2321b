"""Choosing a host for an instance: filters, the IoT-B&B cost model and the strategies.

`place()` is what policies call. Without a strategy it keeps the foundation's rule (`spread`:
the eligible host with the largest free vCPU share); `exhaustive`, `heuristic` and `optimal`
price every candidate with the cost model (owner's CPE free, B&B nodes at their incentives,
pool hosts dearer as they fill) — see docs/placement.md.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgeroam.policies.placement.adapter import Placer, place_cost_based
from edgeroam.policies.placement.base import PlacementRequest, PlacementResult, Reservations
from edgeroam.policies.placement.costs import CostModel, DelayCheck, PlacementMode, Strategy
from edgeroam.policies.placement.simple import place as place_spread
from edgeroam.snapshot import Snapshot


def place(
    snapshot: Snapshot,
    request: PlacementRequest,
    reserved: Reservations | None = None,
    *,
    strategy: Strategy | str | None = None,
    cost: CostModel | None = None,
) -> PlacementResult:
    """Choose a host for `request`: `strategy` argument, else the request's, else spread."""
    chosen = Strategy(strategy or request.strategy or Strategy.SPREAD)
    if chosen is Strategy.SPREAD:
        return place_spread(snapshot, request, reserved)
    return place_cost_based(snapshot, request, reserved, strategy=chosen, cost=cost)


def place_batch(
    snapshot: Snapshot,
    requests: Sequence[PlacementRequest],
    reserved: Reservations | None = None,
    *,
    cost: CostModel | None = None,
) -> list[PlacementResult]:
    """Place a batch jointly with the 0-1 integer program (objective (14), constraints
    (15)–(20)); each result says where its instance goes, or why the batch is infeasible."""
    return Placer(snapshot, reserved, cost).place_batch(requests, commit=False)


__all__ = [
    "CostModel",
    "DelayCheck",
    "PlacementMode",
    "PlacementRequest",
    "PlacementResult",
    "Placer",
    "Reservations",
    "Strategy",
    "place",
    "place_batch",
]
