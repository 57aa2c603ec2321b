"""The rules policy and its action runner: firing, sequencing, triggers, timers,
preconditions, built-in and custom actions, failures, and reloading at run time."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.controller import Controller
from edgeroam.drivers.sim import SimDriver
from edgeroam.model import EventCategory, HostState, OperationKind, Role
from edgeroam.policies.registry import PolicyConfigError
from edgeroam.rules import reload_rules
from edgeroam.rules.policy import ActionResult, RulesConfig, RulesMemory, RulesPolicy
from edgeroam.rules.runner import ActionRunner
from tests.conftest import make_world
from tests.policies.groupworld import GroupWorld
from tests.rules import hooks

POLICY = RulesPolicy()
TICK = 60.0


def cfg(*rules: dict[str, Any]) -> RulesConfig:
    return RulesConfig.model_validate({"rules": list(rules)})


def hot(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "hot",
        "when": {"metric": "load", "source": "group:fw", "op": ">=", "value": 0.9},
        "cooldown_s": 0,
        "actions": [{"do": "scale", "group": "fw", "direction": "out"}],
    }
    return {**base, **over}


def world(actives: int = 2, min_size: int = 1) -> GroupWorld:
    w = GroupWorld()
    w.group("fw", min_size=min_size)
    for _ in range(actives):
        w.member("fw", host="cloud-1")
    return w


@settings(max_examples=60, deadline=None)
@given(
    occurrences=st.integers(min_value=1, max_value=3),
    cooldown=st.sampled_from([0.0, 60.0, 150.0, 400.0]),
    truth=st.lists(st.booleans(), min_size=1, max_size=12),
)
def test_a_rule_fires_after_n_true_cycles_then_rests(
    occurrences: int, cooldown: float, truth: list[bool]
) -> None:
    w = world()
    config = cfg(
        hot(
            occurrences=occurrences,
            cooldown_s=cooldown,
            actions=[{"do": "notify", "message": "hot"}],
        )
    )
    memory: Any = None
    fired = []
    for k, on in enumerate(truth):
        w.load_group("fw", k * TICK, 0.95 if on else 0.5)
        result = POLICY.evaluate(w.snapshot(k * TICK), config, memory)
        memory = result.memory
        assert isinstance(memory, RulesMemory)
        if any(n.rule == "rule_fired" for n in result.notes):
            fired.append(k)
        # Complete the notify at once so a run never blocks the next firing.
        memory = memory.with_results(
            {a.key: ActionResult(True, "ok", k * TICK) for a in memory.pending()}
        )
    expected, streak, last, running_until = [], 0, None, -1
    for k, on in enumerate(truth):
        streak = streak + 1 if on else 0
        busy = k <= running_until
        if streak >= occurrences and not busy and (last is None or (k - last) * TICK >= cooldown):
            expected.append(k)
            # The run's notify completes at once, so the run ends early next cycle.
            last, streak, running_until = k, 0, k
    assert fired == expected


def test_a_sequence_waits_for_each_operation_then_runs_the_external_actions() -> None:
    w = world()
    config = cfg(
        hot(
            actions=[
                {"id": "grow", "do": "scale", "group": "fw", "direction": "out", "count": 2},
                {"id": "tell", "do": "notify", "message": "fw grown"},
            ]
        )
    )
    w.load_group("fw", 0.0, 0.95)
    first = POLICY.evaluate(w.snapshot(0.0), config, None)
    (proposal,) = first.proposals
    assert proposal.kind is OperationKind.SCALE_OUT and len(proposal.hosts) == 2
    assert proposal.reason.rule == "rule:hot"
    mem = first.memory
    assert mem.pending() == ()
    # The operation is running: nothing else happens.
    w.operation(OperationKind.SCALE_OUT, "fw", created_at=0.0, policy="rules")
    w.load_group("fw", TICK, 0.5)
    second = POLICY.evaluate(w.snapshot(TICK), config, mem)
    assert second.proposals == () and second.memory.pending() == ()
    # It completed: the notify is queued for the runner.
    w.operations.clear()
    w.operation(OperationKind.SCALE_OUT, "fw", created_at=0.0, finished_at=90.0, policy="rules")
    third = POLICY.evaluate(w.snapshot(2 * TICK), config, second.memory)
    (queued,) = third.memory.pending()
    assert queued.action.id == "tell" and queued.key.endswith("/tell")
    done = third.memory.with_results({queued.key: ActionResult(True, "notified", 2 * TICK)})
    fourth = POLICY.evaluate(w.snapshot(3 * TICK), config, done)
    assert [n.rule for n in fourth.notes] == ["run_completed"]
    assert fourth.memory.runs == {} and fourth.memory.outbox == ()


def test_parallel_actions_triggers_timers_and_preconditions() -> None:
    w = world()
    config = cfg(
        hot(
            mode="parallel",
            actions=[
                {"id": "a", "do": "notify", "message": "a"},
                {"id": "b", "do": "notify", "message": "b"},
                {"id": "c", "do": "notify", "message": "c", "after": ["a"], "delay_s": 120},
                {
                    "id": "d",
                    "do": "notify",
                    "message": "d",
                    "after": ["b"],
                    "precondition": {"host": "cloud-1", "state": "cordoned"},
                    "wait_s": 600,
                },
            ],
        )
    )
    w.load_group("fw", 0.0, 0.95)
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    assert sorted(a.action.id for a in r.memory.pending()) == ["a", "b"]
    mem = r.memory.with_results({a.key: ActionResult(True, "ok", 0.0) for a in r.memory.pending()})
    started: dict[float, list[str]] = {}
    for k in range(1, 6):
        now = k * TICK
        if k == 4:
            w.host_state("cloud-1", HostState.CORDONED)
        r = POLICY.evaluate(w.snapshot(now), config, mem)
        new = [a.action.id for a in r.memory.pending()]
        started[now] = new
        mem = r.memory.with_results(
            {a.key: ActionResult(True, "ok", now) for a in r.memory.pending()}
        )
    # c: a done at 60 s (seen), timer 120 s -> 180 s; d: waits for the host to be cordoned.
    assert started[3 * TICK] == ["c"]
    assert started[4 * TICK] == ["d"]


def test_a_failed_step_stops_the_run_and_an_unmet_precondition_fails_it() -> None:
    w = world()
    config = cfg(
        hot(
            actions=[
                {"do": "notify", "message": "first"},
                {"do": "notify", "message": "second"},
            ]
        )
    )
    w.load_group("fw", 0.0, 0.95)
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    (queued,) = r.memory.pending()
    failed = r.memory.with_results({queued.key: ActionResult(False, "exit status 3", 0.0)})
    r2 = POLICY.evaluate(w.snapshot(TICK), config, failed)
    assert r2.notes[0].rule == "run_failed"
    (run,) = r2.memory.finished
    assert run.status == "failed" and run.steps["a2"].status == "cancelled"

    config = cfg(
        hot(
            actions=[
                {
                    "do": "notify",
                    "message": "m",
                    "precondition": {"instance": "nobody", "exists": True, "role": "active"},
                    "wait_s": 60,
                }
            ]
        )
    )
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    assert r.memory.pending() == ()
    r = POLICY.evaluate(w.snapshot(TICK), config, r.memory)
    assert r.memory.finished[-1].steps["a1"].message == "precondition not met"


def test_scale_in_by_a_rule_respects_the_minimum() -> None:
    w = world(actives=2, min_size=2)
    config = cfg(hot(actions=[{"do": "scale", "group": "fw", "direction": "in", "count": 3}]))
    w.load_group("fw", 0.0, 0.95)
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    assert r.proposals == ()
    assert r.memory.finished[-1].steps["a1"].status == "skipped"
    w.member("fw", host="cloud-1")
    w.member("fw", host="cloud-1")
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    (proposal,) = r.proposals
    assert proposal.kind is OperationKind.SCALE_IN and len(proposal.instances) == 2


def test_a_refused_operation_fails_its_step() -> None:
    w = world()
    config = cfg(hot(actions=[{"do": "heal", "instance": w.members("fw")[0].id}]))
    w.load_group("fw", 0.0, 0.95)
    r = POLICY.evaluate(w.snapshot(0.0), config, None)
    (proposal,) = r.proposals
    assert proposal.kind is OperationKind.HEAL and proposal.hosts == ("cloud-1",)
    r = POLICY.evaluate(w.snapshot(TICK), config, r.memory)  # no operation ever appeared
    assert r.memory.finished[-1].steps["a1"].message == "the operation was refused"


# --- the runner and reloading, on a real controller ----------------------------------------------


def controller() -> Controller:
    c = Controller(SimDriver(), store=None)
    make_world(c)
    return c


def test_the_runner_notifies_and_runs_custom_actions(tmp_path: Path) -> None:
    marker = tmp_path / "ran.txt"
    script = (
        f"import os, sys; open({str(marker)!r}, 'w')"
        ".write(os.environ['EDGEROAM_RULE'] + sys.stdin.read())"
    )
    c = controller()
    c.registry.configure(
        "rules",
        {
            "rules": [
                {
                    "name": "edge-down",
                    "when": {"host": "edge-a", "state": "down"},
                    "cooldown_s": 3600,
                    "actions": [
                        {"do": "notify", "message": "edge-a is down", "tags": ["pager"]},
                        {"do": "custom", "exec": [sys.executable, "-c", script]},
                        {"do": "custom", "entry_point": "tests.rules.hooks:record"},
                        {"do": "custom", "entry_point": "tests.rules.hooks:refuse"},
                    ],
                }
            ]
        },
    )
    runner = ActionRunner()
    c.put("host", c.inventory.hosts["edge-a"].model_copy(update={"state": HostState.DOWN}), 0.0)
    hooks.CALLS.clear()
    for k in range(8):
        runner.run(c, k * TICK)
        c.tick(k * TICK)
    assert [key.split("/")[1] for key, _ in runner.executed] == ["a1", "a2", "a3", "a4"]
    assert [r.ok for _, r in runner.executed] == [True, True, True, False]
    assert marker.read_text().startswith('edge-down{"rule": "edge-down"')
    assert hooks.CALLS and hooks.CALLS[0]["action"] == "a3"
    alarms = [e for e in c.events.recent if e.category is EventCategory.ALARM]
    assert alarms and alarms[0].message == "edge-a is down" and "pager" in alarms[0].tags
    memory = c.memory["rules"]
    assert memory.finished[-1].status == "failed"  # refuse() returned False


def test_rules_reload_at_run_time_and_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    c = controller()
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - name: one\n    when: {host: edge-a, state: down}\n"
        "    actions: [{do: notify, message: m}]\n"
    )
    config = reload_rules(c, str(path))
    assert [r.name for r in config.rules] == ["one"] and config.file == str(path)
    path.write_text(
        "rules:\n  - name: one\n    when: {host: edge-a, state: down}\n"
        "    actions: [{do: notify, message: m}]\n"
        "  - name: two\n    when: {host: edge-b, state: down}\n"
        "    actions: [{do: scale, group: fw}]\n"
    )
    with pytest.raises(PolicyConfigError, match=r"rules\[1\]\.actions\[0\]: a scale action needs"):
        reload_rules(c)
    assert [r.name for r in c.registry.config("rules").rules] == ["one"]  # type: ignore[attr-defined]
    path.write_text(path.read_text().replace("{do: scale, group: fw}", "{do: notify, message: n}"))
    assert [r.name for r in reload_rules(c).rules] == ["one", "two"]


def test_reload_without_a_file_says_so() -> None:
    with pytest.raises(PolicyConfigError, match="no rules file configured"):
        reload_rules(controller())


def test_a_group_condition_counts_members() -> None:
    w = world(actives=3)
    w.member("fw", host="cloud-1", role=Role.STANDBY)
    w.load_group("fw", 0.0, 0.5)
    config = cfg(
        hot(
            when={
                "all": [
                    {"metric": "active", "source": "group:fw", "op": "==", "value": 3},
                    {"metric": "standby", "source": "group:fw", "op": "==", "value": 1},
                    {"metric": "cpu", "source": "group:fw", "op": "==", "value": 0.5},
                ]
            },
            actions=[{"do": "notify", "message": "ok"}],
        )
    )
    assert POLICY.evaluate(w.snapshot(0.0), config, None).memory.pending()
