"""The small protocol between the lifecycle engine and whatever executes actions.

Every action is submitted under a key (operation id + step index) and must be idempotent per
key: submitting a key twice does the work once. That single rule is what lets the engine resume
an operation after a crash without duplicating instances.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class Outcome(StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class ActionStatus:
    outcome: Outcome
    message: str = ""


@dataclass(frozen=True)
class DriverView:
    """What the driver sees in the world: which instances exist where, which hosts are off."""

    sandboxes: frozenset[tuple[str, str]] = frozenset()
    """(instance, host) pairs that have a sandbox."""
    running: frozenset[tuple[str, str]] = frozenset()
    """(instance, host) pairs whose function is started."""
    powered_off: frozenset[str] = frozenset()

    def hosts_of(self, instance: str) -> list[str]:
        return sorted(h for i, h in self.sandboxes if i == instance)


#: Actions a driver understands, each with the action that undoes it.
ACTIONS: dict[str, str] = {
    "create_sandbox": "remove_sandbox",
    "remove_sandbox": "create_sandbox",
    "start_function": "stop_function",
    "stop_function": "start_function",
    "update_function": "update_function",
    "power_off": "power_on",
    "power_on": "power_off",
    "noop": "noop",
}


def reverse(action: str, args: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The action and arguments that undo `action`; updates restore the previous params."""
    if action == "update_function":
        undone = {**args, "params": args.get("previous", {}), "previous": args.get("params")}
        for key in ("owner", "role"):  # a claim hands an instance back when undone
            if f"previous_{key}" in args:
                undone[key], undone[f"previous_{key}"] = args[f"previous_{key}"], args.get(key)
        return action, undone
    return ACTIONS[action], dict(args)


class Driver(Protocol):
    name: str

    def submit(self, key: str, action: str, args: dict[str, Any], now: float) -> None:
        """Start an action; a key already submitted is ignored (idempotency)."""
        ...

    def poll(self, key: str, now: float) -> ActionStatus:
        """Where the action submitted under `key` stands; UNKNOWN if never submitted."""
        ...

    def observe(self) -> DriverView: ...

    def health(self) -> tuple[bool, str]:
        """(reachable, message) for /health."""
        ...
