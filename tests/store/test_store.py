"""The Store on SQLite and PostgreSQL: schema, inventory, operations, readings, events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import SQLAlchemyError

import edgeroam.store.database as database
from edgeroam.model import (
    Event,
    EventCategory,
    Group,
    Instance,
    LifecycleStage,
    Operation,
    OperationKind,
    OperationState,
    Ratio,
    Reading,
    Severity,
    Step,
)
from edgeroam.store import Store, StoreError, tables
from tests.conftest import reason, world_objects

MIGRATIONS = Path(database.__file__).parent / "migrations"


def head_revision() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def key_of(kind: str, obj: BaseModel) -> str:
    return str(getattr(obj, "name" if kind == "function" else "id"))


def instances_for(n: int, host: str = "edge-a") -> list[Instance]:
    return [
        Instance(id=f"fw.{i}", function="fw", host=host, owner="alice", params={"mode": "open"})
        for i in range(1, n + 1)
    ]


def op(
    op_id: str,
    *,
    kind: OperationKind = OperationKind.INSTANTIATE,
    state: OperationState = OperationState.STARTING,
    subject: str = "fw",
    created_at: float = 0.0,
    updated_at: float | None = None,
) -> Operation:
    return Operation(
        id=op_id,
        kind=kind,
        state=state,
        subject=subject,
        reason=reason(),
        plan=(Step(action="create_sandbox", stage="vi_deployment", args={"host": "edge-a"}),),
        created_at=created_at,
        updated_at=created_at if updated_at is None else updated_at,
    )


# -- schema -------------------------------------------------------------------------------------
def test_migrations_create_every_table_of_the_model(store: Store) -> None:
    found = set(inspect(store.engine).get_table_names())
    assert set(tables.metadata.tables) <= found
    assert "alembic_version" in found
    with store.engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert versions == [head_revision()]


def test_migrated_columns_match_the_table_definitions(store: Store) -> None:
    inspector = inspect(store.engine)
    for name, table in tables.metadata.tables.items():
        migrated = {c["name"] for c in inspector.get_columns(name)}
        assert migrated == {c.name for c in table.columns}, name


def test_migrating_twice_is_harmless_and_keeps_data(db_url: str) -> None:
    first = Store(db_url)
    site = world_objects()["site"][0]
    first.put("site", site)
    first.close()
    second = Store(db_url)  # runs the migrations again
    try:
        second.migrate()
        assert second.load("site") == [site]
        with second.engine.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one()
        assert count == 1
    finally:
        second.close()


def test_store_without_migration_leaves_the_database_empty(db_url: str) -> None:
    s = Store(db_url, migrate=False)
    try:
        assert inspect(s.engine).get_table_names() == []
        assert s.ping() == (True, "reachable")
    finally:
        s.close()


def test_ping(store: Store) -> None:
    assert store.ping() == (True, "reachable")


def test_ping_reports_an_unreachable_server() -> None:
    s = Store("postgresql://postgres@127.0.0.1:1/nothing", migrate=False)
    try:
        ok, message = s.ping()
    finally:
        s.close()
    assert ok is False
    assert message


def test_unreachable_server_on_open_is_a_store_error_without_password() -> None:
    with pytest.raises(StoreError) as exc:
        Store("postgresql://postgres:hunter2@127.0.0.1:1/nothing")
    assert "cannot migrate" in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'wal.db'}")
    try:
        with s.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    finally:
        s.close()


# -- inventory ----------------------------------------------------------------------------------
def every_kind() -> dict[str, list[BaseModel]]:
    objects = world_objects()
    objects["instance"] = list(instances_for(3))
    objects["group"] = [
        Group(id="fw-branch", function="fw", site="edge-1", ratio=Ratio(active=2, standby=1)),
        Group(id="dns", function="dns", min_size=0),
    ]
    return objects


def test_inventory_round_trip_for_every_kind(store: Store) -> None:
    objects = every_kind()
    assert set(tables.INVENTORY_KINDS) <= set(objects), "add an example of the new kind here"
    for kind in tables.INVENTORY_KINDS:
        store.put(kind, objects[kind])
    for kind in tables.INVENTORY_KINDS:
        expected = sorted(objects[kind], key=lambda o, k=kind: key_of(k, o))  # type: ignore[misc]
        assert store.load(kind) == expected, kind
        victim = key_of(kind, expected[0])
        store.delete(kind, victim)
        assert [key_of(kind, o) for o in store.load(kind)] == [
            key_of(kind, o) for o in expected[1:]
        ]


def test_put_replaces_an_object_with_the_same_key(store: Store) -> None:
    inst = instances_for(1)[0]
    store.put("instance", inst)
    moved = inst.model_copy(update={"host": "edge-b", "stage": LifecycleStage.MONITORING})
    store.put("instance", moved)
    assert store.load("instance") == [moved]


def test_delete_removes_only_the_named_object(store: Store) -> None:
    insts = instances_for(3)
    store.put("instance", insts)
    store.delete("instance", "fw.2")
    assert [i.id for i in store.load("instance")] == ["fw.1", "fw.3"]
    store.delete("instance", "fw.2")  # deleting twice is not an error
    assert len(store.load("instance")) == 2


def test_kinds_are_kept_apart(store: Store) -> None:
    objects = world_objects()
    store.put("site", objects["site"])
    for kind in tables.INVENTORY_KINDS:
        if kind != "site":
            assert store.load(kind) == []


# -- operations ---------------------------------------------------------------------------------
def test_save_operation_writes_operation_instances_and_counters(store: Store) -> None:
    insts = instances_for(2)
    operation = op("op-000001")
    store.save_operation(operation, instances=insts, counters={"operation": 1, "instance": 2})
    assert store.operation("op-000001") == operation
    assert store.load("instance") == insts
    assert store.counters() == {"operation": 1, "instance": 2}

    later = operation.model_copy(update={"state": OperationState.COMPLETED, "step": 1})
    store.save_operation(later, removed_instances=["fw.1"], counters={"operation": 5})
    assert store.operation("op-000001") == later
    assert [i.id for i in store.load("instance")] == ["fw.2"]
    assert store.counters() == {"operation": 5, "instance": 2}


def test_save_operation_is_all_or_nothing(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    store.save_operation(op("op-000001"), counters={"operation": 1})
    original = store._upsert

    def failing_upsert(conn: Any, table: Any, rows: list[dict[str, Any]], key: str) -> None:
        if table is tables.meta:
            raise SQLAlchemyError("disk on fire")
        original(conn, table, rows, key)

    monkeypatch.setattr(store, "_upsert", failing_upsert)
    with pytest.raises(StoreError, match="disk on fire"):
        store.save_operation(op("op-000002"), instances=instances_for(1), counters={"operation": 2})
    monkeypatch.undo()
    # The operation row and the instance row were written before the failure: both rolled back.
    assert store.operation("op-000002") is None
    assert store.load("instance") == []
    assert store.counters() == {"operation": 1}
    assert [o.id for o in store.operations()] == ["op-000001"]


def test_unknown_operation_is_none(store: Store) -> None:
    assert store.operation("op-999999") is None


def test_operations_filters(store: Store) -> None:
    S, K = OperationState, OperationKind
    specs = [
        ("op-1", K.INSTANTIATE, S.COMPLETED, "fw", 10.0, 12.0),
        ("op-2", K.MIGRATE, S.PROCESSING, "fw.1", 20.0, 21.0),
        ("op-3", K.MIGRATE, S.FAILED_TEMP, "fw.2", 30.0, 35.0),
        ("op-4", K.TERMINATE, S.ROLLED_BACK, "fw.1", 40.0, 41.0),
        ("op-5", K.HEAL, S.STARTING, "fw.3", 5.0, 50.0),
    ]
    for op_id, kind, state, subject, created, updated in specs:
        store.save_operation(
            op(
                op_id,
                kind=kind,
                state=state,
                subject=subject,
                created_at=created,
                updated_at=updated,
            )
        )

    def ids(**filters: Any) -> list[str]:
        return [o.id for o in store.operations(**filters)]

    by_created = [s[0] for s in sorted(specs, key=lambda s: s[4])]
    assert ids() == by_created
    assert ids(states=[S.PROCESSING, S.FAILED_TEMP, S.STARTING]) == [
        s[0] for s in sorted(specs, key=lambda s: s[4]) if s[2].in_flight
    ]
    assert ids(kind="migrate") == ["op-2", "op-3"]
    assert ids(subject="fw.1") == ["op-2", "op-4"]
    assert ids(since=35.0) == [s[0] for s in sorted(specs, key=lambda s: s[4]) if s[5] >= 35.0]
    assert ids(kind="migrate", states=[S.FAILED_TEMP]) == ["op-3"]
    assert ids(limit=2) == by_created[:2]
    assert ids(limit=2, offset=2) == by_created[2:4]
    assert ids(offset=len(specs)) == []


def test_operations_with_equal_creation_time_come_in_id_order(store: Store) -> None:
    for op_id in ("op-b", "op-c", "op-a"):
        store.save_operation(op(op_id, created_at=1.0))
    assert [o.id for o in store.operations()] == ["op-a", "op-b", "op-c"]


# -- readings -----------------------------------------------------------------------------------
def make_readings() -> list[Reading]:
    return [
        Reading(source=f"host:{h}", metric=m, value=v, timestamp=t)
        for h in ("h1", "h2")
        for m, v in (("cpu", 0.25), ("mem", 512.0))
        for t in (1.0, 2.0, 3.0)
    ]


def test_readings_add_and_query(store: Store) -> None:
    readings = make_readings()
    assert store.add_readings(readings) == len(readings)
    assert store.add_readings([]) == 0
    assert store.count_readings() == len(readings)

    def query(**filters: Any) -> list[Reading]:
        return store.readings(**filters)

    h1_cpu = [r for r in readings if r.source == "host:h1" and r.metric == "cpu"]
    assert query(source="host:h1", metric="cpu") == h1_cpu
    assert query(metric="mem", since=2.0, until=2.0) == [
        r for r in readings if r.metric == "mem" and r.timestamp == 2.0
    ]
    everything = query(limit=10_000)
    assert sorted(everything, key=lambda r: (r.source, r.metric, r.timestamp)) == sorted(
        readings, key=lambda r: (r.source, r.metric, r.timestamp)
    )
    stamps = [r.timestamp for r in everything]
    assert stamps == sorted(stamps)
    assert len(query(limit=4)) == 4
    assert query(source="host:nobody") == []


def test_readings_prune_and_count(store: Store) -> None:
    readings = make_readings()
    store.add_readings(readings)
    older = sum(1 for r in readings if r.timestamp < 2.5)
    assert store.prune_readings(before=2.5) == older
    assert store.count_readings() == len(readings) - older
    assert all(r.timestamp >= 2.5 for r in store.readings(limit=10_000))
    assert store.prune_readings(before=2.5) == 0


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    values=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
        min_size=1,
        max_size=20,
    )
)
def test_reading_values_survive_the_database(store: Store, values: list[float]) -> None:
    with store.engine.begin() as conn:
        conn.execute(tables.readings.delete())
    readings = [
        Reading(source="link:l1", metric="load", value=v, timestamp=float(i))
        for i, v in enumerate(values)
    ]
    store.add_readings(readings)
    assert [r.value for r in store.readings(source="link:l1", limit=100)] == values


# -- events -------------------------------------------------------------------------------------
def make_events() -> list[Event]:
    C, V = EventCategory, Severity
    return [
        Event(time=1.0, category=C.DECISION, tags=("heal", "accepted"), message="a"),
        Event(
            time=2.0,
            category=C.OPERATION,
            tags=("op-1", "migrate"),
            message="b",
            data={"operation": "op-1", "nested": {"x": [1, 2]}},
        ),
        Event(
            time=3.0, category=C.DECISION, tags=("heal", "refused"), severity=V.WARNING, message="c"
        ),
        Event(time=4.0, category=C.SYSTEM, severity=V.ERROR, message="d"),
        Event(time=5.0, category=C.DECISION, tags=("healer", "50%_off"), message="e"),
    ]


def test_add_events_assigns_increasing_ids(store: Store) -> None:
    events = make_events()
    stored = store.add_events(events)
    ids = [e.id for e in stored]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(events)
    assert [e.model_copy(update={"id": None}) for e in stored] == events
    more = store.add_events(events[:1])
    assert more[0].id is not None and more[0].id > max(i for i in ids if i is not None)


def test_events_round_trip_and_filters(store: Store) -> None:
    stored = store.add_events(make_events())
    by_message = {e.message: e for e in stored}

    def messages(**filters: Any) -> list[str]:
        return [e.message for e in store.events(**filters)]

    assert store.events(limit=100) == stored
    assert messages(category="decision") == ["a", "c", "e"]
    assert messages(tags=["heal"]) == ["a", "c"]  # "healer" is a different tag
    assert messages(tags=["heal", "refused"]) == ["c"]
    assert messages(tags=["50%_off"]) == ["e"]  # LIKE wildcards in tags are literal
    assert messages(tags=["%"]) == []
    assert messages(severity="warning") == ["c"]
    assert messages(since=2.0, until=4.0) == ["b", "c", "d"]
    assert messages(after_id=by_message["c"].id) == ["d", "e"]
    assert messages(limit=2) == ["a", "b"]
    assert messages(newest_first=True, limit=2) == ["e", "d"]
    assert messages(category="decision", severity="info", since=1.5) == ["e"]
    assert by_message["b"].data == {"operation": "op-1", "nested": {"x": [1, 2]}}
    untagged = store.events(category="system")[0]
    assert untagged.tags == ()


def test_event_log_flush_persists_through_the_store(store: Store) -> None:
    from edgeroam.events import EventLog

    log = EventLog(store)
    log.emit(1.0, EventCategory.ALARM, "link down", tags=("link:l1",), severity=Severity.CRITICAL)
    queue = log.subscribe()
    flushed = log.flush()
    assert [e.message for e in store.events()] == ["link down"]
    assert flushed[0].id == store.events()[0].id
    assert queue.get_nowait() == flushed[0]
    assert log.counts[("alarm", "critical")] == 1
    assert log.flush() == []


def test_tables_are_plain_sql_readable(store: Store) -> None:
    """The JSON column holds the model dump, so other tools can read the inventory."""
    store.put("host", world_objects()["host"][1])
    with store.engine.connect() as conn:
        data = conn.execute(select(tables.hosts.c.data)).scalar_one()
    assert data["id"] == "edge-a"
    assert data["capacity"]["vcpu"] == 8
