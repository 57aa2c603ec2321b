"""`edgeroam bench testbed`: a large bed's build and teardown, and the ping-flood reaction.

Needs root. The bed is a star of N CPEs (one terminal each) behind one aggregation site and one
vCPE server, with the internet and the management network — every namespace, veth, address,
route and shaper a real bed has. The ping-flood runs are scenarios/testbed-ping-flood.yaml as
`edgeroam testbed run` runs it.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeroam.testbed.builder import Bed, teardown
from edgeroam.testbed.nsutil import list_netns
from edgeroam.testbed.topology import generate_topology

SCENARIO = Path(__file__).resolve().parents[3] / "scenarios" / "testbed-ping-flood.yaml"


def bench_bed(cpes: int, prefix: str, say: Callable[[str], None]) -> dict[str, Any]:
    topology = generate_topology(cpes, terminals_per_cpe=1)
    started = time.perf_counter()
    bed = Bed.up(topology, prefix, say)
    built = time.perf_counter() - started
    namespaces = len(list_netns(prefix))
    veths = len(bed.plan.veths())
    report = teardown(prefix)
    return {
        "cpes": cpes,
        "namespaces": namespaces,
        "veth_pairs": veths,
        "build_s": round(built, 3),
        "build_namespaces_s": round(bed.timings.namespaces_s, 3),
        "build_links_s": round(bed.timings.links_s, 3),
        "build_configure_s": round(bed.timings.configure_s, 3),
        "teardown_s": round(report.seconds, 3),
        "left_behind": report.left,
    }


def bench_ping_flood(runs: int, prefix: str, say: Callable[[str], None]) -> dict[str, Any]:
    from edgeroam.testbed.runner import run_scenario
    from edgeroam.testbed.scenario import load_scenario

    loaded = load_scenario(SCENARIO)
    results = []
    for i in range(runs):
        report, removed = run_scenario(loaded, prefix)
        keep = ("reaction_s", "before_mbps", "after_mbps", "legit_mbps_before", "legit_mbps_after")
        results.append({k: report.get(k) for k in keep} | {"left_behind": removed.left})
        say(f"ping-flood run {i + 1}/{runs}: {results[-1]}")
    reactions = [r["reaction_s"] for r in results if r["reaction_s"] is not None]
    afters = [r["after_mbps"] for r in results if r["after_mbps"] is not None]
    return {
        "scenario": str(SCENARIO.name),
        "telemetry_interval_s": loaded.scenario.telemetry_interval_s,
        "runs": results,
        "reaction_s_max": max(reactions) if reactions else None,
        "reaction_s_median": statistics.median(reactions) if reactions else None,
        "after_mbps_max": max(afters) if afters else None,
        "link_mbps": 100.0,
    }


def run_testbed_bench(
    cpes: int, flood_runs: int, prefix: str, say: Callable[[str], None]
) -> dict[str, Any]:
    result: dict[str, Any] = {"load_before": os.getloadavg()[0]}
    result["bed"] = bench_bed(cpes, prefix, say)
    if flood_runs:
        result["ping_flood"] = bench_ping_flood(flood_runs, prefix, say)
    result["load_after"] = os.getloadavg()[0]
    return result
