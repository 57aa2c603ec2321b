"""Function sandboxes: cgroup v1 groups (cpu, cpuacct, memory, freezer) per instance.

A sandbox is the testbed's stand-in for the "virtual machine" the seeds start on a CPE: an
isolated, resource-limited place whose limits come from the function's flavor (vCPU → CFS
quota, memory → hard limit) and whose processes can be frozen and killed as one. Its path is
``/sys/fs/cgroup/<controller>/<prefix root>/<host>/<instance>``, so everything of a bed sits
under one directory per controller and is found again by prefix.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("cpu", "cpuacct", "memory", "freezer")
CFS_PERIOD_US = 100_000
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SandboxError(RuntimeError):
    """A sandbox cannot be created or removed; the message names the cgroup."""


def root_name(prefix: str) -> str:
    return prefix.rstrip("-")


def safe(name: str) -> str:
    return _UNSAFE.sub("_", name)


def available() -> list[str]:
    """Controllers of the list that are mounted as cgroup v1 hierarchies here."""
    return [c for c in CONTROLLERS if (CGROUP_ROOT / c / "cgroup.procs").exists()]


class Sandbox:
    def __init__(self, prefix: str, host: str, instance: str) -> None:
        self.relative = Path(root_name(prefix)) / safe(host) / safe(instance)
        self.instance = instance

    def path(self, controller: str) -> Path:
        return CGROUP_ROOT / controller / self.relative

    def exists(self) -> bool:
        return self.path("memory").is_dir()

    def create(self, vcpu: float, memory_mb: float) -> None:
        """Idempotent: an existing sandbox gets its limits set again."""
        missing = [c for c in CONTROLLERS if c not in available()]
        if missing:
            raise SandboxError(f"cgroup v1 controller(s) {missing} are not mounted")
        try:
            for controller in CONTROLLERS:
                self.path(controller).mkdir(parents=True, exist_ok=True)
            if vcpu > 0:
                (self.path("cpu") / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
                quota = max(1000, int(vcpu * CFS_PERIOD_US))
                (self.path("cpu") / "cpu.cfs_quota_us").write_text(str(quota))
            if memory_mb > 0:
                limit = int(memory_mb * 1024 * 1024)
                (self.path("memory") / "memory.limit_in_bytes").write_text(str(limit))
        except OSError as exc:
            raise SandboxError(f"sandbox {self.relative}: {exc}") from exc

    def enter(self) -> None:
        """Move the calling process into the sandbox (used between fork and exec)."""
        pid = str(os.getpid())
        for controller in CONTROLLERS:
            (self.path(controller) / "cgroup.procs").write_text(pid)

    def pids(self) -> list[int]:
        try:
            text = (self.path("memory") / "cgroup.procs").read_text()
        except FileNotFoundError:
            return []
        return [int(x) for x in text.split()]

    def usage(self) -> dict[str, float]:
        """Memory in MB and CPU time in seconds used by the sandbox's processes."""
        out: dict[str, float] = {}
        with contextlib.suppress(OSError, ValueError):
            used = (self.path("memory") / "memory.usage_in_bytes").read_text()
            out["memory_mb"] = int(used) / 2**20
        with contextlib.suppress(OSError, ValueError):
            ns = (self.path("cpuacct") / "cpuacct.usage").read_text()
            out["cpu_s"] = int(ns) / 1e9
        return out

    def destroy(self) -> None:
        """Freeze, kill and remove; idempotent."""
        _kill_and_remove(self.relative)


def _kill_and_remove(relative: Path) -> None:
    freezer = CGROUP_ROOT / "freezer" / relative
    if freezer.is_dir():
        # Frozen processes cannot fork away while we kill them; SIGKILL works on frozen tasks
        # once they are thawed.
        with contextlib.suppress(OSError):
            (freezer / "freezer.state").write_text("FROZEN")
        for controller in CONTROLLERS:
            for proc in (CGROUP_ROOT / controller / relative).rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    for pid in proc.read_text().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
        # Thaw top-down: a child frozen on its own (a suspended vRGW) stays frozen when only
        # its parent is thawed, and its killed tasks would never exit.
        states = sorted(freezer.rglob("freezer.state"), key=lambda p: len(p.parts))
        for state in states:
            with contextlib.suppress(OSError):
                state.write_text("THAWED")
    for controller in CONTROLLERS:
        top = CGROUP_ROOT / controller / relative
        if not top.is_dir():
            continue
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*dirs, top]:
            deadline = time.monotonic() + 2.0
            while True:
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise SandboxError(f"cannot remove cgroup {path}: {exc}") from exc
                    time.sleep(0.02)


def find_all(prefix: str) -> list[str]:
    """Top-level cgroups of the bed(s) with this prefix, as controller/name: the same beds
    whose namespaces start with the prefix (``er7-`` finds ``er7`` and ``er7-lab``, never
    ``er7t1x2``)."""
    found = []
    for controller in CONTROLLERS:
        base = CGROUP_ROOT / controller
        with contextlib.suppress(FileNotFoundError):
            for entry in sorted(os.listdir(base)):
                if f"{entry}-".startswith(prefix) and (base / entry).is_dir():
                    found.append(f"{controller}/{entry}")
    return found


def remove_all(prefix: str) -> list[str]:
    found = find_all(prefix)
    for item in found:
        _, name = item.split("/", 1)
        with contextlib.suppress(SandboxError):
            _kill_and_remove(Path(name))
    return found
