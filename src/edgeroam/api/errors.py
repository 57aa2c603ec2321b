"""Turning controller exceptions into HTTP answers, the same way in every route module."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, status
from pydantic import ValidationError

from edgeroam.inventory import InventoryError
from edgeroam.lifecycle import OperationError


def message_of(exc: BaseException) -> str:
    """KeyError's str() adds quotes; the first argument is the readable message."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc)


def not_found(message: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, message)


def conflict(message: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, message)


def unprocessable(detail: str | list[dict[str, Any]]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def validation_detail(
    exc: ValidationError, prefix: Sequence[str | int] = ("body",)
) -> list[dict[str, Any]]:
    """FastAPI's 422 shape (loc, msg, type) for a ValidationError raised inside a handler."""
    return [
        {"loc": [*prefix, *item["loc"]], "msg": item["msg"], "type": item["type"]}
        for item in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


@contextmanager
def inventory_errors() -> Iterator[None]:
    """Unknown → 404, bad content or references → 422 (writes must be fixed by the caller)."""
    try:
        yield
    except KeyError as exc:
        raise not_found(message_of(exc)) from exc
    except ValidationError as exc:
        raise unprocessable(validation_detail(exc)) from exc
    except (InventoryError, ValueError) as exc:
        raise unprocessable(message_of(exc)) from exc


@contextmanager
def operation_errors() -> Iterator[None]:
    """An operation that cannot start or an action that does not fit the state → 409."""
    try:
        yield
    except OperationError as exc:
        raise conflict(str(exc)) from exc
