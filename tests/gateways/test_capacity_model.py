"""The calibrated capacity model against the seed's reported results, and fitting."""

from __future__ import annotations

import itertools

import pytest

from edgeroam.gateways.capacity import (
    SEED,
    Measured,
    fit,
    largest_meeting,
    max_customers,
    predict,
)
from edgeroam.gateways.profiles import AVERAGE, G711_CALL_MBPS, HIGH, PROFILES, profile


def test_table_one_profiles() -> None:
    assert AVERAGE.total_mbps == pytest.approx(16.1)
    assert HIGH.total_mbps == pytest.approx(29.1)
    assert {c.service.value: c.mbps for c in AVERAGE.components} == {
        "internet": 5.0,
        "telephony": 0.1,
        "sdtv": 3.0,
        "hdtv": 8.0,
    }
    assert {c.service.value: c.channels for c in HIGH.components if c.channels} == {
        "sdtv": 2,
        "hdtv": 2,
    }
    assert HIGH.tcp_mbps == 10.0 and HIGH.udp_mbps == pytest.approx(19.1)
    # The seed measured telephony as three G.711a calls: 3 x 80 kbit/s of IP instead of 0.1.
    assert pytest.approx(0.08) == G711_CALL_MBPS
    assert HIGH.offered_udp_mbps() == pytest.approx(19.0 + 0.24)
    assert sorted(PROFILES) == ["average", "high"]
    assert profile(None) is AVERAGE
    with pytest.raises(ValueError, match="unknown service profile"):
        profile("gold")


def test_scaled_profile_keeps_proportions() -> None:
    slow = HIGH.scaled(0.1)
    assert slow.total_mbps == pytest.approx(2.91)
    assert slow.offered_udp_mbps() == pytest.approx(1.9 + 0.024)  # the calls' load too


def test_seed_calibration_reproduces_figures_6_to_9() -> None:
    # Fig. 7: "between 20 and 25 High users"; Fig. 6: Average met even at 30.
    assert 20 <= max_customers(SEED, HIGH) < 25
    assert max_customers(SEED, AVERAGE) >= 30
    # Section VI-C's three worst UDP losses.
    for prof, n, reported in ((HIGH, 30, 0.0430), (HIGH, 25, 0.0235), (AVERAGE, 30, 0.0157)):
        assert predict(SEED, prof, n).udp_loss == pytest.approx(reported, abs=0.004)
    # Fig. 8: node CPU 75-85 % for 10, 15 and 30 High vRGWs, lower for one.
    for n in (10, 15, 30):
        assert 75 <= predict(SEED, HIGH, n).node_cpu_pct <= 85
    assert predict(SEED, HIGH, 1).node_cpu_pct < 50
    # Fig. 9: per-vRGW CPU is the node's share.
    p = predict(SEED, HIGH, 15)
    assert p.vrgw_cpu_pct == pytest.approx(p.node_cpu_pct / 15, rel=1e-3)


def test_prediction_is_monotone_in_n() -> None:
    points = [predict(SEED, HIGH, n) for n in range(1, 60)]
    assert all(a.throughput_mbps >= b.throughput_mbps for a, b in itertools.pairwise(points))
    assert all(a.udp_loss <= b.udp_loss for a, b in itertools.pairwise(points))
    assert largest_meeting(points) == max_customers(SEED, HIGH)


def test_slower_link_scales_the_answer() -> None:
    assert max_customers(SEED, HIGH.scaled(0.1), link_mbps=100) == max_customers(SEED, HIGH)


def test_fit_recovers_a_known_calibration() -> None:
    truth = SEED.model_copy(update={"name": "truth"})
    measured = []
    for n in (1, 5, 10, 20, 30):
        p = predict(truth, HIGH, n)
        total = p.throughput_mbps * n
        tcp_share = (total - n * HIGH.offered_udp_mbps()) / n
        measured.append(
            Measured(
                n=n,
                total_mbps=total,
                tcp_share_mbps=max(0.0, tcp_share),
                udp_loss=p.udp_loss,
                node_cpu_pct=p.node_cpu_pct,
            )
        )
    got = fit("fitted", 1000.0, measured)
    assert got.forward_mbps == pytest.approx(truth.forward_mbps, rel=1e-3)
    assert got.single_mbps == pytest.approx(truth.single_mbps, rel=1e-3)
    assert got.loss_k_mbps == pytest.approx(truth.loss_k_mbps, rel=0.02)
    assert got.cpu_per_mbps_pct == pytest.approx(truth.cpu_per_mbps_pct, rel=0.02)
    assert max_customers(got, HIGH) == max_customers(truth, HIGH)
