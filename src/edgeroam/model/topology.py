"""Where functions can run: sites, hosts and the links between them."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from edgeroam.model.base import Identifier, Model, NonNegative, Positive


class SiteKind(StrEnum):
    HOME = "home"
    BRANCH = "branch"
    EDGE = "edge"
    DATACENTER = "datacenter"
    CLOUD = "cloud"


class Coordinates(Model):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class Site(Model):
    id: Identifier
    kind: SiteKind
    region: str = Field(default="default", min_length=1, max_length=64)
    coordinates: Coordinates | None = None
    rooms: tuple[Identifier, ...] = ()


class HostKind(StrEnum):
    CPE = "cpe"
    SERVER = "server"
    CLOUD = "cloud"


class HostState(StrEnum):
    """Scheduling state: only READY hosts receive new functions."""

    READY = "ready"
    CORDONED = "cordoned"
    DRAINING = "draining"
    DOWN = "down"
    OFF = "off"


class Resources(Model):
    """A bundle of the three resources edgeroam schedules."""

    vcpu: NonNegative = 0.0
    memory_mb: NonNegative = 0.0
    bandwidth_mbps: NonNegative = 0.0

    def __add__(self, other: Resources) -> Resources:
        return Resources(
            vcpu=self.vcpu + other.vcpu,
            memory_mb=self.memory_mb + other.memory_mb,
            bandwidth_mbps=self.bandwidth_mbps + other.bandwidth_mbps,
        )

    def fits_in(self, free: Resources) -> bool:
        return (
            self.vcpu <= free.vcpu
            and self.memory_mb <= free.memory_mb
            and self.bandwidth_mbps <= free.bandwidth_mbps
        )


class Incentives(Model):
    """Unit prices a B&B host's owner is paid for lending capacity."""

    per_vcpu: NonNegative = 0.0
    per_memory_mb: NonNegative = 0.0
    per_bandwidth_mbps: NonNegative = 0.0


class Host(Model):
    id: Identifier
    kind: HostKind
    site: Identifier
    room: Identifier | None = None
    capacity: Resources
    owner: Identifier | None = Field(
        default=None, description="The customer whose premises a CPE stands in."
    )
    lends_capacity: bool = Field(
        default=False, description="B&B opt-in: the CPE hosts other customers' functions."
    )
    incentives: Incentives = Incentives()
    state: HostState = HostState.READY
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _cpe_rules(self) -> Host:
        if self.kind is HostKind.CPE and self.owner is None:
            raise ValueError(f"host {self.id!r}: a CPE needs an owner customer")
        if self.kind is not HostKind.CPE and self.lends_capacity:
            raise ValueError(f"host {self.id!r}: only a CPE can lend capacity (B&B)")
        return self


class LinkKind(StrEnum):
    ACCESS = "access"
    UPLINK = "uplink"
    CORE = "core"


class Link(Model):
    """A bidirectional link between two nodes; a node is a host id or a site id."""

    id: Identifier
    a: Identifier
    b: Identifier
    capacity_mbps: Positive
    kind: LinkKind = LinkKind.ACCESS
    delay_ms: NonNegative = 0.0

    @model_validator(mode="after")
    def _distinct_ends(self) -> Link:
        if self.a == self.b:
            raise ValueError(f"link {self.id!r}: both ends are {self.a!r}")
        return self
