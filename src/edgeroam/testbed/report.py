"""The numbers of a testbed run, computed from what the agents reported and iperf3 measured.

Times are seconds since the start of the run. With the flood on and the filter still on the
server, the access link carries the flood ("before"); once the offloaded copy runs on the CPE
the flood stops at the CPE ("after"). `reaction_s` runs from the first band sample above the
threshold to the first sample below it, exactly as the agents measured them.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from typing import Any

from edgeroam.model import Operation, OperationKind, OperationState, Reading
from edgeroam.testbed.scenario import BedScenario
from edgeroam.testbed.topology import BedTopology
from edgeroam.testbed.traffic import FlowResult


def _mean(values: Iterable[float]) -> float | None:
    items = list(values)
    return round(statistics.fmean(items), 3) if items else None


def _series(readings: Sequence[Reading], t0: float) -> list[tuple[float, float]]:
    return [(r.timestamp - t0, r.value) for r in readings]


def _at(series: list[tuple[float, float]], t: float) -> float | None:
    """The last value at or before t."""
    value = None
    for ts, v in series:
        if ts > t:
            break
        value = v
    return value


def operation_view(op: Operation, t0: float) -> dict[str, Any]:
    return {
        "id": op.id,
        "kind": op.kind.value,
        "state": op.state.value,
        "subject": op.subject,
        "hosts": list(op.hosts),
        "instances": list(op.instances),
        "policy": op.policy,
        "created_s": round(op.created_at - t0, 3),
        "finished_s": round(op.finished_at - t0, 3) if op.finished_at is not None else None,
        "reason": op.reason.message,
    }


def build_report(
    *,
    scenario: BedScenario,
    bed: BedTopology,
    t0: float,
    readings: dict[tuple[str, str], list[Reading]],
    operations: Sequence[Operation],
    flows: dict[str, FlowResult],
    threshold: float,
) -> dict[str, Any]:
    spec = scenario.report
    assert spec is not None
    interval = scenario.telemetry_interval_s
    flood = next(t for t in scenario.traffic if t.id == spec.flood)
    server = next(h for h in bed.topology.hosts if h.id == spec.band_server)
    capacity = server.capacity.bandwidth_mbps
    link = next(lk for lk in bed.topology.links if lk.id == spec.access_link)
    band = _series(readings.get((f"host:{server.id}", "band.used_mbps"), []), t0)
    access = _series(readings.get((f"link:{link.id}", f"{spec.direction}_mbps"), []), t0)
    ratio = [(t, v / capacity) for t, v in band]

    above = next((t for t, r in ratio if t >= flood.start_s and r > threshold), None)
    below = (
        next((t for t, r in ratio if t > above and r < threshold), None)
        if above is not None
        else None
    )
    ops = sorted(operations, key=lambda o: o.created_at)
    offload = next(
        (
            o
            for o in ops
            if o.kind is OperationKind.OFFLOAD
            and o.state is OperationState.COMPLETED
            and o.created_at - t0 >= flood.start_s
        ),
        None,
    )
    active_s = offload.finished_at - t0 if offload and offload.finished_at else None
    revert = next(
        (
            o
            for o in ops
            if o.kind is OperationKind.REVERT
            and offload is not None
            and o.created_at >= offload.created_at
        ),
        None,
    )
    # "Before": from the first sample showing the flood above the threshold until the copy on
    # the CPE runs (the flood's process needs a moment to start, so not from its start_s).
    before_start = above if above is not None else flood.start_s + interval
    before_end = active_s if active_s is not None else flood.stop_s
    before = [v for t, v in access if before_start <= t <= before_end]
    if not before:
        # A reaction within one telemetry interval leaves no access sample between the trigger
        # and the move; a sample reports the rate over the interval before its timestamp, so
        # the first one after the trigger still measures the flood on the server.
        before = [v for t, v in access if t >= before_start][:1]
    after = (
        [v for t, v in access if active_s + 2 * interval <= t <= flood.stop_s]
        if active_s is not None
        else []
    )
    result: dict[str, Any] = {
        "scenario": scenario.name,
        "threshold": threshold,
        "telemetry_interval_s": interval,
        "link": link.id,
        "link_mbps": link.capacity_mbps,
        "band_capacity_mbps": capacity,
        "before_mbps": _mean(before),
        "after_mbps": _mean(after),
        "reaction_s": round(below - above, 3) if above is not None and below is not None else None,
        "first_above_s": round(above, 3) if above is not None else None,
        "first_below_s": round(below, 3) if below is not None else None,
        "filter_on_cpe_s": round(active_s, 3) if active_s is not None else None,
        "reverted_s": round(revert.finished_at - t0, 3)
        if revert is not None and revert.finished_at is not None
        else None,
        "band_before_mbps": _mean(v for t, v in band if before_start <= t <= before_end),
        "band_after_mbps": _mean(
            v
            for t, v in band
            if active_s is not None and active_s + 2 * interval <= t <= flood.stop_s
        ),
    }
    if spec.legit is not None and spec.legit in flows:
        legit = flows[spec.legit]
        spans = [(s - t0, e - t0, v) for s, e, v in legit.intervals]
        legit_spec = next(t for t in scenario.traffic if t.id == spec.legit)
        result["legit_mbps_idle"] = _mean(
            v for s, e, v in spans if legit_spec.start_s + 1 <= s and e <= flood.start_s
        )
        result["legit_mbps_before"] = _mean(
            v for s, e, v in spans if before_start - interval <= s and e <= before_end
        )
        result["legit_mbps_after"] = _mean(
            v
            for s, e, v in spans
            if active_s is not None and active_s + 0.5 <= s and e <= flood.stop_s
        )
        if legit.error:
            result["legit_error"] = legit.error
    flood_result = flows.get(flood.id)
    if flood_result is not None:
        result["flood"] = flood_result.summary or {"error": flood_result.error}
    hosts_of = {i.id: i.host for i in bed.instances}
    for op in ops:
        if op.kind is OperationKind.OFFLOAD:
            hosts_of.update(zip(op.created_instances, op.hosts, strict=False))
    settled = active_s + 2 * interval if active_s is not None else None
    result["counters"] = _counters(readings, hosts_of, t0, settled, flood.stop_s)
    result["operations"] = [operation_view(o, t0) for o in ops]
    result["timeline"] = [
        {
            "t": round(t, 3),
            "band_ratio": round(r, 3),
            "access_mbps": round(v, 2) if (v := _at(access, t)) is not None else None,
        }
        for t, r in ratio
        if t >= 0
    ]
    return result


def _counters(
    readings: dict[tuple[str, str], list[Reading]],
    hosts_of: dict[str, str],
    t0: float,
    settled_s: float | None,
    flood_end: float,
) -> dict[str, Any]:
    """Bytes counted by each function copy once the CPE copy runs and the samples have settled,
    and when the flood ended: the server's freezes, the CPE's keeps rising."""
    out: dict[str, Any] = {}
    if settled_s is None:
        return out
    for (source, metric), series in sorted(readings.items()):
        if metric != "fn.bytes" or not source.startswith("instance:"):
            continue
        name = source.removeprefix("instance:")
        points = _series(series, t0)
        start, end = _at(points, settled_s), _at(points, flood_end)
        out[name] = {
            "host": hosts_of.get(name),
            "bytes_settled": start,
            "bytes_at_flood_end": end,
            "grew_bytes": (end or 0) - (start or 0),
        }
    return out
