"""Driving a scenario's traffic: the project's sender for floods, iperf3 for legitimate flows.

Every flow is a process in its terminal's namespace, bounded by the flow's own duration (the
sender's `--duration`, iperf3's `-t`), and stopped by `stop()` in any case. iperf3 servers
listen on the internet namespace's addresses, one port per flow.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeroam.testbed.builder import Bed
from edgeroam.testbed.nsutil import call_in_netns, netns_exec_argv
from edgeroam.testbed.scenario import Traffic, TrafficKind
from edgeroam.testbed.sender import IP_HEADER, UDP_HEADER

IPERF_BASE_PORT = 5201
IPERF_INTERVAL_S = 0.25


@dataclass
class FlowRun:
    spec: Traffic
    port: int
    output: Path
    process: subprocess.Popen[bytes] | None = None
    launched_at: float | None = None
    """Wall time the process was started."""


@dataclass
class FlowResult:
    id: str
    kind: str
    launched_at: float | None
    summary: dict[str, Any] = field(default_factory=dict)
    intervals: list[tuple[float, float, float]] = field(default_factory=list)
    """(start, end, Mbit/s) in wall time (iperf3 flows)."""
    error: str | None = None


class TrafficRunner:
    def __init__(self, bed: Bed, flows: tuple[Traffic, ...]) -> None:
        self.bed = bed
        self.directory = bed.directory / "traffic"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.flows = [
            FlowRun(spec, IPERF_BASE_PORT + i, self.directory / f"{spec.id}.json")
            for i, spec in enumerate(flows)
        ]
        self.servers: list[subprocess.Popen[bytes]] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # -- iperf3 servers ------------------------------------------------------------------------
    def start_servers(self, timeout_s: float = 5.0) -> None:
        inet = self.bed.plan.internet_netns
        for flow in self.flows:
            if flow.spec.kind.by_sender:
                continue
            argv = ["iperf3", "-s", "-B", str(flow.spec.to), "-p", str(flow.port)]
            log = (self.directory / f"{flow.spec.id}.server.log").open("ab")
            self.servers.append(
                subprocess.Popen(
                    netns_exec_argv(inet, argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            )
            log.close()
            self._wait_listening(inet, str(flow.spec.to), flow.port, timeout_s)

    @staticmethod
    def _wait_listening(netns: str, address: str, port: int, timeout_s: float) -> None:
        """Poll the namespace's TCP table (no connection that iperf3 would take for a test)."""
        wanted = f"{_hex_address(address)}:{port:04X}"

        def listening() -> bool:
            with open("/proc/thread-self/net/tcp") as fh:
                return any(
                    line.split()[1] == wanted and line.split()[3] == "0A"
                    for line in fh.readlines()[1:]
                )

        deadline = time.monotonic() + timeout_s
        while not call_in_netns(netns, listening):
            if time.monotonic() > deadline:
                raise RuntimeError(f"iperf3 did not listen on {address}:{port} in {netns}")
            time.sleep(0.05)

    # -- flows --------------------------------------------------------------------------------
    def _argv(self, flow: FlowRun) -> list[str]:
        spec = flow.spec
        duration = spec.stop_s - spec.start_s
        if spec.kind.by_sender:
            return [
                sys.executable,
                "-m",
                "edgeroam.testbed.sender",
                "--proto",
                "icmp" if spec.kind is TrafficKind.PING else "udp",
                "--dst",
                str(spec.to),
                "--rate-mbps",
                f"{spec.rate_mbps:g}",
                "--size",
                str(spec.size),
                "--duration",
                f"{duration:g}",
                "--port",
                str(spec.port),
                "--prefix",
                self.bed.prefix,
            ]
        argv = [
            "iperf3",
            "-c",
            str(spec.to),
            "-p",
            str(flow.port),
            "-t",
            str(max(1, int(duration))),  # iperf3 takes whole seconds
            "-b",
            f"{spec.rate_mbps:g}M",
            # Socket pacing too: after a congested spell -b alone catches up in a burst.
            "--fq-rate",
            f"{spec.rate_mbps:g}M",
            "-i",
            f"{IPERF_INTERVAL_S:g}",
            "-J",
            "--connect-timeout",
            "3000",
        ]
        if spec.kind is TrafficKind.UDP:
            argv += ["-u", "-l", str(spec.size - IP_HEADER - UDP_HEADER)]
        return argv

    def launch(self, flow: FlowRun) -> None:
        ns = self.bed.netns_of(flow.spec.source)
        out = flow.output.open("wb")
        flow.launched_at = time.time()
        flow.process = subprocess.Popen(
            netns_exec_argv(ns, self._argv(flow)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        out.close()

    def start(self, t0_monotonic: float) -> None:
        """Launch every flow at its start time (relative to `t0_monotonic`) in a thread."""

        def schedule() -> None:
            for flow in sorted(self.flows, key=lambda f: f.spec.start_s):
                delay = t0_monotonic + flow.spec.start_s - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                self.launch(flow)

        self._thread = threading.Thread(target=schedule, name="traffic", daemon=True)
        self._thread.start()

    def stop(self, grace_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        processes = [f.process for f in self.flows if f.process is not None] + self.servers
        for p in processes:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + grace_s
        for p in processes:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(2.0)
        self.servers.clear()

    def wait(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        for flow in self.flows:
            if flow.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    flow.process.wait(max(0.0, deadline - time.monotonic()))

    # -- results ------------------------------------------------------------------------------
    def results(self) -> dict[str, FlowResult]:
        return {f.spec.id: _parse(f) for f in self.flows}


def _hex_address(address: str) -> str:
    """An IPv4 address as /proc/net/tcp writes it (little-endian hex)."""
    return socket.inet_aton(address)[::-1].hex().upper()


def _parse(flow: FlowRun) -> FlowResult:
    result = FlowResult(flow.spec.id, flow.spec.kind.value, flow.launched_at)
    if flow.process is None:
        result.error = "never started"
        return result
    try:
        text = flow.output.read_text(errors="replace")
    except OSError as exc:
        result.error = f"no output: {exc}"
        return result
    if flow.spec.kind.by_sender:
        line = text.strip().splitlines()[-1] if text.strip() else ""
        try:
            result.summary = json.loads(line)
        except json.JSONDecodeError:
            result.error = f"sender: {text.strip()[-300:] or 'no output'}"
        return result
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        result.error = f"iperf3: {text.strip()[-300:] or 'no output'}"
        return result
    if "error" in data:
        result.error = f"iperf3: {data['error']}"
    base = flow.launched_at or 0.0
    for interval in data.get("intervals", []):
        s = interval.get("sum", {})
        if "start" in s and "end" in s:
            result.intervals.append(
                (base + s["start"], base + s["end"], s.get("bits_per_second", 0.0) / 1e6)
            )
    end = data.get("end", {})
    received = end.get("sum_received") or end.get("sum") or {}
    result.summary = {
        "mbps": round(received.get("bits_per_second", 0.0) / 1e6, 3),
        "bytes": received.get("bytes", 0),
        "seconds": round(received.get("seconds", 0.0), 3),
    }
    return result
