"""A controller on the vRGW-aware simulation driver, with virtualization nodes and subscribers."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeroam.arbiter import ArbiterConfig
from edgeroam.controller import Controller
from edgeroam.gateways.simdriver import GatewaySimDriver
from edgeroam.gateways.template import vrgw_flavor, vrgw_function
from edgeroam.model import Customer, Host, HostKind, Instance, Resources, Site, SiteKind
from edgeroam.policies.registry import default_registry


@dataclass
class VrgwWorld:
    controller: Controller
    driver: GatewaySimDriver
    now: float = 0.0
    ticks: list[float] = field(default_factory=list)

    def run(self, seconds: float, step: float = 0.01) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + step, 6)
            self.controller.tick(self.now)

    def subscribe(self, customer: str, profile: str = "average", access_node: str = "an1") -> None:
        labels = {"vrgw": "true", "access-node": access_node}
        self.controller.put(
            "customer", Customer(id=customer, profile=profile, labels=labels), self.now
        )

    def vrgw(self, customer: str) -> Instance | None:
        return next(
            (i for i in self.controller.inventory.instances.values() if i.owner == customer),
            None,
        )

    def pooled(self, node: str) -> list[Instance]:
        return [
            i
            for i in self.controller.inventory.instances_on(node)
            if i.function == "vrgw" and i.owner is None
        ]


def build(
    nodes: tuple[str, ...] = ("n1", "n2"),
    pool_size: int = 2,
    bandwidth_mbps: float = 700.0,
    enabled: bool = True,
    **policy: object,
) -> VrgwWorld:
    registry = default_registry()
    registry.configure("gateways", {"enabled": enabled, "pool_size": pool_size, **policy})
    driver = GatewaySimDriver()
    controller = Controller(
        driver,
        registry=registry,
        arbiter=ArbiterConfig(cooldown_s=0.0, site_rate_limit=10_000),
    )
    controller.put("site", Site(id="dc1", kind=SiteKind.DATACENTER), 0.0)
    controller.put("site", Site(id="dc2", kind=SiteKind.DATACENTER), 0.0)
    controller.put("flavor", vrgw_flavor(), 0.0)
    controller.put("function", vrgw_function(), 0.0)
    for k, node in enumerate(nodes):
        controller.put(
            "host",
            Host(
                id=node,
                kind=HostKind.SERVER,
                site="dc1" if k < 2 else "dc2",
                capacity=Resources(vcpu=4, memory_mb=4096, bandwidth_mbps=bandwidth_mbps),
                labels={"vrgw-node": "true"},
            ),
            0.0,
        )
    return VrgwWorld(controller, driver)
