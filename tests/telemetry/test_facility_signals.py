"""Facility readings: validation, and which reading speaks for each host."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from edgeroam.model import Reading
from edgeroam.telemetry.facility import (
    CODES,
    METRICS,
    PREFIX,
    SIGNALS,
    Level,
    Parameter,
    Resolved,
    Scope,
    code_levels,
    host_sources,
    parse_height,
    reading_problem,
    resolve,
    signal_values,
    unknown,
)


@dataclass
class Column:
    ids: tuple[str, ...]
    index: dict[str, int]
    values: np.ndarray
    stale: np.ndarray


def column(entries: dict[str, tuple[float, bool]]) -> Column:
    """source → (value, stale)."""
    ids = tuple(entries)
    return Column(
        ids=ids,
        index={s: i for i, s in enumerate(ids)},
        values=np.array([v for v, _ in entries.values()], dtype=float),
        stale=np.array([st for _, st in entries.values()], dtype=bool),
    )


HOSTS = ("h1", "h2", "h3", "h4")
ROOMS = ("r1", "r1", "r2", None)
SITES = ("s1", "s1", "s1", "s2")


def test_the_most_specific_source_that_reported_speaks_for_a_host() -> None:
    col = column(
        {
            "site:s1": (20.0, False),
            "room:r1": (25.0, False),
            "host:h2": (31.0, False),
            "site:s2": (22.0, False),
        }
    )
    sources = host_sources(col, HOSTS, ROOMS, SITES)
    got = resolve(col, sources, -50, 150)
    assert got.values.tolist() == [25.0, 31.0, 20.0, 22.0]
    assert got.scope.tolist() == [Scope.ROOM, Scope.HOST, Scope.SITE, Scope.SITE]
    assert got.known.all()
    assert sources.known_sources == 4


def test_a_stale_host_reading_is_unknown_not_the_calm_room_reading() -> None:
    col = column({"room:r1": (24.0, False), "host:h1": (45.0, True)})
    got = resolve(col, host_sources(col, HOSTS, ROOMS, SITES), -50, 150)
    assert got.known.tolist() == [False, True, False, False]
    assert got.values[1] == 24.0


def test_implausible_values_are_flagged_and_unknown() -> None:
    col = column({"host:h1": (140.0, False), "host:h2": (-3.0, False)})
    got = resolve(col, host_sources(col, HOSTS, ROOMS, SITES), 0, 100)
    assert got.invalid.tolist() == [True, True, False, False]
    assert not got.known.any()


def test_codes_map_to_their_levels_and_unknown_codes_are_refused() -> None:
    codes = np.array([0.0, 2.0, 4.0, 1.5, 9.0, np.nan])
    levels, ok = code_levels(Parameter.POWER, codes)
    assert ok.tolist() == [True, True, True, False, False, False]
    assert levels[:3].tolist() == [float(CODES[Parameter.POWER][c][1]) for c in (0, 2, 4)]
    assert levels[2] == Level.FAILED


def _metric_getter(found: dict[str, Resolved], n: int):  # type: ignore[no-untyped-def]
    return lambda name: found.get(name, unknown(n))


def test_water_clearance_from_level_and_mount_height_or_given_directly() -> None:
    n = 3
    level = Resolved(
        values=np.array([120.0, 120.0, 120.0]),
        known=np.array([True, True, True]),
        scope=np.array([1, 1, 1]),
        invalid=np.zeros(n, dtype=bool),
    )
    direct = Resolved(
        values=np.array([np.nan, np.nan, 35.0]),
        known=np.array([False, False, True]),
        scope=np.array([-1, -1, 0]),
        invalid=np.zeros(n, dtype=bool),
    )
    heights = np.array([400.0, np.nan, 150.0])
    got = signal_values(
        "water_clearance_mm",
        _metric_getter(
            {PREFIX + "water_level_mm": level, PREFIX + "water_clearance_mm": direct}, n
        ),
        heights,
    )
    assert got.known.tolist() == [True, False, True]
    assert got.values[0] == 400.0 - 120.0
    assert got.values[2] == 35.0  # the host's own clearance sensor wins
    assert got.scope.tolist()[::2] == [1, 0]


def test_power_margin_is_available_over_required() -> None:
    n = 3

    def res(values: list[float], known: list[bool]) -> Resolved:
        return Resolved(
            values=np.array(values),
            known=np.array(known),
            scope=np.zeros(n, dtype=np.int64),
            invalid=np.zeros(n, dtype=bool),
        )

    got = signal_values(
        "power_margin",
        _metric_getter(
            {
                PREFIX + "power_available_w": res([1200.0, 900.0, 500.0], [True, True, True]),
                PREFIX + "power_required_w": res([1000.0, 0.0, 400.0], [True, True, False]),
            },
            n,
        ),
        np.full(n, np.nan),
    )
    assert got.known.tolist() == [True, False, False]
    assert got.values[0] == pytest.approx(1.2)


def test_reading_problems_say_what_is_wrong() -> None:
    def problem(source: str, metric: str, value: float) -> str | None:
        return reading_problem(Reading(source=source, metric=metric, value=value, timestamp=0))

    assert problem("host:h1", "cpu_pct", 500) is None  # not a facility reading
    assert problem("room:r1", "facility.temperature_c", 30) is None
    assert problem("site:s1", "facility.code.power", 2) is None
    message = problem("link:l1", "facility.temperature_c", 30)
    assert message is not None and "host:, room: or site:" in message
    message = problem("host:h1", "facility.humidity", 30)
    assert message is not None and "unknown facility metric" in message
    message = problem("host:h1", "facility.battery_pct", 130)
    assert message is not None and "outside the plausible range [0, 100]" in message
    message = problem("host:h1", "facility.code.power", 7)
    assert message is not None and "unknown code 7" in message and "2=on_battery" in message
    message = problem("host:h1", "facility.code.smoke", 1)
    assert message is not None and "unknown parameter 'smoke'" in message


def test_mount_height_labels() -> None:
    assert parse_height({}) is None
    assert parse_height({"mount_height_mm": "250"}) == 250.0
    with pytest.raises(ValueError, match="not a number of millimetres"):
        parse_height({"mount_height_mm": "high"})
    with pytest.raises(ValueError, match=">= 0"):
        parse_height({"mount_height_mm": "-5"})


def test_catalogue_is_consistent() -> None:
    assert all(m.startswith(PREFIX) for m in METRICS)
    parameters = {s.parameter for s in SIGNALS.values()}
    assert parameters == set(Parameter)
    for table in CODES.values():
        assert table[0][1] is Level.NORMAL
