"""Starting one agent per host inside its namespace, each with its own token and config."""

from __future__ import annotations

import ipaddress
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from edgeroam.agent.config import AgentConfig, FunctionEntry, LanEntry, LinkEntry
from edgeroam.model import HostKind
from edgeroam.testbed.builder import Bed
from edgeroam.testbed.nsutil import netns_exec_argv
from edgeroam.testbed.plan import DHCP_FIRST, DHCP_LAST, LAN_BRIDGE

CONTROLLER_PORT = 8080


def agent_config(
    bed: Bed, host: str, controller_url: str, token_file: Path, interval_s: float
) -> AgentConfig:
    """Everything the agent of `host` needs to know, derived from the bed's plan."""
    plan, topo = bed.plan, bed.topology
    spec = next(h for h in topo.topology.hosts if h.id == host)
    node = plan.node_of_host(host)
    links_by_id = {lk.id: lk for lk in topo.topology.links}
    links = {}
    upstream = None
    for iface in node.ifaces:
        if iface.role == "inet":
            upstream = iface.name
        if iface.role != "link" or iface.link is None:
            continue
        link = links_by_id[iface.link]
        links[iface.name] = LinkEntry(
            link=link.id,
            a_side=link.a == host,
            capacity_mbps=link.capacity_mbps,
            band=spec.kind is HostKind.SERVER,
        )
        on_default = (
            node.default_via is not None
            and iface.address is not None
            and ipaddress.IPv4Address(node.default_via)
            in ipaddress.IPv4Interface(iface.address).network
        )
        if upstream is None and on_default:
            upstream = iface.name
    lan = None
    if node.lan is not None:
        net = ipaddress.IPv4Network(node.lan)
        lan = LanEntry(
            bridge=LAN_BRIDGE,
            subnet=net,
            gateway=net.network_address + 1,
            pool_first=net.network_address + DHCP_FIRST,
            pool_last=net.network_address + DHCP_LAST,
        )
    flavors = {f.id: f for f in topo.flavors}
    functions = {}
    for fn in topo.functions:
        flavor = flavors.get(fn.flavor)
        functions[fn.name] = FunctionEntry(
            implementation=topo.implementations[fn.name],
            vcpu=flavor.vcpu if flavor else 0.0,
            memory_mb=flavor.memory_mb if flavor else 0.0,
        )
    return AgentConfig(
        host=host,
        kind=spec.kind,
        controller=controller_url,
        token_file=token_file,
        interval_s=interval_s,
        command_wait_s=2.0,
        capacity=spec.capacity,
        links=links,
        upstream=upstream,
        lan=lan,
        customer_lans=(
            {c: ipaddress.IPv4Network(n) for c, n in plan.cpe_lans.items()}
            if spec.kind is HostKind.SERVER
            else {}
        ),
        customer_pool=topo.addressing.lans,
        functions=functions,
        prefix=plan.prefix,
        state_dir=bed.directory / "agents" / host,
    )


@dataclass
class Fleet:
    """The agents of a bed: their tokens (for the controller's settings) and processes."""

    bed: Bed
    tokens: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tokens = {h: secrets.token_urlsafe(24) for h in sorted(self.bed.plan.hosts)}

    @property
    def url(self) -> str:
        return f"http://{self.bed.plan.controller_address}:{CONTROLLER_PORT}"

    def start(self, interval_s: float, hosts: list[str] | None = None) -> None:
        directory = self.bed.directory
        (directory / "logs").mkdir(exist_ok=True)
        for host in hosts or sorted(self.bed.plan.hosts):
            state = directory / "agents" / host
            state.mkdir(parents=True, exist_ok=True)
            token_file = state / "token"
            token_file.write_text(self.tokens[host])
            token_file.chmod(0o600)
            config = agent_config(self.bed, host, self.url, token_file, interval_s)
            config_file = state / "agent.json"
            config_file.write_text(config.model_dump_json(indent=1))
            log = (directory / "logs" / f"agent-{host}.log").open("ab")
            argv = netns_exec_argv(
                self.bed.plan.hosts[host],
                [sys.executable, "-m", "edgeroam.agent", "--config", str(config_file)],
            )
            self.processes[host] = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            log.close()

    def dead(self) -> dict[str, int]:
        return {h: p.returncode for h, p in self.processes.items() if p.poll() is not None}

    def stop(self, grace_s: float = 3.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(2.0)
        self.processes.clear()

    def log_tail(self, host: str, lines: int = 20) -> str:
        path = self.bed.directory / "logs" / f"agent-{host}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
