import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from edgeroam.sim.profiles import (
    BurstsProfile,
    ConstantProfile,
    DiurnalProfile,
    Profile,
    RampProfile,
    StepsProfile,
    parse_profile,
)

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
rate = st.floats(min_value=0, max_value=1e5, allow_nan=False)
noise = st.floats(min_value=0, max_value=300, allow_nan=False)


def increasing_points(min_size: int = 1) -> st.SearchStrategy[list[tuple[float, float]]]:
    return st.lists(
        st.tuples(st.integers(-1000, 100_000), rate),
        min_size=min_size,
        max_size=8,
        unique_by=lambda p: p[0],
    ).map(lambda pts: sorted((float(t), v) for t, v in pts))


def test_bare_number_is_a_constant_profile() -> None:
    profile = parse_profile(300)
    assert isinstance(profile, ConstantProfile)
    assert profile.rate(0.0) == 300.0
    assert parse_profile(2.5).rate(1e9) == 2.5


def test_bare_number_works_inside_a_model_field() -> None:
    class Holder(BaseModel):
        rate_mbps: Profile

    assert Holder.model_validate({"rate_mbps": 7}).rate_mbps == ConstantProfile(mbps=7)


def test_booleans_and_negative_rates_are_rejected() -> None:
    with pytest.raises(ValidationError):
        parse_profile(True)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        parse_profile(-1)
    with pytest.raises(ValidationError, match="noise_pct"):
        parse_profile({"kind": "constant", "mbps": 1, "noise_pct": -5})


def test_unknown_kind_and_unknown_field_are_rejected() -> None:
    with pytest.raises(ValidationError, match="'wave'"):
        parse_profile({"kind": "wave", "mbps": 1})
    with pytest.raises(ValidationError, match="Extra inputs"):
        parse_profile({"kind": "constant", "mbps": 1, "mpbs": 2})


def test_steps_hold_each_value_until_the_next_point() -> None:
    p = parse_profile({"kind": "steps", "points": [[10, 5], [20, 50], [30, 0]]})
    assert isinstance(p, StepsProfile)
    assert p.rate(9.99) == 0.0  # before the first point
    assert p.rate(10) == 5.0
    assert p.rate(19.99) == 5.0
    assert p.rate(20) == 50.0
    assert p.rate(29) == 50.0
    assert p.rate(30) == 0.0
    assert p.rate(1e9) == 0.0


@pytest.mark.parametrize("kind", ["steps", "ramp"])
def test_points_must_strictly_increase_and_the_error_says_which(kind: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_profile({"kind": kind, "points": [[0, 1], [5, 2], [5, 3]]})
    assert "point [2] at t=5.0 does not come after point [1] at t=5.0" in str(info.value)
    with pytest.raises(ValidationError, match="point \\[1\\]"):
        parse_profile({"kind": kind, "points": [[5, 1], [4, 2]]})
    with pytest.raises(ValidationError, match="at least 1"):
        parse_profile({"kind": kind, "points": []})


def test_ramp_interpolates_linearly_and_holds_outside() -> None:
    p = parse_profile({"kind": "ramp", "points": [[10, 10], [20, 30], [40, 0]]})
    assert isinstance(p, RampProfile)
    assert p.rate(0) == 10.0
    assert p.rate(15) == pytest.approx(20.0)  # halfway from 10 to 30
    assert p.rate(25) == pytest.approx(30.0 - 30.0 * 5 / 20)
    assert p.rate(40) == 0.0
    assert p.rate(100) == 0.0


def test_diurnal_follows_a_sine_and_is_clipped() -> None:
    p = DiurnalProfile(kind="diurnal", base=100, amplitude=50, period_s=40)
    assert p.rate(0) == pytest.approx(100)
    assert p.rate(10) == pytest.approx(150)  # a quarter period: sin = 1
    assert p.rate(30) == pytest.approx(50)
    shifted = DiurnalProfile(kind="diurnal", base=100, amplitude=50, period_s=40, phase_s=10)
    assert shifted.rate(20) == pytest.approx(150)
    low = DiurnalProfile(kind="diurnal", base=10, amplitude=50, period_s=40)
    assert low.rate(30) == 0.0  # 10 - 50 clipped
    floored = DiurnalProfile(kind="diurnal", base=10, amplitude=50, period_s=40, floor=3)
    assert floored.rate(30) == 3.0
    assert DiurnalProfile(kind="diurnal", base=1, amplitude=0).period_s == 86400


def test_bursts_are_half_open_intervals() -> None:
    p = BurstsProfile(kind="bursts", base=5, peak=50, starts=(10, 100), duration_s=5)
    assert p.rate(9.99) == 5
    assert p.rate(10) == 50
    assert p.rate(14.99) == 50
    assert p.rate(15) == 5
    assert p.rate(102) == 50


def test_noise_needs_a_generator_and_a_percentage() -> None:
    quiet = ConstantProfile(mbps=100)
    rng = np.random.default_rng(3)
    state = rng.bit_generator.state
    assert quiet.rate(0, rng) == 100
    assert rng.bit_generator.state == state  # no number drawn for a noiseless profile

    noisy = ConstantProfile(mbps=100, noise_pct=10)
    assert noisy.rate(0) == 100
    z = np.random.default_rng(7).standard_normal()
    assert noisy.rate(0, np.random.default_rng(7)) == pytest.approx(100 * (1 + 0.1 * z))


def test_noise_is_reproducible_from_the_seed() -> None:
    p = parse_profile({"kind": "ramp", "points": [[0, 10], [10, 20]], "noise_pct": 25})
    a = [p.rate(t, np.random.default_rng(11)) for t in range(5)]
    b = [p.rate(t, np.random.default_rng(11)) for t in range(5)]
    assert a == b


@given(points=increasing_points())
def test_steps_and_ramp_are_exact_at_their_points(points: list[tuple[float, float]]) -> None:
    steps = parse_profile({"kind": "steps", "points": points})
    ramp = parse_profile({"kind": "ramp", "points": points})
    for t, v in points:
        assert steps.rate(t) == v
        assert ramp.rate(t) == v


@given(points=increasing_points(min_size=2), frac=st.floats(0, 1))
def test_ramp_stays_between_its_neighbouring_points(
    points: list[tuple[float, float]], frac: float
) -> None:
    ramp = parse_profile({"kind": "ramp", "points": points})
    (t0, v0), (t1, v1) = points[0], points[1]
    value = ramp.rate(t0 + frac * (t1 - t0))
    assert min(v0, v1) - 1e-6 <= value <= max(v0, v1) + 1e-6


profiles = st.one_of(
    st.builds(lambda m, n: {"kind": "constant", "mbps": m, "noise_pct": n}, rate, noise),
    st.builds(
        lambda pts, n: {"kind": "steps", "points": pts, "noise_pct": n}, increasing_points(), noise
    ),
    st.builds(
        lambda pts, n: {"kind": "ramp", "points": pts, "noise_pct": n}, increasing_points(), noise
    ),
    st.builds(
        lambda b, a, p, ph, n: {
            "kind": "diurnal",
            "base": b,
            "amplitude": a,
            "period_s": p,
            "phase_s": ph,
            "noise_pct": n,
        },
        rate,
        finite,
        st.floats(0.1, 1e6),
        finite,
        noise,
    ),
    st.builds(
        lambda b, p, s, d, n: {
            "kind": "bursts",
            "base": b,
            "peak": p,
            "starts": s,
            "duration_s": d,
            "noise_pct": n,
        },
        rate,
        rate,
        st.lists(finite, max_size=5),
        st.floats(0.1, 1e4),
        noise,
    ),
)


@given(spec=profiles, t=finite, seed=st.integers(0, 2**32 - 1))
def test_no_profile_is_ever_negative(spec: dict[str, object], t: float, seed: int) -> None:
    profile = parse_profile(spec)
    for rng in (None, np.random.default_rng(seed)):
        value = profile.rate(t, rng)
        assert value >= 0
        assert math.isfinite(value)
