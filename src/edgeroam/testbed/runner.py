"""A bed with its controller and agents (a session), and a whole scenario run on it.

`run_scenario` owns everything it starts: whatever happens — an error, Ctrl-C, SIGTERM — the
`finally` stops traffic, agents and controller and tears the bed down, and the run directory's
logs can be copied out first.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeroam.model import Operation, OperationKind, OperationRequest, Reading, Reason
from edgeroam.policies.offload import BAND_USED, OffloadConfig
from edgeroam.testbed.agents import Fleet
from edgeroam.testbed.builder import Bed, TeardownReport
from edgeroam.testbed.controller import BedController
from edgeroam.testbed.report import build_report
from edgeroam.testbed.scenario import BedScenario, LoadedScenario
from edgeroam.testbed.traffic import TrafficRunner

Progress = Callable[[str], None]


@dataclass
class Session:
    bed: Bed
    fleet: Fleet
    controller: BedController

    def stop(self) -> None:
        # Agents first: their open long polls would otherwise hold the API's shutdown.
        try:
            self.fleet.stop()
        finally:
            self.controller.stop()

    def operate(
        self,
        kind: OperationKind,
        function: str,
        hosts: tuple[str, ...] = (),
        *,
        instances: tuple[str, ...] = (),
        params: dict[str, Any] | None = None,
        timeout_s: float = 20.0,
    ) -> Operation:
        """Ask the controller for an operation (as an operator would) and wait for its end."""
        controller = self.controller.runtime.controller
        request = OperationRequest(
            kind=kind,
            subject=f"{function}@{(hosts or instances)[0]}",
            function=function,
            hosts=hosts,
            instances=instances,
            params=params or {},
            reason=Reason(rule="manual", message="requested on the testbed"),
        )
        op = controller.request(request, time.time())
        deadline = time.monotonic() + timeout_s
        while True:
            with controller.lock:
                current = controller.operation(op.id)
            if current is not None and current.state.final:
                return current
            if time.monotonic() > deadline:
                raise TimeoutError(f"{op.id} {kind.value} not finished after {timeout_s} s")
            time.sleep(0.05)

    def latest(self, source: str, metric: str) -> tuple[float, float] | None:
        """(timestamp, value) of the newest reading of `metric` from `source`, if any."""
        history = self.controller.runtime.controller.telemetry.history(source, metric)
        return history[-1] if history else None

    def wait_reading(self, source: str, metric: str, after: float, timeout_s: float = 5.0) -> float:
        """The first value of `metric` from `source` stamped after `after` (wall time)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            point = self.latest(source, metric)
            if point is not None and point[0] > after:
                return point[1]
            time.sleep(0.05)
        raise TimeoutError(f"no {metric} from {source} after t={after:.3f} within {timeout_s} s")


def start_session(
    bed: Bed,
    *,
    interval_s: float,
    tick_s: float,
    stale_after_s: float,
    policies: dict[str, dict[str, Any]] | None = None,
    arbiter: dict[str, Any] | None = None,
    lifecycle: dict[str, Any] | None = None,
    progress: Progress | None = None,
    agent_timeout_s: float = 30.0,
) -> Session:
    """Controller on the management network, one agent per host, seed instances running."""
    say = progress or (lambda _m: None)
    fleet = Fleet(bed)
    # Agents first: they start in parallel with the controller and retry until it answers.
    fleet.start(interval_s)
    try:
        controller = BedController(
            bed,
            fleet.tokens,
            tick_s=tick_s,
            stale_after_s=stale_after_s,
            policies=policies,
            arbiter=arbiter,
            lifecycle=lifecycle,
        )
    except BaseException:
        fleet.stop()
        raise
    session = Session(bed, fleet, controller)
    try:
        controller.serve()
        say(f"controller API at {controller.url} (management network)")
        controller.wait_for_agents(sorted(bed.plan.hosts), agent_timeout_s, fleet.dead)
        say(f"{len(bed.plan.hosts)} agents reporting every {interval_s:g} s")
        placed = controller.seed_instances()
        say(f"{len(placed)} function instance(s) started")
        controller.start()
    except BaseException:
        session.stop()
        raise
    return session


def threshold_of(scenario: BedScenario) -> float:
    if scenario.report is not None and scenario.report.threshold is not None:
        return scenario.report.threshold
    config = OffloadConfig.model_validate(scenario.policies.get("offload", {}))
    return config.threshold


def _readings(session: Session, scenario: BedScenario) -> dict[tuple[str, str], list[Reading]]:
    store = session.controller.runtime.controller.store
    assert store is not None and scenario.report is not None
    spec = scenario.report
    wanted = [
        (f"host:{spec.band_server}", BAND_USED),
        (f"link:{spec.access_link}", f"{spec.direction}_mbps"),
    ]
    out: dict[tuple[str, str], list[Reading]] = {}
    for source, metric in wanted:
        out[(source, metric)] = store.readings(source=source, metric=metric, limit=100_000)
    for reading in store.readings(metric="fn.bytes", limit=100_000):
        out.setdefault((reading.source, reading.metric), []).append(reading)
    return out


def _operations(session: Session) -> list[Operation]:
    engine = session.controller.runtime.controller.engine
    with session.controller.runtime.controller.lock:
        return [*engine.finished, *engine.active.values()]


def run_scenario(
    loaded: LoadedScenario,
    prefix: str,
    *,
    progress: Progress | None = None,
    logs_to: Path | None = None,
) -> tuple[dict[str, Any], TeardownReport]:
    """Build, run, measure, tear down. Returns the report and what the teardown removed."""
    say = progress or (lambda _m: None)
    scenario = loaded.scenario
    bed = Bed.up(loaded.bed, prefix, say)
    say(f"bed {bed.plan.name!r} up in {bed.timings.total_s:.2f} s")
    session: Session | None = None
    traffic: TrafficRunner | None = None
    report: dict[str, Any] = {}
    try:
        session = start_session(
            bed,
            interval_s=scenario.telemetry_interval_s,
            tick_s=scenario.tick_s,
            stale_after_s=scenario.stale_s,
            policies=scenario.policies,
            arbiter=scenario.arbiter,
            lifecycle=scenario.lifecycle,
            progress=say,
        )
        traffic = TrafficRunner(bed, scenario.traffic)
        traffic.start_servers()
        t0 = time.time()
        t0_mono = time.monotonic()
        traffic.start(t0_mono)
        say(f"running {scenario.duration_s:g} s of traffic")
        next_note = 5.0
        while (elapsed := time.monotonic() - t0_mono) < scenario.duration_s:
            dead = session.fleet.dead()
            if dead:
                raise RuntimeError(f"agent(s) died during the run: {dead}")
            if elapsed >= next_note:
                ops = len(_operations(session))
                say(f"t={elapsed:4.0f} s, {ops} operation(s) so far")
                next_note += 5.0
            time.sleep(0.2)
        traffic.wait(5.0)
        time.sleep(2 * scenario.telemetry_interval_s)  # the last samples arrive
        if scenario.report is not None:
            report = build_report(
                scenario=scenario,
                bed=loaded.bed,
                t0=t0,
                readings=_readings(session, scenario),
                operations=_operations(session),
                flows=traffic.results(),
                threshold=threshold_of(scenario),
            )
        report["health"] = session.controller.runtime.health().code
    finally:
        removed = _finish(bed, session, traffic, logs_to, say)
    return report, removed


def _finish(
    bed: Bed,
    session: Session | None,
    traffic: TrafficRunner | None,
    logs_to: Path | None,
    say: Progress,
) -> TeardownReport:
    try:
        if traffic is not None:
            traffic.stop()
        if session is not None:
            session.stop()
    finally:
        if logs_to is not None:
            logs_to.mkdir(parents=True, exist_ok=True)
            for sub in ("logs", "traffic"):
                src = bed.directory / sub
                if src.exists():
                    shutil.copytree(src, logs_to / sub, dirs_exist_ok=True)
        report = bed.down()
        say(
            f"torn down: {len(report.namespaces)} namespaces, {report.processes} processes, "
            f"{len(report.cgroups)} cgroups in {report.seconds:.2f} s"
            + (f"; LEFT BEHIND: {report.left}" if report.left else "")
        )
    return report
