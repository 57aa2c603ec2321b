"""What a testbed needs from the machine, checked up front with a precise list of what is missing.

Missing Debian packages are installed by scripts/ensure-testbed-deps.sh (or, when the package
is installed without the repository, by the same apt-get call); kernel features cannot be
installed and are reported as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edgeroam.testbed import cgroups
from edgeroam.testbed.nft import DEBIAN_DIST_PACKAGES, load_binding

#: command -> Debian package that provides it
COMMANDS = {
    "ip": "iproute2",
    "tc": "iproute2",
    "nsenter": "util-linux",
    "nft": "nftables",
    "dnsmasq": "dnsmasq-base",
    "iperf3": "iperf3",
    "udhcpc": "udhcpc",
}
BINDING_PACKAGE = "python3-nftables"
SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "ensure-testbed-deps.sh"


@dataclass(frozen=True)
class Missing:
    what: str
    package: str | None
    """None: not installable (root, kernel features)."""

    def __str__(self) -> str:
        return f"{self.what} (package {self.package})" if self.package else self.what


def _command(name: str) -> bool:
    return shutil.which(name) is not None or any(
        os.access(f"{d}/{name}", os.X_OK) for d in ("/usr/sbin", "/sbin")
    )


def missing() -> list[Missing]:
    found: list[Missing] = []
    if os.geteuid() != 0:
        found.append(Missing("root privileges (namespaces, nftables, cgroups)", None))
    for command, package in COMMANDS.items():
        if not _command(command):
            found.append(Missing(f"command {command}", package))
    if not (DEBIAN_DIST_PACKAGES / "nftables" / "__init__.py").exists() and load_binding() is None:
        found.append(Missing("the libnftables Python binding", BINDING_PACKAGE))
    absent = [c for c in cgroups.CONTROLLERS if c not in cgroups.available()]
    if absent:
        found.append(Missing(f"cgroup v1 controller(s) {', '.join(absent)}", None))
    if not Path("/proc/self/ns/net").exists():
        found.append(Missing("network namespaces (CONFIG_NET_NS)", None))
    try:
        import pyroute2  # noqa: F401
    except ImportError:
        found.append(Missing("the pyroute2 Python package (pip install pyroute2)", None))
    return found


def install(packages: list[str]) -> None:
    """Install Debian packages: the repository's script when present, apt-get otherwise."""
    if SCRIPT.exists():
        argv = ["bash", str(SCRIPT)]
    else:
        argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()[-2000:]}")


def ensure(auto_install: bool = True, say: Callable[[str], None] | None = None) -> None:
    """Raise RuntimeError naming everything missing that could not be installed."""
    found = missing()
    packages = sorted({m.package for m in found if m.package})
    if packages and auto_install and os.geteuid() == 0:
        if say is not None:
            say(f"installing missing testbed packages: {', '.join(packages)}")
        install(packages)
        found = missing()
    if found:
        raise RuntimeError(
            "the testbed needs: "
            + "; ".join(str(m) for m in found)
            + " — as root run: bash scripts/ensure-testbed-deps.sh"
        )
