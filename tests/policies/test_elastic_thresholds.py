"""Thresholds of the elastic policy: static, relative to peers, always underload < overload."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeroam.model import GroupKind
from edgeroam.policies.elastic import (
    ElasticConfig,
    Scaling,
    Threshold,
    _columns,
    effective_level,
    effective_thresholds,
)
from edgeroam.policies.groupstate import group_index
from edgeroam.policies.registry import default_registry
from tests.policies.groupworld import GroupWorld

loads = st.floats(min_value=0.0, max_value=3.0, allow_nan=False)


@given(
    level=st.floats(min_value=0.05, max_value=2.0),
    within=st.floats(min_value=0.01, max_value=1.0),
    peers=st.lists(loads, max_size=8),
)
def test_peer_relative_level_follows_the_most_loaded_peer(
    level: float, within: float, peers: list[float]
) -> None:
    threshold = Threshold(level=level, peer_within=within)
    got = effective_level(threshold, np.array(peers))
    expected = max([level, (1 - within) * max(peers)] if peers else [level])
    assert got == pytest.approx(expected)
    assert got >= level


@given(
    level=st.floats(min_value=0.05, max_value=2.0),
    raise_by=st.floats(min_value=0.01, max_value=1.0),
    when=st.integers(min_value=1, max_value=5),
    peer_level=st.floats(min_value=0.05, max_value=2.0),
    peers=st.lists(loads, max_size=8),
)
def test_level_rises_exactly_when_enough_peers_are_loaded(
    level: float, raise_by: float, when: int, peer_level: float, peers: list[float]
) -> None:
    threshold = Threshold(
        level=level, raise_by=raise_by, raise_when_peers=when, raise_peer_level=peer_level
    )
    loaded = sum(1 for p in peers if p >= peer_level)
    expected = level + raise_by if loaded >= when else level
    assert effective_level(threshold, np.array(peers)) == pytest.approx(expected)


def test_a_raise_needs_all_three_settings() -> None:
    with pytest.raises(ValidationError, match="raise_by needs both"):
        Threshold(level=0.8, raise_by=0.1, raise_when_peers=2)
    with pytest.raises(ValidationError, match="need a positive raise_by"):
        Threshold(level=0.8, raise_when_peers=2, raise_peer_level=0.9)


@given(
    over=st.floats(min_value=0.1, max_value=2.0),
    under_share=st.floats(min_value=0.0, max_value=2.0),
)
def test_underload_must_be_strictly_below_overload(over: float, under_share: float) -> None:
    under = over * under_share
    if under <= 0:
        return
    if under < over:
        scaling = Scaling(overload=over, underload=under)
        assert scaling.underload.level < scaling.effective_target < scaling.overload.level
    else:
        with pytest.raises(ValidationError, match="must be below overload"):
            Scaling(overload=over, underload=under)


def test_per_group_overrides_are_validated_with_their_place() -> None:
    registry = default_registry()
    with pytest.raises(ValueError, match=r"policies\.elastic.*groups\.fw: .*must be below"):
        registry.validate("elastic", {"groups": {"fw": {"underload": 0.9}}})
    with pytest.raises(ValueError, match=r"groups\.fw\.overlaod: Extra inputs are not permitted"):
        registry.validate("elastic", {"groups": {"fw": {"overlaod": 0.9}}})


@settings(max_examples=60, deadline=None)
@given(
    levels=st.lists(
        st.tuples(
            st.floats(min_value=0.1, max_value=1.5),
            st.floats(min_value=0.05, max_value=0.95),
            st.one_of(st.none(), st.floats(min_value=0.01, max_value=1.0)),
            st.one_of(st.none(), st.floats(min_value=0.01, max_value=1.0)),
        ),
        min_size=1,
        max_size=5,
    ),
    group_loads=st.lists(st.one_of(st.just(float("nan")), loads), min_size=5, max_size=5),
)
def test_effective_underload_stays_below_effective_overload(
    levels: list[tuple[float, float, float | None, float | None]], group_loads: list[float]
) -> None:
    """Whatever peers do to either level, a group never gets underload >= overload."""
    world = GroupWorld()
    overrides = {}
    for i, (over, share, over_within, under_within) in enumerate(levels):
        gid = f"g{i}"
        world.group(gid, kind=GroupKind.FUNCTION)
        overrides[gid] = {
            "overload": {"level": over, "peer_within": over_within},
            "underload": {"level": over * share, "peer_within": under_within},
        }
    config = ElasticConfig.model_validate({"groups": overrides})
    index = group_index(world.snapshot(0.0))
    cols = _columns(config, index)
    load = np.array(group_loads[: len(levels)])
    over, under = effective_thresholds(index, cols, load)
    assert np.all(under < over)
    assert np.all(over >= cols.over_level - 1e-12)
