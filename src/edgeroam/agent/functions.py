"""The real functions an agent runs inside its host's network namespace.

- filter: an nftables table in the forward path; parameters destination / protocol / ports
  become one match, counted by a named counter and dropped. On a server the matched traffic is
  also counted per customer LAN (one named counter per CPE), which is the per CPE×function band
  the offload policy needs.
- nat: masquerade of the customers' LANs on the upstream interface plus optional port forwards;
  a filter chain counts the bytes going out and coming back.
- dnsmasq: DHCP (on a host with a customer LAN) and DNS, one process per instance inside the
  instance's sandbox cgroup; an nftables table counts requests and replies.

Parameters are checked here with precise messages even though the controller has checked them
against the function's schema: the agent is the last line before the kernel.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

from edgeroam.agent.config import AgentConfig
from edgeroam.testbed import cgroups
from edgeroam.testbed.cgroups import Sandbox
from edgeroam.testbed.kinds import Implementation
from edgeroam.testbed.nft import Nft, NftError

Counters = dict[str, tuple[int, int]]
_DOMAIN_RE = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
PROTOCOLS = ("any", "icmp", "icmp-echo", "tcp", "tcp-syn", "udp")


class FunctionError(RuntimeError):
    """A function cannot be started, updated or stopped; the message says why."""


def table_name(prefix: str, letter: str, instance: str) -> str:
    """An nft table name for an instance: readable, unique (hash of the exact id), and made
    only of characters nft accepts in identifiers."""
    stem = cgroups.root_name(prefix).replace("-", "_")
    digest = hashlib.sha1(instance.encode()).hexdigest()[:6]
    body = re.sub(r"[^A-Za-z0-9_]", "_", instance)[:40]
    return f"{stem}{letter}_{body}_{digest}"


def counter_name(cpe: str) -> str:
    return "cpe_" + re.sub(r"[^A-Za-z0-9_]", "_", cpe)


def _unknown(kind: str, params: dict[str, Any], known: tuple[str, ...]) -> None:
    extra = sorted(set(params) - set(known))
    if extra:
        raise FunctionError(f"{kind} parameters: unknown {extra}; known: {list(known)}")


def _ports(value: Any) -> list[int]:
    items = value if isinstance(value, list | tuple) else [value]
    ports = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item < 65536:
            raise FunctionError(f"filter parameter ports: {item!r} is not a port (1-65535)")
        ports.append(item)
    if not ports:
        raise FunctionError("filter parameter ports: the list is empty")
    return sorted(set(ports))


class Function(ABC):
    """One running copy of a function on this host."""

    implementation: ClassVar[Implementation]
    keeps_off_band: ClassVar[bool] = False
    """Traffic it handles ends here (dropped or answered) instead of crossing the band."""

    def __init__(
        self, config: AgentConfig, nft: Nft, instance: str, function: str, sandbox: Sandbox
    ) -> None:
        self.config = config
        self.nft = nft
        self.instance = instance
        self.function = function
        self.sandbox = sandbox
        self.params: dict[str, Any] = {}
        self._carry: Counters = {}

    @abstractmethod
    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        """Normalised parameters, or FunctionError naming the faulty one."""

    @abstractmethod
    def start(self, params: dict[str, Any]) -> None:
        """Start (or restart with these parameters); idempotent."""

    def update(self, params: dict[str, Any]) -> None:
        """Counters survive an update: what was counted so far is carried over."""
        for name, (p, b) in self.raw_counters().items():
            cp, cb = self._carry.get(name, (0, 0))
            self._carry[name] = (cp + p, cb + b)
        self.start(params)

    @abstractmethod
    def stop(self) -> None:
        """Stop; idempotent."""

    @abstractmethod
    def raw_counters(self) -> Counters:
        """Counters of the current incarnation."""

    def counters(self) -> Counters:
        out = dict(self._carry)
        for name, (p, b) in self.raw_counters().items():
            cp, cb = out.get(name, (0, 0))
            out[name] = (cp + p, cb + b)
        return out

    def total(self) -> tuple[int, int]:
        """(packets, bytes) of the traffic this function handled."""
        counters = self.counters()
        return (
            sum(p for n, (p, _) in counters.items() if n in self.totals),
            sum(b for n, (_, b) in counters.items() if n in self.totals),
        )

    totals: ClassVar[tuple[str, ...]] = ()

    def per_cpe_bytes(self) -> dict[str, int]:
        return {}


class NoopFunction(Function):
    """A sandbox with no data-plane program: holds its flavor's resources for experiments
    about placement, where what runs inside does not matter."""

    implementation = Implementation.NOOP

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        return dict(params)

    def start(self, params: dict[str, Any]) -> None:
        self.params = self.check(params)

    def stop(self) -> None:
        pass

    def raw_counters(self) -> Counters:
        return {}


class FilterFunction(Function):
    """Security filter: drop what matches destination / protocol / ports, count it."""

    implementation = Implementation.FILTER
    keeps_off_band = True
    totals = ("matched",)
    KNOWN = ("destination", "protocol", "ports")

    @property
    def table(self) -> str:
        return table_name(self.config.prefix, "f", self.instance)

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        _unknown("filter", params, self.KNOWN)
        out: dict[str, Any] = {}
        destination = params.get("destination")
        if destination is not None:
            try:
                out["destination"] = str(ipaddress.IPv4Network(str(destination), strict=False))
            except ValueError as exc:
                raise FunctionError(
                    f"filter parameter destination: {destination!r} is not an IPv4 address "
                    "or network"
                ) from exc
        protocol = params.get("protocol", "any")
        if protocol not in PROTOCOLS:
            raise FunctionError(
                f"filter parameter protocol: {protocol!r} is not one of {list(PROTOCOLS)}"
            )
        out["protocol"] = protocol
        if params.get("ports") is not None:
            if protocol not in ("tcp", "tcp-syn", "udp"):
                raise FunctionError(
                    f"filter parameter ports: needs protocol tcp, tcp-syn or udp, not {protocol!r}"
                )
            out["ports"] = _ports(params["ports"])
        return out

    def match(self, params: dict[str, Any]) -> str | None:
        """The nft match of the parameters; None when it matches nothing (no destination:
        a filter started without one filters nothing, as in the controller's traffic model)."""
        if "destination" not in params:
            return None
        parts = [f"ip daddr {params['destination']}"]
        protocol = params["protocol"]
        ports = params.get("ports")
        if protocol == "icmp":
            parts.append("ip protocol icmp")
        elif protocol == "icmp-echo":
            parts.append("icmp type echo-request")
        elif protocol in ("tcp", "tcp-syn"):
            parts.append("meta l4proto tcp")
            if ports:
                parts.append(f"tcp dport {{ {', '.join(map(str, ports))} }}")
            if protocol == "tcp-syn":
                parts.append("tcp flags & (syn | ack) == syn")
        elif protocol == "udp":
            parts.append("meta l4proto udp")
            if ports:
                parts.append(f"udp dport {{ {', '.join(map(str, ports))} }}")
        return " ".join(parts)

    def script(self, params: dict[str, Any]) -> str:
        lans = self.config.customer_lans
        lines = [f"table ip {self.table} {{", "  counter matched { }"]
        lines += [f"  counter {counter_name(cpe)} {{ }}" for cpe in lans]
        lines.append("  chain account {")
        lines += [
            f'    ip saddr {net} counter name "{counter_name(cpe)}" drop'
            for cpe, net in lans.items()
        ]
        lines += ["    drop", "  }"]
        lines += [
            "  chain forward {",
            "    type filter hook forward priority -10; policy accept;",
        ]
        match = self.match(params)
        if match is not None:
            lines.append(f'    {match} counter name "matched" goto account')
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    def start(self, params: dict[str, Any]) -> None:
        checked = self.check(params)
        table = self.table
        # Replace atomically: the old table (if any) and the new one in one transaction.
        script = f"add table ip {table}\ndelete table ip {table}\n" + self.script(checked)
        try:
            self.nft.run(script)
        except NftError as exc:
            raise FunctionError(f"filter {self.instance}: {exc}") from exc
        self.params = checked

    def stop(self) -> None:
        try:
            self.nft.delete_table(self.table)
        except NftError as exc:
            raise FunctionError(f"filter {self.instance}: {exc}") from exc

    def raw_counters(self) -> Counters:
        return self.nft.counters(self.table)

    def per_cpe_bytes(self) -> dict[str, int]:
        counters = self.counters()
        return {
            cpe: counters.get(counter_name(cpe), (0, 0))[1] for cpe in self.config.customer_lans
        }


class NatFunction(Function):
    """Masquerade the customers' LANs on the upstream interface; optional port forwards
    written ``tcp:8080=10.128.0.10:80``."""

    implementation = Implementation.NAT
    totals = ("out", "in")
    KNOWN = ("forwards", "masquerade")
    _FORWARD = re.compile(r"^(tcp|udp):(\d{1,5})=(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$")

    @property
    def table(self) -> str:
        return table_name(self.config.prefix, "n", self.instance)

    def sources(self) -> ipaddress.IPv4Network:
        cfg = self.config
        if cfg.lan is not None:
            return cfg.lan.subnet
        if cfg.customer_pool is not None:
            return cfg.customer_pool
        raise FunctionError(f"host {cfg.host} has neither a customer LAN nor a customer pool")

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        _unknown("nat", params, self.KNOWN)
        if self.config.upstream is None:
            raise FunctionError(f"host {self.config.host} has no upstream interface to NAT on")
        masquerade = params.get("masquerade", True)
        if not isinstance(masquerade, bool):
            raise FunctionError(f"nat parameter masquerade: {masquerade!r} is not a boolean")
        forwards = params.get("forwards") or []
        if not isinstance(forwards, list | tuple):
            raise FunctionError("nat parameter forwards: expected a list of 'tcp:8080=ip:port'")
        checked = []
        for item in forwards:
            m = self._FORWARD.match(str(item))
            if m is None:
                raise FunctionError(
                    f"nat parameter forwards: {item!r} is not 'tcp|udp:PORT=ADDRESS:PORT'"
                )
            proto, public, address, port = m.groups()
            if not (0 < int(public) < 65536 and 0 < int(port) < 65536):
                raise FunctionError(f"nat parameter forwards: {item!r} has a port out of range")
            try:
                target = ipaddress.IPv4Address(address)
            except ValueError as exc:
                raise FunctionError(f"nat parameter forwards: bad address in {item!r}") from exc
            if target not in self.sources():
                raise FunctionError(
                    f"nat parameter forwards: {target} is not in the customer range "
                    f"{self.sources()}"
                )
            checked.append(f"{proto}:{int(public)}={target}:{int(port)}")
        return {"masquerade": masquerade, "forwards": checked}

    def script(self, params: dict[str, Any]) -> str:
        up = self.config.upstream
        src = self.sources()
        lines = [
            f"table ip {self.table} {{",
            "  counter out { }",
            "  counter in { }",
            "  counter connections { }",
            "  chain account {",
            "    type filter hook forward priority 0; policy accept;",
            f'    oifname "{up}" ip saddr {src} counter name "out"',
            f'    iifname "{up}" ip daddr {src} counter name "in"',
            "  }",
            "  chain post {",
            "    type nat hook postrouting priority srcnat; policy accept;",
        ]
        if params["masquerade"]:
            lines.append(f'    oifname "{up}" ip saddr {src} counter name "connections" masquerade')
        lines += [
            "  }",
            "  chain pre {",
            "    type nat hook prerouting priority dstnat; policy accept;",
        ]
        for item in params["forwards"]:
            proto_port, target = item.split("=")
            proto, public = proto_port.split(":")
            lines.append(f'    iifname "{up}" {proto} dport {public} dnat to {target}')
        lines += ["  }", "}"]
        return "\n".join(lines) + "\n"

    def start(self, params: dict[str, Any]) -> None:
        checked = self.check(params)
        table = self.table
        try:
            self.nft.run(f"add table ip {table}\ndelete table ip {table}\n" + self.script(checked))
        except NftError as exc:
            raise FunctionError(f"nat {self.instance}: {exc}") from exc
        self.params = checked

    def stop(self) -> None:
        try:
            self.nft.delete_table(self.table)
        except NftError as exc:
            raise FunctionError(f"nat {self.instance}: {exc}") from exc

    def raw_counters(self) -> Counters:
        return self.nft.counters(self.table)


class DnsmasqFunction(Function):
    """DHCP for the host's customer LAN and DNS, by a dnsmasq process in the sandbox."""

    implementation = Implementation.DNSMASQ
    keeps_off_band = True
    totals = ("requests", "replies")
    KNOWN = ("domain", "records", "lease_s", "dhcp", "dns")

    def __init__(
        self, config: AgentConfig, nft: Nft, instance: str, function: str, sandbox: Sandbox
    ) -> None:
        super().__init__(config, nft, instance, function, sandbox)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def table(self) -> str:
        return table_name(self.config.prefix, "d", self.instance)

    @property
    def files(self) -> Path:
        path = self.config.state_dir / "dnsmasq" / cgroups.safe(self.instance)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def check(self, params: dict[str, Any]) -> dict[str, Any]:
        _unknown("dnsmasq", params, self.KNOWN)
        domain = params.get("domain", "lan")
        if not isinstance(domain, str) or not _DOMAIN_RE.match(domain):
            raise FunctionError(f"dnsmasq parameter domain: {domain!r} is not a domain name")
        lease = params.get("lease_s", 600)
        if isinstance(lease, bool) or not isinstance(lease, int) or not 120 <= lease <= 86400:
            raise FunctionError(f"dnsmasq parameter lease_s: {lease!r} is not within 120-86400")
        flags = {}
        for name in ("dhcp", "dns"):
            value = params.get(name, True)
            if not isinstance(value, bool):
                raise FunctionError(f"dnsmasq parameter {name}: {value!r} is not a boolean")
            flags[name] = value
        records = []
        for item in params.get("records") or []:
            name, sep, address = str(item).partition("=")
            if not sep or not _DOMAIN_RE.match(name):
                raise FunctionError(f"dnsmasq parameter records: {item!r} is not 'name=address'")
            try:
                records.append(f"{name}={ipaddress.IPv4Address(address)}")
            except ValueError as exc:
                raise FunctionError(f"dnsmasq parameter records: bad address in {item!r}") from exc
        if flags["dhcp"] and self.config.lan is None and not flags["dns"]:
            raise FunctionError(f"host {self.config.host} has no customer LAN to serve DHCP on")
        return {"domain": domain, "lease_s": lease, "records": records, **flags}

    def argv(self, params: dict[str, Any]) -> list[str]:
        cfg = self.config
        files = self.files
        argv = [
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # never the machine's /etc/dnsmasq.conf
            "--no-resolv",  # never the machine's /etc/resolv.conf
            "--no-hosts",
            "--no-poll",
            "--user=root",
            "--bind-interfaces",
            f"--pid-file={files / 'pid'}",
            f"--log-facility={files / 'log'}",
            f"--domain={params['domain']}",
            f"--local=/{params['domain']}/",
        ]
        if cfg.lan is not None:
            interfaces = [cfg.lan.bridge]
        else:
            interfaces = list(cfg.band_interfaces) or list(cfg.links)
        argv += [f"--interface={name}" for name in interfaces]
        if not params["dns"]:
            argv.append("--port=0")
        for record in params["records"]:
            name, address = record.split("=")
            argv.append(f"--host-record={name}.{params['domain']},{name},{address}")
        if params["dhcp"] and cfg.lan is not None:
            lan = cfg.lan
            argv += [
                f"--dhcp-range={lan.pool_first},{lan.pool_last},{lan.subnet.netmask},"
                f"{params['lease_s']}",
                f"--dhcp-option=option:router,{lan.gateway}",
                f"--dhcp-option=option:dns-server,{lan.gateway}",
                f"--dhcp-leasefile={files / 'leases'}",
                "--dhcp-authoritative",
                "--no-ping",  # answer at once instead of probing the address for 3 s
            ]
        return argv

    def script(self) -> str:
        return "\n".join(
            [
                f"table ip {self.table} {{",
                "  counter requests { }",
                "  counter replies { }",
                "  chain input {",
                "    type filter hook input priority 0; policy accept;",
                '    udp dport { 53, 67 } counter name "requests"',
                '    tcp dport 53 counter name "requests"',
                "  }",
                "  chain output {",
                "    type filter hook output priority 0; policy accept;",
                '    udp sport { 53, 67 } counter name "replies"',
                '    tcp sport 53 counter name "replies"',
                "  }",
                "}",
                "",
            ]
        )

    def start(self, params: dict[str, Any]) -> None:
        checked = self.check(params)
        self._kill()
        table = self.table
        try:
            self.nft.run(f"add table ip {table}\ndelete table ip {table}\n" + self.script())
        except NftError as exc:
            raise FunctionError(f"dnsmasq {self.instance}: {exc}") from exc
        # The shell joins the sandbox's cgroups, then becomes dnsmasq: no moment outside it.
        join = "; ".join(
            f"echo $$ > {self.sandbox.path(c) / 'cgroup.procs'}" for c in cgroups.CONTROLLERS
        )
        argv = ["sh", "-c", f'{join}; exec "$@"', "sh", *self.argv(checked)]
        stderr = (self.files / "stderr").open("wb")
        self.process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
        )
        stderr.close()
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                detail = (self.files / "stderr").read_text(errors="replace").strip()
                self.process = None
                raise FunctionError(f"dnsmasq {self.instance} exited at start: {detail}")
            if (self.files / "pid").exists():
                break
            time.sleep(0.02)
        self.params = checked

    def _kill(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(2.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(2.0)
            self.process = None
        for pid in self.sandbox.pids():  # e.g. left over by a previous agent
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            (self.files / "pid").unlink()

    def stop(self) -> None:
        self._kill()
        try:
            self.nft.delete_table(self.table)
        except NftError as exc:
            raise FunctionError(f"dnsmasq {self.instance}: {exc}") from exc

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def raw_counters(self) -> Counters:
        return self.nft.counters(self.table)


IMPLEMENTATIONS: dict[Implementation, type[Function]] = {
    Implementation.FILTER: FilterFunction,
    Implementation.NAT: NatFunction,
    Implementation.DNSMASQ: DnsmasqFunction,
    Implementation.NOOP: NoopFunction,
}
