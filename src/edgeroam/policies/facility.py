"""The `facility` policy (seed 004): move functions off servers whose power, cooling or room is
failing, before the servers fail, then switch the emptied servers off.

Per cycle, following the seed's steps:

* **Notif** — facility readings about hosts, rooms and sites are resolved to one value per
  monitored host (`telemetry.facility`), stale values counting as unknown;
* **Det** — each signal's level (normal / degraded / failed) moves with hysteresis
  (`facility_levels`); a degraded host gets an ENVIRONMENTAL_ALARM and a migration deadline
  from the trend of its readings (`facility_trend`);
* **Retrait** — degraded hosts, and whole rooms/sites when most of their hosts agree, are
  cordoned so nothing new lands there;
* **Migr** — each function on a degraded host gets a MIGRATE carrying its identity and the
  deadline, most critical first then earliest deadline, within a concurrency cap and a per-site
  evacuation rate; the target comes from placement with impacted hosts excluded and impacted
  rooms/sites avoided. A function with nowhere to go stays, under a critical alarm;
* **Info** — completed moves are reported with the new host, whose readings are watched like
  any other monitored host's;
* **Extinct** — an emptied host whose problem is power, heat or water is switched off, which
  spares the battery and the room for the others; when every parameter has been normal for the
  hold time it is switched back on and uncordoned.

If every monitored site degrades at once the telemetry is the likelier fault: the policy stops
acting and raises a `telemetry_suspect` alarm until the sites disagree again or an operator
acknowledges the alarm (meaning: the emergency is real, go ahead).

The policy is pure: all state (levels, timers, alarms, what it cordoned or switched off) lives
in the memory it returns, which `acknowledge_alarm` also updates for the API.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator, model_validator

from edgeroam.model import (
    AckState,
    Alarm,
    AlarmEventType,
    Criticality,
    Host,
    HostKind,
    HostState,
    Instance,
    OperationKind,
    OperationState,
    PerceivedSeverity,
    Reason,
)
from edgeroam.policies.base import PolicyConfig, PolicyResult, Proposal
from edgeroam.policies.facility_levels import (
    DEFAULT_THRESHOLDS,
    LevelState,
    ThresholdColumns,
    ThresholdOverride,
    ThresholdPatch,
    Thresholds,
    signal_problems,
    step_levels,
    thresholds_for,
)
from edgeroam.policies.facility_trend import deadline, earliest_time_left
from edgeroam.policies.placement import PlacementRequest, Reservations, place
from edgeroam.snapshot import MetricView, OperationSummary, Snapshot
from edgeroam.telemetry.facility import (
    METRICS,
    MOUNT_HEIGHT_LABEL,
    PARAMETERS,
    PREFIX,
    SIGNALS,
    Level,
    Parameter,
    Resolved,
    Scope,
    Sources,
    host_sources,
    parse_height,
    resolve,
    signal_metrics,
    signal_values,
    unknown,
)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

POLICY = "facility"

#: ETSI-style probable cause of each parameter's alarm (after ITU-T X.733's names).
PROBABLE_CAUSE: dict[Parameter, str] = {
    Parameter.POWER: "power_problem",
    Parameter.COOLING: "temperature_unacceptable",
    Parameter.WATER: "flood_detected",
    Parameter.GAS: "toxic_leak_detected",
    Parameter.INTRUSION: "intrusion_detection",
}
NO_TARGET = "no_evacuation_target"
SUSPECT = "telemetry_suspect"
CORRELATED = "correlated_environment_fault"
SUSPECT_OBJECT = "system:telemetry"

_EVACUATIONS = (OperationKind.MIGRATE, OperationKind.SCALE_OUT)
_RETRAIT_PRIORITY = int(Criticality.CRITICAL) + 1
"""Cordons go before any migration so a refused migration never leaves a host open."""
_SIGNAL_METRICS = {name: signal_metrics(name) for name in SIGNALS}
_PARAM_SIGNALS = {p: [n for n, sp in SIGNALS.items() if sp.parameter is p] for p in PARAMETERS}
_NOT_RUNNING = frozenset({HostState.DOWN, HostState.OFF})


def criticality_by_name(value: Any) -> Any:
    """Accept `critical` as well as 3, as function specs do."""
    if isinstance(value, str) and not value.isdigit():
        if value.upper() not in Criticality.__members__:
            names = [c.name.lower() for c in Criticality]
            raise ValueError(f"unknown criticality {value!r}; use one of {names} (or 0-3)")
        return Criticality[value.upper()]
    return value


# --- configuration -------------------------------------------------------------------------------


class FacilityConfig(PolicyConfig):
    precedence: int = 20
    host_kinds: tuple[HostKind, ...] = Field(
        default=(HostKind.SERVER, HostKind.CLOUD),
        description="Hosts whose environment is watched (customer CPEs are heal's business).",
    )
    thresholds: dict[str, ThresholdPatch] = Field(
        default_factory=dict, description="Changes to the default levels, per signal."
    )
    overrides: tuple[ThresholdOverride, ...] = Field(
        default=(), description="Levels per site and/or host class (label `class`)."
    )
    host_class_label: str = Field(default="class", min_length=1)
    mount_height_label: str = Field(default=MOUNT_HEIGHT_LABEL, min_length=1)
    evacuate_on: tuple[Parameter, ...] = Field(
        default=PARAMETERS, description="Parameters whose degradation evacuates a host."
    )
    power_off: bool = Field(default=True, description="Switch emptied degraded hosts off.")
    power_off_on: tuple[Parameter, ...] = Field(
        default=(Parameter.POWER, Parameter.COOLING, Parameter.WATER),
        description="Parameters that justify switching an emptied host off.",
    )
    correlate_fraction: float = Field(
        default=0.6,
        gt=0,
        le=1,
        description="Share of a room's reporting hosts (or a site's rooms) that must be "
        "degraded for the whole room (site) to be cordoned.",
    )
    correlate_min_hosts: int = Field(default=2, ge=1)
    trend_window_s: float = Field(
        default=120.0,
        gt=0,
        description="Longest window of the trend fit; its halves and quarters are fitted too "
        "and the earliest failure estimate is kept.",
    )
    trend_min_points: int = Field(default=5, ge=2)
    deadline_safety: float = Field(
        default=0.7, gt=0, le=1, description="Deadline = this share of the estimated time left."
    )
    default_deadline_s: float = Field(
        default=600.0, gt=0, description="Deadline when no trend towards failure is seen."
    )
    max_deadline_s: float = Field(default=3600.0, gt=0)
    max_concurrent: int = Field(default=4, ge=1, description="Evacuations in flight at once.")
    site_rate_limit: int = Field(
        default=20, ge=1, description="Evacuations that may start from one site per window."
    )
    site_rate_window_s: float = Field(default=60.0, gt=0)
    duplicate_critical: bool = Field(
        default=False,
        description="For critical functions, start a copy elsewhere and stop the original "
        "only once the copy runs (no interruption), instead of migrating.",
    )
    critical_from: Criticality = Criticality.CRITICAL
    storm_min_sites: int = Field(
        default=2, ge=2, description="Reporting sites needed before 'all degraded' is suspect."
    )
    storm_window_s: float = Field(
        default=120.0, ge=0, description="'At once': the sites' degradations began this close."
    )
    alarm_retention_s: float = Field(default=3600.0, ge=0)

    @field_validator("critical_from", mode="before")
    @classmethod
    def _criticality_by_name(cls, value: Any) -> Any:
        return criticality_by_name(value)

    @model_validator(mode="after")
    def _levels_valid(self) -> FacilityConfig:
        problems = signal_problems(self.thresholds, "thresholds")
        for i, override in enumerate(self.overrides):
            problems += signal_problems(override.thresholds, f"overrides[{i}].thresholds")
        if problems:
            raise ValueError("; ".join(problems))
        base = self.base_thresholds()  # raises on a bad patch
        for name, t in base.items():
            problems += [f"thresholds.{p}" for p in t.problems(name)]
        for i, override in enumerate(self.overrides):
            merged = thresholds_for(base, (override,), override.site or "", override.host_class)
            for name in override.thresholds:
                problems += [f"overrides[{i}].thresholds.{p}" for p in merged[name].problems(name)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def base_thresholds(self) -> dict[str, Thresholds]:
        result = dict(DEFAULT_THRESHOLDS)
        for name, patch in self.thresholds.items():
            try:
                result[name] = patch.apply(result[name])
            except ValueError as exc:
                raise ValueError(f"thresholds.{name}: {exc}") from None
        return result


# --- memory --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitoredHosts:
    """The watched hosts in a fixed row order, with what does not change between cycles."""

    hosts_ref: Mapping[str, Host]
    config_ref: FacilityConfig
    ids: tuple[str, ...]
    position: Mapping[str, int]
    sites: tuple[str, ...]
    rooms: tuple[str | None, ...]
    room_keys: tuple[str, ...]
    """(site, room) as 'site/room'; a host without a room is a room of its own."""
    room_code: IntArray
    """Per host, index into room_names."""
    room_names: tuple[str, ...]
    room_site: IntArray
    """Per room, index into site_names."""
    site_code: IntArray
    site_names: tuple[str, ...]
    heights: FloatArray
    thresholds: Mapping[str, ThresholdColumns]
    problems: tuple[tuple[str, str], ...]
    """(key, message) of labels that could not be used."""


@dataclass(frozen=True, slots=True)
class FacilityMemory:
    hosts: MonitoredHosts | None = None
    sources: Mapping[str, Sources] = field(default_factory=dict)
    levels: Mapping[str, LevelState] = field(default_factory=dict)
    alarms: Mapping[str, Alarm] = field(default_factory=dict)
    open_alarms: Mapping[tuple[str, str], str] = field(default_factory=dict)
    """(managed object, probable cause) → id of the active alarm."""
    next_alarm: int = 1
    cordoned: frozenset[str] = frozenset()
    """Hosts this policy cordoned (and may uncordon); an operator's cordon is never lifted."""
    powered_off: frozenset[str] = frozenset()
    moves: Mapping[str, str] = field(default_factory=dict)
    """Instance → host it is being evacuated from, until the operation ends."""
    seen_ops: frozenset[str] = frozenset()
    reported: frozenset[str] = frozenset()
    """Keys of one-time notes already given (bad readings, bad labels, missed deadlines)."""
    site_since: Mapping[str, float] = field(default_factory=dict)
    host_levels: Mapping[str, int] = field(default_factory=dict)
    """Hosts above normal at the end of the last cycle, with their level."""

    @property
    def idle(self) -> bool:
        return not (
            self.host_levels
            or self.cordoned
            or self.powered_off
            or self.moves
            or any(a.active for a in self.alarms.values())
        )


def acknowledge_alarm(
    memory: Any, alarm_id: str, by: str, now: float
) -> tuple[FacilityMemory, Alarm]:
    """The memory with one alarm acknowledged (for the API); KeyError / ValueError explain."""
    mem = memory if isinstance(memory, FacilityMemory) else FacilityMemory()
    alarm = mem.alarms.get(alarm_id)
    if alarm is None:
        raise KeyError(f"no alarm {alarm_id!r}")
    if alarm.ack_state is AckState.ACKNOWLEDGED:
        raise ValueError(
            f"alarm {alarm_id} was already acknowledged by {alarm.acknowledged_by} "
            f"at t={alarm.acknowledged_at:g}"
        )
    acked = alarm.acknowledge(by, now)
    return replace(mem, alarms={**mem.alarms, alarm_id: acked}), acked


def alarms_of(memory: Any) -> list[Alarm]:
    mem = memory if isinstance(memory, FacilityMemory) else FacilityMemory()
    return sorted(mem.alarms.values(), key=lambda a: (a.raised_at, a.id))


def host_levels(memory: Any) -> dict[str, dict[str, int]]:
    """Per monitored host above normal: parameter → level (for timelines and dashboards)."""
    mem = memory if isinstance(memory, FacilityMemory) else FacilityMemory()
    if mem.hosts is None or not mem.host_levels:
        return {}
    rows = [mem.hosts.position[h] for h in sorted(mem.host_levels)]
    result: dict[str, dict[str, int]] = {}
    for name, state in mem.levels.items():
        param = SIGNALS[name].parameter.value
        for row in rows:
            level = int(state.level[row])
            if level > 0:
                entry = result.setdefault(mem.hosts.ids[row], {})
                entry[param] = max(entry.get(param, 0), level)
    return result


# --- the policy ----------------------------------------------------------------------------------


class FacilityPolicy:
    name: ClassVar[str] = POLICY
    config_model: ClassVar[type[PolicyConfig]] = FacilityConfig

    def evaluate(self, snapshot: Snapshot, config: PolicyConfig, memory: Any) -> PolicyResult:
        assert isinstance(config, FacilityConfig)
        mem = memory if isinstance(memory, FacilityMemory) else FacilityMemory()
        watched = any(name.startswith(PREFIX) for name in snapshot.telemetry.metrics)
        if not watched and mem.idle:
            return PolicyResult(memory=mem)
        return _Cycle(snapshot, config, mem).run()


def _build_hosts(snapshot: Snapshot, config: FacilityConfig) -> MonitoredHosts:
    table = snapshot.host_table
    rows = np.flatnonzero(table.kind_mask(config.host_kinds))
    ids = tuple(sorted(table.ids[int(r)] for r in rows))
    hosts = [snapshot.hosts[h] for h in ids]
    base = config.base_thresholds()
    problems: list[tuple[str, str]] = []
    heights = np.full(len(ids), np.nan)
    per_host: list[dict[str, Thresholds]] = []
    for i, host in enumerate(hosts):
        try:
            height = parse_height(host.labels, config.mount_height_label)
        except ValueError as exc:
            problems.append((f"label:{host.id}", f"host {host.id}: {exc}; water ignored"))
            height = None
        if height is not None:
            heights[i] = height
        per_host.append(
            thresholds_for(
                base, config.overrides, host.site, host.labels.get(config.host_class_label)
            )
        )
    columns = {name: ThresholdColumns.build([t[name] for t in per_host]) for name in SIGNALS}
    room_keys = tuple(f"{h.site}/{h.room}" if h.room else f"{h.site}//{h.id}" for h in hosts)
    room_names = tuple(sorted(set(room_keys)))
    site_names = tuple(sorted({h.site for h in hosts}))
    room_index = {k: i for i, k in enumerate(room_names)}
    site_index = {k: i for i, k in enumerate(site_names)}
    return MonitoredHosts(
        hosts_ref=snapshot.hosts,
        config_ref=config,
        ids=ids,
        position={h: i for i, h in enumerate(ids)},
        sites=tuple(h.site for h in hosts),
        rooms=tuple(h.room for h in hosts),
        room_keys=room_keys,
        room_code=np.array([room_index[k] for k in room_keys], dtype=np.int64),
        room_names=room_names,
        room_site=np.array([site_index[k.partition("/")[0]] for k in room_names], dtype=np.int64),
        site_code=np.array([site_index[h.site] for h in hosts], dtype=np.int64),
        site_names=site_names,
        heights=heights,
        thresholds=columns,
        problems=tuple(problems),
    )


_Details = Callable[[], tuple[str, ...]]


def _fixed(text: str) -> _Details:
    return lambda: (text,)


@dataclass
class _Candidate:
    instance: Instance
    host: str
    criticality: int
    deadline: float
    reason: dict[str, Any]


class _Cycle:
    """One evaluation; holds the per-cycle working set so the steps read as a sequence."""

    def __init__(self, snapshot: Snapshot, config: FacilityConfig, mem: FacilityMemory) -> None:
        self.s = snapshot
        self.c = config
        self.mem = mem
        self.now = snapshot.now
        self.notes: list[Reason] = []
        self.alarm_events: list[Reason] = []
        self.proposals: list[Proposal] = []
        self.reported = set(mem.reported)
        self.alarms = dict(mem.alarms)
        self.open_alarms = dict(mem.open_alarms)
        self.next_alarm = mem.next_alarm
        self.cordoned = set(mem.cordoned)
        self.powered_off = set(mem.powered_off)
        self.moves = dict(mem.moves)
        self.busy = snapshot.busy

    # -- helpers ------------------------------------------------------------------------------
    def note(self, rule: str, message: str, **details: Any) -> None:
        self.notes.append(Reason(rule=rule, message=message, details=details))

    def once(self, key: str, rule: str, message: str, **details: Any) -> None:
        if key not in self.reported:
            self.reported.add(key)
            self.note(rule, message, **details)

    # -- Notif: resolve readings ---------------------------------------------------------------
    def _monitored(self) -> tuple[MonitoredHosts, Mapping[str, LevelState]]:
        mem = self.mem
        hosts = mem.hosts
        if hosts is not None and hosts.hosts_ref is self.s.hosts and hosts.config_ref is self.c:
            return hosts, mem.levels
        new = _build_hosts(self.s, self.c)
        for key, message in new.problems:
            self.once(key, "facility_bad_label", message)
        if hosts is None:
            return new, {}
        if hosts.ids == new.ids:
            return new, mem.levels
        rows = np.array([hosts.position.get(h, -1) for h in new.ids], dtype=np.int64)
        return new, {name: state.take(rows) for name, state in mem.levels.items()}

    def _sources(self, metric: str, column: MetricView) -> Sources:
        known = self.mem.sources.get(metric)
        if (
            known is not None
            and self.mem.hosts is self.hosts
            and known.known_sources == len(column.ids)
        ):
            return known
        return host_sources(column, self.hosts.ids, self.hosts.rooms, self.hosts.sites)

    def _resolve_all(self) -> None:
        n = len(self.hosts.ids)
        self.sources: dict[str, Sources] = {}
        self.raw: dict[str, Resolved] = {}
        self.columns: dict[str, MetricView] = {}
        for metric, column in self.s.telemetry.metrics.items():
            if not metric.startswith(PREFIX):
                continue
            if metric not in METRICS and not metric.startswith(PREFIX + "code."):
                self.once(
                    f"metric:{metric}",
                    "facility_bad_reading",
                    f"unknown facility metric {metric!r} ignored",
                )
                continue
            sources = self._sources(metric, column)
            self.sources[metric] = sources
            self.columns[metric] = column
            spec = METRICS.get(metric)
            low, high = (spec.low, spec.high) if spec else (-np.inf, np.inf)
            resolved = resolve(column, sources, low, high)
            self.raw[metric] = resolved
            for row in np.flatnonzero(resolved.invalid):
                source = column.ids[int(sources.rows[row])]
                self.once(
                    f"range:{source}:{metric}",
                    "facility_bad_reading",
                    f"{source} {metric}={resolved.values[row]:g} is outside [{low:g}, {high:g}]; "
                    "treated as unknown",
                    source=source,
                    metric=metric,
                )
        self.empty = unknown(n)

    def metric(self, name: str) -> Resolved:
        return self.raw.get(name, self.empty)

    # -- Det: levels ----------------------------------------------------------------------------
    def _levels(self, previous: Mapping[str, LevelState]) -> None:
        n = len(self.hosts.ids)
        self.values: dict[str, Resolved] = {}
        self.levels: dict[str, LevelState] = {}
        for name, spec in SIGNALS.items():
            state = previous.get(name) or LevelState.fresh(n)
            if not any(m in self.raw for m in _SIGNAL_METRICS[name]):
                # Nobody reports it: nothing can change but pending timers starting over.
                self.values[name] = self.empty
                self.levels[name] = state.quiet()
                continue
            resolved = signal_values(name, self.metric, self.hosts.heights)
            if spec.name.startswith("code_"):
                for row in np.flatnonzero(resolved.invalid):
                    metric = f"{PREFIX}code.{spec.parameter.value}"
                    source = self.columns[metric].ids[int(self.sources[metric].rows[row])]
                    self.once(
                        f"code:{source}:{resolved.values[row]}",
                        "facility_bad_reading",
                        f"{source} sent an unknown {metric} code; treated as unknown",
                        source=source,
                    )
            self.values[name] = resolved
            self.levels[name] = step_levels(
                state,
                resolved.values,
                resolved.known,
                self.hosts.thresholds[name],
                spec.worse,
                self.now,
            )
        self.param_level: dict[Parameter, IntArray] = {}
        for param, names in _PARAM_SIGNALS.items():
            self.param_level[param] = np.maximum.reduce([self.levels[n].level for n in names])
        self.level = np.maximum.reduce(list(self.param_level.values()))
        ever = np.zeros(n, dtype=bool)
        for sources in self.sources.values():
            ever |= sources.rows >= 0
        self.reporting = ever
        self.scope = self._scopes()
        self.evacuate = self._worst(self.c.evacuate_on) >= Level.DEGRADED
        self.switch_off = self._worst(self.c.power_off_on) >= Level.DEGRADED

    def _worst(self, params: tuple[Parameter, ...]) -> IntArray:
        if not params:
            return np.zeros(len(self.hosts.ids), dtype=np.int64)
        result: IntArray = np.maximum.reduce([self.param_level[p] for p in params])
        return result

    def _scopes(self) -> IntArray:
        """How wide each host's problem looks: host, room or site readings behind its levels."""
        widest = np.full(len(self.hosts.ids), int(Scope.HOST), dtype=np.int64)
        for name, state in self.levels.items():
            if state.level.any():
                widest = np.maximum(
                    widest, np.where(state.level > 0, self.values[name].scope, int(Scope.HOST))
                )
        return widest

    # -- correlation and storm ------------------------------------------------------------------
    def _groups(self) -> None:
        ids = self.hosts.ids
        degraded = self.level >= Level.DEGRADED
        self.impacted = [ids[int(r)] for r in np.flatnonzero(degraded)]
        if not self.impacted:  # the usual case: nothing to correlate
            self.hot_rooms, self.hot_sites = set(), set()
            self.grouped, self.to_cordon = set(), set()
            self.site_since, self.storm = {}, False
            self.reporting_sites = set()
            return
        # Column-wise per room and per site: reporting hosts, degraded ones, rooms (units).
        h = self.hosts
        rep = self.reporting
        n_rooms, n_sites = len(h.room_names), len(h.site_names)
        room_rep = np.bincount(h.room_code[rep], minlength=n_rooms)
        room_bad = np.bincount(h.room_code[rep & degraded], minlength=n_rooms)
        frac, least = self.c.correlate_fraction, self.c.correlate_min_hosts
        hot_room = (room_rep > 0) & (room_bad >= least) & (room_bad >= frac * room_rep)
        # A site's units are its rooms (a host without a room is a unit of its own); a room
        # that reports nothing still counts, as a unit not known to be degraded.
        unit_bad = hot_room | ((room_rep > 0) & (room_bad == room_rep))
        units = np.bincount(h.room_site, minlength=n_sites)
        bad_units = np.bincount(h.room_site, weights=unit_bad, minlength=n_sites)
        bad_hosts = np.bincount(h.site_code[rep & degraded], minlength=n_sites)
        hot_site = (units > 0) & (bad_units >= frac * units) & (bad_hosts >= least)
        # Readings about a whole site make the site's problem site-wide even with one host.
        hot_site[h.site_code[degraded & (self.scope >= Scope.SITE)]] = True
        hot_rooms = {h.room_names[int(k)] for k in np.flatnonzero(hot_room)}
        hot_sites = {h.site_names[int(k)] for k in np.flatnonzero(hot_site)}
        self.hot_rooms = hot_rooms
        self.hot_sites = hot_sites
        in_group = hot_room[h.room_code] | hot_site[h.site_code]
        grouped = {ids[int(r)] for r in np.flatnonzero(in_group)}
        self.to_cordon = set(self.impacted) | grouped
        self.grouped = grouped

        sites = {
            h.site_names[int(k)]
            for k in np.flatnonzero(np.bincount(h.site_code[rep], minlength=n_sites))
        }
        bad_sites = {h.site_names[int(k)] for k in np.flatnonzero(bad_hosts)}
        since = {s: self.mem.site_since.get(s, self.now) for s in sorted(bad_sites)}
        self.site_since = since
        self.storm = (
            len(sites) >= self.c.storm_min_sites
            and sites <= bad_sites
            and max(since.values()) - min(since.values()) <= self.c.storm_window_s
        )
        self.reporting_sites = sites

    # -- alarms ---------------------------------------------------------------------------------
    def _alarms(self, no_target: Mapping[str, str]) -> None:
        # Fault details are only worked out for alarms that are raised or re-rated.
        wanted: dict[tuple[str, str], tuple[AlarmEventType, PerceivedSeverity, _Details]] = {}
        for param in PARAMETERS:
            levels = self.param_level[param]
            cause = PROBABLE_CAUSE[param]
            for row in np.flatnonzero(levels).tolist():
                severity = (
                    PerceivedSeverity.CRITICAL
                    if levels[row] >= Level.FAILED
                    else PerceivedSeverity.MAJOR
                )
                wanted[(f"host:{self.hosts.ids[row]}", cause)] = (
                    AlarmEventType.ENVIRONMENTAL_ALARM,
                    severity,
                    partial(self._details, row, param),
                )
        for room in sorted(self.hot_rooms):
            site, _, rest = room.partition("/")
            if rest.startswith("/"):
                continue
            wanted[(f"room:{rest}", CORRELATED)] = (
                AlarmEventType.ENVIRONMENTAL_ALARM,
                PerceivedSeverity.MAJOR,
                _fixed(f"most reporting hosts of room {rest} at site {site} are degraded"),
            )
        for site in sorted(self.hot_sites):
            wanted[(f"site:{site}", CORRELATED)] = (
                AlarmEventType.ENVIRONMENTAL_ALARM,
                PerceivedSeverity.MAJOR,
                _fixed(f"site {site} is degraded as a whole"),
            )
        for instance, why in no_target.items():
            wanted[(f"instance:{instance}", NO_TARGET)] = (
                AlarmEventType.ENVIRONMENTAL_ALARM,
                PerceivedSeverity.CRITICAL,
                _fixed(why),
            )
        if self.storm:
            wanted[(SUSPECT_OBJECT, SUSPECT)] = (
                AlarmEventType.COMMUNICATIONS_ALARM,
                PerceivedSeverity.CRITICAL,
                lambda: (
                    f"every reporting site ({', '.join(sorted(self.reporting_sites))}) degraded "
                    f"within {self.c.storm_window_s:g} s; facility actions suspended until the "
                    "sites disagree or this alarm is acknowledged",
                ),
            )
        for key, open_id in list(self.open_alarms.items()):
            if key not in wanted:
                cleared = self.alarms[open_id].clear(self.now)
                self.alarms[open_id] = cleared
                del self.open_alarms[key]
                self._alarm_note("alarm_cleared", cleared)
        for key, (event_type, severity, details) in wanted.items():
            alarm_id = self.open_alarms.get(key)
            if alarm_id is None:
                alarm = Alarm(
                    id=f"alarm-{self.next_alarm:06d}",
                    managed_object=key[0],
                    event_type=event_type,
                    probable_cause=key[1],
                    perceived_severity=severity,
                    raised_at=self.now,
                    changed_at=self.now,
                    fault_details=details(),
                )
                self.next_alarm += 1
                self.alarms[alarm.id] = alarm
                self.open_alarms[key] = alarm.id
                self._alarm_note("alarm_raised", alarm)
            elif self.alarms[alarm_id].perceived_severity is not severity:
                alarm = self.alarms[alarm_id].rerate(severity, self.now, details())
                self.alarms[alarm_id] = alarm
                self._alarm_note("alarm_changed", alarm)
        horizon = self.now - self.c.alarm_retention_s
        for alarm_id in [
            a.id
            for a in self.alarms.values()
            if a.cleared_at is not None and a.cleared_at < horizon
        ]:
            del self.alarms[alarm_id]

    def _alarm_note(self, rule: str, alarm: Alarm) -> None:
        verb = {"alarm_raised": "raised", "alarm_changed": "now", "alarm_cleared": "cleared"}[rule]
        severity = {
            PerceivedSeverity.CRITICAL: "critical",
            PerceivedSeverity.MAJOR: "error",
            PerceivedSeverity.MINOR: "warning",
            PerceivedSeverity.WARNING: "warning",
        }.get(alarm.perceived_severity, "info")
        message = (
            f"{alarm.event_type.value} {alarm.probable_cause} on {alarm.managed_object} {verb}"
            + (f" {alarm.perceived_severity.value}" if rule != "alarm_cleared" else "")
            + (f": {alarm.fault_details[0]}" if alarm.fault_details else "")
        )
        details = {"alarm": alarm.model_dump(mode="json"), "severity": severity}
        self.alarm_events.append(Reason(rule=rule, message=message, details=details))

    def _details(self, row: int, param: Parameter) -> tuple[str, ...]:
        out = []
        for name, spec in SIGNALS.items():
            if spec.parameter is not param or self.levels[name].level[row] == 0:
                continue
            th = self.hosts.thresholds[name]
            value = self.values[name].values[row]
            shown = "unknown" if np.isnan(value) else f"{value:.4g} {spec.unit}"
            out.append(
                f"{name}={shown} ({Level(int(self.levels[name].level[row])).name.lower()}; "
                f"degraded at {th.degraded[row]:g}, failed at {th.failed[row]:g})"
            )
        return tuple(out)

    # -- time left and deadlines -----------------------------------------------------------------
    def _time_left(self, row: int) -> tuple[float | None, dict[str, Any]]:
        """The shortest estimated time before a degraded signal of this host reaches failure."""
        best: float | None = None
        info: dict[str, Any] = {}
        for name, spec in SIGNALS.items():
            state = self.levels[name]
            if state.level[row] == 0 or spec.parameter not in self.c.evacuate_on:
                continue
            if state.level[row] >= Level.FAILED:
                return 0.0, {"signal": name, "reason": "failed level reached"}
            failed = float(self.hosts.thresholds[name].failed[row])
            series = self._series(name, row)
            if series is None or np.isnan(failed):
                continue
            left, trend = earliest_time_left(
                series,
                self.now,
                failed,
                spec.worse,
                window_s=self.c.trend_window_s,
                min_points=self.c.trend_min_points,
            )
            if trend is not None and left is not None and (best is None or left < best):
                best = left
                info = {
                    "signal": name,
                    "slope_per_s": round(trend.slope, 6),
                    "fitted_value": round(trend.value, 4),
                    "failed_at": failed,
                    "points": trend.points,
                }
        return best, info

    def _series(self, name: str, row: int) -> list[tuple[float, float]] | None:
        """Recent (t, value) of the reading behind a host's signal, in the signal's terms."""
        transform: Callable[[float], float] = float
        if name == "water_clearance_mm":
            if self.metric(PREFIX + "water_clearance_mm").known[row]:
                metric = PREFIX + "water_clearance_mm"
            else:
                metric = PREFIX + "water_level_mm"
                height = float(self.hosts.heights[row])
                transform = lambda v: height - v  # noqa: E731
        elif name in ("power_margin",) or name.startswith("code_"):
            return None
        else:
            metric = PREFIX + name
        sources = self.sources.get(metric)
        if sources is None or sources.rows[row] < 0:
            return None
        source = self.columns[metric].ids[int(sources.rows[row])]
        points = self.s.telemetry.history(source, metric)
        return [(t, transform(v)) for t, v in points]

    # -- Info: what finished since the last cycle ------------------------------------------------
    def _finished_ops(self) -> None:
        seen = set()
        for op in sorted(self.s.operations, key=lambda o: (o.finished_at or 0.0, o.id)):
            if op.policy != POLICY:
                continue
            seen.add(op.id)
            if op.id in self.mem.seen_ops or not op.state.final:
                continue
            done = op.state is OperationState.COMPLETED
            if op.kind is OperationKind.CORDON and done:
                self.cordoned.add(op.subject)
            elif op.kind is OperationKind.UNCORDON and done:
                self.cordoned.discard(op.subject)
            elif op.kind is OperationKind.POWER_OFF and done:
                self.powered_off.add(op.subject)
            elif op.kind is OperationKind.POWER_ON and done:
                self.powered_off.discard(op.subject)
                self.cordoned.discard(op.subject)
            elif op.kind in (*_EVACUATIONS, OperationKind.TERMINATE):
                self._info(op, done)
        self.seen_ops = frozenset(seen)
        # Forget evacuations that never started (refused) or whose function is gone.
        instances = self.s.instances
        self.moves = {
            name: source
            for name, source in self.moves.items()
            if name in instances and (name in self.busy or instances[name].host == source)
        }

    def _info(self, op: OperationSummary, done: bool) -> None:
        source = self.moves.get(op.subject)
        if op.kind is OperationKind.MIGRATE or not done:
            self.moves.pop(op.subject, None)
        if not done:
            self.note(
                "facility_evacuation_failed",
                f"{op.kind.value} {op.subject} from {source} ended {op.state.value}; it will be "
                "retried while the host is degraded",
                operation=op.id,
                instance=op.subject,
            )
            return
        if op.kind is OperationKind.TERMINATE:
            self.moves.pop(op.subject, None)
            self.note(
                "facility_evacuated",
                f"Info: original {op.subject} stopped on {source} after its copy took over",
                operation=op.id,
                instance=op.subject,
            )
            return
        target = op.hosts[0] if op.hosts else None
        watched = (
            target is not None
            and target in self.hosts.position
            and bool(self.reporting[self.hosts.position[target]])
        )
        copy = [i for i in op.instances if i != op.subject]
        what = f"copy {copy[0]} of {op.subject}" if copy else op.subject
        self.note(
            "facility_evacuated",
            f"Info: {what} now runs on {target} (from {source}); the function↔host table is "
            "updated and "
            + (
                f"{target}'s facility readings are watched"
                if watched
                else f"{target} reports no facility telemetry"
            ),
            operation=op.id,
            instance=op.subject,
            new_host=target,
            source=source,
            watched=watched,
        )

    # -- actions ---------------------------------------------------------------------------------
    def _propose(
        self, kind: OperationKind, subject: str, rule: str, message: str, **fields: Any
    ) -> None:
        reason = Reason(
            rule=rule,
            message=message,
            measured=fields.pop("measured", {}),
            thresholds=fields.pop("thresholds", {}),
            details=fields.pop("details", {}),
        )
        self.proposals.append(
            Proposal(kind=kind, subject=subject, reason=reason, policy=POLICY, **fields)
        )

    def _host_actions(self) -> None:
        """Retrait (cordon), Extinct (power off), and the way back (power on, uncordon)."""
        in_flight = [op for op in self.s.operations if op.state.in_flight]
        busy_hosts = {op.subject for op in in_flight}
        targets = {h for op in in_flight for h in op.hosts}
        # Hosts whose evacuated functions are still being cleaned up stay on until that ends.
        busy = self.busy
        settling = {src for inst, src in self.moves.items() if inst in busy}
        for host_id in self.hosts.ids:
            host = self.s.hosts[host_id]
            row = self.hosts.position[host_id]
            if host.state is HostState.READY:
                self.cordoned.discard(host_id)
            if host.state is not HostState.OFF:
                self.powered_off.discard(host_id)
            if host_id in busy_hosts:
                continue
            degraded = host_id in self.to_cordon
            if degraded and host.state is HostState.READY:
                why = "degraded" if self.level[row] > 0 else "in a degraded room/site"
                self._propose(
                    OperationKind.CORDON,
                    host_id,
                    "facility_cordon",
                    f"Retrait: {host_id} is {why}; cordoned so nothing new is placed there",
                    hosts=(host_id,),
                    priority=_RETRAIT_PRIORITY,
                    details={"levels": self._host_levels(row)},
                )
            elif (
                self.c.power_off
                and bool(self.switch_off[row])
                and host.state in (HostState.CORDONED, HostState.DRAINING)
                and not self.s.instances_by_host.get(host_id)
                and host_id not in settling | targets
            ):
                self._propose(
                    OperationKind.POWER_OFF,
                    host_id,
                    "facility_power_off",
                    f"Extinct: {host_id} is empty and its "
                    + "/".join(p.value for p in self.c.power_off_on if self.param_level[p][row])
                    + " is degraded; switching it off spares the battery and the room",
                    hosts=(host_id,),
                    details={"levels": self._host_levels(row)},
                )
            elif self.level[row] == 0 and host_id not in self.grouped:
                if host_id in self.powered_off and host.state is HostState.OFF:
                    # Offered again only if the cordon was ours; an operator's cordon stays.
                    ours = host_id in self.cordoned
                    back = HostState.READY if ours else HostState.CORDONED
                    self._propose(
                        OperationKind.POWER_ON,
                        host_id,
                        "facility_power_on",
                        f"{host_id}: every parameter back to normal for the hold time; switch "
                        "it back on" + (" and offer it again" if ours else " (still cordoned)"),
                        hosts=(host_id,),
                        params={"state": back.value},
                    )
                elif host_id in self.cordoned and host.state is HostState.CORDONED:
                    self._propose(
                        OperationKind.UNCORDON,
                        host_id,
                        "facility_uncordon",
                        f"{host_id}: every parameter back to normal for the hold time; "
                        "offered for new functions again",
                        hosts=(host_id,),
                    )

    def _host_levels(self, row: int) -> dict[str, str]:
        return {
            p.value: Level(int(self.param_level[p][row])).name.lower()
            for p in PARAMETERS
            if self.param_level[p][row] > 0
        }

    def _evacuate(self) -> dict[str, str]:
        """Migr: migration orders for the functions of degraded hosts; returns stuck ones."""
        s = self.s
        ops = s.operations
        busy = self.busy
        in_flight = sum(
            1
            for op in ops
            if op.policy == POLICY and op.kind in _EVACUATIONS and op.state.in_flight
        )
        budget = self.c.max_concurrent - in_flight
        per_site: dict[str, int] = {}
        for op in ops:
            if (
                op.policy == POLICY
                and op.kind in _EVACUATIONS
                and self.now - op.created_at < self.c.site_rate_window_s
            ):
                for site in self._source_sites(op):
                    per_site[site] = per_site.get(site, 0) + 1
        copies = {
            op.subject: [i for i in op.instances if i != op.subject]
            for op in ops
            if op.policy == POLICY
            and op.kind is OperationKind.SCALE_OUT
            and op.state is OperationState.COMPLETED
        }
        candidates: list[_Candidate] = []
        for host_id in sorted(self.impacted):
            row = self.hosts.position[host_id]
            host = s.hosts[host_id]
            if not self.evacuate[row] or host.state in _NOT_RUNNING:
                continue
            names = s.instances_by_host.get(host_id, frozenset())
            if not names:
                continue
            left, trend = self._time_left(row)
            due = deadline(
                self.now,
                left,
                safety=self.c.deadline_safety,
                default_s=self.c.default_deadline_s,
                max_s=self.c.max_deadline_s,
            )
            context = {
                "host": host_id,
                "levels": self._host_levels(row),
                "time_left_s": None if left is None else round(left, 1),
                "trend": trend,
                "scope": Scope(int(self.scope[row])).name.lower(),
                "measured": {
                    n: round(float(self.values[n].values[row]), 4)
                    for n in SIGNALS
                    if self.levels[n].level[row] > 0 and bool(self.values[n].known[row])
                },
            }
            for name in sorted(names):
                inst = s.instances[name]
                if name in busy:
                    continue
                function = s.functions[inst.function]
                made = [c for c in copies.get(name, []) if c in s.instances]
                if made:
                    self._propose(
                        OperationKind.TERMINATE,
                        name,
                        "facility_evacuate",
                        f"Migr: copy {made[0]} of {name} runs; stopping the original on {host_id}",
                        instances=(name,),
                        function=inst.function,
                        owner=inst.owner,
                        sources=(host_id,),
                        priority=int(function.criticality),
                        deadline=due,
                        details={**context, "copy": made[0]},
                    )
                    continue
                candidates.append(
                    _Candidate(inst, host_id, int(function.criticality), due, context)
                )
            if due <= self.now:
                onset = min(
                    float(st.changed_at[row]) for st in self.levels.values() if st.level[row] > 0
                )
                self.once(
                    f"late:{host_id}:{onset:g}",
                    "facility_deadline_missed",
                    f"{host_id} reached its failure level while still holding {len(names)} "
                    "function(s)",
                    host=host_id,
                )
        candidates.sort(key=lambda c: (-c.criticality, c.deadline, c.instance.id))
        stuck: dict[str, str] = {}
        reserved = Reservations()
        # Placement already skips hosts that are not ready; these are the ones that still are.
        strict = frozenset(self.to_cordon)
        hot_room_keys = {self.hosts.room_keys[self.hosts.position[h]] for h in self.impacted}
        roomy = strict | {
            h for i, h in enumerate(self.hosts.ids) if self.hosts.room_keys[i] in hot_room_keys
        }
        avoid = frozenset(self.hot_sites)
        for cand in candidates:
            if budget <= 0:
                break
            site = s.hosts[cand.host].site
            if per_site.get(site, 0) >= self.c.site_rate_limit:
                continue
            inst = cand.instance
            function = s.functions[inst.function]
            demand = s.flavor_of(inst.function).resources
            result = None
            for exclude in (roomy, strict):
                result = place(
                    s,
                    PlacementRequest(
                        function=inst.function,
                        demand=demand,
                        kinds=function.placement,
                        owner=inst.owner,
                        exclude_hosts=exclude,
                        avoid_sites=avoid,
                    ),
                    reserved,
                )
                if result.host is not None:
                    break
            assert result is not None
            if result.host is None:
                stuck[inst.id] = (
                    f"{inst.id} on {cand.host} has nowhere to go: {result.reason.message}"
                )
                self.once(
                    f"stuck:{inst.id}:{cand.host}",
                    NO_TARGET,
                    f"{inst.id} stays on degraded {cand.host}: {result.reason.message}",
                    instance=inst.id,
                    host=cand.host,
                )
                continue
            reserved.add(result.host, demand)
            budget -= 1
            per_site[site] = per_site.get(site, 0) + 1
            self.moves[inst.id] = cand.host
            duplicate = self.c.duplicate_critical and cand.criticality >= self.c.critical_from
            left = cand.reason["time_left_s"]
            message = (
                f"Migr: {'copy' if duplicate else 'move'} {inst.function} {inst.id}"
                f"{' of ' + inst.owner if inst.owner else ''} from {cand.host} "
                f"({', '.join(f'{k} {v}' for k, v in cand.reason['levels'].items())}) "
                f"to {result.host} by t={cand.deadline:.0f}"
                + (f" (≈{left:.0f} s left)" if left is not None else "")
            )
            common: dict[str, Any] = {
                "function": inst.function,
                "owner": inst.owner,
                "hosts": (result.host,),
                "sources": (cand.host,),
                "deadline": cand.deadline,
                "priority": cand.criticality,
                "measured": cand.reason["measured"],
                "details": {
                    **cand.reason,
                    "instance": inst.id,
                    "criticality": Criticality(cand.criticality).name.lower(),
                    "deadline": round(cand.deadline, 3),
                    "placement": result.reason.model_dump(mode="json"),
                },
            }
            if duplicate:
                params = dict(inst.params)
                if inst.group is not None:
                    params["_group"] = inst.group
                self._propose(
                    OperationKind.SCALE_OUT,
                    inst.id,
                    "facility_evacuate",
                    message,
                    params=params,
                    **common,
                )
            else:
                self._propose(
                    OperationKind.MIGRATE,
                    inst.id,
                    "facility_evacuate",
                    message,
                    instances=(inst.id,),
                    **common,
                )
        return stuck

    def _source_sites(self, op: OperationSummary) -> set[str]:
        target = {self.s.hosts[h].site for h in op.hosts if h in self.s.hosts}
        return set(op.sites) - target or set(op.sites)

    # -- transitions worth an event --------------------------------------------------------------
    def _transitions(self) -> dict[str, int]:
        now_levels = {
            self.hosts.ids[int(r)]: int(self.level[r]) for r in np.flatnonzero(self.level > 0)
        }
        for host, level in sorted(now_levels.items()):
            before = self.mem.host_levels.get(host, 0)
            if level <= before:
                continue
            row = self.hosts.position[host]
            left, trend = self._time_left(row)
            due = deadline(
                self.now,
                left,
                safety=self.c.deadline_safety,
                default_s=self.c.default_deadline_s,
                max_s=self.c.max_deadline_s,
            )
            details = "; ".join(d for p in PARAMETERS for d in self._details(row, p))
            self.note(
                "facility_failed" if level >= Level.FAILED else "facility_degraded",
                f"Notif/Det: {host} {Level(level).name.lower()} ({details}); "
                + (f"≈{left:.0f} s left, " if left is not None else "no trend towards failure, ")
                + f"evacuation deadline t={due:.0f}",
                host=host,
                levels=self._host_levels(row),
                time_left_s=left,
                deadline=due,
                trend=trend,
            )
        for host, before in sorted(self.mem.host_levels.items()):
            if host not in now_levels and host in self.hosts.position:
                self.note(
                    "facility_normal",
                    f"{host}: every facility parameter back to normal for its hold time",
                    host=host,
                    was=Level(before).name.lower(),
                )
        return now_levels

    # -- the cycle -------------------------------------------------------------------------------
    def run(self) -> PolicyResult:
        self.hosts, previous = self._monitored()
        self._resolve_all()
        self._levels(previous)
        self._groups()
        self._finished_ops()
        levels_now = self._transitions()
        suspect_id = self.open_alarms.get((SUSPECT_OBJECT, SUSPECT))
        confirmed = (
            suspect_id is not None and self.alarms[suspect_id].ack_state is AckState.ACKNOWLEDGED
        )
        stuck: dict[str, str] = {}
        if self.storm and not confirmed:
            self.once(
                f"storm:{min(self.site_since.values())}",
                "facility_telemetry_suspect",
                "every reporting site degraded at once; facility actions suspended (telemetry "
                "is the likelier fault) until the sites disagree or the alarm is acknowledged",
                sites=sorted(self.reporting_sites),
            )
        else:
            self._host_actions()
            stuck = self._evacuate()
        self._alarms(stuck)
        memory = FacilityMemory(
            hosts=self.hosts,
            sources=self.sources,
            levels=self.levels,
            alarms=self.alarms,
            open_alarms=self.open_alarms,
            next_alarm=self.next_alarm,
            cordoned=frozenset(self.cordoned),
            powered_off=frozenset(self.powered_off),
            moves=self.moves,
            seen_ops=self.seen_ops,
            reported=frozenset(self.reported),
            site_since=self.site_since,
            host_levels=levels_now,
        )
        return PolicyResult(
            proposals=tuple(self.proposals),
            memory=memory,
            notes=tuple(self.notes),
            alarms=tuple(self.alarm_events),
        )
