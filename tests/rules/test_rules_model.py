"""Rules files: what is accepted, and precise errors for what is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeroam.rules import RulesError, load_rules, parse_rules
from edgeroam.rules.model import AllOf, MetricCondition, Not, OperationCondition


def rule(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "name": "r",
        "when": {"metric": "load", "source": "group:fw", "op": ">", "value": 0.9},
        "actions": [{"do": "notify", "message": "hot"}],
    }
    return {**base, **over}


def problems(data: object) -> list[str]:
    with pytest.raises(RulesError) as info:
        parse_rules(data, "rules.yaml")
    return info.value.problems


def test_a_full_rule_parses_with_default_ids_and_nested_conditions() -> None:
    ruleset = parse_rules(
        {
            "rules": [
                rule(
                    when={
                        "all": [
                            {"metric": "load", "source": "group:fw", "value": 0.9},
                            {"not": {"operation": "scale-out", "group": "fw", "within_s": 600}},
                        ]
                    },
                    actions=[
                        {"do": "scale", "group": "fw", "direction": "out", "count": 2},
                        {"id": "tell", "do": "notify", "message": "grown", "delay_s": 60},
                        {"do": "custom", "exec": ["/bin/true"], "after": ["tell"]},
                    ],
                )
            ]
        }
    )
    (r,) = ruleset.rules
    assert [a.id for a in r.actions] == ["a1", "tell", "a3"]
    assert isinstance(r.when, AllOf)
    first, second = r.when.all
    assert isinstance(first, MetricCondition) and isinstance(second, Not)
    assert isinstance(second.not_, OperationCondition)
    assert r.dependencies(0) == () and r.dependencies(1) == ("a1",)
    assert r.dependencies(2) == ("tell",)


def test_parallel_actions_wait_only_for_their_triggers() -> None:
    (r,) = parse_rules(
        [
            rule(
                mode="parallel",
                actions=[
                    {"do": "notify", "message": "a"},
                    {"do": "notify", "message": "b", "after": ["a1"]},
                    {"do": "notify", "message": "c"},
                ],
            )
        ]
    ).rules
    assert [r.dependencies(i) for i in range(3)] == [(), ("a1",), ()]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"when": {"metric": "load", "source": "group:fw", "op": "=>", "value": 1}},
            "rules[0].when.op: Input should be '>', '>=', '<', '<=', '==' or '!='",
        ),
        ({"when": {"bogus": 1}}, "rules[0].when: a condition needs one of the keys"),
        (
            {"actions": [{"do": "scale", "group": "fw"}]},
            "rules[0].actions[0]: a scale action needs direction",
        ),
        (
            {"actions": [{"do": "heal", "instance": "x", "message": "m"}]},
            "rules[0].actions[0]: a heal action does not take message",
        ),
        (
            {"actions": [{"do": "custom"}]},
            "rules[0].actions[0]: a custom action needs exactly one of exec or entry_point",
        ),
        (
            {"actions": [{"do": "notify", "message": "m", "after": ["zz"]}]},
            "rules[0].actions[0].after[0]: unknown action id 'zz'",
        ),
        (
            {
                "actions": [
                    {"id": "x", "do": "notify", "message": "m"},
                    {"id": "x", "do": "notify", "message": "n"},
                ]
            },
            "rules[0].actions[1].id: duplicate action id 'x'",
        ),
        (
            {
                "mode": "parallel",
                "actions": [
                    {"id": "a", "do": "notify", "message": "m", "after": ["b"]},
                    {"id": "b", "do": "notify", "message": "n", "after": ["a"]},
                ],
            },
            "rules[0].actions: the `after` triggers form a loop: a → b → a",
        ),
        ({"actions": []}, "rules[0].actions: Tuple should have at least 1 item"),
        ({"occurrences": 0}, "rules[0].occurrences: Input should be greater than or equal to 1"),
    ],
)
def test_each_problem_names_its_place(change: dict[str, object], expected: str) -> None:
    found = problems({"rules": [rule(**change)]})
    assert any(p.startswith(expected) for p in found), found


def test_rule_names_are_unique() -> None:
    assert problems([rule(), rule()]) == ["rules[1].name: duplicate rule name 'r'"]


def test_files_report_yaml_and_io_problems(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    with pytest.raises(RulesError, match=r"broken\.yaml: line \d+, column \d+"):
        load_rules(broken)
    with pytest.raises(RulesError, match="cannot read the file"):
        load_rules(tmp_path / "missing.yaml")
    good = tmp_path / "good.yaml"
    good.write_text(
        "rules:\n  - name: r\n    when: {host: edge-a, state: down}\n"
        "    actions: [{do: notify, message: edge-a down}]\n"
    )
    assert [r.name for r in load_rules(good).rules] == ["r"]
