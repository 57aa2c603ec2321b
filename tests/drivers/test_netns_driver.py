"""The netns driver's bookkeeping between the engine and the agents (no namespaces needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from edgeroam.config import DriverSettings, Settings
from edgeroam.drivers.base import Outcome
from edgeroam.drivers.netns import ActionResult, AgentState, NetnsDriver, ResultsReport
from edgeroam.runtime import Runtime

ARGS = {"instance": "fw.1", "host": "cpe-1", "function": "fw"}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def driver(**kwargs: float) -> tuple[NetnsDriver, Clock]:
    clock = Clock()
    return NetnsDriver(clock=clock, **kwargs), clock


def done(key: str, outcome: str = "done", message: str = "") -> ResultsReport:
    return ResultsReport(results=(ActionResult(key=key, outcome=outcome, message=message),))


def test_an_action_waits_for_its_agent_and_takes_its_outcome() -> None:
    d, clock = driver()
    assert d.poll("k1", clock.now).outcome is Outcome.UNKNOWN
    d.submit("k1", "create_sandbox", ARGS, clock.now)
    assert d.poll("k1", clock.now).outcome is Outcome.PENDING
    assert d.take("cpe-2") == []  # another host's agent gets nothing
    [action] = d.take("cpe-1")
    assert (action.key, action.action, action.args) == ("k1", "create_sandbox", ARGS)
    assert d.take("cpe-1") == []  # handed out once…
    assert d.complete("cpe-2", done("k1")) == 0  # …and only its own agent may answer it
    assert d.poll("k1", clock.now).outcome is Outcome.PENDING
    assert d.complete("cpe-1", done("k1", message="ready")) == 1
    status = d.poll("k1", clock.now)
    assert (status.outcome, status.message) == (Outcome.DONE, "ready")
    assert d.complete("cpe-1", done("k1", "failed")) == 0  # a late duplicate changes nothing


def test_submitting_a_key_twice_queues_it_once_unless_it_failed() -> None:
    d, clock = driver()
    d.submit("k1", "start_function", ARGS, clock.now)
    d.submit("k1", "start_function", ARGS, clock.now)
    assert len(d.take("cpe-1")) == 1
    d.complete("cpe-1", done("k1", "failed", "no sandbox"))
    assert d.poll("k1", clock.now).outcome is Outcome.FAILED
    d.submit("k1", "start_function", ARGS, clock.now)  # a failed key may be tried again
    assert [a.key for a in d.take("cpe-1")] == ["k1"]


def test_unanswered_actions_are_redelivered_then_fail_naming_the_silence() -> None:
    d, clock = driver(redeliver_s=2.0, ack_timeout_s=5.0)
    d.submit("k1", "stop_function", ARGS, clock.now)
    assert len(d.take("cpe-1")) == 1
    clock.now += 1.9
    assert d.take("cpe-1") == []
    clock.now += 0.2
    assert len(d.take("cpe-1")) == 1  # the answer may have been lost: hand it out again
    clock.now += 3.0
    status = d.poll("k1", clock.now)
    assert status.outcome is Outcome.FAILED
    assert "did not acknowledge stop_function within 5 s" in status.message
    assert "last heard 3.0 s ago" in status.message
    assert d.pending() == {}


def test_an_agent_never_seen_is_named_in_timeouts_and_health() -> None:
    d, clock = driver(ack_timeout_s=1.0)
    d.submit("k1", "create_sandbox", ARGS, clock.now)
    ok, message = d.health()
    assert not ok and "never seen: cpe-1" in message
    clock.now += 1.5
    assert "never heard from" in d.poll("k1", clock.now).message


def test_health_reports_silent_agents() -> None:
    d, clock = driver(silent_after_s=5.0)
    d.touch("cpe-1")
    d.touch("srv")
    assert d.health() == (True, "2 agent(s) connected")
    clock.now += 4.0
    d.touch("srv")
    clock.now += 2.0
    ok, message = d.health()
    assert not ok and message == "2 agent(s) connected; silent: cpe-1"


def test_noop_power_and_hostless_actions_are_answered_by_the_driver() -> None:
    d, clock = driver()
    d.submit("n", "noop", {}, clock.now)
    d.submit("p", "power_off", {"host": "cpe-1"}, clock.now)
    d.submit("h", "create_sandbox", {"instance": "x"}, clock.now)
    assert d.poll("n", clock.now).outcome is Outcome.DONE
    assert "cannot switch a host off" in d.poll("p", clock.now).message
    assert "no host" in d.poll("h", clock.now).message
    assert d.pending() == {}
    with pytest.raises(ValueError, match="unknown action"):
        d.submit("x", "reboot", ARGS, clock.now)


def test_observe_follows_the_agents_reported_state() -> None:
    d, _ = driver()
    d.complete(
        "cpe-1",
        ResultsReport(state=AgentState(sandboxes=("fw.1", "dns.2"), running=("fw.1",))),
    )
    view = d.observe()
    assert view.sandboxes == {("fw.1", "cpe-1"), ("dns.2", "cpe-1")}
    assert view.running == {("fw.1", "cpe-1")}
    assert view.hosts_of("fw.1") == ["cpe-1"]


def test_settings_select_the_netns_driver(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'c.db'}",
        driver=DriverSettings(kind="netns", ack_timeout_s=7.0, silent_after_s=2.0),
    )
    runtime = Runtime.build(settings)
    try:
        d = runtime.controller.driver
        assert isinstance(d, NetnsDriver)
        assert (d.ack_timeout_s, d.silent_after_s) == (7.0, 2.0)
    finally:
        assert runtime.controller.store is not None
        runtime.controller.store.close()
    with pytest.raises(ValidationError, match="String should match pattern"):
        DriverSettings(kind="libvirt")
