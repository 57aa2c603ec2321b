"""vRGWs for real: Linux network namespaces, VXLAN circuits, nftables, dnsmasq, cgroup freezer.

The bed (every name starts with the prefix, ``er8-`` by default):

* ``inet`` — the Internet: a server address (198.18.0.1) and routes back to each node's WAN
  range (RFC 2544 benchmarking space, so nothing here can collide with a real network);
* ``an`` — the access node: the VXLAN endpoint of every customer circuit, one trunk (a veth,
  shaped with tbf) to each virtualization node;
* ``n<k>`` — virtualization node k (the "hypervisor"): its trunk, its uplink to ``inet`` and
  one WAN veth per vRGW; an nftables table drops traffic between vRGWs;
* ``g<k>-<i>`` — one vRGW on node k: ``lan0`` (the customer's circuit) and ``wan0``; its
  nftables table (NAT, firewall), its dnsmasq (DHCP, DNS cache) in a cgroup sandbox whose
  freezer suspends it while it waits in the pool;
* ``c<j>`` — customer j's home: the ONT and the unmanaged bridge ``br0`` joining its uplink
  (a port of the access node) and the terminals ``c<j>t<m>`` (each a namespace with ``eth0``).

Circuits. This kernel has no 802.1Q/802.1ad devices (`vlan_support` detects it at run time),
so a circuit is a VXLAN segment whose network identifier carries both tags,
``vni = s_tag * 4096 + c_tag``: at the access node it is bridged with the home's uplink port,
at the node with the vRGW's ``lan0``. Nothing moves between namespaces when a vRGW is
activated (moving a device costs ~20 ms here), which keeps claims fast. Moving a vRGW
re-points the access node's flood entry at the new node — the C-VLAN remapping the seed leaves
open. Where the kernel has 802.1ad the
same circuit can be stacked VLANs on the trunk (`stacked_vlan_lines`).

`NetnsVrgwDriver` is a `Driver`: the lifecycle engine's actions build, start, claim, update,
migrate, stop and remove vRGWs here, synchronously, recording how long each took. Everything
is removed by `VrgwBed.down` (by prefix, so also after a crash).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from edgeroam.drivers.base import ACTIONS, ActionStatus, DriverView, Outcome
from edgeroam.gateways.leases import Lease, parse_dnsmasq
from edgeroam.gateways.migration import MigrationMode
from edgeroam.gateways.settings import GatewaySettings, from_params
from edgeroam.gateways.template import (
    LAN_IF,
    MEMORY_MB,
    WAN_IF,
    ChangePlan,
    changes,
    render_dnsmasq,
    render_nftables,
)
from edgeroam.gateways.vlan import Circuit
from edgeroam.testbed import cgroups
from edgeroam.testbed.builder import run_dir, tbf_burst_bytes, teardown
from edgeroam.testbed.dhcp import HOOK
from edgeroam.testbed.nsutil import (
    CommandError,
    check_prefix,
    create_netns,
    delete_netns,
    ip_batch,
    list_netns,
    netns_exec_argv,
    run,
    set_sysctls,
    tc_batch,
)

DEFAULT_PREFIX = "er8-"
AN_VTEP = ipaddress.IPv4Address("10.255.255.1")
INTERNET_SERVER = ipaddress.IPv4Address("198.18.0.1")
VXLAN_PORT = 4789
TRUNK_MTU = 1550
"""Room for the 50 bytes of VXLAN encapsulation, so customer segments keep a 1500 MTU."""
TBF_LATENCY_MS = 20
READY_TIMEOUT_S = 5.0


class VrgwError(RuntimeError):
    """A bed or vRGW cannot be built or changed; the message names the step."""


# -- addressing (pure) -------------------------------------------------------------------------


def node_vtep(k: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(f"10.255.255.{10 + k}")


def trunk_net(k: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"10.255.{k}.0/30")


def uplink_net(k: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network(f"198.18.{100 + k}.0/30")


def wan_range(k: int) -> ipaddress.IPv4Network:
    """Node k's WAN addresses: one /30 per vRGW copy (16383 of them)."""
    return ipaddress.IPv4Network(f"100.{64 + k}.0.0/16")


def wan_net(k: int, i: int) -> ipaddress.IPv4Network:
    if not 0 <= i < 16383:
        raise VrgwError(f"node {k} has no WAN /30 number {i}")
    return ipaddress.IPv4Network((int(wan_range(k).network_address) + 4 * (i + 1), 30))


@dataclass(frozen=True)
class VlanSupport:
    """What the running kernel can make (probed in a throw-away namespace)."""

    dot1q: bool
    dot1ad: bool
    vxlan: bool

    @property
    def mapping(self) -> str:
        return "stacked-vlan" if self.dot1q and self.dot1ad else "vxlan"


def vlan_support(prefix: str = DEFAULT_PREFIX) -> VlanSupport:
    """Try to create 802.1Q, 802.1ad and VXLAN devices on a veth in a probe namespace."""
    check_prefix(prefix)
    ns = f"{prefix}probe"
    if ns in list_netns(prefix):
        delete_netns([ns], prefix)
    create_netns([ns], prefix)
    try:
        ip_batch(["link add p0 type veth peer name p1"], ns)

        def ok(line: str) -> bool:
            try:
                ip_batch([line], ns)
                return True
            except CommandError:
                return False

        return VlanSupport(
            dot1q=ok("link add link p0 name q100 type vlan id 100"),
            dot1ad=ok("link add link p0 name s100 type vlan proto 802.1ad id 100"),
            vxlan=ok(f"link add x1 type vxlan id 1 dstport {VXLAN_PORT} local 127.0.0.1"),
        )
    finally:
        delete_netns([ns], prefix)


def stacked_vlan_lines(trunk: str, circuit: Circuit) -> list[str]:
    """`ip` lines making a circuit's 802.1ad/802.1Q pair on `trunk` (kernels with 8021q)."""
    outer = f"{trunk}.s{circuit.s_tag}"
    return [
        f"link add link {trunk} name {outer} type vlan proto 802.1ad id {circuit.s_tag}",
        f"link set {outer} up",
        f"link add link {outer} name c{circuit.vni} type vlan proto 802.1Q id {circuit.c_tag}",
    ]


def lan_mac(circuit: Circuit) -> str:
    """A locally administered MAC derived from the circuit (stable for its customer)."""
    v = circuit.vni
    return f"02:e8:{v >> 16 & 255:02x}:{v >> 8 & 255:02x}:{v & 255:02x}:01"


def vxlan_line(name: str, circuit: Circuit, local: ipaddress.IPv4Address, remote: str) -> str:
    peer = f" remote {remote}" if remote else ""
    return (
        f"link add {name} mtu 1500 type vxlan id {circuit.vni} local {local}{peer} "
        f"dstport {VXLAN_PORT} nolearning"
    )


# -- the bed -----------------------------------------------------------------------------------


@dataclass
class Home:
    customer: str
    index: int
    terminals: int
    circuit: Circuit | None = None
    node: int | None = None
    """Node the circuit's flood entry currently points at."""


@dataclass
class VrgwBed:
    prefix: str = DEFAULT_PREFIX
    nodes: tuple[str, ...] = ("node-a",)
    trunk_mbps: float | None = None
    trunk_queue_ms: float = TBF_LATENCY_MS
    """Queue of the trunk's shaper, in ms at its rate (tbf `latency`)."""
    homes: dict[str, Home] = field(default_factory=dict)
    support: VlanSupport | None = None
    up_s: float = 0.0

    # -- names ----------------------------------------------------------------------------
    def ns(self, what: str) -> str:
        return f"{self.prefix}{what}"

    @property
    def inet(self) -> str:
        return self.ns("inet")

    @property
    def an(self) -> str:
        return self.ns("an")

    def node_index(self, node: str) -> int:
        try:
            return self.nodes.index(node)
        except ValueError:
            raise VrgwError(f"{node!r} is not a virtualization node of the bed") from None

    def node_ns(self, node: str | int) -> str:
        k = node if isinstance(node, int) else self.node_index(node)
        return self.ns(f"n{k}")

    def home_ns(self, customer: str) -> str:
        return self.ns(f"c{self.homes[customer].index}")

    def terminal_ns(self, customer: str, m: int = 0) -> str:
        return self.ns(f"c{self.homes[customer].index}t{m}")

    @property
    def directory(self) -> Path:
        return run_dir(self.prefix)

    # -- building -------------------------------------------------------------------------
    def up(self) -> VrgwBed:
        """Internet, access node, nodes and trunks; nothing of it is left on failure."""
        check_prefix(self.prefix)
        existing = list_netns(self.prefix)
        if existing:
            raise VrgwError(
                f"{len(existing)} namespace(s) named {self.prefix}* exist already (e.g. "
                f"{existing[0]}); remove them first (edgeroam gateways down)"
            )
        started = time.perf_counter()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o700)
        try:
            self.support = vlan_support(self.prefix)
            if not self.support.vxlan:
                raise VrgwError("the kernel cannot make VXLAN devices: no circuits possible")
            names = [self.inet, self.an, *(self.node_ns(k) for k in range(len(self.nodes)))]
            create_netns(names, self.prefix)
            for name in names:
                set_sysctls(name, _ROUTER_SYSCTLS)
            ip_batch(
                ["link set lo up", "addr add 198.18.0.1/32 dev lo"]
                + [
                    f"link add u{k} type veth peer name up0 netns {self.node_ns(k)}"
                    for k in range(len(self.nodes))
                ],
                self.inet,
            )
            ip_batch(
                ["link set lo up", f"addr add {AN_VTEP}/32 dev lo"]
                + [
                    f"link add tk{k} mtu {TRUNK_MTU} type veth peer name tk0 "
                    f"netns {self.node_ns(k)}"
                    for k in range(len(self.nodes))
                ],
                self.an,
            )
            inet_lines, an_lines = [], []
            for k in range(len(self.nodes)):
                up, tk = uplink_net(k), trunk_net(k)
                inet_lines += [
                    f"addr add {up.network_address + 1}/30 dev u{k}",
                    f"link set u{k} up",
                    f"route add {wan_range(k)} via {up.network_address + 2}",
                ]
                an_lines += [
                    f"addr add {tk.network_address + 1}/30 dev tk{k}",
                    f"link set tk{k} up",
                    f"route add {node_vtep(k)}/32 via {tk.network_address + 2}",
                ]
                ip_batch(
                    [
                        "link set lo up",
                        f"addr add {node_vtep(k)}/32 dev lo",
                        f"addr add {up.network_address + 2}/30 dev up0",
                        "link set up0 up",
                        f"addr add {tk.network_address + 2}/30 dev tk0",
                        f"link set tk0 mtu {TRUNK_MTU} up",
                        f"route add {AN_VTEP}/32 via {tk.network_address + 1}",
                        f"route add default via {up.network_address + 1}",
                    ],
                    self.node_ns(k),
                )
                _nft(self.node_ns(k), _NODE_ISOLATION)
                if self.trunk_mbps is not None:
                    q = self.trunk_queue_ms
                    tc_batch([_tbf("tk0", self.trunk_mbps, q)], self.node_ns(k))
                    tc_batch([_tbf(f"tk{k}", self.trunk_mbps, q)], self.an)
            ip_batch(inet_lines, self.inet)
            ip_batch(an_lines, self.an)
        except BaseException:
            self.down()
            raise
        self.up_s = time.perf_counter() - started
        self.save()
        return self

    def add_home(self, customer: str, terminals: int = 1) -> Home:
        """The customer's premises: a bridge and `terminals` devices without addresses."""
        if customer in self.homes:
            return self.homes[customer]
        if not 0 <= terminals <= 50:
            raise VrgwError("a home has 0 to 50 terminals")
        home = Home(customer, len(self.homes), terminals)
        self.homes[customer] = home
        hns = self.home_ns(customer)
        tns = [self.terminal_ns(customer, m) for m in range(terminals)]
        try:
            create_netns([hns, *tns], self.prefix)
            set_sysctls(hns, {**_HOST_SYSCTLS, "net.ipv4.ip_forward": "0"})
            # The ONT's uplink: a port of the access node, joined to the circuit when one
            # is provisioned (so activation never moves a device between namespaces).
            ip_batch([f"link add a{home.index} type veth peer name up0 netns {hns}"], self.an)
            lines = [
                "link set lo up",
                "link add br0 type bridge",
                "link set br0 up",
                "link set up0 master br0",
                "link set up0 up",
            ]
            for m, t in enumerate(tns):
                lines += [
                    f"link add tp{m} type veth peer name eth0 netns {t}",
                    f"link set tp{m} master br0",
                    f"link set tp{m} up",
                ]
            ip_batch(lines, hns)
            for t in tns:
                set_sysctls(t, _HOST_SYSCTLS)
                ip_batch(["link set lo up", "link set eth0 up"], t)
        except BaseException:
            delete_netns([n for n in (hns, *tns) if n in list_netns(self.prefix)], self.prefix)
            ip_batch([f"link del a{home.index}"], self.an, force=True)
            del self.homes[customer]
            raise
        self.save()
        return home

    def attach(self, customer: str, circuit: Circuit, node: int) -> None:
        """Make the customer's circuit reach node `node` (create it at the access node first)."""
        home = self.homes.get(customer)
        if home is None:
            return  # no premises in this bed: only the node's end exists
        dev, bridge = f"vx{circuit.vni}", f"b{circuit.vni}"
        target = str(node_vtep(node))
        if home.circuit is not None and home.circuit != circuit:
            self.detach(customer)
        for other in self.homes.values():
            if other is not home and other.circuit == circuit:
                self.detach(other.customer)  # the tags were handed to this customer since
        if home.circuit is None:
            ip_batch(
                [
                    vxlan_line(dev, circuit, AN_VTEP, ""),
                    f"link add {bridge} type bridge",
                    f"link set {dev} master {bridge}",
                    f"link set a{home.index} master {bridge}",
                    f"link set {dev} up",
                    f"link set a{home.index} up",
                    f"link set {bridge} up",
                ],
                self.an,
            )
            _bridge_batch(self.an, [_fdb("append", dev, target)])
        elif home.node != node:
            # Make before break: flood to the new node, then stop flooding to the old one.
            old = [_fdb("del", dev, str(node_vtep(home.node)))] if home.node is not None else []
            _bridge_batch(self.an, [_fdb("append", dev, target), *old])
        home.circuit, home.node = circuit, node
        self.save()

    def detach(self, customer: str) -> None:
        home = self.homes.get(customer)
        if home is None or home.circuit is None:
            return
        vni = home.circuit.vni
        ip_batch([f"link del vx{vni}", f"link del b{vni}"], self.an, force=True)
        home.circuit, home.node = None, None
        self.save()

    def save(self) -> None:
        data = {
            "prefix": self.prefix,
            "nodes": list(self.nodes),
            "trunk_mbps": self.trunk_mbps,
            "homes": {
                c: {
                    "index": h.index,
                    "terminals": h.terminals,
                    "circuit": [h.circuit.access_node, h.circuit.s_tag, h.circuit.c_tag]
                    if h.circuit
                    else None,
                    "node": h.node,
                }
                for c, h in self.homes.items()
            },
        }
        if self.directory.exists():
            path = self.directory / "vrgw-bed.json"
            path.write_text(json.dumps(data, indent=1))

    def down(self) -> dict[str, Any]:
        """Remove every namespace, process, cgroup and file carrying the prefix."""
        # Suspended vRGWs first: a task in a self-frozen cgroup ignores even SIGKILL, and
        # thawing a parent does not thaw a child frozen on its own.
        root = cgroups.CGROUP_ROOT / "freezer" / cgroups.root_name(self.prefix)
        if root.is_dir():
            for state in root.rglob("freezer.state"):
                with contextlib.suppress(OSError):
                    state.write_text("THAWED")
        report = teardown(self.prefix)
        self.homes.clear()
        return report.as_dict()


_HOST_SYSCTLS = {
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
_ROUTER_SYSCTLS = {**_HOST_SYSCTLS, "net.ipv4.ip_forward": "1"}

_NODE_ISOLATION = """\
table ip er8node
delete table ip er8node
table ip er8node {
  chain forward {
    type filter hook forward priority filter; policy accept;
    iifname "w*" oifname "w*" counter drop
  }
}
"""


def _tbf(dev: str, mbps: float, queue_ms: float = TBF_LATENCY_MS) -> str:
    return (
        f"qdisc replace dev {dev} root tbf rate {mbps:g}mbit "
        f"burst {tbf_burst_bytes(mbps)} latency {queue_ms:g}ms"
    )


def _fdb(verb: str, dev: str, dst: str) -> str:
    """A `bridge` line for the circuit's flood entry (all-zero MAC: unknown destinations)."""
    return f"fdb {verb} 00:00:00:00:00:00 dev {dev} dst {dst}"


def _bridge_batch(ns: str, lines: Sequence[str]) -> None:
    run(["bridge", "-n", ns, "-batch", "-"], input="\n".join(lines) + "\n")


def _nft(ns: str, script: str) -> None:
    run(netns_exec_argv(ns, ["nft", "-f", "-"]), input=script)


# -- one vRGW copy -----------------------------------------------------------------------------


@dataclass
class VrgwCopy:
    instance: str
    node: int
    index: int
    ns: str
    state_dir: Path
    sandbox: cgroups.Sandbox
    status: str = "built"  # built | suspended | serving | frozen | stopped
    circuit: Circuit | None = None
    subscriber: str = ""
    dnsmasq: subprocess.Popen[bytes] | None = None
    dnsmasq_conf: str | None = None
    nft_text: str | None = None
    lan_address: ipaddress.IPv4Interface | None = None
    settings: GatewaySettings | None = None

    @property
    def wan(self) -> ipaddress.IPv4Interface:
        net = wan_net(self.node, self.index)
        return ipaddress.IPv4Interface(f"{net.network_address + 2}/30")


@dataclass
class _Ticket:
    action: str
    args: dict[str, Any]
    outcome: Outcome
    message: str
    seconds: float


@dataclass
class NetnsVrgwDriver:
    """A `Driver` realising vRGW actions in the bed, synchronously (submit does the work)."""

    bed: VrgwBed
    function: str = "vrgw"
    name: str = "netns-vrgw"
    copies: dict[tuple[str, str], VrgwCopy] = field(default_factory=dict)
    outages: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    activated_at: dict[str, float] = field(default_factory=dict)
    timings: list[tuple[str, str, float]] = field(default_factory=list)
    """(action, kind, seconds) of every action: kind is build, start, pool, claim, update…"""
    updates: list[tuple[str, ChangePlan]] = field(default_factory=list)
    _tickets: dict[str, _Ticket] = field(default_factory=dict)
    _next_index: dict[int, int] = field(default_factory=dict)
    _free_index: dict[int, list[int]] = field(default_factory=dict)
    _images: dict[str, dict[str, str]] = field(default_factory=dict)
    _down_since: dict[str, float] = field(default_factory=dict)

    # -- protocol -------------------------------------------------------------------------
    def submit(self, key: str, action: str, args: dict[str, Any], now: float) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        existing = self._tickets.get(key)
        if existing is not None and existing.outcome is not Outcome.FAILED:
            return
        started = time.perf_counter()
        try:
            kind = self._do(action, args)
            outcome, message = Outcome.DONE, ""
        except (VrgwError, CommandError, cgroups.SandboxError, OSError, ValueError) as exc:
            kind, outcome, message = "failed", Outcome.FAILED, f"{action}: {exc}"
        seconds = time.perf_counter() - started
        self._tickets[key] = _Ticket(action, dict(args), outcome, message, seconds)
        self.timings.append((action, kind, seconds))

    def poll(self, key: str, now: float) -> ActionStatus:
        ticket = self._tickets.get(key)
        if ticket is None:
            return ActionStatus(Outcome.UNKNOWN)
        return ActionStatus(ticket.outcome, ticket.message)

    def observe(self) -> DriverView:
        return DriverView(
            sandboxes=frozenset(self.copies),
            running=frozenset(k for k, c in self.copies.items() if c.status == "serving"),
        )

    def health(self) -> tuple[bool, str]:
        missing = [n for n in (self.bed.inet, self.bed.an) if n not in list_netns(self.bed.prefix)]
        if missing:
            return False, f"bed namespaces missing: {', '.join(missing)}"
        return True, f"netns vRGW bed {self.bed.prefix}* ({len(self.copies)} vRGW copies)"

    # -- dispatch -------------------------------------------------------------------------
    def _do(self, action: str, args: dict[str, Any]) -> str:
        if action == "noop":
            return "noop"
        if args.get("function") != self.function:
            raise VrgwError(f"this driver runs only {self.function!r} functions")
        inst, host = str(args["instance"]), str(args["host"])
        mode = args.get("migration")
        if action == "create_sandbox":
            return self._create(inst, host, mode)
        if action == "start_function":
            return self._start(inst, host, dict(args.get("params") or {}), mode, args)
        if action == "update_function":
            return self._update(inst, host, dict(args.get("params") or {}))
        if action == "stop_function":
            return self._stop(inst, host, mode)
        if action == "remove_sandbox":
            return self._remove(inst, host)
        raise VrgwError(f"action {action} does not apply to a vRGW")

    # -- actions --------------------------------------------------------------------------
    def _create(self, inst: str, host: str, mode: str | None) -> str:
        key = (inst, host)
        if key in self.copies:
            return "build"
        k = self.bed.node_index(host)
        free = self._free_index.setdefault(k, [])
        if free:
            index = free.pop(0)
        else:
            index = self._next_index.get(k, 0)
            self._next_index[k] = index + 1
        ns = self.bed.ns(f"g{k}-{index}")
        copy = VrgwCopy(
            instance=inst,
            node=k,
            index=index,
            ns=ns,
            state_dir=self.bed.directory / "vrgw" / ns,
            sandbox=cgroups.Sandbox(self.bed.prefix, host, inst),
        )
        node_ns = self.bed.node_ns(k)
        try:
            if ns in list_netns(self.bed.prefix):
                delete_netns([ns], self.bed.prefix)
            copy.state_dir.mkdir(parents=True, exist_ok=True)
            create_netns([ns], self.bed.prefix)
            set_sysctls(ns, _ROUTER_SYSCTLS)
            net = wan_net(k, index)
            # WAN veth to the node's router; LAN veth to a per-vRGW bridge on the node where
            # the circuit will be attached (the hypervisor's vNIC + bridge of a VM).
            ip_batch(
                [
                    f"link add w{index} type veth peer name {WAN_IF} netns {ns}",
                    f"link add l{index} type veth peer name {LAN_IF} netns {ns}",
                    f"addr add {net.network_address + 1}/30 dev w{index}",
                    f"link set w{index} up",
                    f"link add v{index} type bridge",
                    f"link set l{index} master v{index}",
                    f"link set l{index} up",
                    f"link set v{index} up",
                ],
                node_ns,
            )
            ip_batch(
                [
                    "link set lo up",
                    f"addr add {copy.wan} dev {WAN_IF}",
                    f"link set {WAN_IF} up",
                    f"link set {LAN_IF} up",
                    f"route add default via {net.network_address + 1}",
                ],
                ns,
            )
            copy.sandbox.create(vcpu=0.0, memory_mb=MEMORY_MB * 4)
            if mode == MigrationMode.IMAGE.value and inst in self._images:
                for name, text in self._images[inst].items():
                    (copy.state_dir / name).write_text(text)
        except BaseException:
            self._destroy(copy)
            raise
        self.copies[key] = copy
        return "build"

    def _start(
        self,
        inst: str,
        host: str,
        params: dict[str, Any],
        mode: str | None,
        args: dict[str, Any],
    ) -> str:
        copy = self._copy(inst, host)
        settings = from_params(params)
        if not settings.c_tag:
            # A pooled vRGW: programs up with the template's defaults, then frozen.
            self._configure(copy, settings, restart=True)
            self._wait_ready(copy)
            self._freeze(copy)
            copy.status = "suspended"
            return "pool"
        kind = "start"
        if mode == MigrationMode.CONTEXT.value:
            source = self.copies.get((inst, str(args.get("source"))))
            if source is not None and source.status == "serving":
                self._down(inst)
                self._freeze(source)
                source.status = "frozen"
                leases = source.state_dir / "leases"
                if leases.exists():
                    shutil.copyfile(leases, copy.state_dir / "leases")
                kind = "cutover"
        elif mode == MigrationMode.IMAGE.value:
            kind = "resume"
        self._serve(copy, settings, restart=True)
        return kind

    def _update(self, inst: str, host: str, params: dict[str, Any]) -> str:
        copy = self._copy(inst, host)
        new = from_params(params)
        if copy.status == "suspended" and new.c_tag:
            self._thaw(copy)
            self._serve(copy, new, restart=False)
            return "claim"
        if copy.status == "serving" and not new.c_tag:
            # A claim undone: back to the pool's defaults, suspended.
            self._detach(copy)
            self._configure(copy, new, restart=True)
            self._freeze(copy)
            copy.status = "suspended"
            return "unclaim"
        old = copy.settings or new
        plan = changes(old, new)
        if plan.recircuit:
            self._serve(copy, new, restart=plan.restart_dnsmasq)
        else:
            self._configure(copy, new, restart=plan.restart_dnsmasq, nft=plan.reload_nftables)
            if plan.push_wifi:
                self._push_wifi(new)
        self.updates.append((inst, plan))
        return "update"

    def _stop(self, inst: str, host: str, mode: str | None) -> str:
        copy = self.copies.get((inst, host))
        if copy is None:
            return "stop"
        if mode == MigrationMode.IMAGE.value:
            # Suspend, then take the image: every state file, as it is.
            if copy.status == "serving":
                self._down(inst)
            self._freeze(copy)
            self._images[inst] = {
                p.name: p.read_text() for p in copy.state_dir.iterdir() if p.is_file()
            }
            copy.status = "frozen"
            return "suspend"
        self._kill_dnsmasq(copy)
        self._release_circuit(copy)
        self._detach(copy)
        copy.status = "stopped"
        return "stop"

    def _remove(self, inst: str, host: str) -> str:
        copy = self.copies.pop((inst, host), None)
        if copy is not None:
            self._release_circuit(copy)
            self._destroy(copy)
        return "remove"

    def _release_circuit(self, copy: VrgwCopy) -> None:
        """The customer's line loses its circuit when the vRGW it reaches goes away for good
        (not when a migration has already pointed it at another node)."""
        home = self.bed.homes.get(copy.subscriber)
        if home is not None and home.circuit == copy.circuit and home.node == copy.node:
            self.bed.detach(copy.subscriber)

    # -- building blocks ------------------------------------------------------------------
    def _copy(self, inst: str, host: str) -> VrgwCopy:
        copy = self.copies.get((inst, host))
        if copy is None:
            raise VrgwError(f"{inst} has no sandbox on {host}")
        return copy

    def _serve(self, copy: VrgwCopy, settings: GatewaySettings, *, restart: bool) -> None:
        """Apply the settings, attach the circuit to lan0's bridge, point the circuit here."""
        circuit = Circuit(settings.access_node, settings.s_tag, settings.c_tag)
        self._configure(copy, settings, restart=restart or copy.dnsmasq is None)
        self._attach(copy, circuit)
        self._wait_ready(copy, settings.lan_address)
        self.bed.attach(settings.subscriber, circuit, copy.node)
        copy.status = "serving"
        copy.subscriber = settings.subscriber
        self._up(copy.instance)
        self.activated_at.setdefault(copy.instance, time.time())

    def _attach(self, copy: VrgwCopy, circuit: Circuit) -> None:
        if copy.circuit == circuit:
            return
        if copy.circuit is not None:
            self._detach(copy)
        dev = f"vx{circuit.vni}"
        ip_batch(
            [
                vxlan_line(dev, circuit, node_vtep(copy.node), str(AN_VTEP)),
                f"link set {dev} master v{copy.index}",
                f"link set {dev} up",
            ],
            self.bed.node_ns(copy.node),
        )
        # The gateway's LAN MAC belongs to the circuit, not to the copy: terminals keep their
        # ARP entry across a migration or a replacement.
        ip_batch([f"link set {LAN_IF} address {lan_mac(circuit)}"], copy.ns)
        copy.circuit = circuit

    def _detach(self, copy: VrgwCopy) -> None:
        if copy.circuit is None:
            return
        ip_batch([f"link del vx{copy.circuit.vni}"], self.bed.node_ns(copy.node), force=True)
        copy.circuit = None

    def _configure(
        self, copy: VrgwCopy, settings: GatewaySettings, *, restart: bool, nft: bool = True
    ) -> None:
        """Address lan0, load the firewall and (re)start dnsmasq — each only if it changes,
        so claiming a pooled vRGW with the template's LAN costs no reload and no restart."""
        lan = settings.lan_interface
        if copy.lan_address != lan:
            ip_batch([f"addr flush dev {LAN_IF}", f"addr add {lan} dev {LAN_IF}"], copy.ns)
            copy.lan_address = lan
        ruleset = render_nftables(settings)
        if nft and ruleset != copy.nft_text:
            _nft(copy.ns, ruleset)
            (copy.state_dir / "nftables.conf").write_text(ruleset)
            copy.nft_text = ruleset
        conf = render_dnsmasq(settings, PurePosixPath(str(copy.state_dir)))
        if conf != copy.dnsmasq_conf or restart:
            self._kill_dnsmasq(copy)
            if conf is not None:
                (copy.state_dir / "dnsmasq.conf").write_text(conf)
                self._start_dnsmasq(copy)
            copy.dnsmasq_conf = conf
        copy.settings = settings
        (copy.state_dir / "settings.json").write_text(settings.model_dump_json())

    def _start_dnsmasq(self, copy: VrgwCopy) -> None:
        argv = netns_exec_argv(
            copy.ns,
            [
                "dnsmasq",
                "--keep-in-foreground",
                f"--conf-file={copy.state_dir / 'dnsmasq.conf'}",
                f"--log-facility={copy.state_dir / 'dnsmasq.log'}",
            ],
        )
        sandbox = copy.sandbox
        copy.dnsmasq = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=sandbox.enter,
            close_fds=True,
        )

    def _wait_ready(self, copy: VrgwCopy, lan: ipaddress.IPv4Address | None = None) -> None:
        """Until dnsmasq serves: its DNS socket on the LAN address (bind-dynamic opens it once
        it has seen lan0, so this also proves a thawed pooled dnsmasq noticed its circuit), or
        without DNS or LAN, its DHCP socket."""
        proc = copy.dnsmasq
        if proc is None:
            return
        settings = copy.settings
        dns = settings is not None and settings.dns_relay_enable and lan is not None
        if dns and lan is not None:
            wanted = f"{int.from_bytes(lan.packed, 'little'):08X}:0035 "
        else:
            wanted = ":0043 "
        deadline = time.monotonic() + READY_TIMEOUT_S
        path = Path(f"/proc/{proc.pid}/net/udp")
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log = copy.state_dir / "dnsmasq.log"
                tail = log.read_text()[-500:] if log.exists() else ""
                raise VrgwError(f"dnsmasq of {copy.ns} exited ({proc.returncode}): {tail}")
            with contextlib.suppress(OSError):
                if wanted in path.read_text():
                    return
            time.sleep(0.0005)
        raise VrgwError(f"dnsmasq of {copy.ns} did not open its sockets in {READY_TIMEOUT_S} s")

    def _kill_dnsmasq(self, copy: VrgwCopy) -> None:
        proc = copy.dnsmasq
        copy.dnsmasq = None
        if proc is None or proc.poll() is not None:
            return
        self._thaw(copy)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=3)

    def _freezer(self, copy: VrgwCopy) -> Path:
        return copy.sandbox.path("freezer") / "freezer.state"

    def _freeze(self, copy: VrgwCopy) -> None:
        state = self._freezer(copy)
        state.write_text("FROZEN")
        deadline = time.monotonic() + 2.0
        while state.read_text().strip() != "FROZEN":
            if time.monotonic() > deadline:
                raise VrgwError(f"{copy.ns}: freezer did not reach FROZEN")
            time.sleep(0.001)

    def _thaw(self, copy: VrgwCopy) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._freezer(copy).write_text("THAWED")

    def _push_wifi(self, settings: GatewaySettings) -> None:
        """The home bridge's access point takes the Wi-Fi settings (recorded in its file)."""
        home = self.bed.homes.get(settings.subscriber)
        if home is None:
            return
        path = self.bed.directory / f"wifi-{self.bed.home_ns(settings.subscriber)}.json"
        path.write_text(
            json.dumps(
                {
                    "enable": settings.wifi_enable,
                    "ssid": settings.ssid,
                    "security": settings.security_mode,
                    "passphrase_set": bool(settings.passphrase),
                }
            )
        )

    def _destroy(self, copy: VrgwCopy) -> None:
        with contextlib.suppress(Exception):
            self._kill_dnsmasq(copy)
        copy.sandbox.destroy()
        if copy.ns in list_netns(self.bed.prefix):
            delete_netns([copy.ns], self.bed.prefix)
        # The node's ends of the veths disappear with the vRGW's namespace; its bridge and
        # the circuit's end on the node do not.
        lines = [f"link del w{copy.index}", f"link del l{copy.index}", f"link del v{copy.index}"]
        if copy.circuit is not None:
            lines.append(f"link del vx{copy.circuit.vni}")
            copy.circuit = None
        with contextlib.suppress(CommandError):
            ip_batch(lines, self.bed.node_ns(copy.node), force=True)
        shutil.rmtree(copy.state_dir, ignore_errors=True)
        self._free_index.setdefault(copy.node, []).append(copy.index)
        self._free_index[copy.node].sort()

    def _down(self, inst: str) -> None:
        self._down_since.setdefault(inst, time.time())

    def _up(self, inst: str) -> None:
        began = self._down_since.pop(inst, None)
        if began is not None:
            self.outages.setdefault(inst, []).append((began, time.time()))

    # -- queries --------------------------------------------------------------------------
    def serving_copy(self, inst: str) -> VrgwCopy | None:
        return next(
            (c for (i, _), c in self.copies.items() if i == inst and c.status == "serving"), None
        )

    def leases(self, inst: str) -> list[Lease]:
        copy = self.serving_copy(inst)
        if copy is None:
            return []
        path = copy.state_dir / "leases"
        return parse_dnsmasq(path.read_text()) if path.exists() else []

    def serving_on(self, host: str) -> list[VrgwCopy]:
        k = self.bed.node_index(host)
        return [c for c in self.copies.values() if c.node == k and c.status == "serving"]

    def close(self) -> None:
        """Stop every vRGW this driver made, releasing their circuits (the bed stays)."""
        for key in list(self.copies):
            copy = self.copies.pop(key)
            self._release_circuit(copy)
            self._destroy(copy)


# -- terminals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TerminalLease:
    ip: str
    mask: int
    router: str
    dns: str
    lease_s: int


def dhcp(bed: VrgwBed, customer: str, m: int = 0, timeout_s: float = 6.0) -> TerminalLease:
    """A terminal asks for a lease (busybox udhcpc); VrgwError when nobody answers."""
    ns = bed.terminal_ns(customer, m)
    directory = bed.directory / "dhcp"
    directory.mkdir(parents=True, exist_ok=True)
    hook = directory / "udhcpc-hook.sh"
    if not hook.exists():
        hook.write_text(HOOK)
        hook.chmod(0o700)
    result = directory / f"{ns}.lease"
    result.unlink(missing_ok=True)
    tries = max(1, int(timeout_s))
    argv = ["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "1", "-s", str(hook)]
    try:
        done = subprocess.run(
            netns_exec_argv(ns, argv),
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "EDGEROAM_LEASE_FILE": str(result)},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise VrgwError(f"udhcpc in {ns}: no answer within {timeout_s + 5} s") from exc
    if done.returncode != 0 or not result.exists():
        raise VrgwError(f"no DHCP lease for {ns}: {(done.stderr or done.stdout).strip()[-300:]}")
    values = dict(line.split("=", 1) for line in result.read_text().splitlines() if "=" in line)
    return TerminalLease(
        ip=values["ip"],
        mask=int(values["mask"]),
        router=values.get("router", "").split(" ")[0],
        dns=values.get("dns", "").split(" ")[0],
        lease_s=int(values.get("lease") or 0),
    )


def mac_of(bed: VrgwBed, customer: str, m: int = 0) -> str:
    """The terminal's MAC (asked over netlink: /sys shows the machine's interfaces here)."""
    out = run(["ip", "-n", bed.terminal_ns(customer, m), "-j", "link", "show", "eth0"])
    return str(json.loads(out)[0]["address"])


def reachable(ns: str, address: str, timeout_s: float = 1.0) -> bool:
    """One ICMP echo from `ns` (busybox ping) answered within `timeout_s`."""
    argv = ["busybox", "ping", "-c", "1", "-W", str(max(1, int(timeout_s))), address]
    done = subprocess.run(
        netns_exec_argv(ns, argv), capture_output=True, text=True, timeout=timeout_s + 5
    )
    return done.returncode == 0


def is_root() -> bool:
    return os.geteuid() == 0
