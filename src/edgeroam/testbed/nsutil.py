"""Low-level Linux plumbing of the testbed: commands, network namespaces, processes in them.

Namespaces are created and deleted with iproute2 in batch mode (one `ip` process for hundreds
of them, and the same /run/netns bookkeeping `ip netns` itself uses); what must run *inside* a
namespace from this process (a sysctl, a listening socket) runs in a short-lived thread that
joins the namespace with setns(2), which only ever moves that one thread.

Every destructive helper refuses names that do not carry the testbed's prefix, so nothing
here can delete or kill what another tool created.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
DEFAULT_PREFIX = "er7-"
_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]{1,15}-([a-z0-9]{1,12}-)?$")

_libc = ctypes.CDLL(None, use_errno=True)


class CommandError(RuntimeError):
    """An external command failed; the message carries the command and its error output."""


def check_prefix(prefix: str) -> str:
    """A name prefix is a short lowercase word and a dash (``er7-``; the tests use
    ``er7t<pid>x<n>-`` and the benchmark ``er7b-``, so that `testbed down` with ``er7-`` never
    removes their beds), optionally with a second word (``er7-lab-``)."""
    if not _PREFIX_RE.match(prefix):
        raise ValueError(
            f"name prefix {prefix!r} must look like 'er7-' or 'er7-lab-' (lowercase letters and "
            "digits, ending with '-')"
        )
    return prefix


def _own(name: str, prefix: str) -> None:
    check_prefix(prefix)
    if not name.startswith(prefix):
        raise ValueError(f"refusing to touch {name!r}: it does not start with {prefix!r}")


def run(
    argv: Sequence[str], *, input: str | None = None, timeout: float = 60.0, check: bool = True
) -> str:
    """Run a command, return its stdout; raise CommandError with its stderr when it fails."""
    try:
        done = subprocess.run(
            list(argv),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CommandError(f"{argv[0]}: not installed ({exc})") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandError(f"{' '.join(argv)}: no answer within {timeout} s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()
        raise CommandError(f"{' '.join(argv)} failed (exit {done.returncode}): {detail}")
    return done.stdout


def ip_batch(lines: Iterable[str], netns: str | None = None, *, force: bool = False) -> None:
    """Run `ip` commands (one per line) in a single process, optionally inside `netns`."""
    text = "\n".join(lines)
    if not text.strip():
        return
    argv = ["ip"] + (["-n", netns] if netns else []) + (["-force"] if force else [])
    run([*argv, "-batch", "-"], input=text + "\n", check=not force)


def tc_batch(lines: Iterable[str], netns: str) -> None:
    text = "\n".join(lines)
    if text.strip():
        run(["tc", "-n", netns, "-batch", "-"], input=text + "\n")


# --- namespaces ---------------------------------------------------------------------------------


def list_netns(prefix: str) -> list[str]:
    """Named network namespaces starting with `prefix`, sorted."""
    check_prefix(prefix)
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def create_netns(names: Sequence[str], prefix: str) -> None:
    for name in names:
        _own(name, prefix)
    ip_batch(f"netns add {name}" for name in names)


def _inode(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(names: Iterable[str]) -> dict[str, list[int]]:
    """Processes living in each named namespace (what `ip netns pids` prints), in one /proc scan."""
    wanted = {ino: name for name in names if (ino := _inode(NETNS_DIR / name)) is not None}
    found: dict[str, list[int]] = {name: [] for name in wanted.values()}
    if not wanted:
        return found
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        ino = _inode(f"/proc/{entry}/ns/net")
        if ino in wanted:
            found[wanted[ino]].append(int(entry))
    return found


def kill_pids(pids: Iterable[int], grace_s: float = 2.0) -> None:
    """SIGTERM, then SIGKILL what is still alive after `grace_s`."""
    alive = set(pids)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        alive = {p for p in alive if _alive(p)}
        if alive:
            time.sleep(0.02)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def delete_netns(names: Sequence[str], prefix: str, *, wait_s: float = 10.0) -> list[str]:
    """Kill every process in the namespaces, delete them, wait until they are gone.

    Returns the names still present after `wait_s` (empty when all went away).
    """
    for name in names:
        _own(name, prefix)
    if not names:
        return []
    for pids in pids_in_netns(names).values():
        kill_pids(pids)
    ip_batch((f"netns del {name}" for name in names), force=True)
    deadline = time.monotonic() + wait_s
    left = [n for n in names if (NETNS_DIR / n).exists()]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [n for n in left if (NETNS_DIR / n).exists()]
    return left


# --- running code inside a namespace ------------------------------------------------------------


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def _thread_in_netns(name: str) -> Iterator[None]:
    """Move the *calling thread* into `name` and back; only for threads made for it."""
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(NETNS_DIR / name, os.O_RDONLY)
    except FileNotFoundError:
        os.close(original)
        raise FileNotFoundError(errno.ENOENT, f"no network namespace {name!r}") from None
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(target)
        os.close(original)


def call_in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run `fn` in a fresh thread that has joined network namespace `name`; return its result.

    Sockets keep the namespace they were created in, so a listening socket made here serves
    inside `name` while the rest of the process stays where it was.
    """
    box: dict[str, T] = {}
    failure: list[BaseException] = []

    def worker() -> None:
        try:
            with _thread_in_netns(name):
                box["result"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=worker, name=f"netns-{name}", daemon=True)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return box["result"]


def set_sysctls(name: str, values: dict[str, str]) -> None:
    """Write /proc/sys/net entries of namespace `name` (they are per namespace)."""

    def write() -> None:
        for key, value in values.items():
            path = Path("/proc/sys") / key.replace(".", "/")
            path.write_text(value)

    call_in_netns(name, write)


def netns_exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """Run `argv` in network namespace `name` and nothing else: unlike `ip netns exec`,
    nsenter leaves the mount namespace alone, so /sys/fs/cgroup stays mounted for the agent's
    sandboxes (and /sys/class/net shows the machine's interfaces: read counters over netlink)."""
    return ["nsenter", f"--net={NETNS_DIR / name}", "--", *argv]


def start_thread_in_netns(name: str, fn: Callable[[], None], thread_name: str) -> threading.Thread:
    """A daemon thread that lives in network namespace `name` for its whole life (a server
    whose every socket must be there). Threads it starts inherit the namespace."""

    def worker() -> None:
        with _thread_in_netns(name):
            fn()

    thread = threading.Thread(target=worker, name=thread_name, daemon=True)
    thread.start()
    return thread
