"""The controller of a bed: edgeroam's own Runtime with the netns driver, served on the bed's
management network.

The API listens on the management bridge inside the management namespace (the serving thread
joins that namespace before it binds), so agents reach it only over the management network
and the machine's own namespace gets no new address, route or listening port.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from edgeroam.config import DriverSettings, Role, Settings, TokenSpec
from edgeroam.drivers.base import Outcome
from edgeroam.drivers.netns import NetnsDriver
from edgeroam.model import Instance, LifecycleStage
from edgeroam.policies.registry import default_registry
from edgeroam.runtime import Runtime
from edgeroam.testbed.agents import CONTROLLER_PORT
from edgeroam.testbed.builder import Bed
from edgeroam.testbed.nsutil import start_thread_in_netns


class ControllerError(RuntimeError):
    """The bed's controller or its agents did not come up; the message says what is missing."""


def policy_settings(wanted: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Exactly the named policies run: every other built-in one is disabled."""
    names = list(default_registry())
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        raise ControllerError(f"policies: unknown {unknown}; known: {names}")
    return {n: {"enabled": True, **wanted[n]} if n in wanted else {"enabled": False} for n in names}


class BedController:
    def __init__(
        self,
        bed: Bed,
        agent_tokens: dict[str, str],
        *,
        tick_s: float = 0.5,
        stale_after_s: float = 4.0,
        policies: dict[str, dict[str, Any]] | None = None,
        arbiter: dict[str, Any] | None = None,
        lifecycle: dict[str, Any] | None = None,
    ) -> None:
        self.bed = bed
        self.operator_token = secrets.token_urlsafe(24)
        tokens = [TokenSpec(name="operator", token=self.operator_token, role=Role.OPERATOR)]
        tokens += [
            TokenSpec(name=f"agent-{h}", token=t, role=Role.AGENT, host=h)
            for h, t in sorted(agent_tokens.items())
        ]
        settings = Settings.model_validate(
            {
                "database_url": f"sqlite:///{bed.directory / 'controller.db'}",
                "tick_s": tick_s,
                "stale_after_s": stale_after_s,
                "tokens": tokens,
                "policies": policy_settings(policies or {}),
                "arbiter": arbiter or {},
                "lifecycle": lifecycle or {},
                "driver": DriverSettings(
                    kind="netns", silent_after_s=max(2.0, stale_after_s)
                ).model_dump(),
            }
        )
        self.runtime = Runtime.build(settings)
        driver = self.runtime.controller.driver
        assert isinstance(driver, NetnsDriver)
        self.driver = driver
        self._stop_serving = threading.Event()
        self._server: threading.Thread | None = None
        self.url = f"http://{bed.plan.controller_address}:{CONTROLLER_PORT}"
        self._load_inventory()

    def _load_inventory(self) -> None:
        topo = self.bed.topology
        controller = self.runtime.controller
        now = time.time()
        for kind, items in (
            ("site", topo.topology.sites),
            ("customer", topo.customers),
            ("flavor", topo.flavors),
            ("function", topo.functions),
            ("host", topo.topology.hosts),
            ("link", topo.topology.links),
        ):
            for item in items:
                controller.put(kind, item, now)

    # -- API server ----------------------------------------------------------------------------
    def serve(self, timeout_s: float = 15.0) -> None:
        from edgeroam.cli.serve import serve_app

        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                serve_app(
                    self.runtime,
                    self.bed.plan.controller_address,
                    CONTROLLER_PORT,
                    on_ready=lambda _url: ready.set(),
                    stop=self._stop_serving,
                )
            except BaseException as exc:
                failure.append(exc)
                ready.set()

        self._server = start_thread_in_netns(self.bed.plan.mgmt_netns, run, "bed-api")
        if not ready.wait(timeout_s) or failure:
            why = failure[0] if failure else f"no answer within {timeout_s} s"
            raise ControllerError(f"the controller API did not start on {self.url}: {why}")

    # -- agents and seed instances -------------------------------------------------------------
    def wait_for_agents(self, hosts: list[str], timeout_s: float, dead: Any = None) -> None:
        """Until every host's agent has fetched actions and sent a heartbeat."""
        deadline = time.monotonic() + timeout_s
        telemetry = self.runtime.controller.telemetry
        while True:
            column = telemetry.columns.get("heartbeat")
            beating = set(column.ids) if column is not None else set()
            missing = [
                h for h in hosts if h not in self.driver.last_seen or f"host:{h}" not in beating
            ]
            if not missing:
                return
            if dead is not None and dead():
                raise ControllerError(f"agent(s) exited: {dead()}")
            if time.monotonic() > deadline:
                raise ControllerError(f"no agent heartbeat within {timeout_s} s from {missing}")
            time.sleep(0.05)

    def seed_instances(self, timeout_s: float = 20.0) -> list[Instance]:
        """Start the topology's instances for real, then record them as running."""
        topo = self.bed.topology
        controller = self.runtime.controller
        now = time.time()
        steps: list[tuple[str, str, dict[str, Any]]] = []
        for seed in topo.instances:
            args: dict[str, Any] = {
                "instance": seed.id,
                "host": seed.host,
                "function": seed.function,
            }
            steps.append((f"seed/{seed.id}/sandbox", "create_sandbox", args))
            steps.append(
                (f"seed/{seed.id}/start", "start_function", {**args, "params": dict(seed.params)})
            )
        for key, action, args in steps:
            self.driver.submit(key, action, args, now)
            deadline = time.monotonic() + timeout_s
            while True:
                status = self.driver.poll(key, time.time())
                if status.outcome is Outcome.DONE:
                    break
                if status.outcome is Outcome.FAILED or time.monotonic() > deadline:
                    raise ControllerError(
                        f"{action} of {args['instance']} on {args['host']}: "
                        f"{status.message or 'no answer'}"
                    )
                time.sleep(0.02)
        placed = []
        for seed in topo.instances:
            instance = seed.to_instance(LifecycleStage.MONITORING, now)
            placed.append(controller.seed_instance(instance, now))
        return placed

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.runtime.start()

    def stop(self) -> None:
        self.runtime.stop()
        self._stop_serving.set()
        if self._server is not None:
            self._server.join(timeout=10)
            self._server = None
        store = self.runtime.controller.store
        if store is not None:
            store.close()
