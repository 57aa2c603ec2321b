"""A controller wired to its store, driver and policies, with a real-time control loop."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edgeroam.config import Settings
from edgeroam.controller import Controller
from edgeroam.drivers.base import Driver
from edgeroam.drivers.netns import NetnsDriver
from edgeroam.drivers.sim import SimDriver
from edgeroam.model import EventCategory, Severity
from edgeroam.policies.registry import default_registry
from edgeroam.rules.runner import install as install_rule_actions
from edgeroam.store import Store


@dataclass(frozen=True)
class Health:
    code: int
    message: str
    details: dict[str, str]

    @property
    def ok(self) -> bool:
        return self.code < 5000


class Runtime:
    """Owns the controller loop thread; the API and CLI talk to the controller through it."""

    def __init__(
        self,
        settings: Settings,
        controller: Controller,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.controller = controller
        self.clock = clock
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.loop_error: str | None = None
        self.hooks: list[Callable[[float], None]] = []
        """Called before each tick with `now` (e.g. the demo's traffic generator)."""

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Runtime:
        store = Store(settings.database_url)
        d = settings.driver
        driver: Driver
        if d.kind == "netns":
            driver = NetnsDriver(
                ack_timeout_s=d.ack_timeout_s,
                redeliver_s=d.redeliver_s,
                silent_after_s=d.silent_after_s,
                clock=clock,
            )
        else:
            driver = SimDriver(
                latency_s=d.latency_s,
                failure_rate=d.failure_rate,
                seed=d.seed,
                state_path=d.state_path,
            )
        registry = default_registry()
        if settings.policies_file is not None:
            registry.load_yaml(settings.policies_file)
        if settings.policies:
            registry.configure_all(settings.policies)
        controller = Controller(
            driver,
            store=store,
            registry=registry,
            arbiter=settings.arbiter,
            lifecycle=settings.lifecycle,
            stale_after_s=settings.stale_after_s,
        )
        controller.load(clock())
        runtime = cls(settings, controller, clock)
        # Notify and custom rule actions are I/O: they run before each cycle, outside policies.
        install_rule_actions(runtime)
        return runtime

    def now(self) -> float:
        return self.clock()

    # -- loop ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="edgeroam-control", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    @property
    def loop_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        interval = self.settings.tick_s
        last_prune = 0.0
        while not self._stop.is_set():
            began = time.monotonic()
            now = self.clock()
            try:
                for hook in self.hooks:
                    hook(now)
                self.controller.tick(now)
                if now - last_prune > 600 and self.controller.store is not None:
                    self.controller.store.prune_readings(now - self.settings.readings_retention_s)
                    last_prune = now
                self.loop_error = None
            except Exception as exc:  # keep the loop alive; /health reports the fault
                self.loop_error = f"{exc.__class__.__name__}: {exc}"
                self.controller.events.emit(
                    now,
                    EventCategory.SYSTEM,
                    f"control cycle failed: {self.loop_error}",
                    tags=("loop_error",),
                    severity=Severity.ERROR,
                )
                # The store itself may be what failed; the event stays in memory then.
                with contextlib.suppress(Exception):
                    self.controller.events.flush()
            self._stop.wait(max(0.0, interval - (time.monotonic() - began)))

    # -- health (seed 002's status codes, edgeroam's parts) -----------------------------------
    def health(self) -> Health:
        details: dict[str, str] = {}
        store = self.controller.store
        if store is not None:
            ok, message = store.ping()
            details["database"] = message
            if not ok:
                return Health(
                    5020, f"Controller service: database not reachable ({message}).", details
                )
        if not self.loop_running:
            return Health(5010, "Controller service: control loop not running.", details)
        if self.loop_error is not None:
            details["loop"] = self.loop_error
            return Health(
                5030, f"Controller service: control cycle failing ({self.loop_error}).", details
            )
        problems: list[tuple[int, str]] = []
        silent = self.silent_hosts()
        if silent:
            details["agents"] = f"{len(silent)} silent: {', '.join(silent[:5])}"
            problems.append((2010, f"{len(silent)} agent(s) not reporting"))
        reachable, message = self.controller.driver.health()
        details["driver"] = message
        if not reachable:
            problems.append((2020, f"driver {self.controller.driver.name} not reachable"))
        if not self.settings.tokens:
            problems.append((2030, "no API tokens configured (read-only)"))
        last = self.controller.last_tick
        if last is not None and last.errors:
            details["policies"] = "; ".join(last.errors)
            problems.append((2040, "a policy failed in the last cycle"))
        if not problems:
            return Health(2000, "Services running.", details)
        codes = {c for c, _ in problems}
        code = 2100 if {2010, 2020} <= codes else min(codes)
        return Health(
            code, "Services running but " + "; ".join(m for _, m in problems) + ".", details
        )

    def silent_hosts(self) -> list[str]:
        """Hosts whose agent heartbeat went stale (never-reporting hosts are not agents)."""
        snapshot_now = self.clock()
        column = self.controller.telemetry.columns.get("heartbeat")
        if column is None:
            return []
        limit = self.controller.telemetry.staleness("heartbeat")
        n = len(column.ids)
        stale = snapshot_now - column.stamps[:n] > limit
        return sorted(column.ids[i].removeprefix("host:") for i in range(n) if stale[i])
