"""Fixtures: a runtime on a SQLite file with a hand-moved clock, its app and a test client.

The control loop is not started (tests drive `controller.tick` themselves) except where a
test is about the loop's health.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeroam.api import create_app
from edgeroam.runtime import Runtime
from tests.api.support import OPERATOR, FakeClock, TestClient, bearer, built_runtime, load_world


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def runtime(tmp_path: Path, clock: FakeClock) -> Iterator[Runtime]:
    with built_runtime(tmp_path, clock) as rt:
        yield rt


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime)) as c:
        yield c


@pytest.fixture
def ops(client: TestClient) -> TestClient:
    """The same client, authenticated as an operator by default."""
    client.headers.update(bearer(OPERATOR))
    return client


@pytest.fixture
def world(ops: TestClient) -> TestClient:
    load_world(ops)
    return ops
