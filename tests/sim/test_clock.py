import time

import pytest

from edgeroam.sim.clock import Clock, VirtualClock, WallClock


def test_virtual_clock_starts_where_told_and_advances() -> None:
    clock = VirtualClock(start=10.0)
    assert clock.now() == 10.0
    assert clock.advance(2.5) == 12.5
    assert clock.advance(0) == 12.5
    assert clock.now() == 12.5


def test_virtual_clock_default_start_is_zero() -> None:
    assert VirtualClock().now() == 0.0


def test_advance_rejects_negative_steps() -> None:
    clock = VirtualClock(5.0)
    with pytest.raises(ValueError, match="negative"):
        clock.advance(-0.1)
    assert clock.now() == 5.0


def test_set_moves_forward_or_stays_but_never_back() -> None:
    clock = VirtualClock(5.0)
    assert clock.set(5.0) == 5.0
    assert clock.set(8.0) == 8.0
    with pytest.raises(ValueError, match="back"):
        clock.set(7.9)
    assert clock.now() == 8.0


def test_wall_clock_follows_real_time() -> None:
    before = time.time()
    now = WallClock().now()
    assert before <= now <= time.time()


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [VirtualClock(), WallClock()]
    assert all(isinstance(c.now(), float) for c in clocks)
