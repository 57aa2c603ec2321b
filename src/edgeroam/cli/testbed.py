"""`edgeroam testbed up|down|status|run`: a real bed of network namespaces driven by edgeroam."""

from __future__ import annotations

import atexit
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

import typer
from rich.console import Console

from edgeroam.cli.app import app
from edgeroam.testbed.nsutil import DEFAULT_PREFIX, call_in_netns, check_prefix, list_netns

err = Console(stderr=True)
testbed_app = typer.Typer(
    help="A real Linux testbed: CPEs, servers and functions in network namespaces.",
    no_args_is_help=True,
)
app.add_typer(testbed_app, name="testbed")

PrefixOption = typer.Option(
    DEFAULT_PREFIX, "--prefix", help="Name prefix of everything the bed creates."
)


def _say(message: str) -> None:
    err.print(f"[dim]{message}[/dim]")


def _prefix(value: str) -> str:
    try:
        return check_prefix(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _prerequisites() -> None:
    from edgeroam.testbed import prereqs

    try:
        prereqs.ensure(auto_install=True, say=_say)
    except RuntimeError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from exc


class _Interrupts:
    """First Ctrl-C / SIGTERM: stop what runs (KeyboardInterrupt, so `finally` cleans up).
    Later ones while cleaning up are reported and ignored, so the cleanup is not cut short."""

    def __init__(self) -> None:
        self.fired = False

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        if self.fired:
            err.print("[yellow]cleaning up the bed, please wait…[/yellow]")
            return
        self.fired = True
        raise KeyboardInterrupt

    def install(self) -> None:
        signal.signal(signal.SIGINT, self)
        signal.signal(signal.SIGTERM, self)


def _teardown_at_exit(prefix: str) -> None:
    """Last line of defence: whatever of the bed is still there when the process exits."""
    from edgeroam.testbed.builder import teardown

    if list_netns(prefix):
        teardown(prefix)


def _policies(path: Path | None) -> dict[str, dict[str, Any]]:
    from edgeroam.testbed.topology import TopologyError, load_yaml

    if path is None:
        return {}
    data = load_yaml(path)
    if isinstance(data, dict) and isinstance(data.get("policies"), dict):
        data = data["policies"]
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise TopologyError(str(path), ["expected a mapping {policy: {setting: value}}"])
    return data


@testbed_app.command("up")
def up(
    topology: Path = typer.Argument(..., help="Testbed topology YAML file."),
    prefix: str = PrefixOption,
    serve: bool = typer.Option(
        False, "--serve", help="Also run the controller and agents until Ctrl-C."
    ),
    interval: float = typer.Option(1.0, "--interval", help="Agents' telemetry interval (s)."),
    tick: float = typer.Option(0.5, "--tick", help="Controller cycle (s)."),
    policies: Path | None = typer.Option(
        None, "--policies", help="YAML {policy: settings} to run (default: none).", exists=True
    ),
) -> None:
    """Build the bed of TOPOLOGY (it stays up until `edgeroam testbed down`)."""
    from edgeroam.testbed.builder import Bed, BedError
    from edgeroam.testbed.topology import TopologyError, load_topology

    prefix = _prefix(prefix)
    try:
        bed_topology = load_topology(topology)
        wanted = _policies(policies)
    except TopologyError as exc:
        err.print(f"[red]invalid topology[/red]\n{exc}")
        raise typer.Exit(2) from exc
    _prerequisites()
    interrupts = _Interrupts()
    interrupts.install()
    try:
        bed = Bed.up(bed_topology, prefix, _say)
    except BedError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    err.print(
        f"bed [bold]{bed.plan.name}[/bold] up: {len(bed.plan.nodes)} namespaces "
        f"({prefix}*) in {bed.timings.total_s:.2f} s; look inside with "
        "`ip netns exec <namespace> …`, remove it with `edgeroam testbed down`"
    )
    if not serve:
        return
    from edgeroam.policies.registry import PolicyConfigError
    from edgeroam.testbed.controller import ControllerError
    from edgeroam.testbed.runner import start_session

    session = None
    try:
        session = start_session(
            bed,
            interval_s=interval,
            tick_s=tick,
            stale_after_s=4 * interval,
            policies=wanted,
            progress=_say,
        )
        typer.echo(session.controller.url)
        err.print(
            f"operator token: {session.controller.operator_token}\n"
            f"the API listens on the management network only: "
            f"nsenter --net=/run/netns/{bed.plan.mgmt_netns} curl {session.controller.url}/health\n"
            "Ctrl-C stops the controller and agents; the bed stays up."
        )
        while True:
            dead = session.fleet.dead()
            if dead:
                err.print(f"[red]agent(s) exited: {dead}[/red]")
                raise typer.Exit(1)
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (ControllerError, PolicyConfigError) as exc:
        err.print(f"[red]{exc}[/red] (the bed stays up)")
        raise typer.Exit(1) from exc
    finally:
        if session is not None:
            session.stop()


@testbed_app.command("down")
def down(prefix: str = PrefixOption) -> None:
    """Remove every namespace, process, cgroup and file named with the prefix."""
    from edgeroam.testbed.builder import teardown

    prefix = _prefix(prefix)
    report = teardown(prefix)
    typer.echo(json.dumps(report.as_dict()))
    if report.left:
        err.print(f"[red]left behind: {report.left}[/red]")
        raise typer.Exit(1)


def _link_counters(netns: str) -> dict[str, tuple[int, int]]:
    from edgeroam.testbed.nsutil import run

    data = json.loads(run(["ip", "-n", netns, "-s", "-j", "link", "show"]))
    return {
        item["ifname"]: (item["stats64"]["rx"]["bytes"], item["stats64"]["tx"]["bytes"])
        for item in data
        if "stats64" in item
    }


def _health(mgmt_netns: str, url: str) -> str:
    import httpx

    def ask() -> str:
        try:
            response = httpx.get(f"{url}/health", timeout=1.0)
            body = response.json()
            return f"{body.get('code')} {body.get('message')}"
        except (httpx.HTTPError, ValueError):
            return "not running (start one with `testbed up --serve` or `testbed run`)"

    return call_in_netns(mgmt_netns, ask)


@testbed_app.command("status")
def status(
    prefix: str = PrefixOption,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    watch: float = typer.Option(0.0, "--watch", help="Measure link rates over this many s."),
) -> None:
    """The bed under the prefix: namespaces, processes, link rates, controller health."""
    from edgeroam.testbed.agents import CONTROLLER_PORT
    from edgeroam.testbed.builder import Bed

    prefix = _prefix(prefix)
    bed = Bed.load(prefix)
    if bed is None:
        leftovers = list_netns(prefix)
        document: dict[str, Any] = {"bed": None, "leftover_namespaces": leftovers}
        typer.echo(json.dumps(document) if as_json else f"no bed under {prefix}: {document}")
        raise typer.Exit(0 if not leftovers else 1)
    document = bed.status()
    url = f"http://{bed.plan.controller_address}:{CONTROLLER_PORT}"
    if bed.plan.mgmt_netns in list_netns(prefix):
        document["controller_health"] = _health(bed.plan.mgmt_netns, url)
    links: dict[str, dict[str, float]] = {}
    if watch > 0 and not document["missing"]:
        nodes = [bed.plan.node_of_host(h) for h in sorted(bed.plan.hosts)]
        first = {n.netns: _link_counters(n.netns) for n in nodes}
        time.sleep(watch)
        second = {n.netns: _link_counters(n.netns) for n in nodes}
        for node in nodes:
            for iface in node.ifaces:
                if iface.link is None or iface.link in links:
                    continue
                rx0, tx0 = first[node.netns].get(iface.name, (0, 0))
                rx1, tx1 = second[node.netns].get(iface.name, (0, 0))
                a_side = next(lk for lk in bed.topology.topology.links if lk.id == iface.link).a
                out, back = (tx1 - tx0, rx1 - rx0)
                ab, ba = (out, back) if a_side == node.id else (back, out)
                links[iface.link] = {
                    "ab_mbps": round(ab * 8 / 1e6 / watch, 3),
                    "ba_mbps": round(ba * 8 / 1e6 / watch, 3),
                }
        document["links"] = links
    if as_json:
        typer.echo(json.dumps(document))
        return
    err.print_json(data=document)


@testbed_app.command("run")
def run(
    scenario: Path = typer.Argument(..., help="Testbed scenario YAML file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
    prefix: str = PrefixOption,
    logs: Path | None = typer.Option(None, "--logs", help="Copy agent and traffic logs here."),
) -> None:
    """Build the bed, start controller and agents, drive the traffic, report, tear down."""
    from edgeroam.testbed.builder import BedError
    from edgeroam.testbed.runner import run_scenario
    from edgeroam.testbed.scenario import load_scenario
    from edgeroam.testbed.topology import TopologyError

    prefix = _prefix(prefix)
    try:
        loaded = load_scenario(scenario)
    except TopologyError as exc:
        err.print(f"[red]invalid scenario[/red]\n{exc}")
        raise typer.Exit(2) from exc
    _prerequisites()
    interrupts = _Interrupts()
    interrupts.install()
    atexit.register(_teardown_at_exit, prefix)
    try:
        report, removed = run_scenario(loaded, prefix, progress=_say, logs_to=logs)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted: the bed was torn down[/yellow]")
        raise typer.Exit(130) from None
    except BedError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    report["teardown"] = removed.as_dict()
    if as_json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        summary = {k: v for k, v in report.items() if k not in ("timeline", "operations")}
        summary["operations"] = [
            f"{o['id']} {o['kind']} {o['subject']} {o['state']} at {o['created_s']} s"
            for o in report.get("operations", [])
        ]
        err.print_json(data=summary)
    if removed.left:
        raise typer.Exit(1)
