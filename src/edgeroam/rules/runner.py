"""The action runner: executes the rules' notify and custom actions outside the pure cycle.

The `rules` policy only queues these actions (its memory's outbox). The runner takes what is
queued, runs it — a notify becomes an `alarm` event; a custom action runs an executable
(argument list, no shell, a timeout, the context as JSON on stdin and in EDGEROAM_* variables)
or calls a Python entry point with the context — and files each result back into the policy's
memory, where the next cycle sees it and triggers what waits for it.

It is called before each control cycle: by the runtime's loop (`install(runtime)`) and, in the
simulator, by the `rules` world model (`sim.rules_actions`) of scenarios that configure rules.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgeroam.model import EventCategory
from edgeroam.rules.policy import POLICY, ActionResult, ExternalAction, RulesMemory

if TYPE_CHECKING:
    from edgeroam.controller import Controller
    from edgeroam.runtime import Runtime

ENTRY_POINT_GROUP = "edgeroam.actions"
_OUTPUT_LIMIT = 500


def context(action: ExternalAction, now: float) -> dict[str, Any]:
    """What a custom action is told: the rule, the run, the action and its parameters."""
    spec = action.action
    return {
        "rule": action.rule,
        "run": action.run,
        "action": spec.id,
        "time": now,
        "params": spec.params,
        "message": spec.message,
    }


def resolve_entry_point(name: str) -> Callable[..., Any]:
    """``module:function``, or the name of an entry point in the `edgeroam.actions` group."""
    if ":" in name:
        module, _, attribute = name.partition(":")
        target = getattr(importlib.import_module(module), attribute)
    else:
        found = [
            e for e in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if e.name == name
        ]
        if not found:
            raise LookupError(f"no entry point {name!r} in group {ENTRY_POINT_GROUP!r}")
        target = found[0].load()
    if not callable(target):
        raise TypeError(f"{name} is not callable")
    return target  # type: ignore[no-any-return]


class ActionRunner:
    def __init__(self, *, allow_exec: bool = True) -> None:
        self.allow_exec = allow_exec
        self.executed: list[tuple[str, ActionResult]] = []
        """Every action run so far with its result (newest last), for tests and the API."""

    def run(self, controller: Controller, now: float) -> list[tuple[str, ActionResult]]:
        """Execute what the rules policy queued; file the results into its memory."""
        with controller.lock:
            memory = controller.memory.get(POLICY)
            if not isinstance(memory, RulesMemory):
                return []
            pending = memory.pending()
        if not pending:
            return []
        done = [(a.key, self._execute(controller, a, now)) for a in pending]
        with controller.lock:
            memory = controller.memory.get(POLICY)
            if isinstance(memory, RulesMemory):
                controller.memory[POLICY] = memory.with_results(dict(done))
        self.executed += done
        return done

    def _execute(self, controller: Controller, action: ExternalAction, now: float) -> ActionResult:
        spec = action.action
        try:
            if spec.do == "notify":
                assert spec.message is not None
                controller.events.emit(
                    now,
                    EventCategory.ALARM,
                    spec.message,
                    tags=("rules", action.rule, *spec.tags),
                    severity=spec.severity,
                    data={"rule": action.rule, "run": action.run, "action": spec.id},
                )
                return ActionResult(True, "notified", now)
            if spec.exec is not None:
                return self._exec(action, now)
            assert spec.entry_point is not None
            value = resolve_entry_point(spec.entry_point)(context(action, now))
            if value is False:
                return ActionResult(False, f"{spec.entry_point} returned False", now)
            return ActionResult(
                True, str(value)[:_OUTPUT_LIMIT] if value is not None else "ok", now
            )
        except Exception as exc:  # a custom action's failure fails its step, not the runner
            return ActionResult(False, f"{exc.__class__.__name__}: {exc}"[:_OUTPUT_LIMIT], now)

    def _exec(self, action: ExternalAction, now: float) -> ActionResult:
        spec = action.action
        assert spec.exec is not None
        if not self.allow_exec:
            return ActionResult(False, "executables are disabled on this controller", now)
        env = {
            **os.environ,
            "EDGEROAM_RULE": action.rule,
            "EDGEROAM_RUN": action.run,
            "EDGEROAM_ACTION": str(spec.id),
        }
        try:
            # An argument list from a validated rules file; never a shell.
            done = subprocess.run(
                list(spec.exec),
                input=json.dumps(context(action, now)),
                capture_output=True,
                text=True,
                timeout=spec.timeout_s,
                env=env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return ActionResult(False, f"{spec.exec[0]} timed out after {spec.timeout_s:g} s", now)
        except OSError as exc:
            return ActionResult(False, f"cannot run {spec.exec[0]}: {exc}", now)
        output = (done.stdout or done.stderr).strip()[-_OUTPUT_LIMIT:]
        if done.returncode != 0:
            return ActionResult(False, f"exit status {done.returncode}: {output}", now)
        return ActionResult(True, output or "exit status 0", now)


def install(runtime: Runtime, runner: ActionRunner | None = None) -> ActionRunner:
    """Run the actions before each control cycle of a live controller."""
    runner = runner or ActionRunner()
    controller = runtime.controller

    def hook(now: float) -> None:
        runner.run(controller, now)

    runtime.hooks.append(hook)
    return runner
