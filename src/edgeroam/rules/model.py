"""Operator rules (seed 002 ¶0054–0061): a condition over metrics, states and operations, and the
actions it triggers — built-in (scale, migrate, heal, notify) or custom (an executable or a
Python entry point) — run in sequence or in parallel, with triggers, timers and preconditions
between them.

A rules file looks like::

    rules:
      - name: fw-hot
        when: {all: [{metric: load, source: "group:fw", op: ">", value: 0.9},
                     {not: {operation: scale-out, group: fw, within_s: 600}}]}
        occurrences: 3          # consecutive cycles the condition must hold
        cooldown_s: 900
        mode: sequence          # each action after the previous one completed
        actions:
          - {id: grow, do: scale, group: fw, direction: out, count: 2}
          - {id: tell, do: notify, message: "fw grown by 2", delay_s: 60}
          - {do: custom, exec: [/usr/local/bin/open-ticket, fw], after: [tell]}

Everything is validated on load; every problem names its place in the file
(``rules[0].actions[2].after[0]: unknown action id 'tel'``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from edgeroam.model import (
    HostKind,
    HostState,
    Identifier,
    LifecycleStage,
    Model,
    OperationKind,
    OperationState,
    Role,
    Severity,
)
from edgeroam.model.base import NonNegative
from edgeroam.model.document import DocumentError

Comparator = Literal[">", ">=", "<", "<=", "==", "!="]


class RulesError(DocumentError):
    """A rules document cannot be used; the message names each faulty location."""


# --- conditions ---------------------------------------------------------------------------------


class MetricCondition(Model):
    """A reading compared with a value; stale or missing readings make it false (unknown).

    `source` is a telemetry source (``instance:fw-1``, ``host:edge-1``...) or ``group:<id>``,
    whose metrics are ``load`` (worst metric's utilisation), ``active``, ``serving``,
    ``standby`` and ``failed`` (member counts), or any member metric (mean over serving members).
    """

    metric: str = Field(min_length=1, max_length=100, pattern=r"^[a-z][a-z0-9_.]*$")
    source: str = Field(pattern=r"^[a-z]+:[A-Za-z0-9_.:\-/]+$")
    op: Comparator = ">"
    value: float


class InstanceCondition(Model):
    instance: Identifier
    stage: LifecycleStage | None = None
    role: Role | None = None
    exists: bool = True

    @model_validator(mode="after")
    def _something(self) -> InstanceCondition:
        if self.exists and self.stage is None and self.role is None:
            raise ValueError("give stage and/or role (or exists: false)")
        return self


class HostCondition(Model):
    host: Identifier
    state: HostState


class OperationCondition(Model):
    """An operation (an event of the lifecycle) recently seen: in flight, or finished within
    `within_s` in the given state."""

    operation: OperationKind | Literal["any"]
    state: OperationState = OperationState.COMPLETED
    subject: str | None = None
    group: Identifier | None = None
    within_s: NonNegative = 300.0


class AllOf(Model):
    all: tuple[Condition, ...] = Field(min_length=1)


class AnyOf(Model):
    any: tuple[Condition, ...] = Field(min_length=1)


class Not(Model):
    not_: Condition = Field(alias="not")


# Tags end in "~" so they never coincide with a key of the document (error locations skip them).
_CONDITION_KEYS = ("all", "any", "not", "metric", "instance", "host", "operation")
_CONDITION_CLASSES: tuple[tuple[type[Model], str], ...] = (
    (AllOf, "all"),
    (AnyOf, "any"),
    (Not, "not"),
    (MetricCondition, "metric"),
    (InstanceCondition, "instance"),
    (HostCondition, "host"),
    (OperationCondition, "operation"),
)


def _condition_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return next((f"{key}~" for key in _CONDITION_KEYS if key in value), None)
    return next((f"{tag}~" for cls, tag in _CONDITION_CLASSES if isinstance(value, cls)), None)


Condition = Annotated[
    Annotated[AllOf, Tag("all~")]
    | Annotated[AnyOf, Tag("any~")]
    | Annotated[Not, Tag("not~")]
    | Annotated[MetricCondition, Tag("metric~")]
    | Annotated[InstanceCondition, Tag("instance~")]
    | Annotated[HostCondition, Tag("host~")]
    | Annotated[OperationCondition, Tag("operation~")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition",
        custom_error_message="a condition needs one of the keys all, any, not, metric, "
        "instance, host or operation",
    ),
]

AllOf.model_rebuild()
AnyOf.model_rebuild()
Not.model_rebuild()


# --- actions ------------------------------------------------------------------------------------

BUILT_IN = ("scale", "migrate", "heal", "notify")
ActionKind = Literal["scale", "migrate", "heal", "notify", "custom"]

_FIELDS: dict[str, tuple[set[str], set[str]]] = {
    # kind: (required, allowed besides the common ones)
    "scale": ({"group", "direction"}, {"group", "direction", "count"}),
    "migrate": ({"instance"}, {"instance", "to", "kinds"}),
    "heal": ({"instance"}, {"instance", "to"}),
    "notify": ({"message"}, {"message", "severity", "tags"}),
    "custom": (set(), {"exec", "entry_point", "timeout_s", "params"}),
}
_SPECIFIC = {f for _, allowed in _FIELDS.values() for f in allowed}


class ActionSpec(Model):
    id: Identifier | None = Field(default=None, description="Defaults to a1, a2, ... by position.")
    do: ActionKind
    group: Identifier | None = None
    direction: Literal["out", "in"] | None = None
    count: int = Field(default=1, ge=1, le=100)
    instance: Identifier | None = None
    to: Identifier | None = None
    kinds: tuple[HostKind, ...] = ()
    message: str | None = Field(default=None, min_length=1, max_length=2000)
    severity: Severity = Severity.WARNING
    tags: tuple[str, ...] = ()
    exec: tuple[str, ...] | None = Field(default=None, min_length=1)
    entry_point: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][\w.]*(:[A-Za-z_]\w*)?$",
        description="module:function, or the name of an `edgeroam.actions` entry point.",
    )
    timeout_s: float = Field(default=30.0, gt=0, le=3600)
    params: dict[str, Any] = Field(default_factory=dict)
    after: tuple[str, ...] = Field(
        default=(), description="Start when these actions (of the same rule) have completed."
    )
    delay_s: NonNegative = Field(default=0.0, description="Timer started by the trigger.")
    precondition: Condition | None = None
    wait_s: NonNegative = Field(
        default=0.0, description="How long to wait for the precondition before giving up."
    )

    @model_validator(mode="before")
    @classmethod
    def _fields_of_kind(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("do") not in _FIELDS:
            return data
        kind = data["do"]
        required, allowed = _FIELDS[kind]
        given = {k for k, v in data.items() if v is not None}
        missing = sorted(required - given)
        if missing:
            raise ValueError(f"a {kind} action needs {', '.join(missing)}")
        foreign = sorted((given & _SPECIFIC) - allowed)
        if foreign:
            raise ValueError(f"a {kind} action does not take {', '.join(foreign)}")
        if kind == "custom" and ("exec" in given) == ("entry_point" in given):
            raise ValueError("a custom action needs exactly one of exec or entry_point")
        return data

    @property
    def external(self) -> bool:
        """Executed by the action runner, outside the pure control cycle."""
        return self.do in ("notify", "custom")


class Rule(Model):
    name: Identifier
    description: str = ""
    enabled: bool = True
    when: Condition
    occurrences: int = Field(default=1, ge=1, description="Consecutive cycles `when` must hold.")
    cooldown_s: NonNegative = Field(default=300.0, description="Quiet time after the rule fired.")
    mode: Literal["sequence", "parallel"] = Field(
        default="sequence",
        description="sequence: each action after the previous completed; parallel: all at once "
        "unless an action lists `after`.",
    )
    actions: tuple[ActionSpec, ...] = Field(min_length=1)

    @field_validator("actions")
    @classmethod
    def _named(cls, actions: tuple[ActionSpec, ...]) -> tuple[ActionSpec, ...]:
        return tuple(
            a if a.id is not None else a.model_copy(update={"id": f"a{i + 1}"})
            for i, a in enumerate(actions)
        )

    @model_validator(mode="after")
    def _graph(self) -> Rule:
        problems = []
        ids = [a.id for a in self.actions]
        seen: set[str | None] = set()
        for i, ident in enumerate(ids):
            if ident in seen:
                problems.append(f"actions[{i}].id: duplicate action id {ident!r}")
            seen.add(ident)
        for i, action in enumerate(self.actions):
            for j, dep in enumerate(action.after):
                if dep not in ids:
                    problems.append(f"actions[{i}].after[{j}]: unknown action id {dep!r}")
                elif dep == action.id:
                    problems.append(f"actions[{i}].after[{j}]: an action cannot wait for itself")
        if not problems:
            cycle = _cycle(self)
            if cycle:
                problems.append("actions: the `after` triggers form a loop: " + " → ".join(cycle))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def dependencies(self, index: int) -> tuple[str, ...]:
        """What action `index` waits for: its `after`, and in sequence mode the one before."""
        action = self.actions[index]
        deps = list(action.after)
        if self.mode == "sequence" and index > 0:
            previous = self.actions[index - 1].id
            if previous is not None and previous not in deps:
                deps.append(previous)
        return tuple(deps)


def _cycle(rule: Rule) -> list[str]:
    graph = {a.id: list(a.after) for a in rule.actions}
    state: dict[str | None, int] = {}
    trail: list[str] = []

    def visit(node: str | None) -> list[str]:
        state[node] = 1
        trail.append(str(node))
        for nxt in graph.get(node, []):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt]
            if state.get(nxt) is None:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        trail.pop()
        return []

    for node in graph:
        if state.get(node) is None:
            found = visit(node)
            if found:
                return found
    return []


class RuleSet(Model):
    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        problems = []
        for i, rule in enumerate(self.rules):
            if rule.name in seen:
                problems.append(f"rules[{i}].name: duplicate rule name {rule.name!r}")
            seen.add(rule.name)
        if problems:
            raise ValueError("\n".join(problems))
        return self


# --- loading ------------------------------------------------------------------------------------


def _where(loc: Sequence[int | str], data: Any) -> str:
    """A pydantic location as it reads in the document (union tags dropped)."""
    out = ""
    node = data
    for element in loc:
        if isinstance(node, dict) and element in node:
            out += f".{element}"
            node = node[element]
        elif isinstance(element, int) and isinstance(node, list | tuple):
            out += f"[{element}]"
            node = node[element] if 0 <= element < len(node) else None
        elif node is not None and not isinstance(node, dict | list | tuple):
            break
    return out.lstrip(".")


_LOCATED = re.compile(r"^[a-z_]+(\[\d+\])*(\.[a-z_]+(\[\d+\])*)*: ")


def problems_of(exc: ValidationError, data: Any) -> list[str]:
    """Each error as ``location: message``, the location written as in the document."""
    problems = []
    errors = exc.errors()
    for error in errors:
        loc = tuple(error["loc"])
        if error["type"] == "too_short" and any(
            len(e["loc"]) > len(loc) and tuple(e["loc"][: len(loc)]) == loc for e in errors
        ):
            continue  # an item below failed; "too short" only repeats it
        where = _where(error["loc"], data)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "missing":
            where = f"{where}.{error['loc'][-1]}" if where else str(error["loc"][-1])
        for line in message.splitlines():
            if _LOCATED.match(line):  # a model validator's problem, located inside the model
                problems.append(f"{where}.{line}" if where else line)
            else:
                problems.append(f"{where}: {line}" if where else line)
    return problems


def parse_rules(data: Any, source: str = "<rules>") -> RuleSet:
    """Validate a parsed document: ``{rules: [...]}`` or a bare list of rules."""
    if isinstance(data, list):
        data = {"rules": data}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise RulesError(source, [f"expected a mapping with `rules:`, not {type(data).__name__}"])
    try:
        return RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(source, problems_of(exc, data)) from None


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a YAML rules file; every failure is a RulesError naming the place."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(source, [f"cannot read the file: {exc.strerror or exc}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise RulesError(source, [f"{where}{getattr(exc, 'problem', None) or exc}"]) from None
    return parse_rules(data, source)
