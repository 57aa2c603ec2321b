"""Sites, hosts, links, flavors, functions and customers: plain create-or-replace records.

The six kinds behave the same, so one factory builds their routes; only hosts have list
filters of their own. Instances are different (creating one is an operation) and live in
routes_instances.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel

from edgeroam.api.auth import RuntimeDep, standard_access
from edgeroam.api.errors import conflict, inventory_errors, not_found, unprocessable
from edgeroam.model import Customer, Flavor, FunctionSpec, Host, HostKind, HostState, Link, Site
from edgeroam.runtime import Runtime

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=100_000, description="Page size.")]
Offset = Annotated[int, Query(ge=0, description="Items to skip.")]


def page(items: Sequence[T], limit: int, offset: int, response: Response) -> list[T]:
    """Slice a sorted list; the total goes into X-Total-Count so bodies stay plain arrays."""
    response.headers["X-Total-Count"] = str(len(items))
    return list(items[offset : offset + limit])


def key_of(kind: str, obj: BaseModel) -> str:
    return str(getattr(obj, "name" if kind == "function" else "id"))


def store_object(
    runtime: Runtime, kind: str, obj: BaseModel, response: Response, path_key: str | None
) -> BaseModel:
    """controller.put with the API's status codes: 201 when new, 200 when replaced."""
    key = key_of(kind, obj)
    if path_key is not None and path_key != key:
        field = "name" if kind == "function" else "id"
        raise unprocessable(
            [
                {
                    "loc": ["body", field],
                    "msg": f"{field} {key!r} in the body differs from {path_key!r} in the path",
                    "type": "value_error",
                }
            ]
        )
    controller = runtime.controller
    with controller.lock, inventory_errors():
        existed = key in controller.inventory.table(kind)
        stored = controller.put(kind, obj, runtime.now())
        controller.events.flush()
    response.status_code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
    return stored


def remove_object(runtime: Runtime, kind: str, key: str) -> Response:
    controller = runtime.controller
    with controller.lock:
        try:
            controller.remove(kind, key, runtime.now())
        except KeyError as exc:
            raise not_found(f"no {kind} {key!r}") from exc
        except ValueError as exc:  # still referenced: the caller must remove users first
            raise conflict(str(exc)) from exc
        controller.events.flush()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _sorted(table: dict[str, Any]) -> list[Any]:
    return [table[k] for k in sorted(table)]


def add_kind(
    router: APIRouter,
    kind: str,
    plural: str,
    model: type[BaseModel],
    *,
    with_list: bool = True,
) -> None:
    """Register GET list, GET one, PUT, POST and DELETE for one inventory kind."""
    tag = plural

    def list_objects(
        runtime: RuntimeDep, response: Response, limit: Limit = 1000, offset: Offset = 0
    ) -> list[Any]:
        with runtime.controller.lock:
            items = _sorted(runtime.controller.inventory.table(kind))
        return page(items, limit, offset, response)

    def get_object(key: str, runtime: RuntimeDep) -> Any:
        with runtime.controller.lock:
            obj = runtime.controller.inventory.table(kind).get(key)
        if obj is None:
            raise not_found(f"no {kind} {key!r}")
        return obj

    def put_object(key: str, body: Any, runtime: RuntimeDep, response: Response) -> Any:
        return store_object(runtime, kind, body, response, key)

    def post_object(body: Any, runtime: RuntimeDep, response: Response) -> Any:
        return store_object(runtime, kind, body, response, None)

    def delete_object(key: str, runtime: RuntimeDep) -> Response:
        return remove_object(runtime, kind, key)

    # FastAPI reads the body type from the annotation; it differs per kind.
    put_object.__annotations__["body"] = model
    post_object.__annotations__["body"] = model
    name = kind

    def route(path: str, endpoint: Callable[..., Any], method: str, **extra: Any) -> None:
        router.add_api_route(
            path,
            endpoint,
            methods=[method],
            tags=[tag],
            name=f"{endpoint.__name__.split('_')[0]}_{name}",
            **extra,
        )

    if with_list:
        route(f"/{plural}", list_objects, "GET", response_model=list[model])  # type: ignore[valid-type]
    route(f"/{plural}/{{key}}", get_object, "GET", response_model=model)
    route(
        f"/{plural}/{{key}}",
        put_object,
        "PUT",
        response_model=model,
        status_code=status.HTTP_200_OK,
        summary=f"Create or replace a {kind}",
        responses={201: {"description": "Created"}},
    )
    route(
        f"/{plural}",
        post_object,
        "POST",
        response_model=model,
        status_code=status.HTTP_201_CREATED,
        summary=f"Create or replace a {kind} (key from the body)",
    )
    route(
        f"/{plural}/{{key}}",
        delete_object,
        "DELETE",
        status_code=status.HTTP_204_NO_CONTENT,
        response_class=Response,
        summary=f"Remove a {kind} (refused with 409 while something refers to it)",
    )


router = APIRouter(dependencies=[Depends(standard_access)])


@router.get("/hosts", response_model=list[Host], tags=["hosts"])
def list_hosts(
    runtime: RuntimeDep,
    response: Response,
    kind: HostKind | None = None,
    site: str | None = None,
    state: HostState | None = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> list[Host]:
    with runtime.controller.lock:
        hosts = _sorted(runtime.controller.inventory.hosts)
    selected = [
        h
        for h in hosts
        if (kind is None or h.kind is kind)
        and (site is None or h.site == site)
        and (state is None or h.state is state)
    ]
    return page(selected, limit, offset, response)


add_kind(router, "site", "sites", Site)
add_kind(router, "host", "hosts", Host, with_list=False)
add_kind(router, "link", "links", Link)
add_kind(router, "flavor", "flavors", Flavor)
add_kind(router, "function", "functions", FunctionSpec)
add_kind(router, "customer", "customers", Customer)
