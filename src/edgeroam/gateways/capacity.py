"""How many vRGW customers a virtualization node carries: a small calibrated model.

The seed loads N vRGWs behind one trunk with each customer's profile — constant-rate UDP for
TV and telephony, greedy TCP for Internet access — and reads per-vRGW throughput (Figs. 6-7),
UDP loss and CPU (Figs. 8-9). The model reproduces that shape with four mechanisms:

* the node forwards at most `forward_mbps` in total (CPU-bound; or the trunk, if lower), and
  one vRGW at most `single_mbps` (one vCPU); greedy TCP fills whatever the UDP streams leave,
  so per-vRGW throughput is the fair share of the bottleneck;
* UDP shares the bottleneck's FIFO with TCP and loses packets at TCP's drop rate, which for a
  greedy flow scales as the inverse of its share: ``loss = k / tcp_share_mbps``, up to a cap
  (TCP backs off but never to nothing), or the plain overflow when UDP alone exceeds the
  bottleneck;
* CPU grows with the forwarded traffic and with the number of vRGWs, up to its ceiling.

Calibrations are data: `SEED` is fitted to the figures the seed reports (1 Gbit/s trunk,
Q8400 CPU): aggregate ~700 Mbit/s, which puts High users between 20 and 25 per node and
reproduces the three reported worst losses (4.30 %, 2.35 %, 1.57 %) within 0.3 points.
`fit` derives a calibration from measured points (the testbed experiment does this).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import Field

from edgeroam.gateways.profiles import ServiceProfile
from edgeroam.model import Model
from edgeroam.model.base import NonNegative, Positive

#: UDP loss a profile still "meets": the seed judges its worst case (4.3 %) tolerable with
#: the FEC of IPTV platforms; 5 % is the bound used here.
DEFAULT_MAX_UDP_LOSS = 0.05


class Calibration(Model):
    name: str
    description: str = ""
    link_mbps: Positive = Field(description="Trunk capacity the calibration was made on.")
    forward_mbps: Positive = Field(description="Most the node forwards in total (all vRGWs).")
    single_mbps: Positive = Field(description="Most one vRGW forwards (one vCPU's worth).")
    loss_k_mbps: NonNegative = Field(
        description="UDP loss = k / (TCP share per vRGW, Mbit/s), up to loss_cap."
    )
    loss_cap: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Most loss TCP competition causes (TCP backs off, it never reaches zero); "
        "beyond it only plain overflow adds loss.",
    )
    cpu_base_pct: NonNegative = 0.0
    cpu_per_mbps_pct: NonNegative = Field(description="Node CPU % per Mbit/s forwarded.")
    cpu_per_vrgw_pct: NonNegative = Field(default=0.0, description="Node CPU % per vRGW.")
    cpu_max_pct: Positive = 100.0
    memory_per_vrgw_mb: NonNegative = 12.0
    """Memory one vRGW actually uses (the seed: ~12 MB of its 32 MB)."""


SEED = Calibration(
    name="seed",
    description="fitted to seed 003's Figs. 6-9 (1 Gbit/s trunk, Intel Q8400, KVM/OpenWrt)",
    link_mbps=1000.0,
    forward_mbps=700.0,
    single_mbps=220.0,
    loss_k_mbps=0.19,
    cpu_base_pct=2.0,
    cpu_per_mbps_pct=0.11,
    cpu_per_vrgw_pct=0.15,
    cpu_max_pct=100.0,
    memory_per_vrgw_mb=12.0,
)


#: Cores of the seed's node (Intel Q8400), to turn its CPU percentages into vCPUs.
SEED_CORES = 4


def demand(
    profile: ServiceProfile, calibration: Calibration = SEED, cores: int = SEED_CORES
) -> tuple[float, float]:
    """(vCPU, Mbit/s) one customer of `profile` costs a node: the bandwidth the profile needs
    and the CPU the calibration charges for forwarding it (placement's demand)."""
    vcpu = calibration.cpu_per_mbps_pct / 100 * cores * profile.total_mbps
    return round(vcpu, 6), profile.total_mbps


class Point(Model):
    """One N of the experiment (one bar of Figs. 6-9)."""

    n: int = Field(ge=1)
    throughput_mbps: NonNegative = Field(description="Mean downstream throughput per vRGW.")
    udp_loss: NonNegative = Field(description="Fraction of UDP packets lost (0..1).")
    node_cpu_pct: NonNegative
    vrgw_cpu_pct: NonNegative = Field(description="Node CPU per vRGW (Fig. 9).")
    udp_offered_mbps: NonNegative = Field(description="UDP offered per vRGW.")
    meets: bool = Field(description="Throughput >= the profile and UDP loss within bound.")


def predict(
    calibration: Calibration,
    profile: ServiceProfile,
    n: int,
    *,
    link_mbps: float | None = None,
    max_udp_loss: float = DEFAULT_MAX_UDP_LOSS,
) -> Point:
    """Model of N customers of `profile` on one node behind a trunk of `link_mbps`
    (default: the calibration's). Profiles and link are in the same units: a profile scaled to a
    slower bed is compared with that bed's link."""
    if n < 1:
        raise ValueError("n must be at least 1")
    c = calibration
    link = link_mbps if link_mbps is not None else c.link_mbps
    scale = link / c.link_mbps
    bottleneck = min(link, c.forward_mbps * scale, n * c.single_mbps * scale)
    udp = profile.offered_udp_mbps()
    offered_udp = n * udp
    overflow = max(0.0, 1.0 - bottleneck / offered_udp) if offered_udp > 0 else 0.0
    tcp_share = max(0.0, bottleneck - offered_udp) / n
    k = c.loss_k_mbps * scale
    if offered_udp <= 0 or k <= 0:
        loss = overflow
    else:
        loss = max(overflow, min(c.loss_cap, k / max(tcp_share, 1e-9)))
    # Greedy TCP takes whatever UDP leaves (or loses), so with TCP the bottleneck is full.
    total = bottleneck if profile.tcp_mbps > 0 else offered_udp * (1.0 - loss)
    per_vrgw = total / n
    cpu = min(
        c.cpu_max_pct,
        c.cpu_base_pct + c.cpu_per_mbps_pct * total / scale + c.cpu_per_vrgw_pct * n,
    )
    required = profile.total_mbps
    return Point(
        n=n,
        throughput_mbps=round(per_vrgw, 3),
        udp_loss=round(loss, 5),
        node_cpu_pct=round(cpu, 2),
        vrgw_cpu_pct=round(cpu / n, 3),
        udp_offered_mbps=round(udp, 3),
        meets=per_vrgw >= required - 1e-9 and loss <= max_udp_loss,
    )


def max_customers(
    calibration: Calibration,
    profile: ServiceProfile,
    *,
    link_mbps: float | None = None,
    max_udp_loss: float = DEFAULT_MAX_UDP_LOSS,
    limit: int = 10_000,
) -> int:
    """The largest N whose customers all still meet `profile` (0 if not even one does).

    Throughput per vRGW falls and loss rises with N, so the set of N that meet is a prefix.
    """
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        ok = predict(
            calibration, profile, mid, link_mbps=link_mbps, max_udp_loss=max_udp_loss
        ).meets
        if ok:
            low = mid
        else:
            high = mid - 1
    return low


def largest_meeting(points: Sequence[Point]) -> int:
    """The largest N of measured points up to which every point meets its profile."""
    best = 0
    for point in sorted(points, key=lambda p: p.n):
        if not point.meets:
            break
        best = point.n
    return best


class Measured(Model):
    """A measured point, for fitting: totals across all vRGWs."""

    n: int = Field(ge=1)
    total_mbps: NonNegative
    tcp_share_mbps: NonNegative
    udp_loss: NonNegative
    node_cpu_pct: NonNegative


def fit(
    name: str,
    link_mbps: float,
    points: Sequence[Measured],
    *,
    description: str = "",
) -> Calibration:
    """A calibration from measured points: the largest total as the forwarding limit, the
    single-vRGW total as the per-vRGW limit, k as the median of loss x TCP share, and CPU by
    least squares on (Mbit/s forwarded, N)."""
    if not points:
        raise ValueError("fitting needs at least one measured point")
    totals = [p.total_mbps for p in points]
    forward = max(totals)
    singles = [p.total_mbps for p in points if p.n == 1]
    single = max(singles) if singles else forward
    products = sorted(p.udp_loss * p.tcp_share_mbps for p in points if p.udp_loss > 0)
    k = products[len(products) // 2] if products else 0.0
    cap = min(1.0, max((p.udp_loss for p in points), default=0.0))
    base, per_mbps, per_vrgw = _cpu_fit(points)
    return Calibration(
        name=name,
        description=description,
        link_mbps=link_mbps,
        forward_mbps=max(forward, 1e-6),
        single_mbps=max(single, 1e-6),
        loss_k_mbps=k,
        loss_cap=cap if cap > 0 else 0.25,
        cpu_base_pct=base,
        cpu_per_mbps_pct=per_mbps,
        cpu_per_vrgw_pct=per_vrgw,
        cpu_max_pct=100.0,
    )


def _cpu_fit(points: Sequence[Measured]) -> tuple[float, float, float]:
    """Non-negative least squares of cpu = a + b*mbps + c*n by trying every subset of terms
    (three unknowns: small enough to solve by hand, no solver needed)."""
    rows = [(1.0, p.total_mbps, float(p.n), p.node_cpu_pct) for p in points]
    best: tuple[float, tuple[float, float, float]] = (math.inf, (0.0, 0.0, 0.0))
    for mask in range(1, 8):
        cols = [i for i in range(3) if mask >> i & 1]
        solution = _lstsq([[r[i] for i in cols] for r in rows], [r[3] for r in rows])
        if solution is None or any(v < 0 for v in solution):
            continue
        coef = [0.0, 0.0, 0.0]
        for i, v in zip(cols, solution, strict=True):
            coef[i] = v
        err = sum((r[0] * coef[0] + r[1] * coef[1] + r[2] * coef[2] - r[3]) ** 2 for r in rows)
        if err < best[0]:
            best = (err, (coef[0], coef[1], coef[2]))
    return best[1]


def _lstsq(a: list[list[float]], b: list[float]) -> list[float] | None:
    """Normal equations solved by Gaussian elimination; None when singular."""
    k = len(a[0])
    m = [[sum(r[i] * r[j] for r in a) for j in range(k)] for i in range(k)]
    v = [sum(r[i] * y for r, y in zip(a, b, strict=True)) for i in range(k)]
    for col in range(k):
        pivot = max(range(col, k), key=lambda r: abs(m[r][col]))
        if abs(m[pivot][col]) < 1e-12:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        v[col], v[pivot] = v[pivot], v[col]
        for r in range(k):
            if r != col:
                f = m[r][col] / m[col][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
                v[r] -= f * v[col]
    return [v[i] / m[i][i] for i in range(k)]
