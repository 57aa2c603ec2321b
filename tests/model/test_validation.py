"""Domain model validation: each bad input is rejected with an error naming the fault."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from edgeroam.model import (
    Coordinates,
    Customer,
    Event,
    Flavor,
    FunctionSpec,
    Host,
    HostKind,
    Instance,
    Link,
    Operation,
    OperationKind,
    OperationState,
    ParameterSpec,
    Reading,
    Resources,
    Site,
    SiteKind,
)
from tests.conftest import reason

CAP = {"vcpu": 1, "memory_mb": 1, "bandwidth_mbps": 1}


def only_error(exc: pytest.ExceptionInfo[ValidationError]) -> dict[str, Any]:
    errors = exc.value.errors()
    assert len(errors) == 1, errors
    return dict(errors[0])


def test_cpe_without_owner_is_rejected_naming_the_host() -> None:
    with pytest.raises(ValidationError) as exc:
        Host(id="cpe-9", kind=HostKind.CPE, site="home", capacity=CAP)
    error = only_error(exc)
    assert "'cpe-9'" in error["msg"]
    assert "needs an owner customer" in error["msg"]


def test_cpe_with_owner_is_accepted() -> None:
    host = Host(id="cpe-9", kind="cpe", site="home", owner="carol", capacity=CAP)
    assert host.owner == "carol"
    assert host.kind is HostKind.CPE


@pytest.mark.parametrize("kind", [HostKind.SERVER, HostKind.CLOUD])
def test_only_a_cpe_can_lend_capacity(kind: HostKind) -> None:
    with pytest.raises(ValidationError) as exc:
        Host(id="s1", kind=kind, site="dc", capacity=CAP, lends_capacity=True)
    assert "only a CPE can lend capacity" in only_error(exc)["msg"]


def test_link_with_identical_ends_is_rejected() -> None:
    with pytest.raises(ValidationError) as exc:
        Link(id="loop", a="edge-1", b="edge-1", capacity_mbps=10)
    msg = only_error(exc)["msg"]
    assert "'loop'" in msg
    assert "both ends are 'edge-1'" in msg


@pytest.mark.parametrize("capacity", [0, -1.0])
def test_link_capacity_must_be_positive(capacity: float) -> None:
    with pytest.raises(ValidationError) as exc:
        Link(id="l", a="x", b="y", capacity_mbps=capacity)
    error = only_error(exc)
    assert error["loc"] == ("capacity_mbps",)
    assert error["type"] == "greater_than"


@pytest.mark.parametrize("field", ["vcpu", "memory_mb", "bandwidth_mbps"])
def test_negative_host_capacity_is_rejected_at_its_path(field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Host(id="s1", kind="server", site="dc", capacity={**CAP, field: -0.5})
    error = only_error(exc)
    assert error["loc"] == ("capacity", field)
    assert error["type"] == "greater_than_equal"


@pytest.mark.parametrize("field", ["vcpu", "memory_mb", "bandwidth_mbps"])
def test_negative_flavor_resource_is_rejected(field: str) -> None:
    values: dict[str, Any] = {"id": "f", "vcpu": 1, "memory_mb": 1, field: -1}
    with pytest.raises(ValidationError) as exc:
        Flavor(**values)
    assert only_error(exc)["loc"] == (field,)


@pytest.mark.parametrize(
    ("model", "data", "extra"),
    [
        (Site, {"id": "s", "kind": "edge", "colour": "red"}, "colour"),
        (Customer, {"id": "c", "nmae": "typo"}, "nmae"),
        (Flavor, {"id": "f", "vcpu": 1, "memory_mb": 1, "disk_gb": 5}, "disk_gb"),
        (Resources, {"vcpu": 1, "gpu": 1}, "gpu"),
        (Instance, {"id": "i", "function": "fw", "host": "h", "hots": "x"}, "hots"),
        (Link, {"id": "l", "a": "x", "b": "y", "capacity_mbps": 1, "latency": 3}, "latency"),
    ],
)
def test_unknown_fields_are_rejected(
    model: type[BaseModel], data: dict[str, Any], extra: str
) -> None:
    with pytest.raises(ValidationError) as exc:
        model.model_validate(data)
    error = only_error(exc)
    assert error["type"] == "extra_forbidden"
    assert error["loc"] == (extra,)


def test_unknown_nested_field_is_rejected_at_its_path() -> None:
    with pytest.raises(ValidationError) as exc:
        Host.model_validate(
            {"id": "h", "kind": "server", "site": "s", "capacity": {**CAP, "disk": 1}}
        )
    assert only_error(exc)["loc"] == ("capacity", "disk")


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("", "string_too_short"),
        ("-starts-with-dash", "string_pattern_mismatch"),
        ("_underscore", "string_pattern_mismatch"),
        ("has space", "string_pattern_mismatch"),
        ("slash/inside", "string_pattern_mismatch"),
        ("ünïcode", "string_pattern_mismatch"),
        ("x" * 129, "string_too_long"),
    ],
)
def test_bad_identifiers_are_rejected(value: str, kind: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Site(id=value, kind="edge")
    error = only_error(exc)
    assert error["loc"] == ("id",)
    assert error["type"] == kind


@given(
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}", fullmatch=True),
)
def test_every_well_formed_identifier_is_accepted(value: str) -> None:
    assert Customer(id=value).id == value


def test_identifier_rules_apply_to_references_too() -> None:
    with pytest.raises(ValidationError) as exc:
        Instance(id="i-1", function="fw", host="bad host")
    assert only_error(exc)["loc"] == ("host",)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_reading_value_must_be_finite(value: float) -> None:
    with pytest.raises(ValidationError) as exc:
        Reading(source="host:h1", metric="cpu", value=value, timestamp=1)
    error = only_error(exc)
    assert error["loc"] == ("value",)
    assert "finite" in error["msg"]


@pytest.mark.parametrize(
    "source",
    [
        "disk:sda",  # unknown kind
        "host:",  # empty id
        "host",  # no kind separator
        "Host:h1",  # kinds are lower case
        "host:h 1",  # space in the id
        "link:a,b",  # comma is not allowed
    ],
)
def test_reading_source_must_be_kind_colon_id(source: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Reading(source=source, metric="cpu", value=1, timestamp=0)
    assert only_error(exc)["loc"] == ("source",)


@pytest.mark.parametrize(
    "source", ["host:h1", "link:access-07", "flow:alice/web", "instance:fw.1", "room:edge-1:r1"]
)
def test_reading_source_examples_are_accepted(source: str) -> None:
    assert Reading(source=source, metric="cpu.load_1m", value=0.5, timestamp=0).source == source


@pytest.mark.parametrize(("metric", "ok"), [("cpu", True), ("Cpu", False), ("1cpu", False)])
def test_reading_metric_pattern(metric: str, ok: bool) -> None:
    if ok:
        Reading(source="host:h", metric=metric, value=0, timestamp=0)
    else:
        with pytest.raises(ValidationError) as exc:
            Reading(source="host:h", metric=metric, value=0, timestamp=0)
        assert only_error(exc)["loc"] == ("metric",)


def test_reading_timestamp_must_not_be_negative() -> None:
    with pytest.raises(ValidationError) as exc:
        Reading(source="host:h", metric="cpu", value=0, timestamp=-1)
    assert only_error(exc)["loc"] == ("timestamp",)


@pytest.mark.parametrize(("lat", "lon", "bad"), [(91, 0, "lat"), (0, -181, "lon")])
def test_coordinates_ranges(lat: float, lon: float, bad: str) -> None:
    with pytest.raises(ValidationError) as exc:
        Coordinates(lat=lat, lon=lon)
    assert only_error(exc)["loc"] == (bad,)


def test_function_needs_a_placement_kind() -> None:
    with pytest.raises(ValidationError) as exc:
        FunctionSpec(name="fw", flavor="small", placement=())
    assert "at least one host kind" in only_error(exc)["msg"]


def test_parameter_type_must_be_known() -> None:
    with pytest.raises(ValidationError) as exc:
        ParameterSpec(type="float")
    msg = only_error(exc)["msg"]
    assert "'float'" in msg
    assert "number" in msg  # the message lists the valid types


def test_site_kind_must_be_known() -> None:
    with pytest.raises(ValidationError) as exc:
        Site(id="s", kind="basement")
    error = only_error(exc)
    assert error["loc"] == ("kind",)
    assert error["type"] == "enum"
    for kind in SiteKind:
        assert repr(kind.value) in error["msg"]


def test_models_are_frozen() -> None:
    site = Site(id="s", kind="edge")
    with pytest.raises(ValidationError):
        site.region = "south"  # type: ignore[misc]
    assert site.region == "default"


def test_resources_add_and_fit() -> None:
    a = Resources(vcpu=1, memory_mb=100, bandwidth_mbps=5)
    b = Resources(vcpu=2.5, memory_mb=50, bandwidth_mbps=0)
    total = a + b
    assert (total.vcpu, total.memory_mb, total.bandwidth_mbps) == (3.5, 150, 5)
    assert a.fits_in(total)
    assert not total.fits_in(a)
    assert a.fits_in(a)


def test_flavor_resources_mirror_its_fields() -> None:
    flavor = Flavor(id="f", vcpu=2, memory_mb=256, bandwidth_mbps=7)
    assert flavor.resources == Resources(vcpu=2, memory_mb=256, bandwidth_mbps=7)


def test_instance_group_key_and_serving() -> None:
    inst = Instance(id="i", function="fw", host="h")
    assert inst.group_key == "fw"
    assert not inst.serving  # still onboarding
    grouped = Instance(id="i", function="fw", host="h", group="g1", stage="monitoring")
    assert grouped.group_key == "g1"
    assert grouped.serving


def test_operation_state_flags_partition_the_states() -> None:
    in_flight = {s for s in OperationState if s.in_flight}
    final = {s for s in OperationState if s.final}
    assert not in_flight & final
    assert in_flight | final == set(OperationState)
    assert OperationState.FAILED_TEMP in in_flight  # waits for an operator, still blocks
    assert OperationState.ROLLED_BACK in final


def test_operation_requires_a_reason_and_valid_ids() -> None:
    with pytest.raises(ValidationError) as exc:
        Operation(id="op-1", kind=OperationKind.MIGRATE, subject="i")  # type: ignore[call-arg]
    assert only_error(exc)["loc"] == ("reason",)
    with pytest.raises(ValidationError) as exc:
        Operation(id="op 1", kind="migrate", subject="i", reason=reason())
    assert only_error(exc)["loc"] == ("id",)


def test_event_rejects_unknown_category() -> None:
    with pytest.raises(ValidationError) as exc:
        Event(time=0, category="gossip", message="x")
    assert only_error(exc)["loc"] == ("category",)
