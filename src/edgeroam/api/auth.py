"""Bearer-token authentication and the three roles.

viewer reads, operator reads and writes, agent only reports telemetry for its own host and
fetches that host's commands. Every /api/v1 route declares which roles it admits; a route
without a declaration would be a hole, so routers install `standard_access` as a default.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from edgeroam.config import Role, TokenSpec
from edgeroam.runtime import Runtime

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the matched token's name, role and (agents) host."""

    name: str
    role: Role
    host: str | None = None


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _match(tokens: tuple[TokenSpec, ...], presented: str) -> TokenSpec | None:
    """Look the token up without leaking, through timing, how much of it was right."""
    given = presented.encode()
    found: TokenSpec | None = None
    for spec in tokens:
        # Keep comparing after a hit so the time does not tell which entry matched.
        if hmac.compare_digest(spec.token.encode(), given) and found is None:
            found = spec
    return found


#: Declared as a security scheme so /docs offers an "Authorize" button; errors are ours.
_SCHEME = HTTPBearer(auto_error=False, description="A token from the settings' `tokens`.")


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_SCHEME)],
) -> Principal:
    """Who sent the request; FastAPI runs this once per request however many routes need it."""
    if credentials is None or not credentials.credentials.strip():
        if request.headers.get("authorization"):
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "malformed Authorization header: expected 'Bearer <token>'",
                headers=_CHALLENGE,
            )
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "authentication required: send 'Authorization: Bearer <token>'",
            headers=_CHALLENGE,
        )
    spec = _match(get_runtime(request).settings.tokens, credentials.credentials.strip())
    if spec is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid token", headers=_CHALLENGE)
    return Principal(name=spec.name, role=spec.role, host=spec.host)


AnyRole = Annotated[Principal, Depends(authenticate)]


def _forbid(request: Request, principal: Principal, roles: tuple[Role, ...]) -> HTTPException:
    needed = " or ".join(r.value for r in roles)
    return HTTPException(
        status.HTTP_403_FORBIDDEN,
        f"{request.method} {request.url.path} needs role {needed}; "
        f"token {principal.name or '(unnamed)'!r} has role {principal.role.value}",
    )


def require(*roles: Role) -> Callable[[Request, Principal], Principal]:
    """A dependency admitting only the given roles."""

    def dependency(request: Request, principal: AnyRole) -> Principal:
        if principal.role not in roles:
            raise _forbid(request, principal, roles)
        return principal

    return dependency


_READERS = (Role.VIEWER, Role.OPERATOR)
_WRITERS = (Role.OPERATOR,)


def standard_access(request: Request, principal: AnyRole) -> Principal:
    """Default rule of a router: reads for viewers and operators, writes for operators."""
    roles = _READERS if request.method in ("GET", "HEAD") else _WRITERS
    if principal.role not in roles:
        raise _forbid(request, principal, roles)
    return principal


Reader = Annotated[Principal, Depends(require(*_READERS))]
TelemetrySender = Annotated[Principal, Depends(require(Role.OPERATOR, Role.AGENT))]
