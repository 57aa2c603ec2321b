"""Carrying out the controller's actions on this host: sandboxes and the functions in them.

Every action is idempotent (creating a sandbox that exists, stopping a function that is not
running: done), and every key's outcome is remembered, so an action delivered twice — the
agent's answer got lost, the controller restarted — runs once. What runs is written to a small
state file after each change, so a restarted agent takes its functions over again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from edgeroam.agent.config import AgentConfig
from edgeroam.agent.functions import IMPLEMENTATIONS, Function, FunctionError
from edgeroam.drivers.netns import ActionResult, AgentAction, AgentState
from edgeroam.testbed.cgroups import Sandbox, SandboxError
from edgeroam.testbed.nft import Nft

log = logging.getLogger("edgeroam.agent")
REMEMBERED_KEYS = 10_000
STATE_FILE = "agent-state.json"


@dataclass
class Slot:
    instance: str
    function: str
    sandbox: Sandbox
    running: Function | None = None


class Executor:
    def __init__(self, config: AgentConfig, nft: Nft) -> None:
        self.config = config
        self.nft = nft
        self.slots: dict[str, Slot] = {}
        self._results: OrderedDict[str, ActionResult] = OrderedDict()
        self._lock = threading.Lock()
        config.state_dir.mkdir(parents=True, exist_ok=True)

    # -- actions ------------------------------------------------------------------------------
    def execute(self, action: AgentAction) -> ActionResult:
        with self._lock:
            known = self._results.get(action.key)
            if known is not None:
                return known
            try:
                message = self._apply(action.action, action.args)
                result = ActionResult(key=action.key, outcome="done", message=message)
            except (FunctionError, SandboxError, ValueError, OSError) as exc:
                result = ActionResult(key=action.key, outcome="failed", message=str(exc)[:4000])
                log.warning("%s %s failed: %s", action.action, action.key, exc)
            self._results[action.key] = result
            while len(self._results) > REMEMBERED_KEYS:
                self._results.popitem(last=False)
            self._save()
            return result

    def _apply(self, action: str, args: dict[str, Any]) -> str:
        if action == "noop":
            return ""
        if action in ("power_off", "power_on"):
            raise ValueError(f"{action}: an agent cannot switch its own host off or on")
        host = args.get("host")
        if host != self.config.host:
            raise ValueError(
                f"{action} for host {host!r} reached the agent of {self.config.host!r}"
            )
        instance = args.get("instance")
        if not isinstance(instance, str) or not 0 < len(instance) <= 128:
            raise ValueError(f"{action}: missing or invalid instance {instance!r}")
        slot = self.slots.get(instance)
        if action == "create_sandbox":
            function = self._function(args)
            entry = self.config.functions[function]
            if slot is None:
                slot = Slot(instance, function, Sandbox(self.config.prefix, host, instance))
            slot.sandbox.create(entry.vcpu, entry.memory_mb)
            self.slots[instance] = slot
            return f"sandbox {slot.sandbox.relative} ready"
        if action == "remove_sandbox":
            if slot is None:
                return "no sandbox (already removed)"
            if slot.running is not None:
                slot.running.stop()
                slot.running = None
            slot.sandbox.destroy()
            del self.slots[instance]
            return "sandbox removed"
        if action == "stop_function":
            if slot is None or slot.running is None:
                return "not running"
            slot.running.stop()
            slot.running = None
            return "stopped"
        params = args.get("params") or {}
        if not isinstance(params, dict):
            raise ValueError(f"{action}: params must be a mapping, not {type(params).__name__}")
        if slot is None:
            raise ValueError(f"{action}: instance {instance} has no sandbox on {host}")
        if action == "start_function":
            function = self._function(args)
            if function != slot.function:
                raise ValueError(
                    f"start_function: the sandbox of {instance} holds {slot.function}, "
                    f"not {function}"
                )
            if slot.running is not None:
                slot.running.update(params)
                return "already running; parameters applied"
            fn = self._make(slot)
            fn.start(params)
            slot.running = fn
            return f"{slot.function} started ({fn.implementation.value})"
        if action == "update_function":
            if slot.running is None:
                raise ValueError(f"update_function: {instance} is not running on {host}")
            slot.running.update(params)
            return "parameters applied"
        raise ValueError(f"unknown action {action!r}")

    def _function(self, args: dict[str, Any]) -> str:
        function = args.get("function")
        if function not in self.config.functions:
            raise ValueError(
                f"function {function!r} is not installed on {self.config.host}; "
                f"installed: {sorted(self.config.functions)}"
            )
        return str(function)

    def _make(self, slot: Slot) -> Function:
        entry = self.config.functions[slot.function]
        cls = IMPLEMENTATIONS[entry.implementation]
        return cls(self.config, self.nft, slot.instance, slot.function, slot.sandbox)

    # -- views --------------------------------------------------------------------------------
    def state(self) -> AgentState:
        with self._lock:
            return AgentState(
                sandboxes=tuple(sorted(self.slots)),
                running=tuple(sorted(i for i, s in self.slots.items() if s.running is not None)),
            )

    def running(self) -> list[tuple[str, str, Function]]:
        with self._lock:
            return [
                (s.instance, s.function, s.running)
                for s in self.slots.values()
                if s.running is not None
            ]

    def sandboxes(self) -> list[Slot]:
        with self._lock:
            return list(self.slots.values())

    # -- persistence --------------------------------------------------------------------------
    def _save(self) -> None:
        data = {
            name: {
                "function": s.function,
                "running": s.running is not None,
                "params": s.running.params if s.running is not None else {},
            }
            for name, s in self.slots.items()
        }
        path = self.config.state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)

    def restore(self) -> list[str]:
        """Take over what a previous agent of this host left running; returns problems."""
        path = self.config.state_dir / STATE_FILE
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return [f"{path}: unreadable ({exc}); starting empty"]
        problems = []
        with self._lock:
            for name, item in data.items():
                function = item.get("function")
                if function not in self.config.functions:
                    problems.append(f"{name}: function {function!r} is no longer installed")
                    continue
                slot = Slot(name, function, Sandbox(self.config.prefix, self.config.host, name))
                entry = self.config.functions[function]
                try:
                    slot.sandbox.create(entry.vcpu, entry.memory_mb)
                    if item.get("running"):
                        fn = self._make(slot)
                        fn.start(item.get("params") or {})
                        slot.running = fn
                except (FunctionError, SandboxError, ValueError, OSError) as exc:
                    problems.append(f"{name}: {exc}")
                self.slots[name] = slot
            self._save()
        return problems
