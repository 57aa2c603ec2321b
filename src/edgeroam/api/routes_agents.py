"""What an agent asks the controller: which instances should run on my host."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, status

from edgeroam.api.auth import Principal, RuntimeDep, require
from edgeroam.api.errors import not_found
from edgeroam.api.schemas import AgentCommand
from edgeroam.config import Role

router = APIRouter(prefix="/agents", tags=["agents"])


@router.get("/{host}/commands", response_model=list[AgentCommand])
def agent_commands(
    host: str,
    runtime: RuntimeDep,
    caller: Principal = Depends(require(Role.AGENT, Role.VIEWER, Role.OPERATOR)),
) -> list[AgentCommand]:
    """The desired state of a host; an agent may only ask for its own."""
    if caller.role is Role.AGENT and caller.host != host:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the agent token of host {caller.host!r} may not read the commands of {host!r}",
        )
    with runtime.controller.lock:
        inv = runtime.controller.inventory
        if host not in inv.hosts:
            raise not_found(f"no host {host!r}")
        return [
            AgentCommand(
                instance=i.id, function=i.function, params=i.params, stage=i.stage, role=i.role
            )
            for i in inv.instances_on(host)
        ]
