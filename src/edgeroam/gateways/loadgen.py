"""Customer traffic for the vRGW capacity experiment: iperf3 downstream to every terminal.

Each customer pulls its profile from the bed's Internet (``iperf3 -R``, so the vRGW's NAT is
exercised the way a home uses it): one UDP stream at the profile's TV-plus-telephony rate
(1316-byte datagrams, seven MPEG-TS packets, as IPTV carries them) and one TCP stream that is
not capped and takes what is left, as in the seed. Every process is bounded by iperf3's own
``-t`` and killed at the end in any case; all run in one cgroup so their own CPU time can be
told apart from the node's. Rates are application payload rates.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeroam.gateways.netns_vrgw import INTERNET_SERVER, VrgwBed, VrgwError
from edgeroam.testbed import cgroups
from edgeroam.testbed.nsutil import netns_exec_argv

BASE_PORT = 5300
WARMUP_S = 1.0
SPAWN_BUDGET_S = 0.08
"""Time allowed per process launch before the flows' common end."""
"""Seconds after the last flow started before the common measurement window opens."""
UDP_PAYLOAD = 1316
MAX_DURATION_S = 60.0


@dataclass(frozen=True)
class Load:
    customer: str
    index: int
    """Customer number: its server ports are BASE_PORT + 2*index (TCP) and + 1 (UDP)."""
    udp_mbps: float


@dataclass(frozen=True)
class LoadResult:
    customer: str
    tcp_mbps: float
    udp_offered_mbps: float
    udp_mbps: float
    udp_loss: float
    error: str | None = None

    @property
    def total_mbps(self) -> float:
        return self.tcp_mbps + self.udp_mbps


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    total = sum(fields[:8])
    return total - idle, total


def kernel_ticks(cgroup_dirs: list[Path]) -> float:
    """Kernel-mode CPU ticks (USER_HZ) of the given cpuacct cgroups plus the ksoftirqd
    threads: where this kernel (no IRQ time accounting) charges packet forwarding."""
    total = 0.0
    for directory in cgroup_dirs:
        with contextlib.suppress(OSError, ValueError):
            stat = dict(
                line.split() for line in (directory / "cpuacct.stat").read_text().splitlines()
            )
            total += float(stat.get("system", 0))
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            if not (entry / "comm").read_text().startswith("ksoftirqd/"):
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            total += float(fields[11]) + float(fields[12])  # utime + stime
    return total


class LoadGenerator:
    """iperf3 servers on the bed's Internet, one pair of ports per customer number."""

    def __init__(self, bed: VrgwBed, customers: int) -> None:
        if customers < 1:
            raise ValueError("at least one customer")
        self.bed = bed
        self.customers = customers
        self.directory = bed.directory / "load"
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sandbox = cgroups.Sandbox(bed.prefix, "load", "iperf3")
        self.servers: list[subprocess.Popen[bytes]] = []

    def _spawn(self, ns: str, argv: list[str], out: Path | None = None) -> subprocess.Popen[bytes]:
        sink = out.open("wb") if out is not None else subprocess.DEVNULL
        try:
            return subprocess.Popen(
                netns_exec_argv(ns, argv),
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=self.sandbox.enter,
                start_new_session=True,
            )
        finally:
            if out is not None and not isinstance(sink, int):
                sink.close()

    def start(self, timeout_s: float = 10.0) -> None:
        self.sandbox.create(vcpu=0.0, memory_mb=0.0)
        for i in range(self.customers):
            for port in (BASE_PORT + 2 * i, BASE_PORT + 2 * i + 1):
                argv = ["iperf3", "-s", "-p", str(port), "-B", str(INTERNET_SERVER)]
                self.servers.append(self._spawn(self.bed.inet, argv))
        wanted = {f":{BASE_PORT + p:04X} " for p in range(2 * self.customers)}
        deadline = time.monotonic() + timeout_s
        probe = Path(f"/proc/{self.servers[0].pid}/net/tcp")
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                listening = {
                    w for line in probe.read_text().splitlines() for w in wanted if w in line
                }
                if listening == wanted:
                    return
            time.sleep(0.05)
        raise VrgwError(f"iperf3 servers not listening within {timeout_s} s")

    def run(
        self, loads: list[Load], duration_s: float, vrgw_cgroups: list[Path] | None = None
    ) -> tuple[list[LoadResult], dict[str, float]]:
        """Drive every load at once for `duration_s`; per-customer results and CPU shares in
        percent of all CPUs: `forwarding` (kernel time of the generators' and vRGWs'
        cgroups plus ksoftirqd — the node's packet work, with the generators' own socket
        calls), `machine` (everything busy, other users of the machine included)."""
        if not 1 <= duration_s <= MAX_DURATION_S:
            raise ValueError(f"duration must be within 1..{MAX_DURATION_S} s")
        # Every flow ends at the same moment: later-launched ones run shorter, so the common
        # window is `duration_s` long however slowly the machine spawns processes.
        end_at = time.time() + SPAWN_BUDGET_S * 2 * len(loads) + duration_s + WARMUP_S
        procs: list[tuple[Load, str, subprocess.Popen[bytes], Path, float]] = []
        groups = [self.sandbox.path("cpuacct"), *(vrgw_cgroups or [])]
        kernel0 = kernel_ticks(groups)
        busy0, total0 = cpu_times()
        for load in loads:
            ns = self.bed.terminal_ns(load.customer)
            t = str(max(2, round(end_at - time.time())))
            base = ["iperf3", "-c", str(INTERNET_SERVER), "-R", "-t", t, "-i", "0.5", "-J"]
            base += ["--connect-timeout", "3000"]
            tcp_out = self.directory / f"{load.index}-tcp.json"
            udp_out = self.directory / f"{load.index}-udp.json"
            tcp = [*base, "-p", str(BASE_PORT + 2 * load.index)]
            udp = [*base, "-p", str(BASE_PORT + 2 * load.index + 1), "-u"]
            udp += ["-b", f"{load.udp_mbps:.4f}M", "-l", str(UDP_PAYLOAD)]
            for kind, argv, out in (("tcp", tcp, tcp_out), ("udp", udp, udp_out)):
                launched = time.time()
                procs.append((load, kind, self._spawn(ns, argv, out), out, launched))
        deadline = time.monotonic() + max(0.0, end_at - time.time()) + 15
        for _, _, proc, _, _ in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(proc)
        busy1, total1 = cpu_times()
        kernel1 = kernel_ticks(groups)
        span = max(1.0, total1 - total0)  # jiffies of all CPUs together
        cpu = {
            "forwarding": (kernel1 - kernel0) / span * 100,
            "machine": (busy1 - busy0) / span * 100,
        }
        parsed = [(load, kind, _parse(out, launched)) for load, kind, _, out, launched in procs]
        # One window common to every flow (all started and warmed up, none finished yet), so
        # per-customer rates add up to what the trunk carried at the same time.
        spans = [d["intervals"] for _, _, d in parsed if d.get("intervals")]
        window = (
            (
                max(s[0][0] for s in spans) + WARMUP_S,
                min(s[-1][1] for s in spans),
            )
            if spans
            else (0.0, 0.0)
        )
        if window[1] - window[0] < 1.0:
            raise VrgwError(f"flows overlapped for only {window[1] - window[0]:.2f} s")
        by_customer: dict[str, dict[str, Any]] = {}
        for load, kind, data in parsed:
            by_customer.setdefault(load.customer, {"load": load})[kind] = _in_window(data, window)
        results = []
        for customer, parts in by_customer.items():
            load = parts["load"]
            tcp_data, udp_data = parts.get("tcp", {}), parts.get("udp", {})
            error = tcp_data.get("error") or udp_data.get("error")
            results.append(
                LoadResult(
                    customer=customer,
                    tcp_mbps=tcp_data.get("mbps", 0.0),
                    udp_offered_mbps=load.udp_mbps,
                    udp_mbps=udp_data.get("mbps", 0.0),
                    udp_loss=udp_data.get("loss", 1.0 if error else 0.0),
                    error=error,
                )
            )
        return results, cpu

    def stop(self) -> None:
        for proc in self.servers:
            _kill(proc)
        self.servers.clear()
        with contextlib.suppress(cgroups.SandboxError):
            self.sandbox.destroy()


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=3)


def _parse(path: Path, launched: float) -> dict[str, Any]:
    """Per-interval received bytes (and UDP packets/losses) of one iperf3 -R client's JSON
    report, on the wall clock (interval offsets from the moment the client was launched)."""
    try:
        data = json.loads(path.read_text(errors="replace"))
    except (OSError, json.JSONDecodeError):
        text = path.read_text(errors="replace")[-300:] if path.exists() else ""
        return {"error": f"iperf3: {text.strip() or 'no output'}"}
    if "error" in data:
        return {"error": f"iperf3: {data['error']}"}
    intervals = []
    for item in data.get("intervals", []):
        s = item.get("sum", {})
        if "start" not in s or "end" not in s:
            continue
        intervals.append(
            (
                launched + float(s["start"]),
                launched + float(s["end"]),
                float(s.get("bytes", 0)),
                int(s.get("packets", 0)),
                int(s.get("lost_packets", 0)),
            )
        )
    return {"intervals": intervals}


def _in_window(data: dict[str, Any], window: tuple[float, float]) -> dict[str, Any]:
    """Mbit/s received within `window` (intervals pro rata) and the UDP loss there."""
    if "error" in data:
        return data
    lo, hi = window
    bits = packets = lost = 0.0
    for start, end, nbytes, pkts, lost_pkts in data["intervals"]:
        overlap = min(end, hi) - max(start, lo)
        if overlap <= 0 or end <= start:
            continue
        share = overlap / (end - start)
        bits += nbytes * 8 * share
        packets += pkts * share
        lost += lost_pkts * share
    out: dict[str, Any] = {"mbps": bits / (hi - lo) / 1e6}
    if packets > 0:
        out["loss"] = lost / packets
    return out
