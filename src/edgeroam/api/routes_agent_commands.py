"""The action queue between the netns driver and the agents.

An agent long-polls ``GET /agents/{host}/actions?wait=5`` (the answer comes as soon as an
action is queued for its host, or empty after `wait` seconds) and posts what became of each
action to ``POST /agents/{host}/actions/results`` together with what it runs now. Agent tokens
only reach their own host; operators may look at any host's queue (debugging).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status

from edgeroam.api.auth import Principal, RuntimeDep, get_runtime, require
from edgeroam.api.errors import conflict, not_found
from edgeroam.api.schemas import Accepted
from edgeroam.config import Role
from edgeroam.drivers.netns import ActionBatch, NetnsDriver, ResultsReport
from edgeroam.runtime import Runtime

router = APIRouter(prefix="/agents", tags=["agents"])

#: How often a waiting long poll looks at the queue; bounds the added latency of an action.
POLL_STEP_S = 0.02

AgentOrOperator = Annotated[Principal, Depends(require(Role.AGENT, Role.OPERATOR))]


def _driver(runtime: Runtime, host: str, caller: Principal) -> NetnsDriver:
    if caller.role is Role.AGENT and caller.host != host:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"the agent token of host {caller.host!r} may not act for host {host!r}",
        )
    driver = runtime.controller.driver
    if not isinstance(driver, NetnsDriver):
        raise conflict(
            f"this controller's driver ({driver.name}) does not hand actions to agents; "
            "run it with driver.kind netns"
        )
    if host not in runtime.controller.inventory.hosts:
        raise not_found(f"no host {host!r}")
    return driver


@router.get("/{host}/actions", response_model=ActionBatch)
async def agent_actions(
    host: str,
    request: Request,
    caller: AgentOrOperator,
    wait: Annotated[float, Query(ge=0, le=30, description="Seconds to wait for work.")] = 0.0,
) -> ActionBatch:
    """Actions queued for `host`; each is handed out again if not answered within a while."""
    driver = _driver(get_runtime(request), host, caller)
    deadline = time.monotonic() + wait
    while True:
        actions = driver.take(host)
        if actions or time.monotonic() >= deadline or await request.is_disconnected():
            return ActionBatch(actions=tuple(actions))
        await asyncio.sleep(POLL_STEP_S)


@router.post("/{host}/actions/results", response_model=Accepted)
def agent_results(
    host: str, body: ResultsReport, runtime: RuntimeDep, caller: AgentOrOperator
) -> Accepted:
    """Outcomes of actions of `host` (others' keys are ignored) and what the host runs."""
    driver = _driver(runtime, host, caller)
    return Accepted(accepted=driver.complete(host, body))
