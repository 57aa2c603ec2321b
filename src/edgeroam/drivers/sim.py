"""Simulation driver: actions take virtual time and can be made to fail on purpose.

State can be persisted to a JSON file after every change so a test can kill the controller
process mid-operation and check, after restart, that the world and the store agree.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgeroam.drivers.base import ACTIONS, ActionStatus, DriverView, Outcome


@dataclass
class _Ticket:
    action: str
    args: dict[str, Any]
    due: float
    outcome: Outcome = Outcome.PENDING
    message: str = ""


@dataclass
class SimDriver:
    latency_s: float = 0.0
    latency_by_action: dict[str, float] = field(default_factory=dict)
    """Per-action overrides of latency_s (a role flip is quicker than a deployment)."""
    failure_rate: float = 0.0
    fail_actions: tuple[str, ...] = ()
    seed: int = 0
    state_path: Path | None = None
    name: str = "sim"
    sandboxes: set[tuple[str, str]] = field(default_factory=set)
    running: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    powered_off: set[str] = field(default_factory=set)
    failed_hosts: set[str] = field(default_factory=set)
    failures: dict[str, int] = field(default_factory=dict)
    log: list[tuple[float, str, str]] = field(default_factory=list)
    _tickets: dict[str, _Ticket] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.latency_s < 0 or not 0 <= self.failure_rate <= 1:
            raise ValueError("latency_s must be >= 0 and failure_rate within [0, 1]")
        bad = sorted(a for a, v in self.latency_by_action.items() if a not in ACTIONS or v < 0)
        if bad:
            raise ValueError(f"latency_by_action: unknown action or negative latency for {bad}")
        self._rng = np.random.default_rng(self.seed)
        if self.state_path is not None and self.state_path.exists():
            self._load(self.state_path)

    def adopt(self, instance: str, host: str, params: dict[str, Any]) -> None:
        """Record a function that already runs (scenario start) without an action."""
        self.sandboxes.add((instance, host))
        self.running[(instance, host)] = dict(params)
        self._persist()

    def set_host_alive(self, host: str, alive: bool) -> None:
        """A host failing (or coming back) outside the controller's control stops its functions."""
        if alive:
            self.failed_hosts.discard(host)
        else:
            self.failed_hosts.add(host)
            for key in [k for k in self.running if k[1] == host]:
                del self.running[key]
        self._persist()

    # -- failure injection --------------------------------------------------------------------
    def fail_next(self, action: str, times: int = 1) -> None:
        """Make the next `times` executions of `action` fail (tests and scenarios)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; known: {sorted(ACTIONS)}")
        self.failures[action] = self.failures.get(action, 0) + times

    def _should_fail(self, action: str) -> bool:
        if self.failures.get(action, 0) > 0:
            self.failures[action] -= 1
            return True
        if self.failure_rate > 0 and (not self.fail_actions or action in self.fail_actions):
            return bool(self._rng.random() < self.failure_rate)
        return False

    # -- protocol -----------------------------------------------------------------------------
    def submit(self, key: str, action: str, args: dict[str, Any], now: float) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        existing = self._tickets.get(key)
        if existing is not None and existing.outcome is not Outcome.FAILED:
            return
        latency = self.latency_by_action.get(action, self.latency_s)
        self._tickets[key] = _Ticket(action, dict(args), now + latency)
        self._persist()

    def poll(self, key: str, now: float) -> ActionStatus:
        ticket = self._tickets.get(key)
        if ticket is None:
            return ActionStatus(Outcome.UNKNOWN)
        if ticket.outcome is Outcome.PENDING and now >= ticket.due:
            if self._should_fail(ticket.action):
                ticket.outcome = Outcome.FAILED
                ticket.message = f"simulated failure of {ticket.action}"
            else:
                message = self._apply(ticket.action, ticket.args)
                ticket.outcome = Outcome.FAILED if message else Outcome.DONE
                ticket.message = message
            self.log.append((now, key, ticket.outcome.value))
            self._persist()
        return ActionStatus(ticket.outcome, ticket.message)

    def observe(self) -> DriverView:
        return DriverView(
            sandboxes=frozenset(self.sandboxes),
            running=frozenset(self.running),
            powered_off=frozenset(self.powered_off),
        )

    def health(self) -> tuple[bool, str]:
        return True, "simulation driver"

    # -- world effects ------------------------------------------------------------------------
    def _apply(self, action: str, args: dict[str, Any]) -> str:
        """Change the simulated world; returns an error message or '' on success."""
        slot = (str(args.get("instance", "")), str(args.get("host", "")))
        host = slot[1]
        if host in self.failed_hosts and action not in ("stop_function", "remove_sandbox"):
            return f"host {host} is down"
        if action == "create_sandbox":
            if host in self.powered_off:
                return f"host {host} is powered off"
            self.sandboxes.add(slot)
        elif action == "remove_sandbox":
            self.sandboxes.discard(slot)
            self.running.pop(slot, None)
        elif action in ("start_function", "update_function"):
            if slot not in self.sandboxes:
                return f"instance {slot[0]} has no sandbox on {host}"
            if host in self.powered_off:
                return f"host {host} is powered off"
            self.running[slot] = dict(args.get("params") or {})
        elif action == "stop_function":
            self.running.pop(slot, None)
        elif action == "power_off":
            self.powered_off.add(host)
            for key in [k for k in self.running if k[1] == host]:
                del self.running[key]
        elif action == "power_on":
            self.powered_off.discard(host)
        return ""

    # -- persistence --------------------------------------------------------------------------
    def _persist(self) -> None:
        if self.state_path is None:
            return
        data = {
            "sandboxes": sorted(self.sandboxes),
            "running": [[i, h, p] for (i, h), p in sorted(self.running.items())],
            "powered_off": sorted(self.powered_off),
            "failed_hosts": sorted(self.failed_hosts),
            "tickets": {
                k: [t.action, t.args, t.due, t.outcome.value, t.message]
                for k, t in self._tickets.items()
            },
        }
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_path)

    def _load(self, path: Path) -> None:
        data = json.loads(path.read_text())
        self.sandboxes = {(i, h) for i, h in data["sandboxes"]}
        self.running = {(i, h): p for i, h, p in data["running"]}
        self.powered_off = set(data["powered_off"])
        self.failed_hosts = set(data.get("failed_hosts", ()))
        self._tickets = {
            k: _Ticket(a, args, due, Outcome(o), m)
            for k, (a, args, due, o, m) in data["tickets"].items()
        }
