"""Shared fixtures: a small topology and database URLs for every supported backend.

`db_url` runs a test once against a SQLite file and once against PostgreSQL. PostgreSQL is
found through EDGEROAM_TEST_POSTGRES_URL: unset → those tests skip (with the reason); set but
unreachable → they fail, so a broken CI database never passes silently. Each test module gets a
uniquely named PostgreSQL database (dropped at the end of the module), and every test starts
from an empty schema in it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from edgeroam.model import (
    Criticality,
    Customer,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Link,
    LinkKind,
    ParameterSpec,
    Reason,
    Resources,
    Site,
    SiteKind,
)
from edgeroam.store import Store

POSTGRES_ENV = "EDGEROAM_TEST_POSTGRES_URL"

#: Kinds in the order their references require (a host needs its site, ...).
LOAD_ORDER = ("site", "customer", "flavor", "function", "host", "link")


# -- a small world ------------------------------------------------------------------------------
def world_objects() -> dict[str, list[BaseModel]]:
    """Two customers, a home with a B&B CPE, an edge site with two servers and a cloud host."""
    return {
        "site": [
            Site(id="home-a", kind=SiteKind.HOME),
            Site(id="edge-1", kind=SiteKind.EDGE, region="north", rooms=("r1", "r2")),
            Site(id="dc-1", kind=SiteKind.DATACENTER, region="north"),
        ],
        "customer": [
            Customer(id="alice", name="Alice", profile="average"),
            Customer(id="bob", name="Bob"),
        ],
        "flavor": [
            Flavor(id="small", vcpu=1, memory_mb=512, bandwidth_mbps=10),
            Flavor(id="large", vcpu=4, memory_mb=4096, bandwidth_mbps=100, max_delay_ms=20),
        ],
        "function": [
            FunctionSpec(
                name="fw",
                flavor="small",
                criticality=Criticality.HIGH,
                parameters={
                    "mode": ParameterSpec(
                        type="string", default="open", choices=("open", "strict")
                    ),
                    "port": ParameterSpec(type="port", default=8443),
                },
            ),
            FunctionSpec(name="cache", flavor="large", placement=(HostKind.SERVER,)),
            FunctionSpec(
                name="dns",
                flavor="small",
                placement=(HostKind.CPE, HostKind.SERVER, HostKind.CLOUD),
                criticality=Criticality.LOW,
            ),
        ],
        "host": [
            Host(
                id="cpe-alice",
                kind=HostKind.CPE,
                site="home-a",
                owner="alice",
                lends_capacity=True,
                capacity=Resources(vcpu=2, memory_mb=2048, bandwidth_mbps=100),
            ),
            Host(
                id="edge-a",
                kind=HostKind.SERVER,
                site="edge-1",
                room="r1",
                capacity=Resources(vcpu=8, memory_mb=16384, bandwidth_mbps=1000),
            ),
            Host(
                id="edge-b",
                kind=HostKind.SERVER,
                site="edge-1",
                room="r2",
                capacity=Resources(vcpu=8, memory_mb=16384, bandwidth_mbps=1000),
            ),
            Host(
                id="cloud-1",
                kind=HostKind.CLOUD,
                site="dc-1",
                capacity=Resources(vcpu=64, memory_mb=262144, bandwidth_mbps=10000),
            ),
        ],
        "link": [
            Link(id="access-alice", a="cpe-alice", b="edge-1", capacity_mbps=100),
            Link(
                id="uplink-edge",
                a="edge-1",
                b="dc-1",
                capacity_mbps=10000,
                kind=LinkKind.UPLINK,
                delay_ms=5,
            ),
        ],
    }


@dataclass
class World:
    objects: dict[str, list[BaseModel]] = field(default_factory=dict)

    def ids(self, kind: str) -> list[str]:
        key = "name" if kind == "function" else "id"
        return [str(getattr(o, key)) for o in self.objects.get(kind, [])]


def make_world(controller: Any, now: float = 0.0) -> World:
    """Put the small world into a controller (and its store, if it has one)."""
    objects = world_objects()
    for kind in LOAD_ORDER:
        for obj in objects[kind]:
            controller.put(kind, obj, now)
    controller.events.flush()
    return World(objects)


def load_world(inventory: Any) -> World:
    """Bulk-load the small world into a bare Inventory."""
    objects = world_objects()
    inventory.load(**{f"{kind}s": objects[kind] for kind in LOAD_ORDER})
    return World(objects)


def reason(rule: str = "test", message: str = "asked by a test") -> Reason:
    return Reason(rule=rule, message=message)


# -- databases ----------------------------------------------------------------------------------
@contextmanager
def fresh_postgres_database(base_url: str) -> Iterator[str]:
    """Create an empty uniquely named database on the server of `base_url`; drop it after."""
    url = make_url(base_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    admin = create_engine(
        url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}, poolclass=NullPool
    )
    name = f"edgeroam_t_{uuid.uuid4().hex[:16]}"
    problem = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except SQLAlchemyError as exc:
        problem = str(exc).splitlines()[0]
    if problem is not None:
        admin.dispose()
        pytest.fail(
            f"{POSTGRES_ENV} is set but PostgreSQL at "
            f"{url.render_as_string(hide_password=True)} is unusable: {problem}",
            pytrace=False,
        )
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()


def reset_postgres_schema(url: str) -> None:
    """Drop everything in the database's public schema: the next Store migrates from zero."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        with engine.connect() as conn:
            # A connection left open by a test would block the drop: fail instead of hanging.
            conn.execute(text("SET lock_timeout = '10s'"))
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def postgres_module_url() -> Iterator[str]:
    """A database of its own for each test module, dropped when the module is done."""
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(
            f"{POSTGRES_ENV} is not set; `make test` sets it, or export the URL printed by "
            "scripts/ensure-postgres.sh"
        )
    with fresh_postgres_database(base) as url:
        yield url


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, then PostgreSQL with an empty schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'edgeroam.db'}"
        return
    url: str = request.getfixturevalue("postgres_module_url")
    reset_postgres_schema(url)
    yield url


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Any) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'edgeroam.db'}")
    try:
        yield s
    finally:
        s.close()
