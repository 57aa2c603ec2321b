"""Traffic rules of a function's CPE copy: matching, references to parameters, validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from edgeroam.model import CpeAction, FlowMatch, FunctionSpec, ParameterSpec, TrafficBehaviour


def test_an_empty_match_matches_every_flow() -> None:
    assert FlowMatch().matches(None, None, {})
    assert FlowMatch().matches("192.0.2.1", "tcp", {})


def test_literal_fields_must_all_equal_the_flows() -> None:
    match = FlowMatch(destination="50.1.1.1", protocol="icmp-echo")
    assert match.matches("50.1.1.1", "icmp-echo", {})
    assert not match.matches("50.1.1.1", "udp", {})
    assert not match.matches("50.1.1.2", "icmp-echo", {})
    assert not match.matches(None, "icmp-echo", {})


def test_references_read_the_copys_parameters_and_an_unset_one_matches_nothing() -> None:
    match = FlowMatch(destination="$destination")
    assert match.matches("50.1.1.1", None, {"destination": "50.1.1.1"})
    assert not match.matches("50.1.1.1", None, {"destination": "50.1.1.9"})
    assert not match.matches("50.1.1.1", None, {})
    assert match.references() == {"destination"}


def test_a_bare_dollar_is_not_a_reference() -> None:
    with pytest.raises(ValidationError, match="parameter name"):
        FlowMatch(destination="$")


def test_the_first_matching_rule_decides_and_otherwise_decides_the_rest() -> None:
    behaviour = TrafficBehaviour.model_validate(
        {
            "rules": [
                {"match": {"protocol": "dns"}, "action": "answer"},
                {"match": {"destination": "$blocked"}, "action": "drop"},
                {"match": {}, "action": "forward"},
            ],
            "otherwise": "pass",
        }
    )
    params = {"blocked": "203.0.113.9"}
    assert behaviour.action_for("203.0.113.9", "dns", params) is CpeAction.ANSWER
    assert behaviour.action_for("203.0.113.9", "tcp", params) is CpeAction.DROP
    assert behaviour.action_for("192.0.2.1", "tcp", params) is CpeAction.FORWARD
    assert TrafficBehaviour().action_for("x", "y", {}) is CpeAction.ANSWER


def test_actions_say_whether_they_keep_traffic_off_the_band() -> None:
    assert {a for a in CpeAction if a.keeps_off_band} == {CpeAction.ANSWER, CpeAction.DROP}
    assert {a for a in CpeAction if not a.handled_on_cpe} == {CpeAction.PASS}


def test_a_function_cannot_refer_to_a_parameter_it_does_not_declare() -> None:
    traffic = {"rules": [{"match": {"destination": "$target"}, "action": "drop"}]}
    with pytest.raises(ValidationError, match=r"undeclared parameter\(s\) \['target'\]"):
        FunctionSpec(name="fw", flavor="small", traffic=traffic)
    ok = FunctionSpec(
        name="fw",
        flavor="small",
        parameters={"target": ParameterSpec(type="ipv4")},
        traffic=traffic,
    )
    assert ok.traffic.references() == {"target"}


def test_unknown_actions_are_refused() -> None:
    with pytest.raises(ValidationError, match="action"):
        TrafficBehaviour.model_validate({"rules": [{"action": "reflect"}]})


def test_only_functions_whose_copies_answer_or_drop_something_can_relieve_the_band() -> None:
    assert TrafficBehaviour().can_relieve
    assert not TrafficBehaviour(otherwise=CpeAction.FORWARD).can_relieve
    assert TrafficBehaviour.model_validate(
        {"rules": [{"match": {"protocol": "dns"}, "action": "drop"}], "otherwise": "pass"}
    ).can_relieve
