"""Sandbox teardown also frees processes in a child cgroup frozen on its own (a suspended
vRGW inside a host's sandbox tree)."""

from __future__ import annotations

import subprocess
import time

import pytest

from edgeroam.testbed import cgroups

pytestmark = pytest.mark.root


def test_destroy_kills_and_removes_a_self_frozen_child(prefix: str) -> None:
    sandbox = cgroups.Sandbox(prefix, "host-a", "inst-1")
    sandbox.create(vcpu=0.5, memory_mb=64)
    child = cgroups.Sandbox(prefix, "host-a", "inst-1/suspended")
    child.relative = sandbox.relative / "suspended"
    child.create(vcpu=0.2, memory_mb=32)
    sleeper = subprocess.Popen(["sleep", "60"], preexec_fn=child.enter)
    try:
        (child.path("freezer") / "freezer.state").write_text("FROZEN")
        deadline = time.monotonic() + 5
        while (child.path("freezer") / "freezer.state").read_text().strip() != "FROZEN":
            assert time.monotonic() < deadline, "the child cgroup never froze"
            time.sleep(0.05)
        sandbox.destroy()
        assert sleeper.wait(timeout=5) == -9
        assert not sandbox.path("freezer").exists()
        assert not sandbox.exists()
    finally:
        if sleeper.poll() is None:
            sleeper.kill()
