"""Building, shaping and tearing down real beds; nothing may be left behind, even on failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from edgeroam.testbed.builder import Bed, BedError, run_dir, teardown
from edgeroam.testbed.nsutil import call_in_netns, list_netns, netns_exec_argv, run
from edgeroam.testbed.runner import run_scenario
from edgeroam.testbed.scenario import parse_scenario
from edgeroam.testbed.sender import send
from edgeroam.testbed.traffic import TrafficRunner
from tests.testbed.fixtures import leftovers
from tests.testbed.worlds import star

pytestmark = pytest.mark.root


def root_links() -> set[str]:
    return {item["ifname"] for item in json.loads(run(["ip", "-j", "link", "show"]))}


def rx_bytes(netns: str, ifname: str) -> int:
    data = json.loads(run(["ip", "-n", netns, "-s", "-j", "link", "show", "dev", ifname]))
    return int(data[0]["stats64"]["rx"]["bytes"])


def test_a_bed_is_built_reachable_and_removed_without_a_trace(prefix: str) -> None:
    before = root_links()
    bed = Bed.up(star(3), prefix)
    try:
        assert list_netns(prefix) == bed.plan.namespaces()
        assert bed.status()["missing"] == []
        assert root_links() == before  # nothing created in the machine's namespace
        qdisc = run(["tc", "-n", bed.plan.hosts["cpe-2"], "qdisc", "show", "dev", "acc-2"])
        assert "tbf" in qdisc and "rate 100Mbit" in qdisc
        for terminal in ("t1", "t2", "t3"):
            result = call_in_netns(
                bed.plan.terminals[terminal],
                lambda: send("icmp", "50.1.1.1", 1.0, size=100, count=3, count_replies=True),
            )
            assert result.replies == 3, f"{terminal} cannot reach the internet"
        with pytest.raises(BedError, match="a bed is up"):
            Bed.up(star(1), prefix)
    finally:
        report = bed.down()
    assert report.left == []
    assert leftovers(prefix) == []
    assert not run_dir(prefix).exists()
    assert root_links() == before


def test_access_links_are_shaped_to_their_capacity(
    make_bed: Callable[..., Bed],
) -> None:
    bed = make_bed(star(1, access_mbps=50.0))
    site = bed.plan.sites["dc"]
    start = rx_bytes(site, "acc-1")
    began = time.monotonic()
    result = call_in_netns(
        bed.plan.terminals["t1"],
        lambda: send("udp", "50.1.1.1", 150.0, size=1400, duration_s=1.5),
    )
    # The aggregation receives what the CPE's shaper let through: ~50, not ~150 Mbit/s.
    got = (rx_bytes(site, "acc-1") - start) * 8 / 1e6 / (time.monotonic() - began)
    assert result.mbps > 100
    assert 40 <= got <= 56, got


def test_teardown_removes_what_a_killed_builder_left(prefix: str) -> None:
    """A builder SIGKILLed with processes and sandboxes running leaves everything in place;
    `teardown` (what `edgeroam testbed down` runs) finds it all by prefix."""
    code = f"""
import os, subprocess, sys, time
from edgeroam.testbed.builder import Bed
from edgeroam.testbed.cgroups import Sandbox
from edgeroam.testbed.nsutil import netns_exec_argv
from tests.testbed.worlds import star
bed = Bed.up(star(2), {prefix!r})
sandbox = Sandbox({prefix!r}, "cpe-1", "x.1")
sandbox.create(0.1, 32)
procs = sandbox.path("memory") / "cgroup.procs"
argv = ["sh", "-c", f"echo $$ > {{procs}}; exec sleep 300"]
p = subprocess.Popen(netns_exec_argv(bed.plan.hosts["cpe-1"], argv), start_new_session=True)
print(p.pid, flush=True)
time.sleep(300)
"""
    builder = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert builder.stdout is not None
    sleeper = int(builder.stdout.readline())
    os.kill(builder.pid, signal.SIGKILL)
    builder.wait()
    found = leftovers(prefix)
    assert any(x.startswith("netns ") for x in found)
    assert f"pid {sleeper} in {prefix}h-cpe-1" in found
    assert any(x.startswith("cgroup memory/") for x in found)
    report = teardown(prefix)
    assert report.processes >= 1 and report.left == []
    assert leftovers(prefix) == []
    deadline = time.monotonic() + 3
    while os.path.exists(f"/proc/{sleeper}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{sleeper}")


def test_a_run_that_fails_midway_tears_everything_down(
    prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    topology = star(1).model_dump(mode="json")
    scenario = {
        "name": "fails",
        "topology": "<inline>",
        "duration_s": 5,
        "telemetry_interval_s": 0.25,
        "tick_s": 0.1,
        "traffic": [
            {"id": "f", "kind": "ping", "from": "t1", "to": "50.1.1.1", "rate_mbps": 1}
            | {"start_s": 0, "stop_s": 2}
        ],
    }
    loaded = parse_scenario(scenario, topology)
    seen: dict[str, object] = {}

    def broken(self: TrafficRunner, timeout_s: float = 5.0) -> None:
        # By now the controller serves and every agent runs: all of it must go.
        seen["namespaces"] = list_netns(prefix)
        seen["agents"] = len(self.bed.plan.hosts)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(TrafficRunner, "start_servers", broken)
    with pytest.raises(RuntimeError, match="injected failure"):
        run_scenario(loaded, prefix)
    assert seen["namespaces"] and seen["agents"] == 2
    assert leftovers(prefix) == []
    assert not run_dir(prefix).exists()
    agents = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and _cmdline(pid).count(str(run_dir(prefix)))
    ]
    assert agents == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def test_exec_argv_keeps_cgroups_visible(make_bed: Callable[..., Bed]) -> None:
    """Agents are started with nsenter, which leaves /sys/fs/cgroup mounted (ip netns exec
    remounts /sys and would hide the sandboxes' cgroups)."""
    bed = make_bed(star(1))
    out = run(netns_exec_argv(bed.plan.hosts["cpe-1"], ["ls", "/sys/fs/cgroup/memory"]))
    assert "cgroup.procs" in out
