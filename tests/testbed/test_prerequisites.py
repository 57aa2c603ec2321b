"""Root tests skip without root and fail loudly, naming what is missing, with it."""

from __future__ import annotations

import pytest

from edgeroam.testbed import prereqs
from tests.testbed.fixtures import require_root


def test_not_root_skips_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root"):
        require_root()


def test_root_with_a_missing_prerequisite_fails_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("os.geteuid", lambda: 0)
    monkeypatch.setattr(prereqs, "missing", lambda: [prereqs.Missing("command nft", "nftables")])
    with pytest.raises(pytest.fail.Exception, match=r"command nft \(package nftables\)"):
        require_root()


def test_missing_names_commands_and_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prereqs, "_command", lambda name: name != "iperf3")
    found = [str(m) for m in prereqs.missing()]
    assert "command iperf3 (package iperf3)" in found
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    with pytest.raises(RuntimeError, match="root privileges"):
        prereqs.ensure(auto_install=False)
