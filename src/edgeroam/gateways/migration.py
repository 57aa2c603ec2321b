"""Cold migration of a vRGW between virtualization nodes and sites (seed 003, Sec. IV-C).

Two ways, both keeping the customer's DHCP leases:

* context-based: the destination is prepared while the source still serves, from the
  customer's context — its settings and its lease table; the cut-over then freezes the source,
  hands the leases over, starts the destination's services and re-points the circuit. The
  customer is cut off only for the cut-over.
* image-based: the source is suspended first, its whole state (the image: configuration as
  rendered, leases, firewall table) is moved to the destination, which is built and resumed from
  it. The customer is cut off for suspension, transfer, build and resume.

A migration is an ordinary lifecycle MIGRATE operation whose parameter ``_migration`` names
the mode; the plan orders the steps (image: stop the source first) and the driver does the
mode's work. The interruption is what the driver measures between the source's last served
moment and the destination's first.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from edgeroam.gateways.leases import Lease
from edgeroam.model import Instance, Model, OperationKind, OperationRequest, Reason
from edgeroam.model.base import NonNegative, Positive


class MigrationMode(StrEnum):
    CONTEXT = "context"
    IMAGE = "image"


class Context(Model):
    """What a context-based migration carries: settings (instance parameters) and leases."""

    instance: str
    params: dict[str, object]
    leases: tuple[Lease, ...] = ()


class Image(Context):
    """What an image-based migration moves: the context plus the rendered state verbatim."""

    files: dict[str, str] = Field(
        default_factory=dict, description="State files by name (configs, leases, ruleset)."
    )


class Timings(Model):
    """Durations of a vRGW's building blocks, in seconds (measured on the testbed)."""

    build_s: NonNegative = Field(description="Namespace, links, sandbox (create_sandbox).")
    start_s: NonNegative = Field(description="Addresses, firewall, DHCP/DNS up (start).")
    claim_s: NonNegative = Field(description="Thaw a pooled vRGW and apply settings.")
    update_s: NonNegative = Field(description="Live settings update without restart.")
    freeze_s: NonNegative = Field(description="Suspend (cgroup freezer) and read state.")
    cutover_s: NonNegative = Field(
        description="Context cut-over: freeze source, hand over leases, start, re-point."
    )
    stop_s: NonNegative = 0.0
    remove_s: NonNegative = 0.0
    image_mb: NonNegative = Field(default=0.05, description="State moved by an image migration.")
    site_link_mbps: Positive = Field(
        default=100.0, description="Bandwidth an image crosses between sites."
    )
    site_delay_s: NonNegative = Field(default=0.02, description="One-way delay between sites.")


def request(
    instance: Instance, target: str, mode: MigrationMode, reason: Reason, policy: str = "api"
) -> OperationRequest:
    """The MIGRATE operation request moving `instance` to `target` in `mode`."""
    if target == instance.host:
        raise ValueError(f"{instance.id} already runs on {target}")
    return OperationRequest(
        kind=OperationKind.MIGRATE,
        subject=instance.id,
        instances=(instance.id,),
        function=instance.function,
        owner=instance.owner,
        hosts=(target,),
        sources=(instance.host,),
        params={"_migration": mode.value},
        reason=reason,
        policy=policy,
    )
