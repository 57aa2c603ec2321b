"""Scenario files: the whole input of a simulation run in one validated YAML document.

A scenario is checked in two passes. Pydantic checks each value's shape, then the `Scenario`
model checks that references between collections resolve (a flow's customer exists, an
instance's host exists, ...). Every problem is reported as ``file: location: message`` with the
location written the way a person finds it in the file (``topology.hosts[3].capacity.vcpu``), so
a broken scenario can be fixed without reading a traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from edgeroam.drivers.base import ACTIONS
from edgeroam.model import (
    Customer,
    Flavor,
    FunctionSpec,
    Group,
    Host,
    HostKind,
    Identifier,
    Instance,
    LifecycleStage,
    Link,
    Model,
    ParameterError,
    Reading,
    Role,
    Site,
    validate_params,
)
from edgeroam.model.base import NonNegative, Positive
from edgeroam.model.document import DocumentError, duplicate_problems
from edgeroam.sim.band_config import BandSection, band_problems
from edgeroam.sim.bnb_config import BnbSection, bnb_problems
from edgeroam.sim.facility_config import FacilitySection, facility_problems
from edgeroam.sim.load_config import LoadSection, group_problems, load_problems
from edgeroam.sim.profiles import Profile


class ScenarioError(DocumentError):
    """A scenario file cannot be used; the message names the file and each faulty location."""


# --- schema -------------------------------------------------------------------------------------


class ControllerConfig(Model):
    dry_run: bool = False
    arbiter: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the arbiter untouched."
    )


class DriverConfig(Model):
    """The simulated driver: how long actions take and how often they fail."""

    latency_s: NonNegative = 0.0
    latency_by_action: dict[str, NonNegative] = Field(
        default_factory=dict, description="Per driver action overrides of latency_s."
    )
    failure_rate: float = Field(default=0.0, ge=0, le=1)
    fail_actions: tuple[str, ...] = Field(
        default=(), description="Driver actions that can fail; empty means all of them."
    )
    seed: int | None = None

    @model_validator(mode="after")
    def _known_actions(self) -> DriverConfig:
        unknown = sorted(set(self.latency_by_action) - set(ACTIONS))
        if unknown:
            raise ValueError(
                f"latency_by_action: unknown driver action(s) {unknown}; known: {sorted(ACTIONS)}"
            )
        return self


class Topology(Model):
    sites: tuple[Site, ...] = ()
    hosts: tuple[Host, ...] = ()
    links: tuple[Link, ...] = ()


class InstanceSeed(Model):
    """An instance deployed when the run starts."""

    id: Identifier
    function: Identifier
    owner: Identifier | None = None
    host: Identifier
    role: Role = Role.ACTIVE
    group: Identifier | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    def to_instance(
        self, stage: LifecycleStage = LifecycleStage.ONBOARDING, at: float = 0.0
    ) -> Instance:
        return Instance(
            id=self.id,
            function=self.function,
            owner=self.owner,
            host=self.host,
            role=self.role,
            group=self.group,
            params=self.params,
            stage=stage,
            created_at=at,
            updated_at=at,
        )


class Flow(Model):
    """A customer's traffic through one function, sent from the customer's CPE."""

    id: Identifier
    customer: Identifier
    function: Identifier
    rate_mbps: Profile
    destination: str | None = None
    protocol: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class _TimedEvent(Model):
    t: NonNegative


class HostDownEvent(_TimedEvent):
    action: Literal["host_down"]
    host: Identifier


class HostUpEvent(_TimedEvent):
    action: Literal["host_up"]
    host: Identifier


class LinkCapacityEvent(_TimedEvent):
    action: Literal["link_capacity"]
    link: Identifier
    capacity_mbps: Positive


class ReadingEvent(_TimedEvent):
    """A reading injected as if a sensor or agent had reported it."""

    action: Literal["reading"]
    source: str
    metric: str
    value: float

    @model_validator(mode="after")
    def _valid_reading(self) -> ReadingEvent:
        self.to_reading()
        return self

    def to_reading(self) -> Reading:
        try:
            return Reading(
                source=self.source, metric=self.metric, value=self.value, timestamp=self.t
            )
        except ValidationError as exc:
            raise ValueError(
                "; ".join(f"{_dotted(e['loc'], None)}: {e['msg']}" for e in exc.errors())
            ) from None


class FlowRateEvent(_TimedEvent):
    """Replace a flow's rate profile from time `t` on."""

    action: Literal["flow_rate"]
    flow: Identifier
    rate_mbps: Profile


ScheduledEvent = Annotated[
    HostDownEvent | HostUpEvent | LinkCapacityEvent | ReadingEvent | FlowRateEvent,
    Field(discriminator="action"),
]


class Scenario(Model):
    name: str = Field(min_length=1)
    description: str = ""
    seed: int = 0
    duration_s: Positive
    tick_s: Positive = 1.0
    stale_after_s: Positive | None = Field(
        default=None, description="Age after which a reading is stale; null means 3 ticks."
    )
    controller: ControllerConfig = ControllerConfig()
    policies: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Per-policy settings, validated by each policy."
    )
    driver: DriverConfig = DriverConfig()
    topology: Topology = Topology()
    flavors: tuple[Flavor, ...] = ()
    functions: tuple[FunctionSpec, ...] = ()
    customers: tuple[Customer, ...] = ()
    instances: tuple[InstanceSeed, ...] = ()
    flows: tuple[Flow, ...] = ()
    events: tuple[ScheduledEvent, ...] = ()
    band: BandSection | None = Field(
        default=None, description="Measure the CPE↔server band (see edgeroam.sim.band)."
    )
    facility: FacilitySection | None = Field(
        default=None, description="Batteries, cooling and floods (see edgeroam.sim.facility)."
    )
    bnb: BnbSection | None = Field(
        default=None, description="Group demand and CPE owners' usage (see edgeroam.sim.bnb)."
    )
    groups: tuple[Group, ...] = Field(
        default=(), description="Managed groups of functions and managers (seed 002)."
    )
    load: LoadSection | None = Field(
        default=None, description="Demand on the managed groups (see edgeroam.sim.load)."
    )

    @property
    def effective_stale_after_s(self) -> float:
        return self.stale_after_s if self.stale_after_s is not None else 3 * self.tick_s

    def sorted_events(self) -> list[ScheduledEvent]:
        """Events by time; events at the same time keep their order in the file."""
        return sorted(self.events, key=lambda e: e.t)

    @model_validator(mode="after")
    def _references_resolve(self) -> Scenario:
        problems = _cross_reference_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --- cross-reference checks ---------------------------------------------------------------------


def _cross_reference_problems(s: Scenario) -> list[str]:
    topo = s.topology
    problems: list[str] = []
    problems += duplicate_problems("topology.sites", (x.id for x in topo.sites))
    problems += duplicate_problems("topology.hosts", (x.id for x in topo.hosts))
    problems += duplicate_problems("topology.links", (x.id for x in topo.links))
    problems += duplicate_problems("flavors", (x.id for x in s.flavors))
    problems += duplicate_problems("functions", (x.name for x in s.functions), "name")
    problems += duplicate_problems("customers", (x.id for x in s.customers))
    problems += duplicate_problems("instances", (x.id for x in s.instances))
    problems += duplicate_problems("flows", (x.id for x in s.flows))

    sites = {x.id: x for x in topo.sites}
    hosts = {x.id: x for x in topo.hosts}
    links = {x.id for x in topo.links}
    flavors = {x.id for x in s.flavors}
    functions = {x.name: x for x in s.functions}
    customers = {x.id for x in s.customers}
    flows = {x.id for x in s.flows}
    instances = {x.id for x in s.instances}
    rooms = {room for site in topo.sites for room in site.rooms}
    customers_with_cpe = {
        h.owner for h in topo.hosts if h.kind is HostKind.CPE and h.owner is not None
    }

    # Sites and hosts share one namespace: both are nodes of the network graph.
    for i, h in enumerate(topo.hosts):
        where = f"topology.hosts[{i}]"
        if h.id in sites:
            problems.append(f"{where}.id: {h.id!r} is also a site id; nodes must be unique")
        if h.site not in sites:
            problems.append(f"{where}.site: unknown site {h.site!r}")
        elif h.room is not None and h.room not in sites[h.site].rooms:
            problems.append(f"{where}.room: site {h.site!r} has no room {h.room!r}")
        if h.kind is HostKind.CPE and h.owner is not None and h.owner not in customers:
            problems.append(f"{where}.owner: unknown customer {h.owner!r}")

    for i, link in enumerate(topo.links):
        for end in ("a", "b"):
            node = getattr(link, end)
            if node not in hosts and node not in sites:
                problems.append(f"topology.links[{i}].{end}: {node!r} is neither a host nor a site")

    for i, f in enumerate(s.functions):
        if f.flavor not in flavors:
            problems.append(f"functions[{i}].flavor: unknown flavor {f.flavor!r}")

    for i, inst in enumerate(s.instances):
        where = f"instances[{i}]"
        spec = functions.get(inst.function)
        if spec is None:
            problems.append(f"{where}.function: unknown function {inst.function!r}")
        else:
            try:
                validate_params(spec, inst.params)
            except ParameterError as exc:
                problems.append(f"{where}.params: {exc}")
        if inst.host not in hosts:
            problems.append(f"{where}.host: unknown host {inst.host!r}")
        if inst.owner is not None and inst.owner not in customers:
            problems.append(f"{where}.owner: unknown customer {inst.owner!r}")

    for i, flow in enumerate(s.flows):
        where = f"flows[{i}]"
        if flow.customer not in customers:
            problems.append(f"{where}.customer: unknown customer {flow.customer!r}")
        elif flow.customer not in customers_with_cpe:
            problems.append(
                f"{where}.customer: customer {flow.customer!r} has no CPE "
                "(a host of kind cpe owned by the customer) to send the flow from"
            )
        if flow.function not in functions:
            problems.append(f"{where}.function: unknown function {flow.function!r}")

    known_sources: dict[str, set[str]] = {
        "host": set(hosts),
        "link": links,
        "instance": instances,
        "site": set(sites),
        "room": rooms,
        "function": set(functions),
        "customer": customers,
        "flow": flows,
    }
    for i, ev in enumerate(s.events):
        where = f"events[{i}]"
        if ev.t > s.duration_s:
            problems.append(f"{where}.t: {ev.t} is after the end of the run ({s.duration_s} s)")
        if isinstance(ev, HostDownEvent | HostUpEvent) and ev.host not in hosts:
            problems.append(f"{where}.host: unknown host {ev.host!r}")
        elif isinstance(ev, LinkCapacityEvent) and ev.link not in links:
            problems.append(f"{where}.link: unknown link {ev.link!r}")
        elif isinstance(ev, FlowRateEvent) and ev.flow not in flows:
            problems.append(f"{where}.flow: unknown flow {ev.flow!r}")
        elif isinstance(ev, ReadingEvent):
            kind, _, ident = ev.source.partition(":")
            if ident not in known_sources.get(kind, {ident}):
                problems.append(f"{where}.source: unknown {kind} {ident!r}")
    problems += band_problems(s)
    problems += facility_problems(s)
    problems += bnb_problems(s)
    problems += group_problems(s)
    problems += load_problems(s)
    return problems


# --- loading and error formatting ---------------------------------------------------------------


def _dotted(loc: Sequence[int | str], data: Any, missing: bool = False) -> str:
    """Turn a pydantic error location into ``a.b[2].c``, following the input document.

    Pydantic inserts the tag of a discriminated union (``host_down``) or a member type name
    into the location; those do not appear in the file, so an element that is neither a key
    nor an index of the input at that point is left out, except the last one of a `missing`
    error, which names the absent field. With `data` None every element is kept.
    """
    out = ""
    node: Any = data
    for i, element in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict) and element in node:
            out += f".{element}"
            node = node[element]
        elif isinstance(element, int) and isinstance(node, list):
            out += f"[{element}]"
            node = node[element] if 0 <= element < len(node) else None
        elif (last and missing) or data is None:
            out += f"[{element}]" if isinstance(element, int) else f".{element}"
        # else: a union tag or type name inserted by pydantic; not part of the document
    return out.lstrip(".")


def _strip_prefix(message: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if message.startswith(prefix):
            return message[len(prefix) :]
    return message


def _problems(exc: ValidationError, data: Any) -> list[str]:
    problems: list[str] = []
    for error in exc.errors():
        where = _dotted(error["loc"], data, missing=error["type"] == "missing")
        for line in _strip_prefix(error["msg"]).splitlines():
            # Cross-reference problems already start with their own location.
            problems.append(f"{where}: {line}" if where else line)
    return problems


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate an already-parsed document; raises ScenarioError naming `source`."""
    if not isinstance(data, dict):
        raise ScenarioError(source, [f"the document must be a mapping, not {type(data).__name__}"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(source, _problems(exc, data)) from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys, which plain YAML silently overwrites."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in result:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping",
                node.start_mark,
                f"found duplicate key {key!r}",
                key_node.start_mark,
            )
        result[key] = loader.construct_object(value_node, deep=True)
    return result


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a YAML scenario file; every failure is a ScenarioError."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # safe: a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(source, [_yaml_problem(exc)]) from None
    return parse_scenario(data, source)


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {text}"
    return text
