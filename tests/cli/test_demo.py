"""`edgeroam demo` end to end: first line is the base URL, /health is 2000, hosts are listed."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx


def test_demo_serves_health_and_hosts_then_exits_cleanly() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgeroam.cli",
            "demo",
            "--port",
            "0",
            "--duration",
            "8",
            "--customers",
            "5",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        viewer = proc.stdout.readline().split()[-1]
        assert base.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 5
        health = httpx.get(f"{base}/health", timeout=5).json()
        while health["code"] != 2000 and time.monotonic() < deadline:
            time.sleep(0.2)
            health = httpx.get(f"{base}/health", timeout=5).json()
        assert health["code"] == 2000, health
        hosts = httpx.get(
            f"{base}/api/v1/hosts", headers={"Authorization": f"Bearer {viewer}"}, timeout=5
        )
        assert hosts.status_code == 200
        ids = {h["id"] for h in hosts.json()}
        assert {"vcpe-1", "cloud-1"} <= ids
        assert sum(1 for i in ids if i.startswith("cpe-")) == 5
        anonymous = httpx.get(f"{base}/api/v1/hosts", timeout=5)
        assert anonymous.status_code == 401
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
