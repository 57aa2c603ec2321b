"""How vRGWs appear in edgeroam's inventory (conventions shared by policy, API and drivers).

* A **virtualization node** is a server or cloud host labelled ``vrgw-node: "true"``; its
  ``capacity.bandwidth_mbps`` is what it can forward for vRGWs (calibrate it with
  ``edgeroam experiment vrgw-capacity``).
* A **subscriber** is a customer labelled ``vrgw: "true"`` whose ``profile`` names a service
  profile (``average``/``high``) and whose label ``access-node`` names the access node its
  circuit starts at.
* A subscriber's **vRGW** is an instance of the vRGW function it owns; its parameters are its
  TR-181 settings (circuit tags included).
* A **pooled** vRGW is an unowned standby instance of the vRGW function: pre-built, suspended,
  without a circuit, waiting to be claimed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from edgeroam.gateways.settings import PARAMETERS, GatewaySettings, from_params
from edgeroam.gateways.vlan import Circuit, TagError
from edgeroam.model import Customer, Host, HostKind, Instance, LifecycleStage, Role

NODE_LABEL = "vrgw-node"
SUBSCRIBER_LABEL = "vrgw"
ACCESS_NODE_LABEL = "access-node"
_TRUE = frozenset({"true", "yes", "1"})
_C_TAG = "Device.Ethernet.VLANTermination.1.VLANID"
_S_TAG = "Device.Ethernet.VLANTermination.2.VLANID"
_ACCESS = "Device.X_EDGEROAM_AccessNode"
assert {_C_TAG, _S_TAG, _ACCESS} <= set(PARAMETERS)


def is_node(host: Host) -> bool:
    return host.kind is not HostKind.CPE and host.labels.get(NODE_LABEL, "").lower() in _TRUE


def is_subscriber(customer: Customer) -> bool:
    return customer.labels.get(SUBSCRIBER_LABEL, "").lower() in _TRUE


def access_node(customer: Customer) -> str | None:
    return customer.labels.get(ACCESS_NODE_LABEL) or None


def is_vrgw(instance: Instance, function: str) -> bool:
    return instance.function == function and instance.stage is not LifecycleStage.TERMINATED


def is_pooled(instance: Instance, function: str) -> bool:
    return is_vrgw(instance, function) and instance.owner is None and instance.role is Role.STANDBY


def circuit_of(instance: Instance) -> Circuit | None:
    """The circuit recorded in a vRGW's parameters (None when unassigned or malformed)."""
    params = instance.params
    try:
        c_tag = int(params.get(_C_TAG) or 0)
        s_tag = int(params.get(_S_TAG) or 0)
        node = str(params.get(_ACCESS) or "")
        if c_tag and s_tag and node:
            return Circuit(node, s_tag, c_tag)
    except (TypeError, ValueError, TagError):
        return None
    return None


def settings_of(instance: Instance) -> GatewaySettings:
    return from_params(instance.params)


def vrgws_by_owner(instances: Iterable[Instance], function: str) -> dict[str, Instance]:
    """Each subscriber's vRGW (the active one when several exist, e.g. mid-migration)."""
    found: dict[str, Instance] = {}
    for inst in instances:
        if inst.owner is None or not is_vrgw(inst, function):
            continue
        current = found.get(inst.owner)
        if current is None or (current.role is not Role.ACTIVE and inst.role is Role.ACTIVE):
            found[inst.owner] = inst
    return found


def circuits(instances: Mapping[str, Instance], function: str) -> list[tuple[str, Circuit]]:
    """(customer, circuit) of every owned vRGW that has one."""
    out = []
    for inst in instances.values():
        if inst.owner is not None and is_vrgw(inst, function):
            circuit = circuit_of(inst)
            if circuit is not None:
                out.append((inst.owner, circuit))
    return out
