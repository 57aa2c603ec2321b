"""`edgeroam hosts|instances|operations|events`: read a running controller over HTTP.

Exit codes: 0 success, 1 the server refused or failed (its message is printed), 3 the
controller could not be reached.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgeroam.cli.app import app

DEFAULT_URL = "http://127.0.0.1:8080"
EXIT_REFUSED = 1
EXIT_UNREACHABLE = 3

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

Url = Annotated[
    str, typer.Option("--url", envvar="EDGEROAM_URL", help="Base URL of the controller.")
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="EDGEROAM_TOKEN", help="API bearer token.", show_default=False),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the server's JSON as it is.")]
Limit = Annotated[int, typer.Option("--limit", min=1, help="At most this many items.")]
Offset = Annotated[int, typer.Option("--offset", min=0, help="Skip this many items.")]


class ClientError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _fail(message: str, code: int) -> NoReturn:
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


def _describe(response: httpx.Response) -> str:
    """The server's own explanation of a refusal, readable on one or a few lines."""
    try:
        detail = response.json().get("detail", response.text)
    except (ValueError, AttributeError):
        detail = response.text.strip() or response.reason_phrase
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(p) for p in item.get("loc", ()))
                parts.append(f"{loc}: {item.get('msg', item)}" if loc else str(item.get("msg")))
            else:
                parts.append(str(item))
        detail = "; ".join(parts)
    text = f"{response.status_code} {response.reason_phrase}: {detail}"
    if response.status_code == 401:
        text += " (give a token with --token or EDGEROAM_TOKEN)"
    return text


def _headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


Params = list[tuple[str, str | int | float | bool | None]]


def _params(pairs: dict[str, Any]) -> Params:
    """Query parameters without the unset ones; lists become repeated parameters."""
    result: Params = []
    for key, value in pairs.items():
        if value is None:
            continue
        for item in value if isinstance(value, list | tuple) else [value]:
            result.append((key, str(item)))
    return result


def get_json(url: str, token: str | None, path: str, params: dict[str, Any]) -> Any:
    base = url.rstrip("/")
    try:
        with httpx.Client(base_url=base, headers=_headers(token), timeout=30.0) as client:
            response = client.get(path, params=_params(params))
    except httpx.TransportError as exc:
        raise ClientError(f"cannot reach edgeroam at {base}: {exc}", EXIT_UNREACHABLE) from exc
    if response.status_code >= 400:
        raise ClientError(_describe(response), EXIT_REFUSED)
    try:
        return response.json()
    except ValueError as exc:  # something else answers on that port
        raise ClientError(
            f"{base} did not answer with JSON: is it edgeroam?", EXIT_REFUSED
        ) from exc


def _fetch(url: str, token: str | None, path: str, params: dict[str, Any]) -> Any:
    try:
        return get_json(url, token, path, params)
    except ClientError as exc:
        _fail(str(exc), exc.code)


def _when(stamp: Any) -> str:
    """Epoch seconds as local time; small numbers are simulated seconds and stay numbers."""
    if not isinstance(stamp, int | float):
        return ""
    if stamp > 1e9:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))
    return f"{stamp:.1f}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value or "")


def _show(
    data: Any,
    as_json: bool,
    title: str,
    columns: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[str]],
) -> None:
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    if not data:
        err.print(f"no {title}")
        return
    table = Table(title=f"{title} ({len(data)})", title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for item in data:
        table.add_row(*row(item))
    out.print(table)


@app.command()
def hosts(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
    kind: Annotated[str | None, typer.Option(help="cpe, server or cloud.")] = None,
    site: Annotated[str | None, typer.Option(help="Only hosts of this site.")] = None,
    state: Annotated[str | None, typer.Option(help="ready, cordoned, draining, down, off.")] = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> None:
    """List the hosts of a running controller."""
    data = _fetch(
        url,
        token,
        "/api/v1/hosts",
        {"kind": kind, "site": site, "state": state, "limit": limit, "offset": offset},
    )

    def row(h: dict[str, Any]) -> list[str]:
        cap = h.get("capacity", {})
        return [
            h["id"],
            h["kind"],
            h["site"],
            h["state"],
            _num(cap.get("vcpu")),
            _num(cap.get("memory_mb")),
            _num(cap.get("bandwidth_mbps")),
            h.get("owner") or "",
        ]

    _show(
        data,
        as_json,
        "hosts",
        ["id", "kind", "site", "state", "vcpu", "memory MB", "bw Mbit/s", "owner"],
        row,
    )


@app.command()
def instances(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
    function: Annotated[str | None, typer.Option(help="Only instances of this function.")] = None,
    host: Annotated[str | None, typer.Option(help="Only instances on this host.")] = None,
    owner: Annotated[str | None, typer.Option(help="Only this customer's instances.")] = None,
    stage: Annotated[str | None, typer.Option(help="Lifecycle stage, e.g. monitoring.")] = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> None:
    """List function instances and their lifecycle stage."""
    data = _fetch(
        url,
        token,
        "/api/v1/instances",
        {
            "function": function,
            "host": host,
            "owner": owner,
            "stage": stage,
            "limit": limit,
            "offset": offset,
        },
    )
    _show(
        data,
        as_json,
        "instances",
        ["id", "function", "host", "owner", "role", "stage", "updated"],
        lambda i: [
            i["id"],
            i["function"],
            i["host"],
            i.get("owner") or "",
            i.get("role", ""),
            i.get("stage", ""),
            _when(i.get("updated_at")),
        ],
    )


@app.command()
def operations(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
    state: Annotated[
        list[str] | None, typer.Option(help="Repeatable, e.g. --state FAILED_TEMP.")
    ] = None,
    kind: Annotated[str | None, typer.Option(help="e.g. migrate, heal, instantiate.")] = None,
    subject: Annotated[str | None, typer.Option(help="Instance, group or host acted on.")] = None,
    since: Annotated[float | None, typer.Option(help="Updated at or after (seconds).")] = None,
    limit: Limit = 1000,
    offset: Offset = 0,
) -> None:
    """List lifecycle operations, oldest first."""
    data = _fetch(
        url,
        token,
        "/api/v1/operations",
        {
            "state": state,
            "kind": kind,
            "subject": subject,
            "since": since,
            "limit": limit,
            "offset": offset,
        },
    )
    _show(
        data,
        as_json,
        "operations",
        ["id", "kind", "state", "subject", "hosts", "policy", "created", "error"],
        lambda o: [
            o["id"],
            o["kind"],
            o["state"],
            o["subject"],
            ",".join(o.get("hosts", [])),
            o.get("policy", ""),
            _when(o.get("created_at")),
            o.get("error") or "",
        ],
    )


def _event_line(e: dict[str, Any]) -> str:
    tags = ",".join(e.get("tags", []))
    return (
        f"{e.get('id')} {_when(e.get('time'))} {e.get('severity', ''):8} "
        f"{e.get('category', ''):10} {e.get('message', '')}" + (f"  [{tags}]" if tags else "")
    )


def _sse(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The `data` of each server-sent event (comments and keep-alives skipped)."""
    data: list[str] = []
    for line in response.iter_lines():
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
        elif not line and data:
            yield json.loads("\n".join(data))
            data = []


def _follow(url: str, token: str | None, params: dict[str, Any], as_json: bool) -> None:
    base = url.rstrip("/")
    try:
        with (
            httpx.Client(base_url=base, headers=_headers(token), timeout=None) as client,
            client.stream("GET", "/api/v1/events/stream", params=_params(params)) as response,
        ):
            if response.status_code >= 400:
                response.read()
                _fail(_describe(response), EXIT_REFUSED)
            for event in _sse(response):
                typer.echo(json.dumps(event) if as_json else _event_line(event))
    except httpx.TransportError as exc:
        _fail(f"cannot reach edgeroam at {base}: {exc}", EXIT_UNREACHABLE)
    except KeyboardInterrupt:
        return


@app.command()
def events(
    url: Url = DEFAULT_URL,
    token: Token = None,
    as_json: AsJson = False,
    category: Annotated[
        str | None, typer.Option(help="decision, operation, lifecycle, alarm, …")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Repeatable; all must match.")] = None,
    severity: Annotated[str | None, typer.Option(help="debug … critical.")] = None,
    since: Annotated[float | None, typer.Option(help="At or after (seconds).")] = None,
    until: Annotated[float | None, typer.Option(help="At or before (seconds).")] = None,
    limit: Limit = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then keep printing new events.")
    ] = False,
) -> None:
    """Show the newest events (oldest of them first); --follow streams new ones."""
    filters: dict[str, Any] = {"category": category, "tag": tag, "severity": severity}
    data = _fetch(
        url,
        token,
        "/api/v1/events",
        {**filters, "since": since, "until": until, "limit": limit, "order": "desc"},
    )
    data = list(reversed(data))
    if as_json and not follow:
        typer.echo(json.dumps(data, indent=2))
    else:
        for event in data:
            typer.echo(json.dumps(event) if as_json else _event_line(event))
    if follow:
        last = max((e.get("id") or 0 for e in data), default=0)
        _follow(url, token, {**filters, "after_id": last}, as_json)
