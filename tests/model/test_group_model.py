"""Managed groups: validation and the N:M ratio arithmetic."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from edgeroam.model import Group, GroupKind, LoadMetric, Ratio


def test_a_group_rejects_inconsistent_settings() -> None:
    with pytest.raises(ValidationError, match="min_size 3 is above max_size 2"):
        Group(id="g", function="f", min_size=3, max_size=2)
    with pytest.raises(ValidationError, match=r"metric\(s\) \['cpu'\] listed twice"):
        Group(
            id="g",
            function="f",
            metrics=(LoadMetric(name="cpu", capacity=1), LoadMetric(name="cpu", capacity=2)),
        )
    with pytest.raises(ValidationError, match="cannot be its own manager"):
        Group(id="g", function="f", manager="g")
    with pytest.raises(ValidationError, match="cannot be its own peer"):
        Group(id="g", function="f", peers=("g",))
    with pytest.raises(ValidationError, match="Extra inputs"):
        Group.model_validate({"id": "g", "function": "f", "min": 1})
    with pytest.raises(ValidationError, match="greater than 0"):
        LoadMetric(name="jobs", capacity=0)


def test_manager_kinds() -> None:
    assert GroupKind.LOCAL_MANAGER.is_manager and GroupKind.CLOUD_MANAGER.is_manager
    assert not GroupKind.FUNCTION.is_manager


@given(
    actives=st.integers(min_value=0, max_value=500),
    n=st.integers(min_value=1, max_value=20),
    m=st.integers(min_value=0, max_value=20),
)
def test_standbys_keep_at_least_the_ratio_and_no_more(actives: int, n: int, m: int) -> None:
    wanted = Ratio(active=n, standby=m).standbys_for(actives)
    # Smallest s with s * n >= actives * m, found by counting up.
    s = 0
    while s * n < actives * m:
        s += 1
    assert wanted == s == math.ceil(actives * m / n)
