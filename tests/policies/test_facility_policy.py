"""The `facility` policy on small hand-built worlds: Notif/Det/Retrait/Migr/Info/Extinct,
location-awareness, blast-radius rules (property tests) and the way back."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from edgeroam.arbiter import ArbiterConfig
from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.model import (
    AckState,
    AlarmEventType,
    Criticality,
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    HostState,
    Instance,
    OperationKind,
    PerceivedSeverity,
    Reading,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.policies.base import PolicyResult
from edgeroam.policies.facility import (
    NO_TARGET,
    POLICY,
    SUSPECT,
    FacilityConfig,
    FacilityMemory,
    FacilityPolicy,
    acknowledge_alarm,
    alarms_of,
)
from edgeroam.policies.heal import HealPolicy
from edgeroam.policies.registry import PolicyRegistry

DEG = 32.0  # default degraded temperature
FAIL = 40.0  # default failed temperature


@dataclass
class Rig:
    controller: Controller
    config: FacilityConfig
    memory: Any = None
    policy: FacilityPolicy = field(default_factory=FacilityPolicy)

    def read(self, source: str, metric: str, value: float, t: float) -> None:
        self.controller.ingest([Reading(source=source, metric=metric, value=value, timestamp=t)])

    def temperature_ramp(self, host: str, start: float, slope: float, t0: float, t1: float) -> None:
        """One host-inlet reading per second from t0 to t1 on a straight line."""
        t = t0
        while t <= t1 + 1e-9:
            self.read(f"host:{host}", "facility.temperature_c", start + slope * (t - t0), t)
            t += 1.0

    def evaluate(self, now: float) -> PolicyResult:
        result = self.policy.evaluate(self.controller.snapshot(now), self.config, self.memory)
        self.memory = result.memory
        return result

    def tick(self, now: float) -> None:
        self.controller.registry.configure(POLICY, self.config.model_dump(), merge=False)
        self.controller.memory[POLICY] = self.memory
        self.controller.tick(now)
        self.memory = self.controller.memory[POLICY]


def build(
    layout: dict[str, dict[str, list[str]]],
    instances: list[tuple[str, str, str]],
    *,
    cloud: bool = True,
    vcpu: float = 8.0,
    config: dict[str, Any] | None = None,
    heal: bool = False,
) -> Rig:
    """layout: site → room → hosts; instances: (id, function, host)."""
    registry = PolicyRegistry()
    registry.register(FacilityPolicy(), FacilityConfig.model_validate(config or {}))
    if heal:
        registry.register(HealPolicy())
    # As in the facility scenarios: host-state steps of one evacuation follow each other
    # without the arbiter's per-subject cooldown.
    quick = {k: 0.0 for k in ("heal", "migrate", "cordon", "uncordon", "power-off", "power-on")}
    c = Controller(
        SimDriver(latency_s=0.0),
        registry=registry,
        arbiter=ArbiterConfig(cooldown_by_kind=quick),
        stale_after_s=30.0,
    )
    c.put("customer", Customer(id="cust"), 0.0)
    c.put("flavor", Flavor(id="one", vcpu=1, memory_mb=256), 0.0)
    for name, crit in (("crit", Criticality.CRITICAL), ("norm", Criticality.NORMAL)):
        c.put(
            "function",
            FunctionSpec(
                name=name,
                flavor="one",
                criticality=crit,
                placement=(HostKind.SERVER, HostKind.CLOUD),
            ),
            0.0,
        )
    c.put("function", FunctionSpec(name="low", flavor="one", criticality=Criticality.LOW), 0.0)
    for site, rooms in layout.items():
        c.put("site", Site(id=site, kind=SiteKind.DATACENTER, rooms=tuple(rooms)), 0.0)
        for room, hosts in rooms.items():
            for h in hosts:
                cap = Resources(vcpu=vcpu, memory_mb=65536, bandwidth_mbps=1000)
                c.put(
                    "host",
                    Host(id=h, kind=HostKind.SERVER, site=site, room=room, capacity=cap),
                    0.0,
                )
    if cloud:
        c.put("site", Site(id="cloud", kind=SiteKind.CLOUD), 0.0)
        cap = Resources(vcpu=64, memory_mb=262144, bandwidth_mbps=10000)
        c.put("host", Host(id="cloud-1", kind=HostKind.CLOUD, site="cloud", capacity=cap), 0.0)
    for name, function, host in instances:
        inst = Instance(id=name, function=function, host=host, owner="cust")
        c.seed_instance(inst, 0.0)
        assert isinstance(c.driver, SimDriver)
        c.driver.adopt(name, host, {})
    return Rig(c, FacilityConfig.model_validate(config or {}))


TWO_SITES = {"dc-1": {"r1": ["a1", "a2"], "r2": ["a3"]}, "dc-2": {"q1": ["b1", "b2"]}}


def kinds(result: PolicyResult) -> Counter[str]:
    return Counter(p.kind.value for p in result.proposals)


def test_nothing_happens_without_facility_readings() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1")])
    rig.read("host:a1", "cpu_pct", 99.0, 0.0)  # other telemetry is not the policy's business
    for now in (0.0, 1.0, 2.0):
        result = rig.evaluate(now)
        assert result.proposals == () and result.notes == ()
    assert isinstance(rig.memory, FacilityMemory) and rig.memory.idle


def test_a_heating_host_is_cordoned_and_evacuated_by_a_deadline_from_the_trend() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1"), ("i2", "norm", "a1"), ("i3", "norm", "b1")])
    slope = 0.05  # °C per second
    rig.temperature_ramp("a1", start=29.0, slope=slope, t0=0.0, t1=80.0)  # 33 °C at t=80
    for host in ("a2", "a3", "b1", "b2"):
        rig.read(f"host:{host}", "facility.temperature_c", 24.0, 80.0)
    result = rig.evaluate(80.0)
    assert kinds(result) == Counter({"cordon": 1, "migrate": 2})
    cordon = next(p for p in result.proposals if p.kind is OperationKind.CORDON)
    assert cordon.hosts == ("a1",) and cordon.reason.rule == "facility_cordon"
    moves = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    # Time left on the noiseless line: (40 - 33) / 0.05 s; the deadline keeps 70 % of it.
    expected = 80.0 + 0.7 * (FAIL - 33.0) / slope
    for move in moves:
        assert move.deadline == pytest.approx(expected)
        assert move.sources == ("a1",)
        assert move.instances == (move.subject,)
        assert move.function == rig.controller.inventory.instances[move.subject].function
        # Location-aware: not the degraded host, not its room.
        assert move.hosts[0] not in ("a1", "a2")
    assert [m.subject for m in moves] == ["i1", "i2"]  # critical first
    assert moves[0].priority == Criticality.CRITICAL
    assert "facility_degraded" in {n.rule for n in result.notes}
    assert [a.rule for a in result.alarms] == ["alarm_raised"]
    alarm = alarms_of(rig.memory)[0]
    assert alarm.managed_object == "host:a1"
    assert alarm.event_type is AlarmEventType.ENVIRONMENTAL_ALARM
    assert alarm.perceived_severity is PerceivedSeverity.MAJOR
    assert alarm.probable_cause == "temperature_unacceptable"


def test_ordering_by_criticality_then_deadline_and_bounded_concurrency() -> None:
    instances = [("c-fast", "crit", "a1"), ("n-fast", "norm", "a1"), ("l-fast", "low", "a1")]
    instances += [("c-slow", "crit", "b1"), ("n-slow", "norm", "b1")]
    rig = build(TWO_SITES, instances, config={"max_concurrent": 10, "storm_min_sites": 3})
    rig.temperature_ramp("a1", 30.0, 0.1, 0.0, 30.0)  # 33 °C, 70 s left
    rig.temperature_ramp("b1", 32.0, 0.01, 0.0, 30.0)  # 32.3 °C, 770 s left
    result = rig.evaluate(30.0)
    moves = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    order = [m.subject for m in moves]
    assert order == ["c-fast", "c-slow", "n-fast", "n-slow", "l-fast"]
    keys = [(-m.priority, m.deadline) for m in moves]
    assert keys == sorted(keys)
    # With room for two, the two critical ones go first.
    rig2 = build(TWO_SITES, instances, config={"max_concurrent": 2, "storm_min_sites": 3})
    rig2.temperature_ramp("a1", 30.0, 0.1, 0.0, 30.0)
    rig2.temperature_ramp("b1", 32.0, 0.01, 0.0, 30.0)
    moves2 = [p for p in rig2.evaluate(30.0).proposals if p.kind is OperationKind.MIGRATE]
    assert [m.subject for m in moves2] == ["c-fast", "c-slow"]


def test_nowhere_to_go_keeps_the_function_and_raises_a_critical_alarm() -> None:
    layout = {"dc-1": {"r1": ["a1"]}}
    rig = build(layout, [("i1", "crit", "a1")], cloud=False)
    rig.read("host:a1", "facility.temperature_c", 35.0, 0.0)
    result = rig.evaluate(0.0)
    assert kinds(result) == Counter({"cordon": 1})
    stuck = [a for a in alarms_of(rig.memory) if a.probable_cause == NO_TARGET]
    assert len(stuck) == 1
    assert stuck[0].managed_object == "instance:i1"
    assert stuck[0].perceived_severity is PerceivedSeverity.CRITICAL
    assert "nowhere to go" in stuck[0].fault_details[0]
    # Back to normal for the hold: every alarm clears.
    for t in range(1, 70):
        rig.read("host:a1", "facility.temperature_c", 24.0, float(t))
        rig.evaluate(float(t))
    assert all(not a.active for a in alarms_of(rig.memory))


def test_most_of_a_room_degraded_cordons_the_whole_room_but_evacuates_only_degraded() -> None:
    layout = {"dc-1": {"r1": ["a1", "a2", "a4"], "r2": ["a3"]}, "dc-2": {"q1": ["b1"]}}
    rig = build(layout, [("i1", "norm", "a1"), ("i4", "norm", "a4")], config={"storm_min_sites": 3})
    for host, value in (("a1", 35.0), ("a2", 34.0), ("a4", 25.0), ("a3", 24.0), ("b1", 24.0)):
        rig.read(f"host:{host}", "facility.temperature_c", value, 0.0)
    result = rig.evaluate(0.0)
    cordoned = sorted(p.subject for p in result.proposals if p.kind is OperationKind.CORDON)
    assert cordoned == ["a1", "a2", "a4"]
    moved = [p.subject for p in result.proposals if p.kind is OperationKind.MIGRATE]
    assert moved == ["i1"]
    objects = {a.managed_object for a in alarms_of(rig.memory)}
    assert "room:r1" in objects


def test_a_flooded_room_does_not_condemn_a_quiet_room_of_the_same_site() -> None:
    """Only room b1 reports (its water level); f1 reports nothing and is not known degraded."""
    layout = {"dc-1": {"b1": ["x1", "x2", "x3"], "f1": ["y1", "y2"]}}
    rig = build(layout, [("i1", "norm", "x1")], cloud=False)
    heights = {"x1": "100", "x2": "150", "x3": "900"}
    for host, height in heights.items():
        h = rig.controller.inventory.hosts[host]
        rig.controller.put("host", h.model_copy(update={"labels": {"mount_height_mm": height}}), 0)
    rig.read("room:b1", "facility.water_level_mm", 60.0, 0.0)  # x1, x2 within 100 mm
    result = rig.evaluate(0.0)
    cordoned = sorted(p.subject for p in result.proposals if p.kind is OperationKind.CORDON)
    assert cordoned == ["x1", "x2", "x3"]  # the room (2 of 3 degraded), not the site
    move = next(p for p in result.proposals if p.kind is OperationKind.MIGRATE)
    assert move.hosts[0] in ("y1", "y2")
    # Clearance 100 - 60 = 40 mm for x1: a water alarm on each degraded host.
    causes = {(a.managed_object, a.probable_cause) for a in alarms_of(rig.memory)}
    assert ("host:x1", "flood_detected") in causes and (
        "room:b1",
        "correlated_environment_fault",
    ) in causes


def test_a_site_wide_reading_sends_functions_to_other_sites() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1"), ("i2", "norm", "a3")], vcpu=16.0)
    for t in range(0, 61):
        rig.read("site:dc-1", "facility.battery_pct", 70.0 - 0.4 * t, float(t))  # 46 % at t=60
    result = rig.evaluate(60.0)
    moves = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    assert {m.subject for m in moves} == {"i1", "i2"}
    for m in moves:
        assert rig.controller.inventory.hosts[m.hosts[0]].site != "dc-1"
        # (46 - 10) / 0.4 = 90 s to the UPS cut-off; 70 % of it.
        assert m.deadline == pytest.approx(60.0 + 0.7 * 90.0)
    assert sorted(p.subject for p in result.proposals if p.kind is OperationKind.CORDON) == [
        "a1",
        "a2",
        "a3",
    ]


def test_readings_from_every_site_at_once_suspend_actions_until_acknowledged() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1"), ("i2", "norm", "b1")])
    for site in ("dc-1", "dc-2"):
        rig.read(f"site:{site}", "facility.temperature_c", 36.0, 0.0)
    result = rig.evaluate(0.0)
    assert result.proposals == ()
    suspect = [a for a in alarms_of(rig.memory) if a.probable_cause == SUSPECT]
    assert len(suspect) == 1 and suspect[0].event_type is AlarmEventType.COMMUNICATIONS_ALARM
    assert "facility_telemetry_suspect" in {n.rule for n in result.notes}
    assert rig.evaluate(1.0).proposals == ()
    rig.memory, acked = acknowledge_alarm(rig.memory, suspect[0].id, "ops", 2.0)
    assert acked.ack_state is AckState.ACKNOWLEDGED
    resumed = rig.evaluate(2.0)
    assert kinds(resumed)["cordon"] == 5
    assert {p.subject for p in resumed.proposals if p.kind is OperationKind.MIGRATE} == {"i1", "i2"}
    with pytest.raises(ValueError, match="already acknowledged by ops"):
        acknowledge_alarm(rig.memory, suspect[0].id, "ops", 3.0)
    with pytest.raises(KeyError):
        acknowledge_alarm(rig.memory, "alarm-999999", "ops", 3.0)


def test_sites_degrading_far_apart_are_not_a_storm() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1"), ("i2", "norm", "b1")])
    rig.read("site:dc-1", "facility.temperature_c", 36.0, 0.0)
    rig.read("site:dc-2", "facility.temperature_c", 24.0, 0.0)
    assert kinds(rig.evaluate(0.0))["migrate"] == 1
    window = rig.config.storm_window_s
    rig.read("site:dc-1", "facility.temperature_c", 36.0, window + 1)
    rig.read("site:dc-2", "facility.temperature_c", 36.0, window + 1)
    result = rig.evaluate(window + 1)
    assert all(a.probable_cause != SUSPECT for a in alarms_of(rig.memory))
    assert any(p.kind is OperationKind.MIGRATE for p in result.proposals)


def test_full_cycle_through_the_controller_and_back() -> None:
    """Retrait → Migr → Info → Extinct, then power on and uncordon after the hold."""
    rig = build(TWO_SITES, [("i1", "crit", "a1"), ("i2", "norm", "a1")], heal=True)
    inv = rig.controller.inventory
    for t in range(0, 4):
        rig.read("host:a1", "facility.temperature_c", 35.0, float(t))
        rig.tick(float(t))
    assert inv.hosts["a1"].state is HostState.OFF
    assert not inv.instances_by_host.get("a1")
    assert {inv.instances[i].host for i in ("i1", "i2")}.isdisjoint({"a1", "a2"})
    assert rig.memory.powered_off == {"a1"} and rig.memory.cordoned == {"a1"}
    infos = [e for e in rig.controller.events.recent if "facility_evacuated" in e.tags]
    assert len(infos) == 2
    assert all("function↔host table is updated" in e.message for e in infos)
    # Back to normal, but not yet for the hold time: still off.
    hold = rig.config.base_thresholds()["temperature_c"].clear_hold_s
    t = 4.0
    while t < 4.0 + hold:
        rig.read("host:a1", "facility.temperature_c", 24.0, t)
        rig.tick(t)
        t += 1.0
    assert inv.hosts["a1"].state is HostState.OFF
    for _ in range(3):
        rig.read("host:a1", "facility.temperature_c", 24.0, t)
        rig.tick(t)
        t += 1.0
    assert inv.hosts["a1"].state is HostState.READY
    assert rig.memory.powered_off == frozenset() and rig.memory.cordoned == frozenset()
    ops = [op for op in rig.controller.engine.finished if op.policy == POLICY]
    assert [op.kind.value for op in ops] == [
        "cordon",
        "migrate",
        "migrate",
        "power-off",
        "power-on",
    ]


def test_stale_readings_never_clear_a_degraded_host() -> None:
    rig = build(TWO_SITES, [("i1", "crit", "a1")], config={"power_off": False})
    rig.read("host:a1", "facility.temperature_c", 35.0, 0.0)
    rig.tick(0.0)
    assert rig.controller.inventory.hosts["a1"].state is HostState.CORDONED
    for t in range(1, 400, 10):  # silence: the reading turns stale after 30 s
        rig.tick(float(t))
    assert rig.controller.inventory.hosts["a1"].state is HostState.CORDONED
    assert any(a.active and a.managed_object == "host:a1" for a in alarms_of(rig.memory))


def test_an_operator_cordon_is_never_lifted() -> None:
    rig = build(TWO_SITES, [])
    host = rig.controller.inventory.hosts["a1"]
    rig.controller.put("host", host.model_copy(update={"state": HostState.CORDONED}), 0.0)
    for t in range(0, 100):
        rig.read("host:a1", "facility.temperature_c", 35.0 if t < 5 else 24.0, float(t))
        rig.tick(float(t))
    ops = [op for op in rig.controller.engine.finished if op.policy == POLICY]
    assert all(op.kind is not OperationKind.UNCORDON for op in ops)
    assert rig.controller.inventory.hosts["a1"].state in (HostState.CORDONED, HostState.OFF)


def test_critical_functions_can_be_copied_before_the_original_stops() -> None:
    rig = build(
        TWO_SITES,
        [("i1", "crit", "a1"), ("i2", "norm", "a1")],
        config={"duplicate_critical": True, "power_off": False},
    )
    rig.controller.arbiter = rig.controller.arbiter.model_copy(
        update={"cooldown_by_kind": {**rig.controller.arbiter.cooldown_by_kind, "terminate": 0.0}}
    )
    inv = rig.controller.inventory
    for t in range(0, 4):
        rig.read("host:a1", "facility.temperature_c", 35.0, float(t))
        rig.tick(float(t))
    ops = [op for op in rig.controller.engine.finished if op.policy == POLICY]
    assert [op.kind.value for op in ops] == ["cordon", "scale-out", "migrate", "terminate"]
    scale_out = ops[1]
    copy = scale_out.created_instances[0]
    assert inv.instances[copy].function == "crit" and inv.instances[copy].host != "a1"
    assert "i1" not in inv.instances  # the original stopped once the copy ran
    assert inv.instances["i2"].host != "a1"


# --- property tests: blast radius ---------------------------------------------------------------


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    n_sites = draw(st.integers(min_value=1, max_value=4))
    layout: dict[str, dict[str, list[str]]] = {}
    temps: dict[str, float] = {}
    count = 0
    for s in range(n_sites):
        rooms: dict[str, list[str]] = {}
        for r in range(draw(st.integers(min_value=1, max_value=2))):
            hosts = []
            for _ in range(draw(st.integers(min_value=1, max_value=3))):
                count += 1
                h = f"h{count}"
                hosts.append(h)
                temps[h] = draw(st.sampled_from([24.0, 28.0, 33.0, 36.0, 41.0]))
            rooms[f"s{s}r{r}"] = hosts
        layout[f"s{s}"] = rooms
    hosts = sorted(temps)
    n_inst = draw(st.integers(min_value=0, max_value=12))
    instances = [
        (f"i{k}", draw(st.sampled_from(["crit", "norm", "low"])), draw(st.sampled_from(hosts)))
        for k in range(n_inst)
    ]
    return {
        "layout": layout,
        "temps": temps,
        "instances": instances,
        "cloud": draw(st.booleans()),
        "vcpu": draw(st.sampled_from([1.0, 2.0, 8.0])),
        "max_concurrent": draw(st.integers(min_value=1, max_value=5)),
        "site_rate_limit": draw(st.integers(min_value=1, max_value=4)),
    }


@settings(max_examples=60, deadline=None)
@given(worlds())
def test_storm_and_blast_radius_rules_hold_on_any_world(w: dict[str, Any]) -> None:
    config = {"max_concurrent": w["max_concurrent"], "site_rate_limit": w["site_rate_limit"]}
    rig = build(w["layout"], w["instances"], cloud=w["cloud"], vcpu=w["vcpu"], config=config)
    for host, value in w["temps"].items():
        rig.read(f"host:{host}", "facility.temperature_c", value, 0.0)
    result = rig.evaluate(0.0)
    inv = rig.controller.inventory
    degraded = {h for h, v in w["temps"].items() if v >= DEG}
    site_of = {h: inv.hosts[h].site for h in w["temps"]}
    sites = set(w["layout"])
    bad_sites = {site_of[h] for h in degraded}
    moves = [p for p in result.proposals if p.kind is OperationKind.MIGRATE]
    alarms = alarms_of(rig.memory)
    storm = len(sites) >= 2 and sites == bad_sites

    event("storm" if storm else f"{min(len(moves), 2)}+ moves")
    if storm:  # every reporting site degraded at once: act on nothing, say why
        assert result.proposals == ()
        assert any(a.probable_cause == SUSPECT and a.active for a in alarms)
        return
    assert all(a.probable_cause != SUSPECT for a in alarms)
    # Only functions of degraded hosts move, never onto a degraded host.
    for m in moves:
        assert inv.instances[m.subject].host in degraded
        assert m.hosts[0] not in degraded
        assert m.deadline is not None
    # Bounded concurrency and per-site evacuation rate.
    assert len(moves) <= w["max_concurrent"]
    per_site = Counter(site_of[m.sources[0]] for m in moves)
    assert all(n <= w["site_rate_limit"] for n in per_site.values())
    # Most critical first, then earliest deadline.
    keys = [(-m.priority, m.deadline) for m in moves]
    assert keys == sorted(keys)
    # Reservations: no host is promised more than it has free.
    promised = Counter(m.hosts[0] for m in moves)
    for host, n in promised.items():
        assert n <= rig.controller.snapshot(0.0).host_table.free_of(host).vcpu
    # Never evacuate to nowhere: when the budget was not the limit, every function on a
    # degraded host either moves or is kept under a critical no-target alarm.
    unconstrained = len(moves) < w["max_concurrent"] and all(
        n < w["site_rate_limit"] for n in per_site.values()
    )
    if unconstrained:
        stuck = {a.managed_object for a in alarms if a.probable_cause == NO_TARGET and a.active}
        if stuck:
            event("kept under a no-target alarm")
        for name, _, host in w["instances"]:
            if host in degraded:
                assert name in {m.subject for m in moves} or f"instance:{name}" in stuck
    # Every degraded host that is ready gets cordoned.
    cordoned = {p.subject for p in result.proposals if p.kind is OperationKind.CORDON}
    assert degraded <= cordoned
