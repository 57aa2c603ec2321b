"""A terminal asking for a DHCP lease with busybox's udhcpc, in its own namespace.

The stock udhcpc script rewrites /etc/resolv.conf — the machine's, since a network namespace
does not have its own. This hook only configures the terminal's interface and route and
writes what it got to a file of ours.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeroam.testbed.builder import Bed
from edgeroam.testbed.nsutil import netns_exec_argv

HOOK = """#!/bin/sh
# udhcpc hook of the edgeroam testbed: never touches /etc/resolv.conf.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    if [ -n "$router" ]; then ip route replace default via "${router%% *}" dev "$interface"; fi
    printf 'ip=%s\\nmask=%s\\nrouter=%s\\ndns=%s\\ndomain=%s\\nlease=%s\\n' \\
      "$ip" "$mask" "$router" "$dns" "$domain" "$lease" > "$EDGEROAM_LEASE_FILE"
    ;;
esac
exit 0
"""


class DhcpError(RuntimeError):
    """No lease was obtained; the message carries udhcpc's output."""


@dataclass(frozen=True)
class Lease:
    ip: str
    mask: int
    router: str
    dns: str
    domain: str
    lease_s: int


def request_lease(bed: Bed, terminal: str, timeout_s: float = 10.0) -> Lease:
    """Run udhcpc once on the terminal's eth0 and return the lease it configured."""
    if terminal not in bed.plan.terminals:
        raise DhcpError(f"no terminal {terminal!r} in bed {bed.plan.name!r}")
    directory = bed.directory / "dhcp"
    directory.mkdir(exist_ok=True)
    hook = directory / "udhcpc-hook.sh"
    hook.write_text(HOOK)
    hook.chmod(0o700)
    lease_file = directory / f"{terminal}.lease"
    lease_file.unlink(missing_ok=True)
    tries = max(1, int(timeout_s // 2))
    argv = ["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", str(tries), "-T", "2", "-s", str(hook)]
    try:
        done = subprocess.run(
            netns_exec_argv(bed.plan.terminals[terminal], argv),
            capture_output=True,
            text=True,
            timeout=timeout_s + 5,
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "EDGEROAM_LEASE_FILE": str(lease_file)},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DhcpError(f"udhcpc on {terminal}: no answer within {timeout_s + 5} s") from exc
    if done.returncode != 0 or not lease_file.exists():
        raise DhcpError(
            f"udhcpc on {terminal} got no lease: {(done.stderr or done.stdout).strip()}"
        )
    return _parse(lease_file)


def _parse(path: Path) -> Lease:
    values = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return Lease(
        ip=values["ip"],
        mask=int(values["mask"]),
        router=values.get("router", "").split(" ")[0],
        dns=values.get("dns", "").split(" ")[0],
        domain=values.get("domain", ""),
        lease_s=int(values.get("lease") or 0),
    )
