"""Choosing a host for an instance: the interface every placement strategy implements."""

from edgeroam.policies.placement.base import PlacementRequest, PlacementResult, Reservations
from edgeroam.policies.placement.simple import place

__all__ = ["PlacementRequest", "PlacementResult", "Reservations", "place"]
