"""vRGWs: each subscriber's gateway, its TR-181 settings, leases, pools and migrations.

Who may do what:

* viewers and operators read everything; the agent of a customer's home bridge (an agent
  token whose host is a CPE owned by the customer) reads that customer's gateway — it stands
  in for the customer's local web page, as the home gateway's own page did;
* operators write every writable setting; the customer's bridge agent writes only the
  customer-writable ones (LAN, DHCP pool, Wi-Fi, port forwards, firewall level) and gets 403
  naming any operator-only parameter it tried;
* a settings change is validated as a whole (422 lists every problem by TR-181 name) and
  applied live as an UPDATE operation (202); the answer says which parts restart.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from edgeroam.api.auth import AnyRole, Principal, Reader, RuntimeDep
from edgeroam.api.errors import conflict, not_found, operation_errors, unprocessable
from edgeroam.config import Role
from edgeroam.gateways import migration
from edgeroam.gateways.leases import Lease
from edgeroam.gateways.pools import pools
from edgeroam.gateways.settings import (
    SettingsError,
    SettingsForbidden,
    Writer,
    apply_changes,
    parameter_table,
    select,
    to_flat,
    to_params,
)
from edgeroam.gateways.template import FUNCTION, changes, compose
from edgeroam.gateways.vlan import Circuit, TagAllocator, TagError
from edgeroam.gateways.world import (
    access_node,
    circuit_of,
    circuits,
    is_node,
    is_subscriber,
    settings_of,
    vrgws_by_owner,
)
from edgeroam.model import Instance, Operation, OperationKind, OperationRequest, Reason
from edgeroam.runtime import Runtime

router = APIRouter(prefix="/gateways", tags=["gateways"])


class GatewayView(BaseModel):
    customer: str
    subscriber: bool
    profile: str | None
    access_node: str | None
    instance: str | None = None
    host: str | None = None
    stage: str | None = None
    s_tag: int | None = None
    c_tag: int | None = None
    parts: list[str] = Field(default_factory=list)


class SettingsChange(BaseModel):
    operation: Operation | None = Field(description="The UPDATE applying the change, if any.")
    changed: list[str] = Field(description="TR-181 names whose value changes.")
    restarts: list[str] = Field(description="Programs restarted by the change (none if avoidable).")
    reloads: list[str] = Field(description="Parts reconfigured in place (no restart).")
    settings: dict[str, Any] = Field(description="The settings after the change (TR-181 names).")


class MigrateGateway(BaseModel):
    host: str = Field(description="Destination virtualization node.")
    mode: migration.MigrationMode = migration.MigrationMode.CONTEXT
    reason: str | None = None


class PoolView(BaseModel):
    node: str
    target: int
    ready: list[str]
    building: int


def _function(runtime: Runtime) -> str:
    registry = runtime.controller.registry
    if "gateways" in registry:
        return str(getattr(registry.config("gateways"), "function", FUNCTION))
    return FUNCTION


def _gateway(runtime: Runtime, customer: str) -> Instance:
    inv = runtime.controller.inventory
    if customer not in inv.customers:
        raise not_found(f"no customer {customer!r}")
    found = vrgws_by_owner(inv.instances.values(), _function(runtime)).get(customer)
    if found is None:
        raise not_found(f"customer {customer!r} has no vRGW (yet)")
    return found


def _owns_bridge(runtime: Runtime, principal: Principal, customer: str) -> bool:
    if principal.role is not Role.AGENT or principal.host is None:
        return False
    host = runtime.controller.inventory.hosts.get(principal.host)
    return host is not None and host.owner == customer


def _may_read(runtime: Runtime, principal: Principal, customer: str, request: Request) -> None:
    if principal.role in (Role.VIEWER, Role.OPERATOR) or _owns_bridge(runtime, principal, customer):
        return
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"{request.method} {request.url.path}: token {principal.name or '(unnamed)'!r} "
        f"({principal.role.value}) does not speak for customer {customer!r}",
    )


def _writer(runtime: Runtime, principal: Principal, customer: str, request: Request) -> Writer:
    if principal.role is Role.OPERATOR:
        return Writer.OPERATOR
    if _owns_bridge(runtime, principal, customer):
        return Writer.CUSTOMER
    raise HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"{request.method} {request.url.path} needs role operator or the agent token of "
        f"{customer!r}'s home bridge; token {principal.name or '(unnamed)'!r} has role "
        f"{principal.role.value}",
    )


def _problems(exc: SettingsError) -> list[dict[str, Any]]:
    return [
        {"loc": ["body", p.parameter], "msg": p.message, "type": "value_error"}
        for p in exc.problems
    ]


@router.get("", response_model=list[GatewayView], summary="Subscribers and their vRGWs")
def list_gateways(runtime: RuntimeDep, _: Reader) -> list[GatewayView]:
    inv = runtime.controller.inventory
    with runtime.controller.lock:
        owned = vrgws_by_owner(inv.instances.values(), _function(runtime))
        names = sorted({c.id for c in inv.customers.values() if is_subscriber(c)} | set(owned))
        return [_view(runtime, name, owned.get(name)) for name in names]


def _view(runtime: Runtime, customer: str, inst: Instance | None) -> GatewayView:
    c = runtime.controller.inventory.customers[customer]
    view = GatewayView(
        customer=customer,
        subscriber=is_subscriber(c),
        profile=c.profile,
        access_node=access_node(c),
    )
    if inst is None:
        return view
    circuit = circuit_of(inst)
    return view.model_copy(
        update={
            "instance": inst.id,
            "host": inst.host,
            "stage": inst.stage.value,
            "s_tag": circuit.s_tag if circuit else None,
            "c_tag": circuit.c_tag if circuit else None,
            "parts": [p.value for p in compose(settings_of(inst))],
        }
    )


@router.get("/parameters", summary="Supported TR-181 parameters, their types and who writes")
def parameters(_: Reader) -> list[dict[str, Any]]:
    return parameter_table()


@router.get("/pools", response_model=list[PoolView], summary="Pre-built vRGWs per node")
def list_pools(runtime: RuntimeDep, _: Reader) -> list[PoolView]:
    controller = runtime.controller
    with controller.lock:
        registry = controller.registry
        target = int(getattr(registry.config("gateways"), "pool_size", 0))
        inv = controller.inventory
        nodes = [h.id for h in inv.hosts.values() if is_node(h)]
        found = pools(
            inv.instances,
            inv.instances_by_host,
            nodes,
            _function(runtime),
            target,
            frozenset(controller.engine.busy_names()),
        )
    return [
        PoolView(node=p.node, target=p.target, ready=list(p.ready), building=p.building)
        for p in found.values()
    ]


@router.get("/{customer}", response_model=GatewayView, summary="One subscriber's vRGW")
def get_gateway(
    customer: str, runtime: RuntimeDep, principal: AnyRole, request: Request
) -> GatewayView:
    _may_read(runtime, principal, customer, request)
    inv = runtime.controller.inventory
    with runtime.controller.lock:
        if customer not in inv.customers:
            raise not_found(f"no customer {customer!r}")
        owned = vrgws_by_owner(inv.instances.values(), _function(runtime))
        return _view(runtime, customer, owned.get(customer))


@router.get("/{customer}/settings", summary="Settings by TR-181 name (passphrases read empty)")
def get_settings(
    customer: str,
    runtime: RuntimeDep,
    principal: AnyRole,
    request: Request,
    name: Annotated[
        list[str] | None,
        Query(description="Names or partial paths ending in '.', e.g. Device.DHCPv4."),
    ] = None,
) -> dict[str, Any]:
    _may_read(runtime, principal, customer, request)
    with runtime.controller.lock:
        inst = _gateway(runtime, customer)
        flat = to_flat(settings_of(inst))
    try:
        return select(flat, name or [])
    except SettingsError as exc:
        raise not_found(str(exc)) from exc


@router.patch(
    "/{customer}/settings",
    response_model=SettingsChange,
    responses={202: {"description": "Accepted: an UPDATE operation applies the change"}},
    summary="Change settings by TR-181 name, live",
)
def patch_settings(
    customer: str,
    runtime: RuntimeDep,
    principal: AnyRole,
    request: Request,
    response: Response,
    body: Annotated[
        dict[str, Any],
        Body(
            examples=[
                {
                    "Device.DHCPv4.Server.Pool.1.MinAddress": "192.168.1.50",
                    "Device.WiFi.SSID.1.SSID": "home",
                }
            ]
        ),
    ],
) -> SettingsChange:
    writer = _writer(runtime, principal, customer, request)
    if not body:
        raise unprocessable(
            [{"loc": ["body"], "msg": "no parameters given", "type": "value_error"}]
        )
    controller = runtime.controller
    with controller.lock:
        inst = _gateway(runtime, customer)
        current = settings_of(inst)
        try:
            new = apply_changes(current, body, writer)
        except SettingsForbidden as exc:
            raise HTTPException(status.HTTP_403_FORBIDDEN, _problems(exc)) from exc
        except SettingsError as exc:
            raise unprocessable(_problems(exc)) from exc
        plan = changes(current, new)
        if plan.recircuit:
            _check_circuit(runtime, inst, new.c_tag, new.s_tag, new.access_node)
        old_flat, new_flat = to_flat(current, reveal=True), to_flat(new, reveal=True)
        changed = sorted(
            k for k in new_flat.keys() | old_flat.keys() if old_flat.get(k) != new_flat.get(k)
        )
        reloads = (["nftables"] if plan.reload_nftables else []) + (
            ["wifi"] if plan.push_wifi else []
        )
        result = SettingsChange(
            operation=None,
            changed=changed,
            restarts=list(plan.restarts),
            reloads=reloads,
            settings=to_flat(new),
        )
        if not plan.changed:
            response.status_code = status.HTTP_200_OK
            return result
        who = principal.name or principal.role.value
        request_op = OperationRequest(
            kind=OperationKind.UPDATE,
            subject=inst.id,
            instances=(inst.id,),
            function=inst.function,
            owner=inst.owner,
            hosts=(inst.host,),
            params=to_params(new),
            reason=Reason(
                rule="api_vrgw_settings",
                message=f"{customer}'s vRGW settings changed by {who}: {', '.join(changed)}",
                details={"changed": changed, "restarts": list(plan.restarts)},
            ),
        )
        with operation_errors():
            op = controller.request(request_op, runtime.now())
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = f"/api/v1/operations/{op.id}"
    return result.model_copy(update={"operation": op})


def _check_circuit(runtime: Runtime, inst: Instance, c_tag: int, s_tag: int, node: str) -> None:
    """A circuit set by hand must not collide with another customer's."""
    if not c_tag:
        return
    others = [
        (owner, circuit)
        for owner, circuit in circuits(runtime.controller.inventory.instances, inst.function)
        if owner != inst.owner
    ]
    try:
        allocator = TagAllocator.rebuild(others)
        allocator.adopt(str(inst.owner), Circuit(node, s_tag, c_tag))
    except TagError as exc:
        raise unprocessable(
            [
                {
                    "loc": ["body", "Device.Ethernet.VLANTermination.1.VLANID"],
                    "msg": str(exc),
                    "type": "value_error",
                }
            ]
        ) from exc


@router.get("/{customer}/leases", response_model=list[Lease], summary="DHCP leases of the vRGW")
def get_leases(
    customer: str, runtime: RuntimeDep, principal: AnyRole, request: Request
) -> list[Lease]:
    _may_read(runtime, principal, customer, request)
    with runtime.controller.lock:
        inst = _gateway(runtime, customer)
    reader = getattr(runtime.controller.driver, "leases", None)
    if reader is None:
        raise conflict(f"driver {runtime.controller.driver.name!r} does not report DHCP leases")
    leases: list[Lease] = reader(inst.id)
    return leases


class Interruption(BaseModel):
    start: float
    end: float
    seconds: float


@router.get(
    "/{customer}/interruptions",
    response_model=list[Interruption],
    summary="When the customer was unserved by a migration (as the driver measured it)",
)
def get_interruptions(
    customer: str, runtime: RuntimeDep, principal: AnyRole, request: Request
) -> list[Interruption]:
    _may_read(runtime, principal, customer, request)
    with runtime.controller.lock:
        inst = _gateway(runtime, customer)
    outages = getattr(runtime.controller.driver, "outages", None)
    if outages is None:
        raise conflict(f"driver {runtime.controller.driver.name!r} does not measure interruptions")
    return [
        Interruption(start=a, end=b, seconds=round(b - a, 6)) for a, b in outages.get(inst.id, [])
    ]


@router.post(
    "/{customer}/migrate",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Operation,
    summary="Cold-migrate the vRGW (context- or image-based), keeping its leases",
)
def migrate_gateway(
    customer: str,
    body: MigrateGateway,
    runtime: RuntimeDep,
    principal: AnyRole,
    request: Request,
    response: Response,
) -> Operation:
    if principal.role is not Role.OPERATOR:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"{request.method} {request.url.path} needs role operator; token "
            f"{principal.name or '(unnamed)'!r} has role {principal.role.value}",
        )
    controller = runtime.controller
    with controller.lock:
        inst = _gateway(runtime, customer)
        host = controller.inventory.hosts.get(body.host)
        if host is None or not is_node(host):
            raise unprocessable(
                [
                    {
                        "loc": ["body", "host"],
                        "msg": f"{body.host!r} is not a virtualization node",
                        "type": "value_error",
                    }
                ]
            )
        if body.host == inst.host:
            raise conflict(f"{inst.id} already runs on {body.host}")
        who = principal.name or principal.role.value
        req = migration.request(
            inst,
            body.host,
            body.mode,
            Reason(
                rule="api_vrgw_migrate",
                message=body.reason
                or f"{body.mode.value}-based migration of {customer}'s vRGW to {body.host} "
                f"(requested by {who})",
            ),
        )
        with operation_errors():
            op = controller.request(req, runtime.now())
    response.headers["Location"] = f"/api/v1/operations/{op.id}"
    return op
