"""Prometheus metrics, computed from the controller's state at scrape time.

A collector reads the live structures instead of the API keeping counters of its own, so
numbers cannot drift from what the controller actually holds, and each app gets its own
registry so several apps (tests, demo) in one process do not collide.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from edgeroam.model import HostState, LifecycleStage, OperationState
from edgeroam.runtime import Runtime


class ControllerCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        controller = self.runtime.controller
        with controller.lock:
            inv = controller.inventory
            hosts = Counter(h.state.value for h in inv.hosts.values())
            stages = Counter(i.stage.value for i in inv.instances.values())
            active = list(controller.engine.active.values())
            finished = list(controller.engine.finished)
            completed = controller.engine.completed_count
            events = dict(controller.events.counts)
            received = controller.telemetry.received
            last = controller.last_tick
            ticks = controller.ticks
        health = self.runtime.health()

        g = GaugeMetricFamily("edgeroam_hosts", "Hosts by scheduling state.", labels=["state"])
        for state in HostState:
            g.add_metric([state.value], hosts.get(state.value, 0))
        yield g

        g = GaugeMetricFamily(
            "edgeroam_instances", "Instances by lifecycle stage.", labels=["stage"]
        )
        for stage in LifecycleStage:
            if stage is not LifecycleStage.TERMINATED:
                g.add_metric([stage.value], stages.get(stage.value, 0))
        yield g

        ops = Counter(op.state.value for op in active)
        ops.update(op.state.value for op in finished)
        g = GaugeMetricFamily(
            "edgeroam_operations",
            "Operations by state: in flight, plus those finished within the engine's history.",
            labels=["state"],
        )
        for op_state in OperationState:
            g.add_metric([op_state.value], ops.get(op_state.value, 0))
        yield g

        c = CounterMetricFamily(
            "edgeroam_operations_completed", "Operations completed since start."
        )
        c.add_metric([], completed)
        yield c

        c = CounterMetricFamily(
            "edgeroam_events",
            "Events logged since start, by category and severity.",
            labels=["category", "severity"],
        )
        for (category, severity), count in sorted(events.items()):
            c.add_metric([category, severity], count)
        yield c

        c = CounterMetricFamily("edgeroam_readings_received", "Telemetry readings received.")
        c.add_metric([], received)
        yield c

        c = CounterMetricFamily("edgeroam_ticks", "Control cycles run.")
        c.add_metric([], ticks)
        yield c

        g = GaugeMetricFamily(
            "edgeroam_tick_duration_seconds", "Duration of the last control cycle."
        )
        g.add_metric([], last.duration_s if last is not None else 0.0)
        yield g

        g = GaugeMetricFamily("edgeroam_health_code", "Health status code (2000 = all good).")
        g.add_metric([], health.code)
        yield g


def build_registry(runtime: Runtime) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ControllerCollector(runtime))
    return registry


router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
def metrics(request: Request) -> Response:
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
