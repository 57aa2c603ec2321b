"""nftables from Python: Debian's libnftables binding, with the `nft` command as a fallback.

The binding (package python3-nftables) is not on PyPI, so the project's virtualenv cannot
install it. `load_binding` imports it when it is importable anyway, and otherwise loads exactly
that one package from Debian's dist-packages directory by file location — nothing else of the
system's Python packages leaks into the virtualenv. Without the package, every operation runs
`nft -j` in a subprocess instead (slower, same results).

nftables works in the network namespace of the calling process, which is why the agents, who
own the functions, run inside their host's namespace.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


class NftError(RuntimeError):
    """nft refused a ruleset or a query; the message carries its error output."""


def load_binding() -> ModuleType | None:
    """The `nftables` module, from the environment or from Debian's python3-nftables."""
    try:
        import nftables  # type: ignore[import-not-found]

        module: ModuleType = nftables
        return module
    except ImportError:
        pass
    init = DEBIAN_DIST_PACKAGES / "nftables" / "__init__.py"
    if not init.exists():
        return None
    spec = importlib.util.spec_from_file_location(
        "nftables", init, submodule_search_locations=[str(init.parent)]
    )
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nftables"] = module
    try:
        spec.loader.exec_module(module)
    except Exception:  # a broken system package: fall back to the command
        sys.modules.pop("nftables", None)
        return None
    return module


class Nft:
    """One nftables context; thread-safe. `backend` is "lib", "cli" or "auto"."""

    def __init__(self, backend: str = "auto") -> None:
        self._lock = threading.Lock()
        self._ctx: Any = None
        if backend not in ("auto", "lib", "cli"):
            raise ValueError(f"backend must be auto, lib or cli, not {backend!r}")
        if backend != "cli":
            module = load_binding()
            if module is not None:
                try:
                    self._ctx = module.Nftables()
                except OSError:
                    self._ctx = None
            if self._ctx is None and backend == "lib":
                raise NftError(
                    "the libnftables binding is not available: install python3-nftables "
                    "(bash scripts/ensure-testbed-deps.sh)"
                )
        if self._ctx is not None:
            self._ctx.set_json_output(False)
            self._ctx.set_handle_output(False)
        self.backend = "lib" if self._ctx is not None else "cli"

    def _lib(self, script: str, as_json: bool) -> str:
        with self._lock:
            self._ctx.set_json_output(as_json)
            rc, output, error = self._ctx.cmd(script)
        if rc != 0:
            raise NftError(f"nft: {str(error).strip() or 'failed'}")
        return str(output)

    def _cli(self, script: str, as_json: bool) -> str:
        # Queries go on the command line: `nft -j -f -` applies but prints nothing.
        argv = ["nft", "-j", *script.split()] if as_json else ["nft", "-f", "-"]
        try:
            done = subprocess.run(
                argv,
                input=None if as_json else script,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except FileNotFoundError as exc:
            raise NftError("nft is not installed (bash scripts/ensure-testbed-deps.sh)") from exc
        if done.returncode != 0:
            raise NftError(f"nft: {done.stderr.strip() or 'failed'}")
        return done.stdout

    def run(self, script: str) -> None:
        """Apply a script atomically (all of it or nothing, like `nft -f`)."""
        if self._ctx is not None:
            self._lib(script, False)
        else:
            self._cli(script, False)

    def query(self, command: str) -> dict[str, Any]:
        text = self._lib(command, True) if self._ctx is not None else self._cli(command, True)
        if not text.strip():
            return {"nftables": []}
        data: dict[str, Any] = json.loads(text)
        return data

    def tables(self, family: str = "ip") -> list[str]:
        items = self.query(f"list tables {family}").get("nftables", [])
        return [i["table"]["name"] for i in items if "table" in i]

    def counters(self, table: str, family: str = "ip") -> dict[str, tuple[int, int]]:
        """Named counters of a table: name -> (packets, bytes); empty if the table is gone."""
        try:
            items = self.query(f"list table {family} {table}").get("nftables", [])
        except NftError:
            return {}
        out = {}
        for item in items:
            counter = item.get("counter")
            if counter is not None and "name" in counter:
                out[counter["name"]] = (int(counter["packets"]), int(counter["bytes"]))
        return out

    def delete_table(self, table: str, family: str = "ip") -> None:
        """Idempotent delete (add-then-delete in one transaction works whether it exists)."""
        self.run(f"add table {family} {table}\ndelete table {family} {table}\n")
