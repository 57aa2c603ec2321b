"""The simulation driver, taught what a vRGW is: suspended pools, leases, circuits, outages.

It is the plain `SimDriver` (same protocol, same idempotency, same failure injection) with a
model of each vRGW copy on top: built, suspended (pooled, no circuit), serving or stopped; which
copy the customer's circuit points at; the DHCP leases it holds; and when the customer was
unserved. Action durations come from `Timings` measured on the testbed, so virtual-time
activations and interruptions have realistic sizes; node throughput, loss and CPU come from the
calibrated capacity model.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from edgeroam.drivers.base import ActionStatus, Outcome
from edgeroam.drivers.sim import SimDriver
from edgeroam.gateways.capacity import Calibration, Point, predict
from edgeroam.gateways.leases import Lease
from edgeroam.gateways.migration import MigrationMode, Timings
from edgeroam.gateways.profiles import ServiceProfile
from edgeroam.gateways.settings import GatewaySettings, from_params
from edgeroam.gateways.template import ChangePlan, changes

#: Medians measured on this project's testbed (2-vCPU VM, docs/gateways.md): vrgw-pool gave
#: build, start and claim; vrgw-migration gave cut-over, freeze, stop and remove; live
#: updates (nftables reload or dnsmasq restart) took about 24 ms. Re-measure with
#: `edgeroam experiment vrgw-pool` / `vrgw-migration` as root.
DEFAULT_TIMINGS = Timings(
    build_s=0.021,
    start_s=0.106,
    claim_s=0.015,
    update_s=0.024,
    freeze_s=0.002,
    cutover_s=0.089,
    stop_s=0.037,
    remove_s=0.101,
)


@dataclass
class Copy:
    """One vRGW copy on one host."""

    host: str
    params: dict[str, Any]
    state: str = "built"  # built | suspended | serving | frozen | stopped
    leases: dict[str, Lease] = field(default_factory=dict)

    @property
    def settings(self) -> GatewaySettings:
        return from_params(self.params)


def _has_circuit(params: dict[str, Any]) -> bool:
    return bool(params.get("Device.Ethernet.VLANTermination.1.VLANID"))


@dataclass
class GatewaySimDriver(SimDriver):
    function: str = "vrgw"
    timings: Timings = field(default_factory=lambda: DEFAULT_TIMINGS)
    name: str = "sim-vrgw"
    copies: dict[tuple[str, str], Copy] = field(default_factory=dict)
    segment: dict[str, str] = field(default_factory=dict)
    """Instance → host its circuit currently reaches."""
    outages: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    activated_at: dict[str, float] = field(default_factory=dict)
    updates: list[tuple[str, ChangePlan]] = field(default_factory=list)
    _images: dict[str, tuple[dict[str, Any], dict[str, Lease]]] = field(default_factory=dict)
    _down_since: dict[str, float] = field(default_factory=dict)

    # -- timing -------------------------------------------------------------------------------
    def _latency(self, action: str, args: dict[str, Any]) -> float | None:
        if args.get("function") != self.function:
            return None
        t = self.timings
        cross = "source" in args and args.get("source") != args.get("target")
        if action == "create_sandbox":
            return t.build_s
        if action == "start_function":
            if args.get("migration") == MigrationMode.CONTEXT.value:
                return t.start_s + (2 * t.site_delay_s if cross else 0.0)
            return t.start_s
        if action == "update_function":
            return t.claim_s if "owner" in args or "previous_owner" in args else t.update_s
        if action == "stop_function":
            if args.get("migration") == MigrationMode.IMAGE.value:
                transfer = t.image_mb * 8 / t.site_link_mbps + t.site_delay_s
                return t.freeze_s + (transfer if cross else 0.0)
            return t.stop_s
        if action == "remove_sandbox":
            return t.remove_s
        return None

    def submit(self, key: str, action: str, args: dict[str, Any], now: float) -> None:
        fresh = key not in self._tickets or self._tickets[key].outcome is Outcome.FAILED
        super().submit(key, action, args, now)
        latency = self._latency(action, args)
        if fresh and latency is not None:
            self._tickets[key].due = now + latency

    def poll(self, key: str, now: float) -> ActionStatus:
        ticket = self._tickets.get(key)
        pending = ticket is not None and ticket.outcome is Outcome.PENDING
        status = super().poll(key, now)
        done = pending and status.outcome is Outcome.DONE
        if ticket is not None and done and ticket.args.get("function") == self.function:
            self._vrgw(ticket.action, ticket.args, ticket.due)
        return status

    # -- the vRGW world -----------------------------------------------------------------------
    def _vrgw(self, action: str, args: dict[str, Any], at: float) -> None:
        inst, host = str(args["instance"]), str(args["host"])
        key = (inst, host)
        mode = args.get("migration")
        if action == "create_sandbox":
            copy = Copy(host, {})
            if mode == MigrationMode.IMAGE.value and inst in self._images:
                params, leases = self._images[inst]
                copy.params, copy.leases = dict(params), dict(leases)
            self.copies[key] = copy
        elif action == "start_function":
            copy = self.copies.setdefault(key, Copy(host, {}))
            copy.params = dict(args.get("params") or {})
            if not _has_circuit(copy.params):
                copy.state = "suspended"
                return
            if mode == MigrationMode.CONTEXT.value:
                source = self.copies.get((inst, str(args.get("source"))))
                if source is not None:
                    # Cut-over: the source stops serving when the cut-over begins.
                    self._down(inst, at - self.timings.cutover_s)
                    source.state = "frozen"
                    copy.leases = dict(source.leases)
            copy.state = "serving"
            self.segment[inst] = host
            self._up(inst, at)
            self.activated_at.setdefault(inst, at)
        elif action == "update_function":
            found = self.copies.get(key)
            if found is None:
                return
            copy = found
            old, new = dict(copy.params), dict(args.get("params") or {})
            copy.params = new
            if copy.state == "suspended" and _has_circuit(new):
                copy.state = "serving"  # a claim: thaw, apply, attach the circuit
                self.segment[inst] = host
                self.activated_at.setdefault(inst, at)
            elif copy.state == "serving" and not _has_circuit(new):
                copy.state = "suspended"  # a claim undone
                self.segment.pop(inst, None)
            elif copy.state == "serving":
                self.updates.append((inst, changes(from_params(old), from_params(new))))
        elif action == "stop_function":
            found = self.copies.get(key)
            if found is None:
                return
            copy = found
            if mode == MigrationMode.IMAGE.value:
                start = at - (self._latency(action, args) or 0.0)
                self._down(inst, start)
                self._images[inst] = (dict(copy.params), dict(copy.leases))
            copy.state = "stopped"
            if self.segment.get(inst) == host:
                self.segment.pop(inst, None)
        elif action == "remove_sandbox":
            self.copies.pop(key, None)

    def _down(self, inst: str, at: float) -> None:
        self._down_since.setdefault(inst, at)

    def _up(self, inst: str, at: float) -> None:
        began = self._down_since.pop(inst, None)
        if began is not None:
            self.outages.setdefault(inst, []).append((began, at))

    # -- queries for tests and experiments ----------------------------------------------------
    def serving_copy(self, inst: str) -> Copy | None:
        host = self.segment.get(inst)
        copy = self.copies.get((inst, host)) if host else None
        return copy if copy is not None and copy.state == "serving" else None

    def state_of(self, inst: str, host: str) -> str | None:
        copy = self.copies.get((inst, host))
        return copy.state if copy else None

    def dhcp(self, inst: str, mac: str, now: float) -> ipaddress.IPv4Address | None:
        """A terminal behind `inst`'s circuit asks for (or renews) a lease: its address, or
        None when nothing serves the circuit or the pool is full."""
        copy = self.serving_copy(inst)
        if copy is None:
            return None
        settings = copy.settings
        if not (settings.dhcp_server_enable and settings.dhcp_enable):
            return None
        mac = mac.lower()
        existing = copy.leases.get(mac)
        if existing is not None:
            ip = existing.ip
        else:
            used = {lease.ip for lease in copy.leases.values()}
            low, high = int(settings.dhcp_min), int(settings.dhcp_max)
            free = next(
                (a for a in range(low, high + 1) if ipaddress.IPv4Address(a) not in used), None
            )
            if free is None:
                return None
            ip = ipaddress.IPv4Address(free)
        copy.leases[mac] = Lease(mac=mac, ip=ip, expires_at=now + settings.lease_time_s)
        return ip

    def leases(self, inst: str) -> list[Lease]:
        copy = self.serving_copy(inst)
        return sorted(copy.leases.values(), key=lambda x: int(x.ip)) if copy else []

    def serving_on(self, host: str) -> list[str]:
        return sorted(i for (i, h), c in self.copies.items() if h == host and c.state == "serving")

    def measure(
        self,
        host: str,
        profile: ServiceProfile,
        calibration: Calibration,
        *,
        link_mbps: float | None = None,
    ) -> Point | None:
        """Modelled throughput, UDP loss and CPU of `host` with its serving vRGWs all driving
        `profile` (None when none serves)."""
        n = len(self.serving_on(host))
        if n == 0:
            return None
        return predict(calibration, profile, n, link_mbps=link_mbps)
