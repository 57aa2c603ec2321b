"""N:M active/standby maintenance (`ratio`) and healing (`failover`)."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.model import HostState, OperationKind, Ratio, Role
from edgeroam.policies.ratio import (
    FailoverConfig,
    FailoverPolicy,
    RatioConfig,
    RatioPolicy,
    backoff,
)
from tests.policies.groupworld import GroupWorld

TICK = 60.0
FAILOVER = FailoverPolicy()
RATIO = RatioPolicy()


def ha_world(actives: int = 2, standbys: int = 1, ratio: Ratio | None = None) -> GroupWorld:
    world = GroupWorld()
    world.group("fw", min_size=1, max_size=12, ratio=ratio or Ratio(active=2, standby=1))
    for i in range(actives):
        world.member("fw", f"fw-a{i}", host="branch-srv")
    for i in range(standbys):
        world.member("fw", f"fw-s{i}", host="cloud-1", role=Role.STANDBY)
    return world


def healthy(world: GroupWorld, t: float, **down: float) -> None:
    """Every member reports; the ones named in `down` report that health value."""
    names = [m.id for m in world.members("fw")]
    world.report(
        t,
        dict.fromkeys(names, 0.5),
        health={n: down.get(n.replace("-", "_"), 1.0) for n in names},
    )


def failover(world: GroupWorld, now: float, memory: Any = None, **cfg: Any) -> Any:
    return FAILOVER.evaluate(world.snapshot(now), FailoverConfig(**cfg), memory)


# --- failover ----------------------------------------------------------------------------------


def test_a_failed_active_is_replaced_by_promoting_a_standby_at_once() -> None:
    world = ha_world()
    healthy(world, 0.0, fw_a1=0.0)
    (proposal,) = failover(world, 0.0).proposals
    assert proposal.kind is OperationKind.PROMOTE
    assert proposal.subject == "fw-a1"
    assert proposal.instances == ("fw-s0", "fw-a1")  # first becomes active, second steps down


def test_the_standby_on_another_host_is_preferred() -> None:
    world = ha_world(standbys=0)
    world.member("fw", "fw-s0", host="branch-srv", role=Role.STANDBY)
    world.member("fw", "fw-s1", host="cloud-1", role=Role.STANDBY)
    healthy(world, 0.0, fw_a0=0.0)
    (proposal,) = failover(world, 0.0).proposals
    assert proposal.instances[0] == "fw-s1"


def test_without_a_ready_standby_the_failed_active_is_restarted_in_place() -> None:
    world = ha_world(standbys=1)
    healthy(world, 0.0, fw_a0=0.0, fw_s0=0.0)
    result = failover(world, 0.0)
    kinds = {(p.kind, p.subject) for p in result.proposals}
    assert (OperationKind.HEAL, "fw-a0") in kinds
    heal = next(p for p in result.proposals if p.subject == "fw-a0")
    assert heal.hosts == ("branch-srv",)
    assert any(n.rule == "no_ready_standby" for n in result.notes)


def test_healing_is_masked_while_another_operation_acts_on_the_member() -> None:
    world = ha_world()
    world.operation(OperationKind.MIGRATE, "fw-a1", instances=("fw-a1",), created_at=0.0)
    healthy(world, 10.0, fw_a1=0.0)
    assert failover(world, 10.0).proposals == ()


def test_each_heal_resets_the_alarm() -> None:
    """Evidence older than the last operation on a member does not count."""
    world = ha_world(standbys=0)
    healthy(world, 0.0, fw_a1=0.0)
    first = failover(world, 0.0)
    assert [p.kind for p in first.proposals] == [OperationKind.HEAL]
    world.operation(
        OperationKind.HEAL, "fw-a1", instances=("fw-a1",), created_at=0.0, finished_at=60.0
    )
    assert failover(world, 60.0, first.memory).proposals == ()  # the 0 s reading is stale news
    healthy(world, 3600.0, fw_a1=0.0)  # failed again after the heal
    later = failover(world, 3600.0, first.memory)
    assert [p.kind for p in later.proposals] == [OperationKind.HEAL]


@settings(max_examples=40, deadline=None)
@given(
    base=st.floats(min_value=10, max_value=300),
    factor=st.floats(min_value=1, max_value=20),
    restarts=st.integers(min_value=0, max_value=3),
)
def test_heals_back_off_exponentially_then_redeploy(
    base: float, factor: float, restarts: int
) -> None:
    cap = base * factor
    world = ha_world(standbys=0)
    cfg = {"backoff_base_s": base, "backoff_cap_s": cap, "max_restarts": restarts}
    memory = None
    times: list[float] = []
    targets: list[str] = []
    for k in range(120):
        now = k * TICK
        healthy(world, now, fw_a1=0.0)
        result = failover(world, now, memory, **cfg)
        memory = result.memory
        for p in result.proposals:
            times.append(now)
            targets.append(p.hosts[0])
        if len(times) == 5:
            break
    expected = [0.0]
    for attempt in range(1, len(times)):
        wait = min(cap, base * 2 ** (attempt - 1))
        assert backoff(FailoverConfig(**cfg), attempt) == wait
        expected.append(TICK * math.ceil((expected[-1] + wait) / TICK - 1e-9))
    assert times == expected[: len(times)]
    for attempt, host in enumerate(targets, start=1):
        assert (host == "branch-srv") == (attempt <= restarts)


def test_members_of_a_dead_host_are_promoted_away_but_left_to_heal_for_recreation() -> None:
    world = ha_world()
    world.host_state("branch-srv", HostState.DOWN)
    healthy(world, 0.0, fw_a0=0.0, fw_a1=0.0)
    result = failover(world, 0.0)
    assert [p.kind for p in result.proposals] == [OperationKind.PROMOTE]
    assert all(p.kind is not OperationKind.HEAL for p in result.proposals)


def test_a_whole_group_going_silent_is_suspected_as_telemetry() -> None:
    world = ha_world()
    healthy(world, 0.0)
    result = failover(world, 1000.0, heartbeat_timeout_s=180.0)
    assert result.proposals == ()
    assert [n.rule for n in result.notes] == ["suspect_telemetry"]


def test_one_silent_member_counts_as_failed() -> None:
    world = ha_world(actives=3)
    healthy(world, 0.0)
    names = ["fw-a0", "fw-a1", "fw-s0"]
    world.report(1000.0, dict.fromkeys(names, 0.5))  # fw-a2 stopped reporting at 0 s
    (proposal,) = failover(world, 1000.0, heartbeat_timeout_s=180.0).proposals
    assert proposal.kind is OperationKind.PROMOTE and proposal.subject == "fw-a2"


# --- ratio -------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(
    actives=st.integers(min_value=1, max_value=8),
    standbys=st.integers(min_value=0, max_value=5),
    n=st.integers(min_value=1, max_value=4),
    m=st.integers(min_value=0, max_value=3),
)
def test_the_standby_count_follows_the_ratio(actives: int, standbys: int, n: int, m: int) -> None:
    world = ha_world(actives, standbys, Ratio(active=n, standby=m))
    healthy(world, 0.0)
    result = RATIO.evaluate(world.snapshot(0.0), RatioConfig(), None)
    wanted = math.ceil(actives * m / n)
    assert Ratio(active=n, standby=m).standbys_for(actives) == wanted
    if standbys == wanted:
        assert result.proposals == ()
        return
    (proposal,) = result.proposals
    assert proposal.subject == "fw"
    if standbys < wanted:
        assert proposal.kind is OperationKind.SCALE_OUT
        assert len(proposal.hosts) == wanted - standbys
        assert proposal.params == {"_group": "fw", "_role": Role.STANDBY.value}
        # Away from the actives' host (branch-srv) while the cloud has room.
        assert set(proposal.hosts) == {"cloud-1"}
    else:
        assert proposal.kind is OperationKind.SCALE_IN
        assert len(proposal.instances) == standbys - wanted
        assert all(i.startswith("fw-s") for i in proposal.instances)


def test_no_ratio_maintenance_while_the_group_runs_an_operation() -> None:
    world = ha_world(actives=4, standbys=0)
    world.operation(OperationKind.SCALE_OUT, "fw", created_at=0.0)
    healthy(world, 10.0)
    assert RATIO.evaluate(world.snapshot(10.0), RatioConfig(), None).proposals == ()
