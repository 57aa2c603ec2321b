"""What a copy on the sending CPE does to its function's flows (answer, drop, forward, pass)."""

from __future__ import annotations

from typing import Any

from edgeroam.model import (
    CpeAction,
    FunctionSpec,
    Host,
    HostKind,
    Instance,
    LifecycleStage,
    Link,
    ParameterSpec,
    Resources,
    TrafficBehaviour,
)
from edgeroam.sim.profiles import ConstantProfile
from edgeroam.sim.scenario import Flow
from edgeroam.sim.traffic import compute_traffic

CAP = Resources(vcpu=4, memory_mb=4096)
HOSTS = [
    Host(id="cpe-1", kind=HostKind.CPE, site="home-1", owner="c1", capacity=CAP),
    Host(id="srv", kind=HostKind.SERVER, site="dc", capacity=CAP),
]
LINKS = [
    Link(id="access-1", a="cpe-1", b="dc", capacity_mbps=1000),
    Link(id="up", a="dc", b="srv", capacity_mbps=1000),
]


def inst(inst_id: str, host: str, owner: str | None = None, **params: Any) -> Instance:
    return Instance(
        id=inst_id,
        function="fn",
        owner=owner,
        host=host,
        params=params,
        stage=LifecycleStage.MONITORING,
    )


def flow(
    flow_id: str, mbps: float, destination: str | None = None, protocol: str | None = None
) -> Flow:
    return Flow(
        id=flow_id,
        customer="c1",
        function="fn",
        rate_mbps=ConstantProfile(mbps=mbps),
        destination=destination,
        protocol=protocol,
    )


def spec(behaviour: dict[str, Any]) -> dict[str, FunctionSpec]:
    return {
        "fn": FunctionSpec(
            name="fn",
            flavor="small",
            parameters={"destination": ParameterSpec(type="ipv4"), "protocol": ParameterSpec()},
            traffic=TrafficBehaviour.model_validate(behaviour),
        )
    }


SERVER = inst("fn-shared", "srv")
LOCAL = inst("fn-cpe", "cpe-1", owner="c1", destination="50.1.1.1", protocol="icmp-echo")
FILTER = spec(
    {
        "rules": [
            {"match": {"destination": "$destination", "protocol": "$protocol"}, "action": "drop"}
        ],
        "otherwise": "pass",
    }
)


def test_the_filter_drops_matching_flows_on_the_cpe_and_passes_the_rest_to_the_server() -> None:
    flows = [flow("ping", 900, "50.1.1.1", "icmp-echo"), flow("web", 40, "192.0.2.1", "tcp")]
    sample = compute_traffic(HOSTS, LINKS, [SERVER, LOCAL], flows, t=0, functions=FILTER)
    assert sample.handled_on_cpe == {"ping": ("fn-cpe", CpeAction.DROP)}
    assert sample.served_by == {"ping": "fn-cpe", "web": "fn-shared"}
    assert sample.instance_processed_mbps == {"fn-shared": 40, "fn-cpe": 900}
    assert sample.link_used_mbps == {"access-1": 40, "up": 40}
    assert sample.cpe_function_mbps == {("cpe-1", "fn"): 940}


def test_a_flow_only_half_matching_the_filter_is_not_dropped() -> None:
    flows = [flow("other-proto", 30, "50.1.1.1", "udp")]
    sample = compute_traffic(HOSTS, LINKS, [SERVER, LOCAL], flows, t=0, functions=FILTER)
    assert sample.handled_on_cpe == {}
    assert sample.served_by == {"other-proto": "fn-shared"}


def test_a_filter_started_without_its_parameters_filters_nothing() -> None:
    bare = inst("fn-cpe", "cpe-1", owner="c1")
    flows = [flow("ping", 900, "50.1.1.1", "icmp-echo")]
    sample = compute_traffic(HOSTS, LINKS, [SERVER, bare], flows, t=0, functions=FILTER)
    assert sample.served_by == {"ping": "fn-shared"}
    assert sample.link_used_mbps["up"] == 900


def test_forwarded_flows_keep_loading_the_links_but_no_server_copy_processes_them() -> None:
    forward = spec({"otherwise": "forward"})
    sample = compute_traffic(HOSTS, LINKS, [SERVER, LOCAL], [flow("f", 70)], t=0, functions=forward)
    assert sample.handled_on_cpe == {"f": ("fn-cpe", CpeAction.FORWARD)}
    assert sample.transit_to == {"f": "srv"}
    assert sample.link_used_mbps == {"access-1": 70, "up": 70}
    assert sample.instance_processed_mbps == {"fn-shared": 0, "fn-cpe": 70}
    assert sample.unserved_mbps == {}


def test_forwarded_flows_with_nowhere_to_go_leave_at_the_cpe_site() -> None:
    forward = spec({"otherwise": "forward"})
    sample = compute_traffic(HOSTS, LINKS, [LOCAL], [flow("f", 70)], t=0, functions=forward)
    assert sample.transit_to == {}
    assert sample.link_used_mbps == {"access-1": 0, "up": 0}
    assert sample.unserved_mbps == {}


def test_passed_flows_without_a_server_copy_are_unserved() -> None:
    passing = spec({"otherwise": "pass"})
    sample = compute_traffic(HOSTS, LINKS, [LOCAL], [flow("f", 70)], t=0, functions=passing)
    assert sample.unserved_mbps == {"f": 70}
    assert sample.instance_processed_mbps == {"fn-cpe": 0}


def test_the_copy_on_the_own_cpe_serves_before_an_owned_copy_with_a_smaller_id() -> None:
    owned_server = inst("a-owned", "srv", owner="c1")
    local = inst("z-local", "cpe-1", owner="c1")
    sample = compute_traffic(HOSTS, LINKS, [owned_server, local], [flow("f", 10)], t=0)
    assert sample.served_by == {"f": "z-local"}
    assert sample.link_used_mbps["up"] == 0


def test_without_function_rules_a_cpe_copy_answers_everything() -> None:
    flows = [flow("ping", 900, "50.1.1.1", "icmp-echo"), flow("web", 40)]
    sample = compute_traffic(HOSTS, LINKS, [SERVER, LOCAL], flows, t=0)
    assert sample.handled_on_cpe == {}
    assert sample.served_by == {"ping": "fn-cpe", "web": "fn-cpe"}
    assert sample.link_used_mbps == {"access-1": 0, "up": 0}
