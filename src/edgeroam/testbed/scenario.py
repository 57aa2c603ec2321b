"""Testbed scenario files: a topology, the controller's settings, traffic, and what to report.

Traffic kinds: ``ping`` (ICMP echo flood by the project's paced sender), ``udp-flood`` (UDP by
the same sender), ``tcp`` and ``udp`` (iperf3, paced with its ``-b``). A flow goes from a
terminal to an internet address; each runs from ``start_s`` to ``stop_s`` of the run and is
bounded by them.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationError, model_validator

from edgeroam.model import Model
from edgeroam.model.base import Positive
from edgeroam.sim.scenario import _problems
from edgeroam.testbed.sender import MAX_DURATION_S, MAX_SIZE, MIN_SIZE
from edgeroam.testbed.topology import (
    BedTopology,
    TopologyError,
    load_topology,
    load_yaml,
    parse_topology,
)


class TrafficKind(StrEnum):
    PING = "ping"
    UDP_FLOOD = "udp-flood"
    TCP = "tcp"
    UDP = "udp"

    @property
    def by_sender(self) -> bool:
        return self in (TrafficKind.PING, TrafficKind.UDP_FLOOD)


class Traffic(Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,39}$")
    kind: TrafficKind
    source: str = Field(alias="from", description="Terminal id.")
    to: ipaddress.IPv4Address = Field(description="An internet address of the topology.")
    rate_mbps: Positive = Field(le=10_000)
    start_s: float = Field(ge=0)
    stop_s: Positive
    size: int = Field(default=1400, ge=MIN_SIZE, le=MAX_SIZE, description="Sender packet size.")
    port: int = Field(default=9, gt=0, lt=65536, description="udp-flood destination port.")

    model_config = ConfigDict(populate_by_name=True)

    @model_validator(mode="after")
    def _window(self) -> Traffic:
        if self.stop_s <= self.start_s:
            raise ValueError(f"stop_s {self.stop_s} must be after start_s {self.start_s}")
        if self.stop_s - self.start_s > MAX_DURATION_S:
            raise ValueError(f"a flow may last at most {MAX_DURATION_S:g} s")
        return self


class ReportSpec(Model):
    access_link: str = Field(description="Link whose rate before/after_mbps report.")
    direction: str = Field(default="ab", pattern="^(ab|ba)$")
    band_server: str = Field(description="Server whose band use ratio times the reaction.")
    threshold: float | None = Field(
        default=None, gt=0, le=1, description="Null: the offload policy's threshold."
    )
    flood: str = Field(description="Traffic id of the attack.")
    legit: str | None = Field(default=None, description="Traffic id of the legitimate flow.")


class BedScenario(Model):
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    topology: str = Field(description="Topology file, relative to this file.")
    duration_s: Positive = Field(le=1800)
    telemetry_interval_s: float = Field(default=1.0, ge=0.05, le=60)
    tick_s: float = Field(default=0.5, gt=0, le=60)
    stale_after_s: Positive | None = Field(
        default=None, description="Null: four telemetry intervals."
    )
    arbiter: dict[str, Any] = Field(default_factory=dict)
    lifecycle: dict[str, Any] = Field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Policies to run; every other one is disabled."
    )
    traffic: tuple[Traffic, ...] = ()
    report: ReportSpec | None = None

    @property
    def stale_s(self) -> float:
        return self.stale_after_s or 4 * self.telemetry_interval_s


class LoadedScenario(Model):
    scenario: BedScenario
    bed: BedTopology
    path: str


def _cross_problems(s: BedScenario, bed: BedTopology) -> list[str]:
    problems = []
    terminals = {t.id for t in bed.terminals}
    internet = set(bed.internet.addresses)
    links = {lk.id for lk in bed.topology.links}
    servers = {h.id for h in bed.topology.hosts if h.kind.value == "server"}
    seen: set[str] = set()
    for i, t in enumerate(s.traffic):
        where = f"traffic[{i}]"
        if t.id in seen:
            problems.append(f"{where}.id: duplicate id {t.id!r}")
        seen.add(t.id)
        if t.source not in terminals:
            problems.append(f"{where}.from: {t.source!r} is not a terminal of the topology")
        if t.to not in internet:
            problems.append(
                f"{where}.to: {t.to} is not an internet address of the topology "
                f"({', '.join(map(str, bed.internet.addresses))})"
            )
        if t.stop_s > s.duration_s:
            problems.append(f"{where}.stop_s: {t.stop_s} is after the end of the run")
    if s.report is not None:
        r = s.report
        if r.access_link not in links:
            problems.append(f"report.access_link: unknown link {r.access_link!r}")
        if r.band_server not in servers:
            problems.append(f"report.band_server: {r.band_server!r} is not a server")
        for name in ("flood", "legit"):
            value = getattr(r, name)
            if value is not None and value not in seen:
                problems.append(f"report.{name}: unknown traffic id {value!r}")
        if r.threshold is None and "offload" not in s.policies:
            problems.append("report.threshold: give one, or configure the offload policy")
    return problems


def load_scenario(path: str | Path) -> LoadedScenario:
    source = str(path)
    data = load_yaml(path)
    if not isinstance(data, dict):
        raise TopologyError(source, ["the document must be a mapping"])
    try:
        scenario = BedScenario.model_validate(data)
    except ValidationError as exc:
        raise TopologyError(source, _problems(exc, data)) from None
    topo_path = Path(path).parent / scenario.topology
    if not topo_path.exists():
        raise TopologyError(source, [f"topology: no file {topo_path}"])
    bed = load_topology(topo_path)
    problems = _cross_problems(scenario, bed)
    if problems:
        raise TopologyError(source, problems)
    return LoadedScenario(scenario=scenario, bed=bed, path=source)


def parse_scenario(data: dict[str, Any], bed_data: dict[str, Any]) -> LoadedScenario:
    """A scenario and its topology given as data (tests, generated runs)."""
    try:
        scenario = BedScenario.model_validate(data)
    except ValidationError as exc:
        raise TopologyError("<scenario>", _problems(exc, data)) from None
    bed = parse_topology(bed_data)
    problems = _cross_problems(scenario, bed)
    if problems:
        raise TopologyError("<scenario>", problems)
    return LoadedScenario(scenario=scenario, bed=bed, path="<scenario>")
