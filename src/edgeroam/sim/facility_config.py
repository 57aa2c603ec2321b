"""The `facility:` section of a scenario: batteries, cooling units and floods of the simulated
rooms, checked against the rest of the scenario with precise locations.

Kept apart from the world model so `sim.scenario` can import it without importing the runner.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from edgeroam.model import Criticality, HostKind, Identifier, Model
from edgeroam.model.base import NonNegative, Positive
from edgeroam.telemetry.facility import MOUNT_HEIGHT_LABEL, parse_height

if TYPE_CHECKING:
    from edgeroam.sim.scenario import Scenario


class Interval(Model):
    """[start, end) in seconds of simulated time; no end means until the run ends."""

    start: NonNegative
    end: NonNegative | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end:g}) must be after start ({self.start:g})")
        return self

    def covers(self, t: float) -> bool:
        return self.start <= t and (self.end is None or t < self.end)


class HostPower(Model):
    """Electrical draw of a powered server: idle plus a share per allocated vCPU."""

    idle_w: NonNegative = 200.0
    per_vcpu_w: NonNegative = 25.0


class HostOverride(Model):
    host: Identifier
    idle_w: NonNegative | None = None
    per_vcpu_w: NonNegative | None = None
    inlet_offset_c: float = Field(
        default=0.0, ge=-20, le=20, description="Inlet temperature above the room's (hot spot)."
    )


class Battery(Model):
    """A UPS battery feeding the servers of a site or a room while mains is lost."""

    id: Identifier
    site: Identifier | None = None
    room: Identifier | None = None
    capacity_wh: Positive
    initial_pct: float = Field(default=100.0, ge=0, le=100)
    cutoff_pct: float = Field(
        default=10.0, ge=0, lt=100, description="The UPS cuts its load at this charge (Min)."
    )
    restart_pct: float = Field(
        default=40.0, gt=0, le=100, description="Cut servers restart once recharged to this."
    )
    recharge_w: Positive = 1000.0
    base_load_w: NonNegative = Field(
        default=0.0, description="Network and storage gear on the same battery."
    )
    outages: tuple[Interval, ...] = Field(default=(), description="When mains is lost.")
    noise_pct: NonNegative = Field(default=0.0, description="Sensor noise (std, points of %).")
    report_mains: bool = True

    @model_validator(mode="after")
    def _one_scope(self) -> Battery:
        if (self.site is None) == (self.room is None):
            raise ValueError("a battery feeds either a site or a room: give exactly one")
        if self.restart_pct <= self.cutoff_pct:
            raise ValueError(
                f"restart_pct ({self.restart_pct:g}) must be above cutoff_pct ({self.cutoff_pct:g})"
            )
        return self

    @property
    def source(self) -> str:
        return f"site:{self.site}" if self.site is not None else f"room:{self.room}"


class Cooling(Model):
    """A room's cooling: a thermostat between `low_c` and `high_c` while it works."""

    id: Identifier
    room: Identifier
    start_c: float = Field(default=23.0, ge=-20, le=60)
    low_c: float = Field(default=22.0, description="Cooling stops at or below this (Bas).")
    high_c: float = Field(default=25.0, description="Cooling starts at or above this (Normal).")
    capacity_w: Positive
    heat_capacity_j_per_c: Positive = Field(description="Thermal mass of the room and racks.")
    outside_c: float = 30.0
    ua_w_per_c: NonNegative = Field(default=0.0, description="Heat exchange with outside.")
    outages: tuple[Interval, ...] = ()
    fail_c: float = Field(default=40.0, description="A server fails at this inlet (Haut).")
    restart_c: float = Field(default=27.0, description="…and restarts at or below this.")
    noise_c: NonNegative = 0.0
    report_room: bool = True
    report_hosts: bool = True
    report_state: bool = Field(default=False, description="Also send facility.cooling (0/1).")

    @model_validator(mode="after")
    def _ordered(self) -> Cooling:
        if not self.low_c < self.high_c < self.fail_c:
            raise ValueError(
                f"need low_c < high_c < fail_c, got {self.low_c:g}, {self.high_c:g}, "
                f"{self.fail_c:g}"
            )
        if self.restart_c >= self.fail_c:
            raise ValueError(
                f"restart_c ({self.restart_c:g}) must be below fail_c ({self.fail_c:g})"
            )
        return self


class Inflow(Interval):
    mm_per_s: Positive


class Flood(Model):
    """Water entering a room; each server fails when the water reaches its mount height."""

    id: Identifier
    room: Identifier
    inflow: tuple[Inflow, ...]
    pump_mm_per_s: NonNegative = 0.0
    noise_mm: NonNegative = 0.0
    repair_s: NonNegative = Field(
        default=300.0, description="A flooded server is back this long after the water left it."
    )


class FacilitySection(Model):
    host_power: HostPower = HostPower()
    hosts: tuple[HostOverride, ...] = ()
    batteries: tuple[Battery, ...] = ()
    cooling: tuple[Cooling, ...] = ()
    floods: tuple[Flood, ...] = ()
    critical_from: Criticality = Field(
        default=Criticality.CRITICAL, description="Functions counted as critical in downtime."
    )

    @field_validator("critical_from", mode="before")
    @classmethod
    def _criticality_by_name(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.isdigit():
            if value.upper() not in Criticality.__members__:
                names = [c.name.lower() for c in Criticality]
                raise ValueError(f"unknown criticality {value!r}; use one of {names} (or 0-3)")
            return Criticality[value.upper()]
        return value


def facility_problems(s: Scenario) -> list[str]:
    """Cross-reference problems of the `facility:` section, located as in the file."""
    f = s.facility
    if f is None:
        return []
    problems: list[str] = []
    hosts = {h.id: (i, h) for i, h in enumerate(s.topology.hosts)}
    sites = {x.id for x in s.topology.sites}
    room_sites = Counter(room for site in s.topology.sites for room in site.rooms)

    def check_room(where: str, room: str) -> None:
        if room_sites[room] == 0:
            problems.append(f"{where}: unknown room {room!r}")
        elif room_sites[room] > 1:
            problems.append(
                f"{where}: room id {room!r} is used by {room_sites[room]} sites; readings "
                "about room:<id> need it to be unique"
            )

    def check_times(where: str, intervals: tuple[Interval, ...]) -> None:
        for j, interval in enumerate(intervals):
            if interval.start > s.duration_s:
                problems.append(
                    f"{where}[{j}].start: {interval.start:g} is after the end of the run "
                    f"({s.duration_s:g} s)"
                )

    for kind, ids in (
        ("batteries", [x.id for x in f.batteries]),
        ("cooling", [x.id for x in f.cooling]),
        ("floods", [x.id for x in f.floods]),
    ):
        counts = Counter(ids)
        seen: set[str] = set()
        for i, ident in enumerate(ids):
            if counts[ident] > 1 and ident in seen:
                problems.append(f"facility.{kind}[{i}].id: duplicate id {ident!r}")
            seen.add(ident)
    for i, o in enumerate(f.hosts):
        if o.host not in hosts:
            problems.append(f"facility.hosts[{i}].host: unknown host {o.host!r}")

    fed: dict[str, str] = {}
    for i, b in enumerate(f.batteries):
        where = f"facility.batteries[{i}]"
        if b.site is not None and b.site not in sites:
            problems.append(f"{where}.site: unknown site {b.site!r}")
        if b.room is not None:
            check_room(f"{where}.room", b.room)
        check_times(f"{where}.outages", b.outages)
        for host_id, (_, h) in hosts.items():
            if h.kind is HostKind.CPE or not (h.site == b.site or (b.room and h.room == b.room)):
                continue
            if host_id in fed:
                problems.append(
                    f"{where}: host {host_id!r} is already fed by battery {fed[host_id]!r}"
                )
            fed[host_id] = b.id
    cooled: set[str] = set()
    for i, c in enumerate(f.cooling):
        where = f"facility.cooling[{i}]"
        check_room(f"{where}.room", c.room)
        if c.room in cooled:
            problems.append(f"{where}.room: room {c.room!r} already has a cooling entry")
        cooled.add(c.room)
        check_times(f"{where}.outages", c.outages)
    flooded: set[str] = set()
    for i, fl in enumerate(f.floods):
        where = f"facility.floods[{i}]"
        check_room(f"{where}.room", fl.room)
        if fl.room in flooded:
            problems.append(f"{where}.room: room {fl.room!r} already has a flood entry")
        flooded.add(fl.room)
        check_times(f"{where}.inflow", fl.inflow)
        for host_id, (j, h) in sorted(hosts.items()):
            if h.room != fl.room or h.kind is HostKind.CPE:
                continue
            try:
                height = parse_height(h.labels)
            except ValueError as exc:
                problems.append(f"topology.hosts[{j}].{exc}")
                continue
            if height is None:
                problems.append(
                    f"topology.hosts[{j}].labels.{MOUNT_HEIGHT_LABEL}: host {host_id!r} stands "
                    f"in flooded room {fl.room!r} ({where}) and needs its mount height"
                )
    return problems
