"""Drivers: the only code that changes the world. Only the lifecycle engine calls them."""

from edgeroam.drivers.base import ACTIONS, ActionStatus, Driver, DriverView, Outcome, reverse

__all__ = ["ACTIONS", "ActionStatus", "Driver", "DriverView", "Outcome", "reverse"]
