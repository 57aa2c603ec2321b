"""The netns driver: actions are carried out by the agent of each host, over HTTP.

Division of work. The driver never touches a namespace itself. `submit` queues an action for
the agent of ``args["host"]``; the agent fetches its queue (a long poll on the controller's
API, so agents behind NAT need no listening port), executes each action idempotently, and
posts the outcome, which `poll` then returns. A key is executed at most once per agent: the
agent remembers the outcomes of the keys it ran and answers a repeated key from memory.

Silence is not success. An action nobody acknowledges within `ack_timeout_s` fails (the
engine retries it under a new key with backoff); an action fetched but not acknowledged is
delivered again after `redeliver_s`; `health` names the agents not heard from for
`silent_after_s`. Outcomes live in memory only: after a controller restart the engine polls,
finds the key unknown and submits it again, and the agent answers from its memory.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator

from edgeroam.drivers.base import ACTIONS, ActionStatus, DriverView, Outcome
from edgeroam.model import Model

MAX_TICKETS = 100_000
MAX_BATCH = 1000


class AgentAction(Model):
    """One action for an agent, as it travels to it."""

    key: str = Field(min_length=1, max_length=300)
    action: str
    args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("action")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTIONS:
            raise ValueError(f"unknown action {value!r}; known: {sorted(ACTIONS)}")
        return value


class ActionBatch(Model):
    actions: tuple[AgentAction, ...] = ()


class ActionResult(Model):
    key: str = Field(min_length=1, max_length=300)
    outcome: Literal["done", "failed"]
    message: str = Field(default="", max_length=4000)


class AgentState(Model):
    """What an agent has on its host right now (instance ids)."""

    sandboxes: tuple[str, ...] = Field(default=(), max_length=100_000)
    running: tuple[str, ...] = Field(default=(), max_length=100_000)


class ResultsReport(Model):
    results: tuple[ActionResult, ...] = Field(default=(), max_length=MAX_BATCH)
    state: AgentState | None = None


@dataclass
class _Ticket:
    key: str
    host: str
    action: str
    args: dict[str, Any]
    submitted: float
    outcome: Outcome = Outcome.PENDING
    message: str = ""
    delivered_at: float | None = None
    finished_at: float | None = None


class NetnsDriver:
    name = "netns"

    def __init__(
        self,
        *,
        ack_timeout_s: float = 15.0,
        redeliver_s: float = 3.0,
        silent_after_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if min(ack_timeout_s, redeliver_s, silent_after_s) <= 0:
            raise ValueError("ack_timeout_s, redeliver_s and silent_after_s must be positive")
        self.ack_timeout_s = ack_timeout_s
        self.redeliver_s = redeliver_s
        self.silent_after_s = silent_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[str, _Ticket] = {}
        self._order: deque[str] = deque()
        self._queues: dict[str, list[str]] = {}
        self._states: dict[str, AgentState] = {}
        self.last_seen: dict[str, float] = {}

    # -- engine side (the Driver protocol) ----------------------------------------------------
    def submit(self, key: str, action: str, args: dict[str, Any], now: float) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        with self._lock:
            existing = self._tickets.get(key)
            if existing is not None and existing.outcome is not Outcome.FAILED:
                return
            host = str(args.get("host") or "")
            ticket = _Ticket(key, host, action, dict(args), now)
            if action == "noop":
                ticket.outcome = Outcome.DONE
            elif action in ("power_off", "power_on"):
                ticket.outcome = Outcome.FAILED
                ticket.message = f"{action}: the netns testbed cannot switch a host off or on"
            elif not host:
                ticket.outcome = Outcome.FAILED
                ticket.message = f"{action}: no host in the action's arguments"
            else:
                self._queues.setdefault(host, []).append(key)
            if ticket.outcome is not Outcome.PENDING:
                ticket.finished_at = now
            self._tickets[key] = ticket
            self._order.append(key)
            self._prune()

    def poll(self, key: str, now: float) -> ActionStatus:
        with self._lock:
            ticket = self._tickets.get(key)
            if ticket is None:
                return ActionStatus(Outcome.UNKNOWN)
            if ticket.outcome is Outcome.PENDING and now - ticket.submitted > self.ack_timeout_s:
                seen = self.last_seen.get(ticket.host)
                heard = "never heard from" if seen is None else f"last heard {now - seen:.1f} s ago"
                ticket.outcome = Outcome.FAILED
                ticket.message = (
                    f"the agent of host {ticket.host} did not acknowledge {ticket.action} within "
                    f"{self.ack_timeout_s:g} s ({heard})"
                )
                ticket.finished_at = now
                queue = self._queues.get(ticket.host, [])
                if key in queue:
                    queue.remove(key)
            return ActionStatus(ticket.outcome, ticket.message)

    def observe(self) -> DriverView:
        with self._lock:
            sandboxes = {(i, h) for h, s in self._states.items() for i in s.sandboxes}
            running = {(i, h) for h, s in self._states.items() for i in s.running}
        return DriverView(sandboxes=frozenset(sandboxes), running=frozenset(running))

    def health(self) -> tuple[bool, str]:
        now = self.clock()
        with self._lock:
            silent = sorted(h for h, t in self.last_seen.items() if now - t > self.silent_after_s)
            known = len(self.last_seen)
            waiting = sorted(h for h, q in self._queues.items() if q and h not in self.last_seen)
        problems = []
        if silent:
            problems.append(f"silent: {', '.join(silent[:5])}")
        if waiting:
            problems.append(f"actions waiting for agents never seen: {', '.join(waiting[:5])}")
        message = f"{known} agent(s) connected" + (f"; {'; '.join(problems)}" if problems else "")
        return not problems, message

    # -- agent side (the API calls these) -----------------------------------------------------
    def touch(self, host: str, now: float | None = None) -> None:
        with self._lock:
            self.last_seen[host] = self.clock() if now is None else now

    def _deliverable(self, key: str, now: float) -> bool:
        t = self._tickets[key]
        return t.outcome is Outcome.PENDING and (
            t.delivered_at is None or now - t.delivered_at >= self.redeliver_s
        )

    def take(self, host: str, now: float | None = None) -> list[AgentAction]:
        """Actions for `host` not yet delivered, or delivered long enough ago without an answer."""
        now = self.clock() if now is None else now
        with self._lock:
            self.last_seen[host] = now
            out = []
            for key in self._queues.get(host, ()):
                if self._deliverable(key, now):
                    ticket = self._tickets[key]
                    ticket.delivered_at = now
                    out.append(AgentAction(key=key, action=ticket.action, args=ticket.args))
                if len(out) >= MAX_BATCH:
                    break
            return out

    def complete(self, host: str, report: ResultsReport, now: float | None = None) -> int:
        """Record an agent's outcomes (only for its own host's keys) and its state."""
        now = self.clock() if now is None else now
        accepted = 0
        with self._lock:
            self.last_seen[host] = now
            for result in report.results:
                ticket = self._tickets.get(result.key)
                if ticket is None or ticket.host != host or ticket.outcome is not Outcome.PENDING:
                    continue
                ticket.outcome = Outcome.DONE if result.outcome == "done" else Outcome.FAILED
                ticket.message = result.message
                ticket.finished_at = now
                queue = self._queues.get(host, [])
                if result.key in queue:
                    queue.remove(result.key)
                accepted += 1
            if report.state is not None:
                self._states[host] = report.state
        return accepted

    def pending(self) -> dict[str, int]:
        with self._lock:
            return {h: len(q) for h, q in self._queues.items() if q}

    def _prune(self) -> None:
        while len(self._order) > MAX_TICKETS:
            key = self._order.popleft()
            ticket = self._tickets.get(key)
            if ticket is not None and ticket.outcome is not Outcome.PENDING:
                del self._tickets[key]
            elif ticket is not None:
                self._order.append(key)
                break
