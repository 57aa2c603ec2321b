"""validate_params: types, required parameters, defaults, choices and unknown names."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgeroam.model import FunctionSpec, ParameterError, ParameterSpec, validate_params


def fn(**parameters: ParameterSpec) -> FunctionSpec:
    return FunctionSpec(name="vfw", flavor="small", parameters=parameters)


GOOD: list[tuple[str, Any]] = [
    ("string", ""),
    ("string", "eth0"),
    ("integer", 0),
    ("integer", -7),
    ("number", 3),
    ("number", 2.5),
    ("boolean", True),
    ("boolean", False),
    ("port", 1),
    ("port", 65535),
    ("list", []),
    ("list", ("a", "b")),
    ("ipv4", "10.0.0.1"),
    ("cidr", "10.0.0.0/8"),
    ("cidr", "192.168.1.7/24"),  # host bits set: accepted (non-strict)
]

BAD: list[tuple[str, Any]] = [
    ("string", 5),
    ("string", None),
    ("integer", 1.5),
    ("integer", "3"),
    ("integer", True),  # a bool is not an integer here
    ("number", "2.5"),
    ("number", False),
    ("boolean", 1),
    ("boolean", "true"),
    ("port", 0),
    ("port", 65536),
    ("port", -1),
    ("port", 80.0),
    ("port", True),
    ("list", "a,b"),
    ("list", {"a": 1}),
    ("ipv4", "300.0.0.1"),
    ("ipv4", "10.0.0.0/8"),
    ("ipv4", "::1"),
    ("ipv4", None),
    ("cidr", "10.0.0.0/33"),
    ("cidr", "nonsense"),
    ("cidr", 167772160),  # parses as an address, but a CIDR must be written as text
]


@pytest.mark.parametrize(("kind", "value"), GOOD)
def test_valid_values_pass_unchanged(kind: str, value: Any) -> None:
    assert validate_params(fn(p=ParameterSpec(type=kind)), {"p": value}) == {"p": value}


@pytest.mark.parametrize(("kind", "value"), BAD)
def test_invalid_values_name_parameter_value_and_type(kind: str, value: Any) -> None:
    with pytest.raises(ParameterError) as exc:
        validate_params(fn(p=ParameterSpec(type=kind)), {"p": value})
    msg = str(exc.value)
    assert "'p'" in msg
    assert repr(value) in msg
    assert f"valid {kind}" in msg


def test_parameter_error_is_a_value_error() -> None:
    assert issubclass(ParameterError, ValueError)


def test_missing_required_parameter_is_named() -> None:
    spec = fn(wan=ParameterSpec(type="ipv4", required=True), mtu=ParameterSpec(type="integer"))
    with pytest.raises(ParameterError, match=r"'vfw'.*parameter 'wan' is required"):
        validate_params(spec, {"mtu": 1500})


def test_defaults_fill_missing_optional_parameters() -> None:
    spec = fn(
        mode=ParameterSpec(default="open"),
        strict=ParameterSpec(type="boolean", default=False),
        mtu=ParameterSpec(type="integer"),  # no default: stays absent
    )
    assert validate_params(spec, {}) == {"mode": "open", "strict": False}
    assert validate_params(spec, {"mode": "closed", "mtu": 9000}) == {
        "mode": "closed",
        "strict": False,
        "mtu": 9000,
    }


def test_choices_are_enforced_and_listed() -> None:
    spec = fn(mode=ParameterSpec(choices=("open", "strict")))
    assert validate_params(spec, {"mode": "strict"}) == {"mode": "strict"}
    with pytest.raises(ParameterError) as exc:
        validate_params(spec, {"mode": "paranoid"})
    assert "'paranoid' is not one of ['open', 'strict']" in str(exc.value)


def test_type_is_checked_before_choices() -> None:
    spec = fn(level=ParameterSpec(type="integer", choices=(1, 2, 3)))
    with pytest.raises(ParameterError, match="valid integer"):
        validate_params(spec, {"level": "2"})


def test_unknown_names_are_listed_with_the_known_ones() -> None:
    spec = fn(mode=ParameterSpec(), port=ParameterSpec(type="port"))
    with pytest.raises(ParameterError) as exc:
        validate_params(spec, {"mdoe": "x", "zz": 1, "port": 80})
    msg = str(exc.value)
    assert "['mdoe', 'zz']" in msg
    assert "known: ['mode', 'port']" in msg


def test_function_without_parameters_accepts_only_nothing() -> None:
    assert validate_params(fn(), {}) == {}
    with pytest.raises(ParameterError):
        validate_params(fn(), {"x": 1})


@given(st.integers())
def test_port_accepts_exactly_1_to_65535(value: int) -> None:
    spec = fn(p=ParameterSpec(type="port"))
    if 1 <= value <= 65535:
        assert validate_params(spec, {"p": value}) == {"p": value}
    else:
        with pytest.raises(ParameterError):
            validate_params(spec, {"p": value})


@given(st.tuples(*[st.integers(0, 255)] * 4), st.integers(0, 32))
def test_any_dotted_quad_with_prefix_is_a_cidr_not_an_ipv4(
    octets: tuple[int, ...], prefix: int
) -> None:
    address = ".".join(map(str, octets))
    assert validate_params(fn(a=ParameterSpec(type="ipv4")), {"a": address}) == {"a": address}
    network = f"{address}/{prefix}"
    assert validate_params(fn(n=ParameterSpec(type="cidr")), {"n": network}) == {"n": network}
    with pytest.raises(ParameterError):
        validate_params(fn(a=ParameterSpec(type="ipv4")), {"a": network})


def test_input_mapping_is_not_modified() -> None:
    spec = fn(mode=ParameterSpec(default="open"))
    given_params: dict[str, Any] = {}
    validate_params(spec, given_params)
    assert given_params == {}
