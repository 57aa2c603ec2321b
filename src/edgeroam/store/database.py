"""The repository: every database read and write of edgeroam goes through `Store`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from sqlalchemy import Connection, Engine, create_engine, delete, event, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from edgeroam.model import (
    INVENTORY_MODELS,
    Event,
    EventCategory,
    Instance,
    Operation,
    OperationState,
    Reading,
    Severity,
)
from edgeroam.store import tables


class StoreError(RuntimeError):
    """The database is unreachable or refused a write."""


def default_url() -> str:
    return os.environ.get("EDGEROAM_DATABASE_URL") or "sqlite:///edgeroam.db"


def _key(kind: str, obj: BaseModel) -> str:
    return str(getattr(obj, "name" if kind == "function" else "id"))


class Store:
    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.url = url or default_url()
        if self.url.startswith("postgresql://"):
            self.url = "postgresql+psycopg://" + self.url.removeprefix("postgresql://")
        self.is_sqlite = self.url.startswith("sqlite")
        try:
            self.safe_url = make_url(self.url).render_as_string(hide_password=True)
        except ArgumentError as exc:
            raise StoreError(f"not a database URL: {exc}") from exc
        kwargs: dict[str, Any] = {}
        if self.is_sqlite:
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
        try:
            self.engine: Engine = create_engine(self.url, **kwargs)
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            raise StoreError(f"cannot open database {self.safe_url}: {exc}") from exc
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate:
            self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        config = Config()
        config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        try:
            with self.engine.begin() as conn:
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot migrate {self.safe_url}: {exc}") from exc

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"database {self.safe_url}: {exc.__class__.__name__}: {exc}") from exc

    def ping(self) -> tuple[bool, str]:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(1))
            return True, "reachable"
        except SQLAlchemyError as exc:
            return False, str(exc).splitlines()[0]

    def _upsert(self, conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> None:
        if not rows:
            return
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name != key}
        conn.execute(stmt.on_conflict_do_update(index_elements=[key], set_=updates), rows)

    # -- inventory ----------------------------------------------------------------------------
    def put(self, kind: str, objects: BaseModel | Iterable[BaseModel]) -> None:
        items = [objects] if isinstance(objects, BaseModel) else list(objects)
        now = time.time()
        rows = [
            {"id": _key(kind, o), "data": o.model_dump(mode="json"), "updated_at": now}
            for o in items
        ]
        with self._tx() as conn:
            self._upsert(conn, tables.INVENTORY_TABLES[kind], rows, "id")

    def delete(self, kind: str, key: str) -> None:
        table = tables.INVENTORY_TABLES[kind]
        with self._tx() as conn:
            conn.execute(delete(table).where(table.c.id == key))

    def load(self, kind: str) -> list[BaseModel]:
        table = tables.INVENTORY_TABLES[kind]
        model = INVENTORY_MODELS[kind]
        with self._tx() as conn:
            rows = conn.execute(select(table.c.data).order_by(table.c.id)).all()
        return [model.model_validate(r.data) for r in rows]

    # -- operations ---------------------------------------------------------------------------
    def save_operation(
        self,
        operation: Operation,
        *,
        instances: Sequence[Instance] = (),
        removed_instances: Sequence[str] = (),
        counters: dict[str, int] | None = None,
    ) -> None:
        """Write an operation with the instance changes it implies, in one transaction."""
        row = {
            "id": operation.id,
            "kind": operation.kind.value,
            "state": operation.state.value,
            "subject": operation.subject,
            "created_at": operation.created_at,
            "updated_at": operation.updated_at,
            "data": operation.model_dump(mode="json"),
        }
        with self._tx() as conn:
            self._upsert(conn, tables.operations, [row], "id")
            if instances:
                rows = [
                    {"id": i.id, "data": i.model_dump(mode="json"), "updated_at": i.updated_at}
                    for i in instances
                ]
                self._upsert(conn, tables.instances, rows, "id")
            for name in removed_instances:
                conn.execute(delete(tables.instances).where(tables.instances.c.id == name))
            if counters:
                self._upsert(
                    conn,
                    tables.meta,
                    [{"key": f"counter.{k}", "value": str(v)} for k, v in counters.items()],
                    "key",
                )

    def operation(self, op_id: str) -> Operation | None:
        with self._tx() as conn:
            row = conn.execute(
                select(tables.operations.c.data).where(tables.operations.c.id == op_id)
            ).first()
        return None if row is None else Operation.model_validate(row.data)

    def operations(
        self,
        *,
        states: Sequence[OperationState] = (),
        kind: str | None = None,
        subject: str | None = None,
        since: float | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Operation]:
        t = tables.operations
        query = select(t.c.data).order_by(t.c.created_at, t.c.id)
        if states:
            query = query.where(t.c.state.in_([s.value for s in states]))
        if kind is not None:
            query = query.where(t.c.kind == kind)
        if subject is not None:
            query = query.where(t.c.subject == subject)
        if since is not None:
            query = query.where(t.c.updated_at >= since)
        with self._tx() as conn:
            rows = conn.execute(query.limit(limit).offset(offset)).all()
        return [Operation.model_validate(r.data) for r in rows]

    def counters(self) -> dict[str, int]:
        with self._tx() as conn:
            rows = conn.execute(
                select(tables.meta).where(tables.meta.c.key.like("counter.%"))
            ).all()
        return {r.key.removeprefix("counter."): int(r.value) for r in rows}

    # -- readings -----------------------------------------------------------------------------
    def add_readings(self, readings: Sequence[Reading]) -> int:
        """Append readings in one transaction.

        The hottest write of the system: rows go to the DB-API driver as plain tuples through
        executemany, skipping SQLAlchemy's per-row dictionaries (about twice as fast).
        """
        if not readings:
            return 0
        rows = [(r.source, r.metric, r.value, r.timestamp) for r in readings]
        marker = "%s" if self.engine.dialect.paramstyle in ("format", "pyformat") else "?"
        sql = (
            "INSERT INTO readings (source, metric, value, timestamp) "
            f"VALUES ({marker}, {marker}, {marker}, {marker})"
        )
        with self._tx() as conn:
            conn.exec_driver_sql(sql, rows)
        return len(rows)

    def readings(
        self,
        *,
        source: str | None = None,
        metric: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 1000,
    ) -> list[Reading]:
        t = tables.readings
        query = select(t.c.source, t.c.metric, t.c.value, t.c.timestamp).order_by(
            t.c.timestamp, t.c.id
        )
        if source is not None:
            query = query.where(t.c.source == source)
        if metric is not None:
            query = query.where(t.c.metric == metric)
        if since is not None:
            query = query.where(t.c.timestamp >= since)
        if until is not None:
            query = query.where(t.c.timestamp <= until)
        with self._tx() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            Reading(source=r.source, metric=r.metric, value=r.value, timestamp=r.timestamp)
            for r in rows
        ]

    def count_readings(self) -> int:
        with self._tx() as conn:
            return int(conn.execute(select(func.count()).select_from(tables.readings)).scalar_one())

    def prune_readings(self, before: float) -> int:
        with self._tx() as conn:
            result = conn.execute(
                delete(tables.readings).where(tables.readings.c.timestamp < before)
            )
        return int(result.rowcount or 0)

    # -- events -------------------------------------------------------------------------------
    def add_events(self, items: Sequence[Event]) -> list[Event]:
        """Persist events and return them with their ids."""
        stored: list[Event] = []
        with self._tx() as conn:
            for e in items:
                result = conn.execute(
                    insert(tables.events).values(
                        time=e.time,
                        category=e.category.value,
                        severity=e.severity.value,
                        tags="," + ",".join(e.tags) + "," if e.tags else "",
                        message=e.message,
                        data=e.data,
                    )
                )
                key = result.inserted_primary_key
                stored.append(e.model_copy(update={"id": int(key[0]) if key else None}))
        return stored

    def events(
        self,
        *,
        category: str | None = None,
        tags: Sequence[str] = (),
        severity: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after_id: int | None = None,
        limit: int = 100,
        newest_first: bool = False,
    ) -> list[Event]:
        t = tables.events
        order = (t.c.id.desc(),) if newest_first else (t.c.id,)
        query = select(t).order_by(*order)
        if category is not None:
            query = query.where(t.c.category == category)
        for tag in tags:
            query = query.where(t.c.tags.contains(f",{tag},", autoescape=True))
        if severity is not None:
            query = query.where(t.c.severity == severity)
        if since is not None:
            query = query.where(t.c.time >= since)
        if until is not None:
            query = query.where(t.c.time <= until)
        if after_id is not None:
            query = query.where(t.c.id > after_id)
        with self._tx() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            Event(
                id=r.id,
                time=r.time,
                category=EventCategory(r.category),
                severity=Severity(r.severity),
                tags=tuple(x for x in r.tags.split(",") if x),
                message=r.message,
                data=r.data,
            )
            for r in rows
        ]


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
