import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeroam.model import (
    Host,
    HostKind,
    HostState,
    Instance,
    LifecycleStage,
    Link,
    Resources,
    Role,
)
from edgeroam.sim.profiles import ConstantProfile, parse_profile
from edgeroam.sim.scenario import Flow
from edgeroam.sim.traffic import (
    Router,
    TrafficModel,
    compute_traffic,
    function_metric,
    metric_part,
    sample_to_readings,
)

CAP = Resources(vcpu=4, memory_mb=4096)


def cpe(n: int, state: HostState = HostState.READY) -> Host:
    return Host(
        id=f"cpe-{n}",
        kind=HostKind.CPE,
        site=f"home-{n}",
        owner=f"c{n}",
        capacity=CAP,
        state=state,
    )


def server(host_id: str, site: str = "dc", state: HostState = HostState.READY) -> Host:
    return Host(id=host_id, kind=HostKind.SERVER, site=site, capacity=CAP, state=state)


def link(link_id: str, a: str, b: str, capacity: float = 100.0) -> Link:
    return Link(id=link_id, a=a, b=b, capacity_mbps=capacity)


def inst(
    inst_id: str,
    host: str,
    function: str = "nat",
    owner: str | None = None,
    stage: LifecycleStage = LifecycleStage.MONITORING,
    role: Role = Role.ACTIVE,
) -> Instance:
    return Instance(id=inst_id, function=function, owner=owner, host=host, stage=stage, role=role)


def flow(flow_id: str, customer: str, mbps: float, function: str = "nat") -> Flow:
    return Flow(
        id=flow_id, customer=customer, function=function, rate_mbps=ConstantProfile(mbps=mbps)
    )


# cpe-1 --access-1-- dc --up-- srv
# cpe-2 --access-2-- dc --core-- cloud --cloud-up-- cloud-1
HOSTS = [
    cpe(1),
    cpe(2),
    server("srv"),
    Host(id="cloud-1", kind=HostKind.CLOUD, site="cloud", capacity=CAP),
]
LINKS = [
    link("access-1", "cpe-1", "dc", 100),
    link("access-2", "cpe-2", "dc", 50),
    link("up", "dc", "srv", 1000),
    link("core", "dc", "cloud", 10_000),
    link("cloud-up", "cloud", "cloud-1", 10_000),
]


def test_flow_loads_exactly_the_links_from_cpe_through_site_to_server() -> None:
    sample = compute_traffic(HOSTS, LINKS, [inst("nat-1", "srv")], [flow("f1", "c1", 30)], t=0)
    assert sample.link_used_mbps == {
        "access-1": 30.0,
        "access-2": 0.0,
        "up": 30.0,
        "core": 0.0,
        "cloud-up": 0.0,
    }
    assert sample.instance_processed_mbps == {"nat-1": 30.0}
    assert sample.host_processed_mbps == {"cpe-1": 0, "cpe-2": 0, "srv": 30.0, "cloud-1": 0}
    assert sample.function_used_mbps == {("access-1", "nat"): 30.0, ("up", "nat"): 30.0}
    assert sample.cpe_function_mbps == {("cpe-1", "nat"): 30.0}
    assert sample.unserved_mbps == {}
    assert sample.flow_rates == {"f1": 30.0}
    assert sample.served_by == {"f1": "nat-1"}


def test_rates_of_several_flows_add_up_per_link_and_function() -> None:
    flows = [
        flow("f1", "c1", 30),
        flow("f2", "c2", 20),
        flow("f3", "c2", 5, function="dhcp"),
        flow("f4", "c1", 1, function="dhcp"),
    ]
    instances = [inst("nat-1", "srv"), inst("dhcp-1", "cloud-1", function="dhcp")]
    sample = compute_traffic(HOSTS, LINKS, instances, flows, t=0)
    assert sample.link_used_mbps["access-1"] == 30 + 1
    assert sample.link_used_mbps["access-2"] == 20 + 5
    assert sample.link_used_mbps["up"] == 30 + 20
    assert sample.link_used_mbps["core"] == 5 + 1
    assert sample.link_used_mbps["cloud-up"] == 5 + 1
    assert sample.function_used_mbps[("access-2", "dhcp")] == 5
    assert sample.function_used_mbps[("core", "dhcp")] == 6
    assert ("core", "nat") not in sample.function_used_mbps
    assert sample.instance_processed_mbps == {"nat-1": 50, "dhcp-1": 6}
    assert sample.host_processed_mbps["cloud-1"] == 6


def test_own_instance_is_preferred_over_a_shared_one() -> None:
    instances = [inst("nat-shared", "srv"), inst("nat-c1", "cloud-1", owner="c1")]
    sample = compute_traffic(
        HOSTS, LINKS, instances, [flow("f1", "c1", 10), flow("f2", "c2", 7)], t=0
    )
    assert sample.served_by == {"f1": "nat-c1", "f2": "nat-shared"}
    assert sample.link_used_mbps["core"] == 10
    assert sample.link_used_mbps["up"] == 7


def test_shared_choice_is_the_lowest_id_and_others_customers_instances_are_ignored() -> None:
    instances = [inst("nat-b", "srv"), inst("nat-a", "cloud-1"), inst("nat-c2", "srv", owner="c2")]
    sample = compute_traffic(HOSTS, LINKS, instances, [flow("f1", "c1", 10)], t=0)
    assert sample.served_by == {"f1": "nat-a"}
    assert sample.instance_processed_mbps == {"nat-b": 0, "nat-a": 10, "nat-c2": 0}


@pytest.mark.parametrize(
    "not_serving",
    [
        inst("nat-c1", "cloud-1", owner="c1", stage=LifecycleStage.DEPLOYMENT),
        inst("nat-c1", "cloud-1", owner="c1", stage=LifecycleStage.FAIL),
        inst("nat-c1", "cloud-1", owner="c1", role=Role.STANDBY),
        inst("nat-c1", "cloud-1", owner="c1", function="dhcp"),
    ],
)
def test_only_active_serving_instances_of_the_function_serve(not_serving: Instance) -> None:
    sample = compute_traffic(
        HOSTS, LINKS, [not_serving, inst("nat-shared", "srv")], [flow("f1", "c1", 10)], t=0
    )
    assert sample.served_by == {"f1": "nat-shared"}
    assert sample.link_used_mbps["core"] == 0


def test_instance_on_the_cpe_itself_loads_no_link() -> None:
    sample = compute_traffic(
        HOSTS, LINKS, [inst("nat-c1", "cpe-1", owner="c1")], [flow("f1", "c1", 40)], t=0
    )
    assert all(v == 0 for v in sample.link_used_mbps.values())
    assert sample.function_used_mbps == {}
    assert sample.instance_processed_mbps == {"nat-c1": 40}
    assert sample.host_processed_mbps["cpe-1"] == 40
    assert sample.cpe_function_mbps == {("cpe-1", "nat"): 40}


@pytest.mark.parametrize("state", [HostState.DOWN, HostState.OFF])
def test_instance_on_a_down_host_serves_nothing(state: HostState) -> None:
    hosts = [cpe(1), cpe(2), server("srv", state=state)]
    sample = compute_traffic(hosts, LINKS, [inst("nat-1", "srv")], [flow("f1", "c1", 25)], t=0)
    assert sample.unserved_mbps == {"f1": 25}
    assert sample.total_unserved_mbps == 25
    assert all(v == 0 for v in sample.link_used_mbps.values())
    assert sample.instance_processed_mbps == {"nat-1": 0}
    assert sample.cpe_function_mbps == {("cpe-1", "nat"): 25}  # the CPE still sends it
    assert sample.served_by == {}


def test_flow_falls_back_to_a_host_that_is_up() -> None:
    hosts = [cpe(1), cpe(2), server("srv", state=HostState.DOWN), HOSTS[3]]
    instances = [inst("nat-a", "srv"), inst("nat-b", "cloud-1")]
    sample = compute_traffic(hosts, LINKS, instances, [flow("f1", "c1", 25)], t=0)
    assert sample.served_by == {"f1": "nat-b"}
    assert sample.link_used_mbps["core"] == 25


def test_flow_of_a_down_cpe_is_unserved_and_sends_nothing() -> None:
    hosts = [cpe(1, state=HostState.DOWN), cpe(2), server("srv")]
    sample = compute_traffic(hosts, LINKS, [inst("nat-1", "srv")], [flow("f1", "c1", 25)], t=0)
    assert sample.unserved_mbps == {"f1": 25}
    assert sample.cpe_function_mbps == {}
    assert sample.link_used_mbps["access-1"] == 0


def test_missing_instance_or_unreachable_host_means_unserved() -> None:
    sample = compute_traffic(HOSTS, LINKS, [], [flow("f1", "c1", 3)], t=0)
    assert sample.unserved_mbps == {"f1": 3}
    island = server("island", site="nowhere")
    sample = compute_traffic(
        [*HOSTS, island], LINKS, [inst("nat-1", "island")], [flow("f1", "c1", 3)], t=0
    )
    assert sample.unserved_mbps == {"f1": 3}
    assert sample.cpe_function_mbps == {("cpe-1", "nat"): 3}


def test_equal_length_paths_tie_break_on_the_smallest_node_id() -> None:
    # cpe-1 reaches srv over two sites of equal hop count; "site-a" < "site-b".
    links = [
        link("l-b1", "cpe-1", "site-b"),
        link("l-a1", "cpe-1", "site-a"),
        link("l-b2", "site-b", "srv"),
        link("l-a2", "site-a", "srv"),
    ]
    for order in (links, list(reversed(links))):
        sample = compute_traffic(HOSTS, order, [inst("nat-1", "srv")], [flow("f", "c1", 9)], t=0)
        assert sample.link_used_mbps == {"l-a1": 9, "l-a2": 9, "l-b1": 0, "l-b2": 0}


def test_down_host_is_not_used_for_transit() -> None:
    # Short way through relay host (2 hops), long way through two sites (3 hops).
    hosts = [*HOSTS, server("relay", state=HostState.DOWN)]
    links = [
        link("r1", "cpe-1", "relay"),
        link("r2", "relay", "srv"),
        link("s1", "cpe-1", "x1"),
        link("s2", "x1", "x2"),
        link("s3", "x2", "srv"),
    ]
    sample = compute_traffic(hosts, links, [inst("nat-1", "srv")], [flow("f", "c1", 4)], t=0)
    assert sample.link_used_mbps == {"r1": 0, "r2": 0, "s1": 4, "s2": 4, "s3": 4}
    hosts[-1] = server("relay")
    sample = compute_traffic(hosts, links, [inst("nat-1", "srv")], [flow("f", "c1", 4)], t=0)
    assert sample.link_used_mbps == {"r1": 4, "r2": 4, "s1": 0, "s2": 0, "s3": 0}


def test_router_routes_and_caches() -> None:
    router = Router(LINKS)
    assert router.route("cpe-1", "srv") == ("access-1", "up")
    assert router.route("srv", "cpe-1") == ("up", "access-1")
    assert router.route("cpe-2", "cloud-1") == ("access-2", "core", "cloud-up")
    assert router.route("srv", "srv") == ()
    assert router.route("cpe-1", "elsewhere") is None
    assert router.route("elsewhere", "srv") is None
    # Blocked nodes carry no transit and are no destination.
    assert router.route("cpe-1", "cloud-1", frozenset({"cloud"})) is None
    assert router.route("cpe-1", "srv", frozenset({"srv"})) is None
    assert router.route("cpe-1", "srv", frozenset({"cloud"})) == ("access-1", "up")
    assert router.route("cpe-1", "cloud-1") == ("access-1", "core", "cloud-up")
    assert router.nodes == {"cpe-1", "cpe-2", "dc", "srv", "cloud", "cloud-1"}


def test_router_matches_on_wiring_not_capacity() -> None:
    router = Router(LINKS)
    resized = [LINKS[0].model_copy(update={"capacity_mbps": 5}), *LINKS[1:]]
    assert router.matches(list(reversed(resized)))
    assert not router.matches(LINKS[:-1])
    assert not router.matches([LINKS[0].model_copy(update={"b": "srv"}), *LINKS[1:]])


def test_traffic_model_keeps_its_router_until_the_wiring_changes() -> None:
    model = TrafficModel()
    assert model.router is None
    args = (HOSTS, LINKS, [inst("nat-1", "srv")], [flow("f1", "c1", 30)])
    model.sample(*args, t=0)
    first = model.router
    model.sample(*args, t=1)
    assert model.router is first
    links = [*LINKS, link("extra", "cpe-1", "srv")]
    sample = model.sample(HOSTS, links, args[2], args[3], t=2)
    assert model.router is not first
    assert sample.link_used_mbps["extra"] == 30 and sample.link_used_mbps["up"] == 0


def test_noisy_rates_come_from_the_generator_in_flow_order() -> None:
    flows = [
        Flow(
            id="f1",
            customer="c1",
            function="nat",
            rate_mbps=parse_profile({"kind": "constant", "mbps": 100, "noise_pct": 10}),
        ),
        Flow(
            id="f2",
            customer="c2",
            function="nat",
            rate_mbps=parse_profile({"kind": "constant", "mbps": 50, "noise_pct": 20}),
        ),
    ]
    z1, z2 = np.random.default_rng(5).standard_normal(2)
    sample = compute_traffic(HOSTS, LINKS, [inst("n", "srv")], flows, 0, np.random.default_rng(5))
    assert sample.flow_rates["f1"] == pytest.approx(100 * (1 + 0.1 * z1))
    assert sample.flow_rates["f2"] == pytest.approx(50 * (1 + 0.2 * z2))
    assert sample.link_used_mbps["up"] == pytest.approx(
        sample.flow_rates["f1"] + sample.flow_rates["f2"]
    )


def test_rates_follow_the_time() -> None:
    steps = parse_profile({"kind": "steps", "points": [[10, 8]]})
    f = Flow(id="f", customer="c1", function="nat", rate_mbps=steps)
    assert compute_traffic(HOSTS, LINKS, [inst("n", "srv")], [f], t=9).link_used_mbps["up"] == 0
    assert compute_traffic(HOSTS, LINKS, [inst("n", "srv")], [f], t=10).link_used_mbps["up"] == 8


@settings(max_examples=50, deadline=None)
@given(rates=st.lists(st.floats(0, 1e4, allow_nan=False), min_size=1, max_size=20))
def test_star_topology_conserves_traffic(rates: list[float]) -> None:
    n = len(rates)
    hosts = [*(cpe(i) for i in range(n)), server("srv")]
    links = [*(link(f"a{i}", f"cpe-{i}", "dc") for i in range(n)), link("up", "dc", "srv")]
    flows = [flow(f"f{i}", f"c{i}", r) for i, r in enumerate(rates)]
    sample = compute_traffic(hosts, links, [inst("nat-1", "srv")], flows, t=0)
    for i, r in enumerate(rates):
        assert sample.link_used_mbps[f"a{i}"] == r
    assert sample.link_used_mbps["up"] == pytest.approx(sum(rates))
    assert sample.instance_processed_mbps["nat-1"] == pytest.approx(sum(rates))


def test_readings_report_use_and_ratio_per_link_instance_and_host() -> None:
    flows = [flow("f1", "c1", 30), flow("f2", "c1", 10, function="Web-Filter.v2")]
    instances = [inst("nat-1", "srv"), inst("wf-1", "srv", function="Web-Filter.v2")]
    sample = compute_traffic(HOSTS, LINKS, instances, flows, t=7)
    readings = sample_to_readings(sample, LINKS, t=7)
    values = {(r.source, r.metric): r.value for r in readings}
    assert all(r.timestamp == 7 for r in readings)
    assert values[("link:access-1", "used_mbps")] == 40
    assert values[("link:access-1", "use_ratio")] == pytest.approx(40 / 100)
    assert values[("link:up", "use_ratio")] == pytest.approx(40 / 1000)
    assert values[("link:access-2", "used_mbps")] == 0
    assert values[("link:access-2", "use_ratio")] == 0
    assert values[("link:access-1", "function.nat.used_mbps")] == 30
    assert values[("link:up", "function.web_filter_v2.used_mbps")] == 10
    assert ("link:core", "function.nat.used_mbps") not in values  # idle: not reported
    assert values[("instance:nat-1", "processed_mbps")] == 30
    assert values[("instance:wf-1", "processed_mbps")] == 10
    assert values[("host:srv", "processed_mbps")] == 40
    assert values[("host:cpe-2", "processed_mbps")] == 0
    assert len(readings) == len(values)


def test_use_ratio_is_not_clipped_above_one() -> None:
    sample = compute_traffic(HOSTS, LINKS, [inst("nat-1", "srv")], [flow("f", "c2", 75)], t=0)
    readings = sample_to_readings(sample, LINKS, t=0)
    ratio = next(r for r in readings if r.source == "link:access-2" and r.metric == "use_ratio")
    assert ratio.value == pytest.approx(75 / 50)


def test_metric_names_are_sanitised() -> None:
    assert metric_part("NAT") == "nat"
    assert metric_part("web-filter.v2:x") == "web_filter_v2_x"
    assert function_metric("9lives") == "function.9lives.used_mbps"


def test_functions_with_the_same_metric_name_are_added_up() -> None:
    flows = [flow("f1", "c1", 3, function="a-b"), flow("f2", "c1", 4, function="a_b")]
    instances = [inst("i1", "srv", function="a-b"), inst("i2", "srv", function="a_b")]
    sample = compute_traffic(HOSTS, LINKS, instances, flows, t=0)
    readings = sample_to_readings(sample, LINKS, t=0)
    matching = [
        r for r in readings if r.source == "link:up" and r.metric == "function.a_b.used_mbps"
    ]
    assert [r.value for r in matching] == [7]


def test_thousand_cpes_three_functions_at_scale() -> None:
    """Every flow is served and the shared uplink carries exactly the sum of all rates."""
    n = 1000
    functions = ("dhcp", "nat", "firewall")
    hosts = [*(cpe(i) for i in range(n)), server("vcpe-1")]
    links = [*(link(f"access-{i}", f"cpe-{i}", "dc") for i in range(n))]
    links.append(link("up", "dc", "vcpe-1", 100_000))
    instances = [inst(f"{f}-1", "vcpe-1", function=f) for f in functions]
    flows = [
        Flow(
            id=f"f{i}-{f}",
            customer=f"c{i}",
            function=f,
            rate_mbps=parse_profile(
                {"kind": "diurnal", "base": 10, "amplitude": 5, "noise_pct": 5}
            ),
        )
        for i in range(n)
        for f in functions
    ]
    model = TrafficModel()
    rng = np.random.default_rng(0)
    model.sample(hosts, links, instances, flows, 0.0, rng)  # warm the route cache
    for tick in range(1, 4):
        sample = model.sample(hosts, links, instances, flows, float(tick), rng)
        assert len(sample.flow_rates) == 3 * n
        assert sample.unserved_mbps == {}
        assert sample.link_used_mbps["up"] == pytest.approx(sum(sample.flow_rates.values()))
        for i in (0, n // 2, n - 1):
            own = sum(sample.flow_rates[f"f{i}-{f}"] for f in functions)
            assert sample.link_used_mbps[f"access-{i}"] == pytest.approx(own)
