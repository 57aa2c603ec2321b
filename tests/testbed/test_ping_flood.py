"""Seed 000's specific example on a real bed, end to end (scenarios/testbed-ping-flood.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeroam.testbed.runner import run_scenario
from edgeroam.testbed.scenario import load_scenario
from tests.testbed.fixtures import leftovers

pytestmark = pytest.mark.root
SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "testbed-ping-flood.yaml"


def test_the_filter_moves_to_cpe_2_and_back(prefix: str) -> None:
    loaded = load_scenario(SCENARIO)
    report, removed = run_scenario(loaded, prefix)
    assert removed.left == [] and leftovers(prefix) == []
    link = report["link_mbps"]
    flood = next(t for t in loaded.scenario.traffic if t.id == "flood")

    # The flood really ran at ~90 % of the access link.
    assert report["flood"]["mbps"] == pytest.approx(0.9 * link, rel=0.08)
    # Before: it crossed access-2 and filled the band beyond the 70 % threshold.
    assert report["before_mbps"] > 0.7 * link
    assert report["band_before_mbps"] > 0.7 * report["band_capacity_mbps"]
    # One offload of the security filter to cpe-2 only, with the server copy's parameters.
    offloads = [o for o in report["operations"] if o["kind"] == "offload"]
    assert len(offloads) == 1
    assert offloads[0]["hosts"] == ["cpe-2"] and offloads[0]["state"] == "COMPLETED"
    assert offloads[0]["subject"] == "security@cpe-2"
    # The acceptance numbers: reaction within a second at 250 ms telemetry, access link
    # at most 10 % of its capacity afterwards.
    assert report["telemetry_interval_s"] == 0.25
    assert report["reaction_s"] is not None and report["reaction_s"] <= 1.0
    assert report["after_mbps"] <= 0.1 * link
    # The server's filter counter froze, the CPE copy's kept rising.
    counters = report["counters"]
    server = counters["security-shared"]
    [copy] = [c for c in counters.values() if c["host"] == "cpe-2"]
    assert server["grew_bytes"] == 0
    assert copy["grew_bytes"] > 0.5 * flood.rate_mbps * 1e6 / 8 * (flood.stop_s - 8)
    # Legitimate TCP kept flowing, and faster once the flood stopped at cpe-2.
    assert report["legit_mbps_before"] > 0
    assert report["legit_mbps_after"] > report["legit_mbps_before"]
    assert report["legit_mbps_after"] == pytest.approx(20, rel=0.15)
    # When the flood stopped, the filter returned to the server.
    reverts = [o for o in report["operations"] if o["kind"] == "revert"]
    assert len(reverts) == 1 and reverts[0]["state"] == "COMPLETED"
    assert reverts[0]["created_s"] > flood.stop_s
    assert report["health"] == 2000
