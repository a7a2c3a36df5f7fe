"""The daemon's one HTTP listener: ``/metrics`` for Prometheus, and the status views
(``/`` the page, ``/status.json`` the same data, ``/why?campaign=C&list=L`` one list's
trace) from the latest snapshot the cycle published.

A plain WSGI app on a threading server: each request gets its own thread, reads the
board's current reference once, and never takes a lock the cycle holds. No auth and no
TLS here: the listener binds to loopback unless ``metrics.allow_remote`` says otherwise;
exposing it goes through a reverse proxy (docs/operations.md).

The why view shows what ``amo-mixer explain`` shows; its renderers are handed in
(``WhyViews``) by the command that starts the daemon, so this layer does not depend on
the command layer.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import tzinfo
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry, make_wsgi_app

from mixer.errors import MixerError
from mixer.status.board import Published, StatusBoard
from mixer.status.page import as_json_bytes, render_page, render_why

if TYPE_CHECKING:
    from mixer.plan import CampaignPlan

StartResponse = Callable[..., Any]
HTML = "text/html; charset=utf-8"
JSON = "application/json; charset=utf-8"
UTC_ZONE = ZoneInfo("UTC")


@dataclass(frozen=True)
class WhyViews:
    """How to show one list's trace from a plan: as text (times in the given zone) and as
    JSON-able data."""

    text: Callable[[CampaignPlan, str, tzinfo], str]
    data: Callable[[CampaignPlan, str], Mapping[str, Any]]


class StatusApp:
    """WSGI app: ``/metrics`` from ``registry``, the status views from ``board``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        board: StatusBoard | None = None,
        tz: ZoneInfo = UTC_ZONE,
        why: WhyViews | None = None,
    ) -> None:
        self._metrics = make_wsgi_app(registry)
        self.board = board
        self.tz = tz
        self.why = why

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path == "/metrics":
            return self._metrics(environ, start_response)  # type: ignore[no-any-return]
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _send(start_response, "405 Method Not Allowed", "text/plain", b"GET only\n")
        if self.board is None:
            return _send(start_response, "404 Not Found", "text/plain", b"only /metrics here\n")
        current = self.board.current
        query = parse_qs(environ.get("QUERY_STRING") or "")
        if path in ("/", "/index.html"):
            body = _cached(current, "page", lambda: render_page(current.snapshot, self.tz).encode())
            return _send(start_response, "200 OK", HTML, body)
        if path == "/status.json":
            body = _cached(current, "json", lambda: as_json_bytes(current.snapshot))
            return _send(start_response, "200 OK", JSON, body)
        if path in ("/why", "/why.json"):
            campaign = (query.get("campaign") or [""])[0]
            name = (query.get("list") or [""])[0]
            return self._why(current, campaign, name, path.endswith(".json"), start_response)
        return _send(start_response, "404 Not Found", "text/plain", b"not found\n")

    def _why(
        self,
        current: Published,
        campaign: str,
        name: str,
        as_json: bool,
        start_response: StartResponse,
    ) -> Iterable[bytes]:
        plan = current.plans.get(campaign)
        found = plan is not None and name in plan.evaluation.lists
        if self.why is None:
            body = b"the why view is not enabled in this process\n"
            return _send(start_response, "404 Not Found", "text/plain", body)
        at = plan.now.isoformat(timespec="seconds") if plan is not None else None
        status = "200 OK" if found else "404 Not Found"
        if as_json:
            data = self.why.data(plan, name) if plan is not None and found else None
            payload = data if data is not None else {"error": "no such list in the last cycle"}
            body = json.dumps(payload, default=str, ensure_ascii=False, indent=1).encode()
            return _send(start_response, status, JSON, body)
        trace = self.why.text(plan, name, self.tz) if plan is not None and found else None
        return _send(start_response, status, HTML, render_why(campaign, name, trace, at).encode())


def _cached(current: Published, key: str, render: Callable[[], bytes]) -> bytes:
    body = current.rendered.get(key)
    if body is None:
        body = current.rendered[key] = render()
    return body


def _send(start_response: StartResponse, status: str, kind: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", kind),
            ("Content-Length", str(len(body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            (
                "Content-Security-Policy",
                "default-src 'none'; style-src 'unsafe-inline'; "
                "script-src 'unsafe-inline'; img-src data:; connect-src 'self'",
            ),
        ],
    )
    return [body]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request; request threads never keep the process alive."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: the daemon's stdout carries JSON logs only."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Listener:
    """A running listener; calling it shuts it down and joins its thread."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        address = server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])

    def __call__(self) -> None:
        if not self._thread.is_alive():
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve(host: str, port: int, app: StatusApp) -> Listener:
    """Serve ``app`` on ``host:port`` in a daemon thread."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET

    class Server(_ThreadingServer):
        address_family = family

    try:
        server = make_server(host, port, app, Server, handler_class=_QuietHandler)
    except OSError as exc:
        raise MixerError(
            f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
            "choose a free address in metrics.listen, or remove metrics to disable it"
        ) from exc
    thread = threading.Thread(target=server.serve_forever, name="amo-mixer-http", daemon=True)
    thread.start()
    return Listener(server, thread)
