"""Validation of a function's parameters against its declared schema."""

from __future__ import annotations

import ipaddress
from typing import Any

from edgeroam.model.functions import FunctionSpec, ParameterSpec


class ParameterError(ValueError):
    """A parameter value does not match the function's parameter schema."""


def _check(name: str, spec: ParameterSpec, value: Any) -> Any:
    kind = spec.type
    ok: bool
    if kind == "string":
        ok = isinstance(value, str)
    elif kind == "integer":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif kind == "boolean":
        ok = isinstance(value, bool)
    elif kind == "port":
        ok = isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536
    elif kind == "list":
        ok = isinstance(value, list | tuple)
    elif kind == "ipv4":
        try:
            ipaddress.IPv4Address(value)
            ok = True
        except (ipaddress.AddressValueError, ValueError, TypeError):
            ok = False
    else:  # cidr
        try:
            ipaddress.IPv4Network(value, strict=False)
            ok = isinstance(value, str)
        except (ipaddress.AddressValueError, ValueError, TypeError):
            ok = False
    if not ok:
        raise ParameterError(f"parameter {name!r}: {value!r} is not a valid {kind}")
    if spec.choices is not None and value not in spec.choices:
        raise ParameterError(f"parameter {name!r}: {value!r} is not one of {list(spec.choices)}")
    return value


def validate_params(function: FunctionSpec, params: dict[str, Any]) -> dict[str, Any]:
    """Return the parameters with defaults filled in, or raise ParameterError naming the fault."""
    unknown = sorted(set(params) - set(function.parameters))
    if unknown:
        raise ParameterError(
            f"function {function.name!r} has no parameter(s) {unknown}; "
            f"known: {sorted(function.parameters)}"
        )
    result: dict[str, Any] = {}
    for name, spec in function.parameters.items():
        if name in params:
            result[name] = _check(name, spec, params[name])
        elif spec.required:
            raise ParameterError(f"function {function.name!r}: parameter {name!r} is required")
        elif spec.default is not None:
            result[name] = spec.default
    return result
