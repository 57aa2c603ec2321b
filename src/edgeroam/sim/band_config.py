"""The scenario's optional `band` section: which CPE↔server band the simulator measures.

Kept apart from `edgeroam.sim.band` (the world model) so the scenario schema can import it
without importing the traffic model, which itself imports the scenario schema.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from edgeroam.model import HostKind, Identifier, Model, ParameterError
from edgeroam.policies.offload import check_param_overrides

if TYPE_CHECKING:
    from edgeroam.sim.scenario import Scenario


class BandSection(Model):
    """Measure the band between the CPEs and these vCPE servers, as the servers would report it.

    A server's band capacity is its host's `capacity.bandwidth_mbps`; the monitored band is the
    sum over the servers listed (all hosts of kind server when the list is empty).
    """

    servers: tuple[Identifier, ...] = Field(
        default=(), description="Monitored vCPE servers; empty means every host of kind server."
    )
    pairs: bool = Field(
        default=True,
        description="Report band per CPE×function (the second embodiment needs it).",
    )
    timeline_top: int = Field(
        default=5, ge=0, le=100, description="Busiest CPEs and CPE×function pairs per entry."
    )


def monitored_servers(scenario: Scenario) -> list[str]:
    """The server ids of the band, in the section's order (or by id when defaulted)."""
    if scenario.band is None:
        return []
    if scenario.band.servers:
        return list(scenario.band.servers)
    return sorted(h.id for h in scenario.topology.hosts if h.kind is HostKind.SERVER)


def band_problems(scenario: Scenario) -> list[str]:
    """Cross-reference problems of the `band` section and of the offload policy's settings."""
    problems: list[str] = []
    hosts = {h.id: (i, h) for i, h in enumerate(scenario.topology.hosts)}
    band = scenario.band
    if band is not None:
        seen: set[str] = set()
        for i, server in enumerate(band.servers):
            where = f"band.servers[{i}]"
            if server in seen:
                problems.append(f"{where}: {server!r} is listed twice")
            seen.add(server)
            if server not in hosts:
                problems.append(f"{where}: unknown host {server!r}")
            elif hosts[server][1].kind is not HostKind.SERVER:
                kind = hosts[server][1].kind.value
                problems.append(f"{where}: host {server!r} is a {kind}, not a server")
        servers = monitored_servers(scenario)
        if not servers:
            problems.append("band: no host of kind server to measure the band of")
        for server in servers:
            if server not in hosts or hosts[server][1].kind is not HostKind.SERVER:
                continue  # reported above
            if hosts[server][1].capacity.bandwidth_mbps <= 0:
                row = hosts[server][0]
                problems.append(
                    f"topology.hosts[{row}].capacity.bandwidth_mbps: server {server!r} is in "
                    "the monitored band, whose capacity is the servers' bandwidth; it must be > 0"
                )
    problems += _offload_settings_problems(scenario, hosts)
    return problems


def _offload_settings_problems(
    scenario: Scenario, hosts: Mapping[str, tuple[int, Any]]
) -> list[str]:
    settings = scenario.policies.get("offload")
    if not isinstance(settings, Mapping) or settings.get("enabled") is False:
        return []
    problems: list[str] = []
    if scenario.band is None:
        problems.append(
            "policies.offload: the offload policy decides on the band the servers report; add a "
            "top-level `band` section so the simulator reports it"
        )
    servers = settings.get("servers", ())
    if isinstance(servers, list | tuple):
        for i, server in enumerate(servers):
            if server not in hosts:
                problems.append(f"policies.offload.servers[{i}]: unknown host {server!r}")
            elif hosts[server][1].kind is not HostKind.SERVER:
                problems.append(f"policies.offload.servers[{i}]: host {server!r} is not a server")
    params = settings.get("params", {})
    functions = {f.name: f for f in scenario.functions}
    if isinstance(params, Mapping):
        for name, values in params.items():
            where = f"policies.offload.params.{name}"
            if name not in functions:
                problems.append(f"{where}: unknown function {name!r}")
                continue
            if not isinstance(values, Mapping):
                continue  # the policy's own schema reports the type
            try:
                check_param_overrides(functions[name], values)
            except ParameterError as exc:
                problems.append(f"{where}: {exc}")
    return problems
