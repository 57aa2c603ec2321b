"""Facility signals: what the technical environment of a server reports, and how a reading
about a host, its room or its site becomes one value per host.

Readings are ordinary telemetry (``Reading``) whose metric starts with ``facility.``, sent by
sensors, agents or a facility controller, about a ``host:``, ``room:`` or ``site:`` source. For
each host the most specific source that has reported decides (host, then room, then site), and
a stale value there means *unknown* — a dead host sensor never falls back to a calm room sensor.

Everything here is pure and column-wise: a metric is resolved for every monitored host with a
couple of numpy gathers, and the id look-ups are redone only when sources or hosts change.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edgeroam.model import Reading

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

PREFIX = "facility."
MOUNT_HEIGHT_LABEL = "mount_height_mm"
"""Host label giving the height (mm above the room's floor) of the server's lowest point."""


class Parameter(StrEnum):
    """The technical-environment parameters a server depends on."""

    POWER = "power"
    COOLING = "cooling"
    WATER = "water"
    GAS = "gas"
    INTRUSION = "intrusion"


class Level(IntEnum):
    NORMAL = 0
    DEGRADED = 1
    FAILED = 2


class Worse(StrEnum):
    """Which way a signal goes bad."""

    LOW = "low"
    HIGH = "high"


class Scope(IntEnum):
    """Where a host's value came from; wider scopes mean a wider problem."""

    NONE = -1
    HOST = 0
    ROOM = 1
    SITE = 2


# --- raw metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    unit: str
    low: float
    high: float
    description: str


def _metric(name: str, unit: str, low: float, high: float, description: str) -> MetricSpec:
    return MetricSpec(PREFIX + name, unit, low, high, description)


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        _metric("mains", "0/1", 0, 1, "Mains supply present (1) or lost (0)."),
        _metric("battery_pct", "%", 0, 100, "Charge of the battery (UPS) feeding the servers."),
        _metric("power_available_w", "W", 0, 1e8, "Power the supply can deliver now."),
        _metric("power_required_w", "W", 0, 1e8, "Power the servers need."),
        _metric("temperature_c", "°C", -50, 150, "Server inlet or room temperature."),
        _metric("cooling", "0/1", 0, 1, "Cooling system working (1) or failed (0)."),
        _metric("water_level_mm", "mm", 0, 1e5, "Water above the room's floor."),
        _metric(
            "water_clearance_mm", "mm", -1e5, 1e5, "Distance from the water to the server (host)."
        ),
        _metric(
            "gas_lel_pct", "% LEL", 0, 100, "Gas concentration, share of the lower explosive limit."
        ),
        _metric("intrusion", "0/1", 0, 1, "Intrusion sensor triggered (1) or quiet (0)."),
    )
}


# --- facility-controller codes ------------------------------------------------------------------

CODES: dict[Parameter, dict[int, tuple[str, Level]]] = {
    Parameter.POWER: {
        0: ("mains_ok", Level.NORMAL),
        1: ("on_generator", Level.NORMAL),
        2: ("on_battery", Level.DEGRADED),
        3: ("battery_low", Level.DEGRADED),
        4: ("power_lost", Level.FAILED),
    },
    Parameter.COOLING: {
        0: ("cooling_ok", Level.NORMAL),
        1: ("redundancy_lost", Level.NORMAL),
        2: ("cooling_failed", Level.DEGRADED),
        3: ("overheating", Level.FAILED),
    },
    Parameter.WATER: {
        0: ("dry", Level.NORMAL),
        1: ("water_detected", Level.DEGRADED),
        2: ("water_at_equipment", Level.FAILED),
    },
    Parameter.GAS: {
        0: ("clear", Level.NORMAL),
        1: ("gas_detected", Level.DEGRADED),
        2: ("explosive_atmosphere", Level.FAILED),
    },
    Parameter.INTRUSION: {
        0: ("secure", Level.NORMAL),
        1: ("intrusion_detected", Level.DEGRADED),
    },
}
"""A facility controller that correlates its own sensors sends ``facility.code.<parameter>``
with one of these codes; each code stands for a level of that parameter."""


def code_metric(parameter: Parameter) -> str:
    return f"{PREFIX}code.{parameter.value}"


def code_levels(parameter: Parameter, codes: FloatArray) -> tuple[FloatArray, BoolArray]:
    """Codes → level values (as floats, for the level machinery) and a mask of known codes."""
    table = CODES[parameter]
    lookup = np.full(max(table) + 1, np.nan)
    for code, (_, level) in table.items():
        lookup[code] = float(level)
    whole = np.isfinite(codes) & (codes == np.round(codes)) & (codes >= 0) & (codes < len(lookup))
    out = np.full(codes.shape, np.nan)
    out[whole] = lookup[codes[whole].astype(np.int64)]
    return out, np.isfinite(out)


# --- signals: what levels are computed on -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignalSpec:
    name: str
    parameter: Parameter
    worse: Worse
    unit: str
    description: str


SIGNALS: dict[str, SignalSpec] = {
    s.name: s
    for s in (
        SignalSpec("mains", Parameter.POWER, Worse.LOW, "0/1", "facility.mains"),
        SignalSpec("battery_pct", Parameter.POWER, Worse.LOW, "%", "facility.battery_pct"),
        SignalSpec(
            "power_margin",
            Parameter.POWER,
            Worse.LOW,
            "ratio",
            "facility.power_available_w / facility.power_required_w",
        ),
        SignalSpec("temperature_c", Parameter.COOLING, Worse.HIGH, "°C", "facility.temperature_c"),
        SignalSpec("cooling", Parameter.COOLING, Worse.LOW, "0/1", "facility.cooling"),
        SignalSpec(
            "water_clearance_mm",
            Parameter.WATER,
            Worse.LOW,
            "mm",
            "facility.water_clearance_mm, or the host's mount_height_mm label minus "
            "facility.water_level_mm",
        ),
        SignalSpec("gas_lel_pct", Parameter.GAS, Worse.HIGH, "% LEL", "facility.gas_lel_pct"),
        SignalSpec("intrusion", Parameter.INTRUSION, Worse.HIGH, "0/1", "facility.intrusion"),
        *(
            SignalSpec(
                f"code_{p.value}",
                p,
                Worse.HIGH,
                "level",
                f"{code_metric(p)} (facility-controller code mapped to a level)",
            )
            for p in Parameter
        ),
    )
}
"""Signal name → spec; a parameter's level is the worst of its signals' levels."""

PARAMETERS: tuple[Parameter, ...] = tuple(Parameter)


# --- validation of single readings (API, agents) ------------------------------------------------


def reading_problem(reading: Reading) -> str | None:
    """Why a facility reading cannot be used, or None when it is fine (or not a facility one)."""
    if not reading.metric.startswith(PREFIX):
        return None
    kind = reading.source.partition(":")[0]
    if kind not in ("host", "room", "site"):
        return (
            f"{reading.source} {reading.metric}: facility readings are about a host:, room: "
            f"or site: source, not {kind}:"
        )
    if reading.metric.startswith(PREFIX + "code."):
        name = reading.metric[len(PREFIX + "code.") :]
        if name not in {p.value for p in Parameter}:
            return (
                f"{reading.source} {reading.metric}: unknown parameter {name!r}; "
                f"use one of {[p.value for p in Parameter]}"
            )
        table = CODES[Parameter(name)]
        if reading.value != int(reading.value) or int(reading.value) not in table:
            known = ", ".join(f"{c}={n}" for c, (n, _) in sorted(table.items()))
            return (
                f"{reading.source} {reading.metric}: unknown code {reading.value:g}; known: {known}"
            )
        return None
    spec = METRICS.get(reading.metric)
    if spec is None:
        return f"{reading.source}: unknown facility metric {reading.metric!r}; known: " + ", ".join(
            sorted([*METRICS, *(code_metric(p) for p in Parameter)])
        )
    if not spec.low <= reading.value <= spec.high:
        return (
            f"{reading.source} {reading.metric}: {reading.value:g} {spec.unit} is outside the "
            f"plausible range [{spec.low:g}, {spec.high:g}]"
        )
    return None


def parse_height(labels: Mapping[str, str], label: str = MOUNT_HEIGHT_LABEL) -> float | None:
    """A host's mount height from its label; None when absent; ValueError when malformed."""
    text = labels.get(label)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"labels.{label}: {text!r} is not a number of millimetres") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"labels.{label}: {text!r} must be a finite height >= 0 mm")
    return value


# --- resolving readings to hosts ----------------------------------------------------------------


class Column(Protocol):
    """What resolution needs of a metric's column (the snapshot's MetricView has it)."""

    @property
    def ids(self) -> tuple[str, ...]: ...

    @property
    def index(self) -> Mapping[str, int]: ...

    @property
    def values(self) -> FloatArray: ...

    @property
    def stale(self) -> BoolArray: ...


@dataclass(frozen=True, slots=True)
class Sources:
    """For each monitored host, the row of the metric's column that speaks for it."""

    known_sources: int
    """How many sources the column had when this was built (columns only grow)."""
    rows: IntArray
    scope: IntArray


def host_sources(
    column: Column,
    hosts: Sequence[str],
    rooms: Sequence[str | None],
    sites: Sequence[str],
) -> Sources:
    """Pick the most specific source of each host that the column has ever heard from."""
    index = column.index
    n = len(hosts)
    rows = np.full(n, -1, dtype=np.int64)
    scope = np.full(n, int(Scope.NONE), dtype=np.int64)
    for i in range(n):
        for kind, key, level in (
            ("host", hosts[i], Scope.HOST),
            ("room", rooms[i], Scope.ROOM),
            ("site", sites[i], Scope.SITE),
        ):
            if key is None:
                continue
            row = index.get(f"{kind}:{key}")
            if row is not None and row < len(column.ids):
                rows[i] = row
                scope[i] = int(level)
                break
    return Sources(len(column.ids), rows, scope)


@dataclass(frozen=True, slots=True)
class Resolved:
    """One metric's value for every monitored host."""

    values: FloatArray
    known: BoolArray
    """Fresh and plausible."""
    scope: IntArray
    invalid: BoolArray
    """Fresh but outside the metric's plausible range (reported, then treated as unknown)."""


def resolve(column: Column, sources: Sources, low: float, high: float) -> Resolved:
    rows = sources.rows
    has = rows >= 0
    safe = np.where(has, rows, 0)
    if len(column.values) == 0:
        values = np.full(len(rows), np.nan)
        fresh = np.zeros(len(rows), dtype=bool)
    else:
        values = np.where(has, column.values[safe], np.nan)
        fresh = has & ~column.stale[safe]
    plausible = (values >= low) & (values <= high)
    return Resolved(
        values=values,
        known=fresh & plausible,
        scope=np.where(has, sources.scope, int(Scope.NONE)),
        invalid=fresh & ~plausible,
    )


def unknown(n: int) -> Resolved:
    return Resolved(
        values=np.full(n, np.nan),
        known=np.zeros(n, dtype=bool),
        scope=np.full(n, int(Scope.NONE), dtype=np.int64),
        invalid=np.zeros(n, dtype=bool),
    )


def signal_values(name: str, metric: Callable[[str], Resolved], heights: FloatArray) -> Resolved:
    """One signal's value per monitored host, built from the resolved raw metrics.

    `metric(name)` returns a resolved raw metric (all-unknown when nobody reports it);
    `heights` are the hosts' mount heights in mm (NaN when not labelled).
    """
    spec = SIGNALS[name]
    if name == "power_margin":
        available = metric(PREFIX + "power_available_w")
        required = metric(PREFIX + "power_required_w")
        known = available.known & required.known & (required.values > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(known, available.values / np.where(known, required.values, 1), np.nan)
        return Resolved(
            values=ratio,
            known=known,
            scope=np.maximum(available.scope, required.scope),
            invalid=np.zeros(len(ratio), dtype=bool),
        )
    if name == "water_clearance_mm":
        direct = metric(PREFIX + "water_clearance_mm")
        level = metric(PREFIX + "water_level_mm")
        derived = level.known & np.isfinite(heights)
        use_direct = direct.known
        values = np.where(
            use_direct, direct.values, np.where(derived, heights - level.values, np.nan)
        )
        return Resolved(
            values=values,
            known=use_direct | derived,
            scope=np.where(use_direct, direct.scope, level.scope),
            invalid=np.zeros(len(values), dtype=bool),
        )
    if name.startswith("code_"):
        raw = metric(code_metric(spec.parameter))
        levels, ok = code_levels(spec.parameter, raw.values)
        known = raw.known & ok
        return Resolved(
            values=np.where(known, levels, np.nan),
            known=known,
            scope=raw.scope,
            invalid=raw.known & ~ok,
        )
    return metric(PREFIX + name)


def code_range() -> tuple[float, float]:
    """Range check for code metrics is done by `code_levels`; any finite value passes here."""
    return -math.inf, math.inf


def signal_metrics(name: str) -> tuple[str, ...]:
    """The raw metrics a signal is built from (a signal none of them reports is unknown)."""
    spec = SIGNALS[name]
    if name == "power_margin":
        return (PREFIX + "power_available_w", PREFIX + "power_required_w")
    if name == "water_clearance_mm":
        return (PREFIX + "water_clearance_mm", PREFIX + "water_level_mm")
    if name.startswith("code_"):
        return (code_metric(spec.parameter),)
    return (PREFIX + name,)
