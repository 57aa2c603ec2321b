import copy
from pathlib import Path
from typing import Any

import pytest

from edgeroam.model import HostKind, LifecycleStage
from edgeroam.sim.profiles import ConstantProfile, StepsProfile
from edgeroam.sim.scenario import (
    FlowRateEvent,
    HostDownEvent,
    ReadingEvent,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "scenarios" / "small-foundation.yaml"

BASE: dict[str, Any] = {
    "name": "tiny",
    "duration_s": 60,
    "topology": {
        "sites": [{"id": "dc", "kind": "datacenter"}, {"id": "home-1", "kind": "home"}],
        "hosts": [
            {"id": "srv", "kind": "server", "site": "dc", "capacity": {"vcpu": 8}},
            {
                "id": "cpe-1",
                "kind": "cpe",
                "site": "home-1",
                "owner": "c1",
                "capacity": {"vcpu": 1},
            },
        ],
        "links": [
            {"id": "access-1", "a": "cpe-1", "b": "dc", "capacity_mbps": 100},
            {"id": "up", "a": "dc", "b": "srv", "capacity_mbps": 1000, "kind": "uplink"},
        ],
    },
    "flavors": [{"id": "small", "vcpu": 1, "memory_mb": 256}],
    "functions": [
        {
            "name": "nat",
            "flavor": "small",
            "parameters": {"mode": {"type": "string", "choices": ["a", "b"]}},
        }
    ],
    "customers": [{"id": "c1"}],
    "instances": [{"id": "nat-1", "function": "nat", "host": "srv"}],
    "flows": [{"id": "f1", "customer": "c1", "function": "nat", "rate_mbps": 50}],
    "events": [],
}


def base() -> dict[str, Any]:
    return copy.deepcopy(BASE)


def problems_of(data: dict[str, Any], source: str = "x.yaml") -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source)
    assert info.value.source == source
    assert str(info.value).splitlines() == [f"{source}: {p}" for p in info.value.problems]
    return info.value.problems


def test_minimal_scenario_parses_with_defaults() -> None:
    s = parse_scenario(base(), "x.yaml")
    assert s.tick_s == 1.0
    assert s.stale_after_s is None
    assert s.effective_stale_after_s == 3.0
    assert s.controller.dry_run is False and s.controller.arbiter == {}
    assert s.driver.failure_rate == 0 and s.driver.seed is None
    assert s.flows[0].rate_mbps == ConstantProfile(mbps=50)
    assert s.instances[0].owner is None and s.instances[0].role == "active"


def test_pass_through_sections_are_kept_untouched() -> None:
    data = base()
    data["controller"] = {"arbiter": {"anything": [1, {"x": 2}]}}
    data["policies"] = {"overload": {"threshold": 0.8, "whatever": "ok"}}
    data["tick_s"] = 2
    data["stale_after_s"] = 10
    s = parse_scenario(data)
    assert s.controller.arbiter == {"anything": [1, {"x": 2}]}
    assert s.policies == {"overload": {"threshold": 0.8, "whatever": "ok"}}
    assert s.effective_stale_after_s == 10


def test_example_scenario_loads() -> None:
    s = load_scenario(EXAMPLE)
    assert s.duration_s == 120 and s.tick_s == 1
    hosts = {h.id: h for h in s.topology.hosts}
    cpes = [h for h in hosts.values() if h.kind is HostKind.CPE]
    assert len(cpes) == 4
    assert {h.owner for h in cpes} == {c.id for c in s.customers}
    links = {link.id: link for link in s.topology.links}
    assert links["uplink-vcpe-1"].capacity_mbps == 1000
    assert {inst.function for inst in s.instances} == {"dhcp", "nat", "firewall"}
    assert all(inst.host == "vcpe-1" and inst.owner is None for inst in s.instances)
    kinds = {type(f.rate_mbps).__name__ for f in s.flows}
    assert len(kinds) >= 4  # varied profiles
    events = s.sorted_events()
    assert [(e.action, e.t) for e in events] == [("host_down", 40), ("host_up", 80)]


def test_negative_capacity_names_file_and_location(tmp_path: Path) -> None:
    data = base()
    data["topology"]["hosts"].extend(
        [
            {"id": "s2", "kind": "server", "site": "dc", "capacity": {}},
            {"id": "s3", "kind": "server", "site": "dc", "capacity": {"vcpu": -1}},
        ]
    )
    assert problems_of(data, "scenarios/x.yaml") == [
        "topology.hosts[3].capacity.vcpu: Input should be greater than or equal to 0"
    ]


def test_each_schema_error_gets_its_own_line() -> None:
    data = base()
    data["duration_s"] = 0
    data["flows"][0]["colour"] = "red"
    del data["instances"][0]["host"]
    assert problems_of(data) == [
        "duration_s: Input should be greater than 0",
        "instances[0].host: Field required",
        "flows[0].colour: Extra inputs are not permitted",
    ]


def test_union_tags_are_not_part_of_the_location() -> None:
    data = base()
    data["events"] = [
        {"t": 1, "action": "host_down"},
        {"t": 1, "action": "explode", "host": "srv"},
        {"t": 1, "action": "link_capacity", "link": "up", "capacity_mbps": 0},
    ]
    data["flows"][0]["rate_mbps"] = {"kind": "steps", "points": [[0, 1], [0, 2]]}
    problems = problems_of(data)
    assert problems[0].startswith("flows[0].rate_mbps.points: points must be sorted")
    assert problems[1] == "events[0].host: Field required"
    assert problems[2].startswith("events[1]: Input tag 'explode' found using 'action'")
    assert problems[3] == "events[2].capacity_mbps: Input should be greater than 0"
    assert len(problems) == 4


def test_bad_bare_number_profile_points_at_the_field_as_written() -> None:
    data = base()
    data["flows"][0]["rate_mbps"] = -5
    assert problems_of(data) == ["flows[0].rate_mbps: Input should be greater than or equal to 0"]
    data["flows"][0]["rate_mbps"] = {"kind": "constant", "mbps": -5}
    assert problems_of(data) == [
        "flows[0].rate_mbps.mbps: Input should be greater than or equal to 0"
    ]


def test_model_rule_errors_drop_the_value_error_prefix() -> None:
    data = base()
    del data["topology"]["hosts"][1]["owner"]
    assert problems_of(data) == ["topology.hosts[1]: host 'cpe-1': a CPE needs an owner customer"]


def test_driver_failure_rate_is_a_probability() -> None:
    data = base()
    data["driver"] = {"failure_rate": 1.5}
    assert problems_of(data) == ["driver.failure_rate: Input should be less than or equal to 1"]


def test_document_must_be_a_mapping() -> None:
    assert problems_of([1, 2]) == ["the document must be a mapping, not list"]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["topology"]["hosts"].append(copy.deepcopy(d["topology"]["hosts"][0])),
            "topology.hosts[2].id: duplicate id 'srv'",
        ),
        (
            lambda d: d["flows"].append(copy.deepcopy(d["flows"][0])),
            "flows[1].id: duplicate id 'f1'",
        ),
        (
            lambda d: d["functions"].append(copy.deepcopy(d["functions"][0])),
            "functions[1].name: duplicate name 'nat'",
        ),
        (
            lambda d: d["topology"]["hosts"][0].update(site="nowhere"),
            "topology.hosts[0].site: unknown site 'nowhere'",
        ),
        (
            lambda d: d["topology"]["hosts"].append(
                {"id": "home-1", "kind": "server", "site": "dc", "capacity": {}}
            ),
            "topology.hosts[2].id: 'home-1' is also a site id; nodes must be unique",
        ),
        (
            lambda d: d["topology"]["links"][1].update(b="ghost"),
            "topology.links[1].b: 'ghost' is neither a host nor a site",
        ),
        (
            lambda d: d["functions"][0].update(flavor="huge"),
            "functions[0].flavor: unknown flavor 'huge'",
        ),
        (
            lambda d: d["instances"][0].update(function="dns"),
            "instances[0].function: unknown function 'dns'",
        ),
        (
            lambda d: d["instances"][0].update(host="srv-9"),
            "instances[0].host: unknown host 'srv-9'",
        ),
        (
            lambda d: d["instances"][0].update(owner="c9"),
            "instances[0].owner: unknown customer 'c9'",
        ),
        (
            lambda d: d["instances"][0].update(params={"mode": "z"}),
            "instances[0].params: parameter 'mode': 'z' is not one of ['a', 'b']",
        ),
        (
            lambda d: d["flows"][0].update(customer="c9"),
            "flows[0].customer: unknown customer 'c9'",
        ),
        (
            lambda d: d["flows"][0].update(function="dns"),
            "flows[0].function: unknown function 'dns'",
        ),
        (
            lambda d: d["events"].append({"t": 61, "action": "host_up", "host": "srv"}),
            "events[0].t: 61.0 is after the end of the run (60.0 s)",
        ),
        (
            lambda d: d["events"].append({"t": 5, "action": "host_down", "host": "h9"}),
            "events[0].host: unknown host 'h9'",
        ),
        (
            lambda d: d["events"].append(
                {"t": 5, "action": "link_capacity", "link": "l9", "capacity_mbps": 5}
            ),
            "events[0].link: unknown link 'l9'",
        ),
        (
            lambda d: d["events"].append(
                {"t": 5, "action": "flow_rate", "flow": "f9", "rate_mbps": 1}
            ),
            "events[0].flow: unknown flow 'f9'",
        ),
        (
            lambda d: d["events"].append(
                {"t": 5, "action": "reading", "source": "host:h9", "metric": "cpu", "value": 1}
            ),
            "events[0].source: unknown host 'h9'",
        ),
    ],
)
def test_cross_reference_problems_are_located(mutate: Any, expected: str) -> None:
    data = base()
    mutate(data)
    assert problems_of(data) == [expected]


def test_flow_customer_needs_a_cpe() -> None:
    data = base()
    data["customers"].append({"id": "c2"})
    data["flows"][0]["customer"] = "c2"
    [problem] = problems_of(data)
    assert problem.startswith("flows[0].customer: customer 'c2' has no CPE")


def test_cpe_owner_must_be_a_customer() -> None:
    data = base()
    data["topology"]["hosts"][1]["owner"] = "c9"
    data["flows"] = []
    assert problems_of(data) == ["topology.hosts[1].owner: unknown customer 'c9'"]


def test_all_cross_reference_problems_are_reported_together() -> None:
    data = base()
    data["instances"][0]["host"] = "nope"
    data["flows"][0]["function"] = "nope"
    assert problems_of(data) == [
        "instances[0].host: unknown host 'nope'",
        "flows[0].function: unknown function 'nope'",
    ]


def test_reading_event_is_checked_like_a_reading() -> None:
    data = base()
    data["events"] = [
        {"t": 1, "action": "reading", "source": "host:srv", "metric": "CPU", "value": 1}
    ]
    [problem] = problems_of(data)
    assert problem.startswith("events[0]: metric: String should match pattern")
    data["events"][0]["metric"] = "cpu.used_pct"
    event = parse_scenario(data).events[0]
    assert isinstance(event, ReadingEvent)
    reading = event.to_reading()
    assert (reading.source, reading.metric, reading.value, reading.timestamp) == (
        "host:srv",
        "cpu.used_pct",
        1.0,
        1.0,
    )


def test_sorted_events_is_stable() -> None:
    data = base()
    data["events"] = [
        {"t": 30, "action": "host_up", "host": "srv"},
        {"t": 10, "action": "host_down", "host": "srv"},
        {
            "t": 30,
            "action": "flow_rate",
            "flow": "f1",
            "rate_mbps": {"kind": "steps", "points": [[0, 1]]},
        },
        {"t": 10, "action": "link_capacity", "link": "up", "capacity_mbps": 10},
    ]
    s = parse_scenario(data)
    assert [(e.t, e.action) for e in s.sorted_events()] == [
        (10, "host_down"),
        (10, "link_capacity"),
        (30, "host_up"),
        (30, "flow_rate"),
    ]
    assert isinstance(s.events[1], HostDownEvent)
    flow_rate = s.events[2]
    assert isinstance(flow_rate, FlowRateEvent)
    assert isinstance(flow_rate.rate_mbps, StepsProfile)


def test_instance_seed_becomes_an_instance() -> None:
    s = parse_scenario(base())
    inst = s.instances[0].to_instance(LifecycleStage.MONITORING, at=0.0)
    assert (inst.id, inst.function, inst.host, inst.stage) == ("nat-1", "nat", "srv", "monitoring")


def test_scenario_is_frozen() -> None:
    s = parse_scenario(base())
    with pytest.raises(ValueError, match="frozen"):
        s.name = "other"  # type: ignore[misc]
    assert isinstance(s, Scenario)


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nduration_s: [1, 2\ntick_s: 1\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    message = str(info.value)
    assert message.startswith(f"{path}: line ")
    assert "column" in message


def test_yaml_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("name: x\nduration_s: 10\nname: y\n")
    with pytest.raises(ScenarioError, match=r"line 3, column 1: .*duplicate key 'name'"):
        load_scenario(path)


def test_missing_file_is_a_scenario_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ScenarioError, match=r"absent\.yaml: cannot read the file"):
        load_scenario(path)


def test_load_reports_the_path_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text("name: x\nduration_s: 10\ntopology: {hosts: [{id: h, kind: server}]}\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert str(info.value).splitlines() == [
        f"{path}: topology.hosts[0].site: Field required",
        f"{path}: topology.hosts[0].capacity: Field required",
    ]
