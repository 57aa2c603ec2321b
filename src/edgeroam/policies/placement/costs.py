"""The IoT-B&B cost model: what it costs the operator to run one instance at one place.

Three kinds of place, three prices (seed 001 §2.6–2.7):

* the **owner's own CPE** costs nothing — the customer already pays for the box;
* a **B&B node** (another customer's CPE that lends capacity) costs the incentives paid to its
  owner, ``redundancy × Σ_r price_r · demand_r``, where the redundancy factor accounts for the
  standby copies a less available host needs;
* a **pool host** (the cloud, or an edge/branch server) costs ``Σ_r coef_r · demand_r /
  (remaining_r + ε)``: the scarcer its remaining budget, the dearer each unit, so the cloud is not
  drained while it is the place of last resort. On the cloud, the bandwidth term uses what is
  left of the edge↔cloud link.

The cloud is also subject to a delay limit: the core delay ``D_max / (R + δ) + d_ext`` grows as
the link's remaining bandwidth R shrinks, and must stay below the flavour's max delay.

All constants are configurable; the defaults are the reference values of the paper's Table 1.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import Field

from edgeroam.model.base import Model, NonNegative, Positive

ResourceTriple = tuple[NonNegative, NonNegative, NonNegative]
"""Per-resource values in the order vCPU, memory, bandwidth."""


class PlacementMode(StrEnum):
    """Which places a request may use (the paper's three configuration modes)."""

    LOCAL = "local"
    """Only the owner's own CPE."""
    LOCAL_CLOUD = "local_cloud"
    """The owner's CPE and the pool hosts (servers, cloud)."""
    LOCAL_CLOUD_BNB = "local_cloud_bnb"
    """Also other customers' CPEs that lend capacity."""


class Strategy(StrEnum):
    SPREAD = "spread"
    """The foundation's rule: the eligible host with the largest free vCPU share."""
    EXHAUSTIVE = "exhaustive"
    """Lowest cost among every eligible place."""
    HEURISTIC = "heuristic"
    """The owner's CPE if it fits, else the cheaper of the B&B node with the most remaining
    (scarcest resource, as a share) and the cheapest pool host."""
    OPTIMAL = "optimal"
    """The 0-1 integer program over a batch; for a single instance it equals exhaustive."""


class DelayCheck(StrEnum):
    """How the cloud's core-delay filter reads the link."""

    BEFORE = "before"
    """The reference rule: the delay on the link as it is before the instance is placed."""
    PROTECT = "protect"
    """The delay after placing, against the new instance's limit and the strictest limit of
    the instances already in the cloud, so a placement never pushes a resident past its own."""


class CostModel(Model):
    """Every constant of the placement model; defaults are the reference values."""

    max_core_delay: Positive = Field(
        default=50_000.0, description="D_max: core delay when the edge↔cloud link is depleted."
    )
    delay_offset: Positive = Field(
        default=1.0, description="δ: added to the remaining bandwidth in the delay denominator."
    )
    external_delay: NonNegative = Field(
        default=0.0,
        description="d_ext: core delay not caused by this edge (other tenants' load). A fresh "
        "`external_delay_ms` reading on the cloud's site overrides it in a live system.",
    )
    cloud_coefficients: ResourceTriple = Field(
        default=(1000.0, 1000.0, 1000.0),
        description="Constants of proportionality of the cloud's vCPU, memory and link prices.",
    )
    server_coefficients: ResourceTriple = Field(
        default=(1000.0, 1000.0, 1000.0),
        description="The same for edge/branch servers (no link term: bandwidth of the host).",
    )
    epsilon: NonNegative = Field(
        default=0.0,
        description="ε added to each remaining budget in the pool price; strict headroom "
        "already keeps the budgets positive, so the reference value 0 never divides by zero.",
    )
    redundancy_factor: NonNegative = Field(
        default=1.0, description="Multiplies the incentives of a B&B deployment (standbys)."
    )
    strict_headroom: bool = Field(
        default=True,
        description="A host qualifies only if each demanded resource is strictly less than what "
        "remains (the reference rule: never filled to exactly zero).",
    )
    delay_check: DelayCheck = DelayCheck.BEFORE


def delay_threshold(cost: CostModel, max_delay: float | None, fixed_delay: float) -> float:
    """The remaining link bandwidth R must exceed this for the core delay to stay below
    `max_delay`: ``D_max / (R + δ) + fixed < max ⇔ R > D_max / (max − fixed) − δ``.

    `fixed_delay` is the external delay plus the link's own propagation delay. Returns -inf
    when there is no limit and +inf when no bandwidth can satisfy it.
    """
    if max_delay is None:
        return -math.inf
    budget = max_delay - fixed_delay
    if budget <= 0:
        return math.inf
    return cost.max_core_delay / budget - cost.delay_offset


def core_delay(cost: CostModel, remaining: float, fixed_delay: float) -> float:
    """The core delay with `remaining` link bandwidth left (infinite when the link is gone)."""
    denominator = remaining + cost.delay_offset
    if denominator <= 0:
        return math.inf
    return cost.max_core_delay / denominator + fixed_delay
