"""The simulated technical environment: UPS batteries, room cooling and floods.

* A battery drains by the power its powered servers draw (idle + per allocated vCPU) plus a
  base load, so switching emptied servers off makes it last longer; at its cut-off charge the
  servers it feeds fail, and they restart once mains is back and the charge has recovered.
* A room's temperature follows its heat balance: the servers' power in, the cooling (a
  thermostat between two levels while it works) out; when cooling fails it rises at a rate that
  grows with the heat load. A server fails when its inlet reaches the failure level.
* Water rises at the inflow rate minus what the pumps remove; a server fails when the water
  reaches its mount height and is repaired some time after the water has left it.

Failures take the host down the way a scheduled `host_down` event does (inventory DOWN, the sim
driver stops its functions). A server that was switched off does not fail. Sensors add Gaussian
noise. The model also measures what the experiment reports: how long each function (function ×
owner) and each critical one had no serving copy, host failures, and battery runtimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from edgeroam.model import (
    EventCategory,
    HostKind,
    HostState,
    Reading,
    Role,
    Severity,
)
from edgeroam.policies.facility import POLICY, host_levels
from edgeroam.sim.facility_config import Battery, Cooling, FacilitySection, Flood
from edgeroam.sim.models import register_world_model
from edgeroam.telemetry.facility import PREFIX, parse_height

if TYPE_CHECKING:
    from edgeroam.sim.runner import Simulation
    from edgeroam.sim.scenario import Scenario

_DOWN = frozenset({HostState.DOWN, HostState.OFF})


@dataclass
class _BatteryState:
    spec: Battery
    hosts: tuple[str, ...]
    charge_wh: float
    load_w: float = 0.0
    mains: bool = True
    lost_at: float | None = None
    back_at: float | None = None
    charge_at_back_wh: float | None = None
    load_at_back_w: float | None = None
    depleted_at: float | None = None
    cut: bool = False
    """The UPS has cut its load (charge at the floor while mains is lost)."""

    @property
    def pct(self) -> float:
        return 100.0 * self.charge_wh / self.spec.capacity_wh

    @property
    def cutoff_wh(self) -> float:
        return self.spec.cutoff_pct / 100.0 * self.spec.capacity_wh

    def runtime(self, now: float) -> tuple[float | None, bool]:
        """(seconds from mains loss to the cut-off, measured?) — extrapolated at the load of the
        moment when mains came back (or the run ended) before the cut-off."""
        if self.lost_at is None:
            return None, False
        if self.depleted_at is not None:
            return self.depleted_at - self.lost_at, True
        until = self.back_at if self.back_at is not None else now
        charge = self.charge_at_back_wh if self.back_at is not None else self.charge_wh
        load = self.load_at_back_w if self.back_at is not None else self.load_w
        if not load or charge is None:
            return None, False
        return until - self.lost_at + max(0.0, charge - self.cutoff_wh) * 3600.0 / load, False


@dataclass
class _RoomHeat:
    spec: Cooling
    hosts: tuple[str, ...]
    temperature_c: float
    running: bool = False
    heat_w: float = 0.0


@dataclass
class _Water:
    spec: Flood
    hosts: tuple[str, ...]
    heights: dict[str, float]
    level_mm: float = 0.0
    dry_since: dict[str, float] = field(default_factory=dict)


class FacilityWorld:
    name = "facility"

    def __init__(self, scenario: Scenario, section: FacilitySection) -> None:
        self.section = section
        self.tick_s = scenario.tick_s
        self.rng = np.random.default_rng([scenario.seed, 4004])
        servers = [h for h in scenario.topology.hosts if h.kind is not HostKind.CPE]
        overrides = {o.host: o for o in section.hosts}
        self.idle_w: dict[str, float] = {}
        self.per_vcpu_w: dict[str, float] = {}
        self.offset_c: dict[str, float] = {}
        for h in servers:
            o = overrides.get(h.id)
            base = section.host_power
            idle = o.idle_w if o is not None and o.idle_w is not None else base.idle_w
            per = o.per_vcpu_w if o is not None and o.per_vcpu_w is not None else base.per_vcpu_w
            self.idle_w[h.id] = idle
            self.per_vcpu_w[h.id] = per
            self.offset_c[h.id] = o.inlet_offset_c if o is not None else 0.0
        self.batteries = [
            _BatteryState(
                spec=b,
                hosts=tuple(
                    sorted(
                        h.id
                        for h in servers
                        if (b.site is not None and h.site == b.site)
                        or (b.room is not None and h.room == b.room)
                    )
                ),
                charge_wh=b.initial_pct / 100.0 * b.capacity_wh,
                mains=not any(o.covers(0.0) for o in b.outages),
                lost_at=0.0 if any(o.covers(0.0) for o in b.outages) else None,
            )
            for b in section.batteries
        ]
        self.rooms = [
            _RoomHeat(
                spec=c,
                hosts=tuple(sorted(h.id for h in servers if h.room == c.room)),
                temperature_c=c.start_c,
                running=c.start_c >= c.high_c and not any(o.covers(0.0) for o in c.outages),
            )
            for c in section.cooling
        ]
        self.waters = []
        for fl in section.floods:
            members = sorted((h for h in servers if h.room == fl.room), key=lambda h: h.id)
            heights = {h.id: parse_height(h.labels) for h in members}
            self.waters.append(
                _Water(
                    spec=fl,
                    hosts=tuple(h.id for h in members),
                    heights={k: v for k, v in heights.items() if v is not None},
                )
            )
        functions = {f.name: f for f in scenario.functions}
        self.services = sorted({(i.function, i.owner or "") for i in scenario.instances})
        self.critical = {
            (f, o) for f, o in self.services if functions[f].criticality >= section.critical_from
        }
        self.failed: dict[str, str] = {}
        self.failures: list[dict[str, Any]] = []
        self.restarts: list[dict[str, Any]] = []
        self.down_s = 0.0
        self.critical_down_s = 0.0
        self.service_down_s: dict[str, float] = {}
        self.last_t: float | None = None

    # -- power draw -----------------------------------------------------------------------------
    def _powered(self, sim: Simulation, host: str) -> bool:
        state = sim.controller.inventory.hosts[host].state
        return state not in _DOWN and host not in sim.driver.powered_off

    def _draw_w(self, sim: Simulation, host: str) -> float:
        if not self._powered(sim, host):
            return 0.0
        cols = sim.controller.inventory.columns
        vcpu = float(cols.allocated[cols.index[host], 0])
        return self.idle_w.get(host, 0.0) + self.per_vcpu_w.get(host, 0.0) * max(0.0, vcpu)

    # -- failures -------------------------------------------------------------------------------
    def _fail(self, sim: Simulation, host: str, t: float, cause: str) -> None:
        c = sim.controller
        current = c.inventory.hosts[host]
        if host in self.failed or not self._powered(sim, host):
            return
        lost = sorted(c.inventory.instances_by_host.get(host, ()))
        c.put("host", current.model_copy(update={"state": HostState.DOWN}), t)
        sim.driver.set_host_alive(host, False)
        self.failed[host] = cause
        self.failures.append({"host": host, "t": t, "cause": cause, "instances": lost})
        c.events.emit(
            t,
            EventCategory.SYSTEM,
            f"facility: {host} failed ({cause}) with {len(lost)} function(s) on it",
            tags=("facility", "host_failed", host),
            severity=Severity.ERROR,
            data={"host": host, "cause": cause, "instances": lost},
        )

    def _restore(self, sim: Simulation, host: str, t: float, why: str) -> None:
        if host not in self.failed:
            return
        c = sim.controller
        current = c.inventory.hosts[host]
        c.put("host", current.model_copy(update={"state": HostState.READY}), t)
        sim.driver.set_host_alive(host, True)
        cause = self.failed.pop(host)
        self.restarts.append({"host": host, "t": t, "cause": cause})
        c.events.emit(
            t,
            EventCategory.SYSTEM,
            f"facility: {host} back up ({why})",
            tags=("facility", "host_restored", host),
            data={"host": host, "cause": cause},
        )

    # -- one tick of physics --------------------------------------------------------------------
    def feed(self, sim: Simulation, t: float) -> list[Reading]:
        dt = 0.0 if self.last_t is None else t - self.last_t
        self.last_t = t
        readings: list[Reading] = []

        def read(source: str, metric: str, value: float) -> None:
            readings.append(
                Reading(source=source, metric=PREFIX + metric, value=value, timestamp=t)
            )

        for b in self.batteries:
            self._battery(sim, b, t, dt)
            noisy = b.pct + (self.rng.normal(0, b.spec.noise_pct) if b.spec.noise_pct else 0.0)
            read(b.spec.source, "battery_pct", float(np.clip(noisy, 0.0, 100.0)))
            if b.spec.report_mains:
                read(b.spec.source, "mains", 1.0 if b.mains else 0.0)
        for room in self.rooms:
            self._heat(sim, room, t, dt)
            spec = room.spec
            noise = spec.noise_c
            if spec.report_room:
                read(f"room:{spec.room}", "temperature_c", self._noisy(room.temperature_c, noise))
            if spec.report_hosts:
                for host in room.hosts:
                    inlet = room.temperature_c + self.offset_c.get(host, 0.0)
                    read(f"host:{host}", "temperature_c", self._noisy(inlet, noise))
            if spec.report_state:
                working = not any(o.covers(t) for o in spec.outages)
                read(f"room:{spec.room}", "cooling", 1.0 if working else 0.0)
        for water in self.waters:
            self._flood(sim, water, t, dt)
            level = max(0.0, self._noisy(water.level_mm, water.spec.noise_mm))
            read(f"room:{water.spec.room}", "water_level_mm", level)
        return readings

    def _noisy(self, value: float, std: float) -> float:
        return float(value + self.rng.normal(0.0, std)) if std > 0 else float(value)

    # Each step first integrates the interval that just ended under the conditions that held
    # during it (supply state of its start, hosts as the last control cycle left them), then
    # looks at the instant t: new supply state, failures and repairs.

    def _battery(self, sim: Simulation, b: _BatteryState, t: float, dt: float) -> None:
        spec = b.spec
        servers = sum(self._draw_w(sim, h) for h in b.hosts)
        b.load_w = 0.0 if b.cut else spec.base_load_w + servers
        if b.mains:
            b.charge_wh = min(spec.capacity_wh, b.charge_wh + spec.recharge_w * dt / 3600.0)
        else:
            b.charge_wh = max(0.0, b.charge_wh - b.load_w * dt / 3600.0)
        mains = not any(o.covers(t) for o in spec.outages)
        if not mains and b.mains and b.lost_at is None:
            b.lost_at = t
        if mains and not b.mains and b.lost_at is not None and b.back_at is None:
            b.back_at = t
            b.charge_at_back_wh = b.charge_wh
            b.load_at_back_w = b.load_w
        b.mains = mains
        if not mains and b.charge_wh <= b.cutoff_wh + 1e-12:
            b.cut = True
            if b.depleted_at is None:
                b.depleted_at = t
            for host in b.hosts:
                self._fail(sim, host, t, f"battery {spec.id} exhausted")
        if mains:
            b.cut = False
            if b.pct >= spec.restart_pct:
                for host in b.hosts:
                    if self.failed.get(host, "").startswith("battery"):
                        self._restore(sim, host, t, f"battery {spec.id} recharged")

    def _heat(self, sim: Simulation, room: _RoomHeat, t: float, dt: float) -> None:
        spec = room.spec
        room.heat_w = sum(self._draw_w(sim, h) for h in room.hosts)
        removed = spec.capacity_w if room.running else 0.0
        exchange = spec.ua_w_per_c * (spec.outside_c - room.temperature_c)
        room.temperature_c += (room.heat_w - removed + exchange) * dt / spec.heat_capacity_j_per_c
        working = not any(o.covers(t) for o in spec.outages)
        if not working:
            room.running = False
        elif room.temperature_c >= spec.high_c:
            room.running = True
        elif room.temperature_c <= spec.low_c:
            room.running = False
        for host in room.hosts:
            inlet = room.temperature_c + self.offset_c.get(host, 0.0)
            if inlet >= spec.fail_c:
                self._fail(sim, host, t, f"overheated at {inlet:.1f} °C")
            elif (
                working
                and inlet <= spec.restart_c
                and self.failed.get(host, "").startswith("overheated")
            ):
                self._restore(sim, host, t, f"inlet back to {inlet:.1f} °C")

    def _flood(self, sim: Simulation, water: _Water, t: float, dt: float) -> None:
        spec = water.spec
        inflow = sum(i.mm_per_s for i in spec.inflow if i.covers(t - dt)) if dt > 0 else 0.0
        water.level_mm = max(0.0, water.level_mm + (inflow - spec.pump_mm_per_s) * dt)
        for host in water.hosts:
            height = water.heights[host]
            if water.level_mm >= height:
                water.dry_since.pop(host, None)
                self._fail(sim, host, t, f"flooded at {water.level_mm:.0f} mm")
            elif self.failed.get(host, "").startswith("flooded"):
                since = water.dry_since.setdefault(host, t)
                if t - since >= spec.repair_s:
                    self._restore(sim, host, t, "dried and repaired")

    # -- measurements ---------------------------------------------------------------------------
    def _available(self, sim: Simulation) -> set[tuple[str, str]]:
        inv = sim.controller.inventory
        up: set[tuple[str, str]] = set()
        for inst in inv.instances.values():
            if (
                inst.role is Role.ACTIVE
                and inst.serving
                and inv.hosts[inst.host].state not in _DOWN
            ):
                up.add((inst.function, inst.owner or ""))
        return up

    def record(self, sim: Simulation, t: float, entry: dict[str, Any]) -> None:
        up = self._available(sim)
        down = [svc for svc in self.services if svc not in up]
        tick = sim.scenario.tick_s
        self.down_s += tick * len(down)
        self.critical_down_s += tick * sum(1 for svc in down if svc in self.critical)
        for f, o in down:
            key = f"{f}:{o}" if o else f
            self.service_down_s[key] = self.service_down_s.get(key, 0.0) + tick
        inv = sim.controller.inventory
        entry["facility"] = {
            "down": len(down),
            "down_services": [f"{f}:{o}" if o else f for f, o in down],
            "critical_down": sum(1 for svc in down if svc in self.critical),
            "batteries": {
                b.spec.id: {
                    "pct": round(b.pct, 4),
                    "mains": int(b.mains),
                    "load_w": round(b.load_w, 3),
                }
                for b in self.batteries
            },
            "rooms": {
                r.spec.room: {
                    "temperature_c": round(r.temperature_c, 4),
                    "hottest_inlet_c": round(
                        r.temperature_c + max((self.offset_c[h] for h in r.hosts), default=0.0), 4
                    ),
                    "cooling_ok": int(not any(o.covers(t) for o in r.spec.outages)),
                    "cooling_on": int(r.running),
                    "heat_w": round(r.heat_w, 3),
                }
                for r in self.rooms
            },
            "water": {
                w.spec.room: {
                    "level_mm": round(w.level_mm, 3),
                    "inflow": int(any(i.covers(t) for i in w.spec.inflow)),
                }
                for w in self.waters
            },
            "failed": sorted(self.failed),
            "off": sorted(h for h, host in inv.hosts.items() if host.state is HostState.OFF),
            "levels": host_levels(sim.controller.memory.get(POLICY)),
        }

    def summary(self, sim: Simulation) -> dict[str, Any]:
        now = self.last_t if self.last_t is not None else 0.0
        batteries = {}
        for b in self.batteries:
            runtime, measured = b.runtime(now)
            batteries[b.spec.id] = {
                "mains_lost_at": b.lost_at,
                "mains_back_at": b.back_at,
                "depleted_at": b.depleted_at,
                "runtime_s": None if runtime is None else round(runtime, 3),
                "runtime_measured": measured,
            }
        return {
            "facility": {
                "services": len(self.services),
                "critical_services": len(self.critical),
                "function_downtime_s": round(self.down_s, 6),
                "critical_downtime_s": round(self.critical_down_s, 6),
                "service_downtime_s": dict(sorted(self.service_down_s.items())),
                "failures": self.failures,
                "restarts": self.restarts,
                "batteries": batteries,
            }
        }


@register_world_model
def _factory(scenario: Scenario) -> FacilityWorld | None:
    return None if scenario.facility is None else FacilityWorld(scenario, scenario.facility)


__all__ = ["FacilityWorld"]
