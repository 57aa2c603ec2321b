"""Table definitions; the Alembic migrations create exactly these."""

from __future__ import annotations

from sqlalchemy import JSON, Column, Float, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

INVENTORY_KINDS = ("site", "customer", "flavor", "function", "host", "link", "instance", "group")


def _inventory(name: str) -> Table:
    return Table(
        name,
        metadata,
        Column("id", String(128), primary_key=True),
        Column("data", JSON, nullable=False),
        Column("updated_at", Float, nullable=False),
    )


sites = _inventory("sites")
customers = _inventory("customers")
flavors = _inventory("flavors")
functions = _inventory("functions")
hosts = _inventory("hosts")
links = _inventory("links")
instances = _inventory("instances")
groups = _inventory("groups")

INVENTORY_TABLES = {
    "site": sites,
    "customer": customers,
    "flavor": flavors,
    "function": functions,
    "host": hosts,
    "link": links,
    "instance": instances,
    "group": groups,
}

operations = Table(
    "operations",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("state", String(32), nullable=False),
    Column("subject", String(256), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_operations_state", "state"),
    Index("ix_operations_created", "created_at"),
)

readings = Table(
    "readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False),
    Column("metric", String(100), nullable=False),
    Column("value", Float, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_readings_series", "source", "metric", "timestamp"),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("time", Float, nullable=False),
    Column("category", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("tags", Text, nullable=False, default=""),
    Column("message", Text, nullable=False),
    Column("data", JSON, nullable=False),
    Index("ix_events_time", "time"),
    Index("ix_events_category", "category"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
