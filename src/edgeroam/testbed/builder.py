"""Building a bed from its plan, finding it again, and tearing everything down.

`up` writes the state file before it creates anything, so a bed that fails half-way (or whose
builder is killed) can still be found and removed; `teardown` does not even need the state
file: it removes whatever carries the prefix — namespaces (after killing the processes in
them), cgroups, the run directory.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeroam.testbed import cgroups
from edgeroam.testbed.nsutil import (
    CommandError,
    check_prefix,
    create_netns,
    delete_netns,
    ip_batch,
    list_netns,
    pids_in_netns,
    run,
    set_sysctls,
    tc_batch,
)
from edgeroam.testbed.plan import MGMT_BRIDGE, BedPlan, Node, NodeKind, build_plan
from edgeroam.testbed.topology import BedTopology

STATE_FILE = "state.json"
TBF_LATENCY_MS = 20
_WORKERS = 8


class BedError(RuntimeError):
    """A bed cannot be built or found; the message says what to do."""


def run_dir(prefix: str) -> Path:
    """Everything of a bed that is not a namespace lives here (state, logs, agent files)."""
    return Path("/run") / f"{check_prefix(prefix)}testbed"


def tbf_burst_bytes(rate_mbps: float) -> int:
    """4 ms worth of the rate, at least 32 KiB: enough for a GSO burst of a veth, small enough
    to keep the shaped rate close to the nominal one over our 250 ms telemetry intervals."""
    return max(32 * 1024, int(rate_mbps * 1e6 / 8 * 0.004))


def _ip_lines(node: Node) -> list[str]:
    lines = ["link set lo up"]
    for bridge, address in node.bridges.items():
        lines.append(f"link add {bridge} type bridge")
        if address:
            lines.append(f"addr add {address} dev {bridge}")
        lines.append(f"link set {bridge} up")
    for iface in node.ifaces:
        if iface.bridge:
            lines.append(f"link set {iface.name} master {iface.bridge}")
        if iface.address:
            lines.append(f"addr add {iface.address} dev {iface.name}")
        lines.append(f"link set {iface.name} up")
    for address in node.loopback:
        lines.append(f"addr add {address} dev lo")
    for route in node.routes:
        lines.append(f"route add {route.destination} via {route.via}")
    if node.default_via:
        lines.append(f"route add default via {node.default_via}")
    return lines


def _tc_lines(node: Node) -> list[str]:
    return [
        f"qdisc replace dev {i.name} root tbf rate {i.rate_mbps:g}mbit "
        f"burst {tbf_burst_bytes(i.rate_mbps)} latency {TBF_LATENCY_MS}ms"
        for i in node.ifaces
        if i.rate_mbps is not None
    ]


def _sysctls(node: Node) -> dict[str, str]:
    values = {
        # No IPv6 chatter (router solicitations, MLD) in the byte counters.
        "net.ipv6.conf.all.disable_ipv6": "1",
        "net.ipv6.conf.default.disable_ipv6": "1",
        # New namespaces start with forwarding off; routers need it on.
        "net.ipv4.ip_forward": "1" if node.forwarding else "0",
    }
    if any(i.name == "mgmt0" for i in node.ifaces):
        # Nothing arriving from the management network is ever routed onto the data links.
        values["net.ipv4.conf.mgmt0.forwarding"] = "0"
        values["net.ipv4.conf.mgmt0.rp_filter"] = "1"
    return values


def _configure(node: Node) -> None:
    ip_batch(_ip_lines(node), node.netns)
    tc_batch(_tc_lines(node), node.netns)
    set_sysctls(node.netns, _sysctls(node))


@dataclass
class Timings:
    namespaces_s: float = 0.0
    links_s: float = 0.0
    configure_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.namespaces_s + self.links_s + self.configure_s


@dataclass
class Bed:
    plan: BedPlan
    topology: BedTopology
    directory: Path
    timings: Timings = field(default_factory=Timings)

    @property
    def prefix(self) -> str:
        return self.plan.prefix

    @classmethod
    def up(
        cls,
        topology: BedTopology,
        prefix: str,
        progress: Callable[[str], None] | None = None,
    ) -> Bed:
        """Create every namespace, link, address, route and shaper of the topology."""
        check_prefix(prefix)
        existing = list_netns(prefix)
        if existing:
            raise BedError(
                f"{len(existing)} namespace(s) named {prefix}* exist already (e.g. "
                f"{existing[0]}): a bed is up; run `edgeroam testbed down` first"
            )
        plan = build_plan(topology, prefix)
        directory = run_dir(prefix)
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        bed = cls(plan, topology, directory)
        bed.save()
        say = progress or (lambda _m: None)
        try:
            t0 = time.perf_counter()
            create_netns(plan.namespaces(), prefix)
            t1 = time.perf_counter()
            say(f"{len(plan.nodes)} namespaces in {t1 - t0:.2f} s")
            ip_batch(
                f"link add {ia} netns {na} type veth peer name {ib} netns {nb}"
                for na, ia, nb, ib in plan.veths()
            )
            t2 = time.perf_counter()
            say(f"{len(plan.veths())} veth pairs in {t2 - t1:.2f} s")
            with ThreadPoolExecutor(_WORKERS) as pool:
                list(pool.map(_configure, plan.nodes.values()))
            t3 = time.perf_counter()
            say(f"addresses, routes, shapers and sysctls in {t3 - t2:.2f} s")
            bed.timings = Timings(t1 - t0, t2 - t1, t3 - t2)
        except BaseException:
            teardown(prefix)
            raise
        return bed

    def save(self) -> None:
        data = {
            "plan": self.plan.model_dump(mode="json"),
            "topology": self.topology.model_dump(mode="json"),
            "created_at": time.time(),
        }
        path = self.directory / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, prefix: str) -> Bed | None:
        """The bed whose state file is under the prefix's run directory, if any."""
        path = run_dir(prefix) / STATE_FILE
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(
            BedPlan.model_validate(data["plan"]),
            BedTopology.model_validate(data["topology"]),
            path.parent,
        )

    def status(self) -> dict[str, Any]:
        present = set(list_netns(self.prefix))
        wanted = set(self.plan.nodes)
        pids = pids_in_netns(sorted(present & wanted))
        return {
            "name": self.plan.name,
            "prefix": self.prefix,
            "namespaces": len(wanted),
            "missing": sorted(wanted - present),
            "unexpected": sorted(present - wanted),
            "processes": {ns: p for ns, p in sorted(pids.items()) if p},
            "hosts": {
                h: {"netns": ns, "mgmt": self.plan.nodes[ns].mgmt_address}
                for h, ns in sorted(self.plan.hosts.items())
            },
            "terminals": sorted(self.plan.terminals),
            "controller": self.plan.controller_address,
        }

    def netns_of(self, node_id: str) -> str:
        """Namespace of a host, site, terminal, or 'internet' / 'mgmt'."""
        for table in (self.plan.hosts, self.plan.terminals, self.plan.sites):
            if node_id in table:
                return table[node_id]
        if node_id == "internet":
            return self.plan.internet_netns
        if node_id == "mgmt":
            return self.plan.mgmt_netns
        raise KeyError(f"no host, terminal or site {node_id!r} in bed {self.plan.name!r}")

    def terminal_address(self, terminal: str) -> str | None:
        node = self.plan.nodes[self.plan.terminals[terminal]]
        address = node.ifaces[0].address
        return address.split("/")[0] if address else None

    def down(self) -> TeardownReport:
        return teardown(self.prefix)


@dataclass
class TeardownReport:
    namespaces: list[str] = field(default_factory=list)
    processes: int = 0
    cgroups: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "namespaces_removed": len(self.namespaces) - len(self.left),
            "processes_killed": self.processes,
            "cgroups_removed": len(self.cgroups),
            "left_behind": self.left,
            "seconds": round(self.seconds, 3),
        }


def teardown(prefix: str, wait_s: float = 30.0) -> TeardownReport:
    """Remove everything named with `prefix`: processes, namespaces, cgroups, run directory.

    `ip netns del` returns before the kernel has destroyed a namespace. The management
    namespaces go last: every host's `mgmt0` has its peer there, so once those ports have
    vanished the kernel has really destroyed the host namespaces (and their veths).
    """
    check_prefix(prefix)
    started = time.perf_counter()
    names = list_netns(prefix)
    report = TeardownReport(namespaces=names)
    report.processes = sum(len(p) for p in pids_in_netns(names).values())
    hubs = [n for n in names if n.endswith("mgmt")]
    # Processes first (delete_netns kills them), then the cgroups they were in can go.
    report.left = delete_netns([n for n in names if n not in hubs], prefix)
    deadline = time.monotonic() + wait_s
    for hub in hubs:
        while _ports(hub) and time.monotonic() < deadline:
            time.sleep(0.02)
    report.left += delete_netns(hubs, prefix)
    report.cgroups = cgroups.remove_all(prefix)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(run_dir(prefix))
    report.left += [f"netns {n}" for n in list_netns(prefix) if n not in report.left]
    report.left += [f"cgroup {c}" for c in cgroups.find_all(prefix)]
    report.seconds = time.perf_counter() - started
    return report


def _ports(netns: str) -> list[str]:
    """Interfaces of a management namespace besides its loopback and bridge."""
    try:
        data = json.loads(run(["ip", "-n", netns, "-j", "link", "show"], timeout=10))
    except (CommandError, json.JSONDecodeError):
        return []
    return [i["ifname"] for i in data if i.get("ifname") not in ("lo", MGMT_BRIDGE)]


def terminal_nodes(plan: BedPlan) -> list[Node]:
    return [n for n in plan.nodes.values() if n.kind is NodeKind.TERMINAL]
