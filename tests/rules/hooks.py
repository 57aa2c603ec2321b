"""Entry points the rules tests call as custom actions."""

from __future__ import annotations

from typing import Any

CALLS: list[dict[str, Any]] = []


def record(context: dict[str, Any]) -> str:
    CALLS.append(context)
    return f"recorded {context['action']}"


def refuse(context: dict[str, Any]) -> bool:
    del context
    return False
