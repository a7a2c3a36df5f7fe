"""A programmable QM on a loopback socket, for faults the emulator does not model: replies
trickled a byte at a time, redirects with any ``Location``, huge or odd bodies.

``QMStub.script`` is a callable from the request (path, form body) to a ``Reply``; the
default answers ``amoUpdateLists`` with ``QMStub.lists`` for any campaign. Each request is
served on its own thread; ``close`` ends trickles in progress at once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Request:
    path: str
    form: dict[str, Any]


@dataclass
class Reply:
    """What the stub sends: ``trickle_s`` > 0 sends the body one byte per interval;
    ``length`` overrides the Content-Length header (None: the body's length; -1: no
    header, the body ends when the connection closes)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    trickle_s: float = 0.0
    length: int | None = None


def wire_list(name: str, weight: int = 10, **fields: Any) -> dict[str, Any]:
    """One list as amoUpdateLists sends it (open, dialing, numbers to reserve)."""
    item: dict[str, Any] = {
        "listName": name,
        "listNotes": "",
        "weight": weight,
        "listState": "open",
        "dialerState": "open",
        "dialerCanReserve": "yes",
        "nNumbersAdded": 100,
        "nNumbersCompleted": 10,
        "nNumbersPulled": 20,
        "lastPull": "2024-04-29 09:55:00",
    }
    item.update(fields)
    return item


def listing(campaign: str, lists: list[dict[str, Any]]) -> bytes:
    return json.dumps({"amoCampaignName": campaign, "lists": lists, "errors": []}).encode()


class QMStub:
    def __init__(self) -> None:
        self.lists: list[dict[str, Any]] = [wire_list("Recalls"), wire_list("Promo", 5)]
        self.script: Callable[[Request], Reply] = self.default
        self.requests: list[Request] = []
        self.stopping = threading.Event()
        self.url = ""

    def default(self, request: Request) -> Reply:
        data = json.loads(request.form.get("data", "{}"))
        return Reply(body=listing(str(data.get("amoCampaignName", "")), self.lists))


def _handler(stub: QMStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: Any) -> None:
            return None

        def do_POST(self) -> None:
            size = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(size).decode("utf-8", errors="replace")
            form = {k: v[0] for k, v in parse_qs(raw).items()}
            request = Request(self.path, form)
            stub.requests.append(request)
            reply = stub.script(request)
            self.send_response(reply.status)
            for key, value in reply.headers.items():
                self.send_header(key, value)
            length = len(reply.body) if reply.length is None else reply.length
            if length >= 0:
                self.send_header("Content-Length", str(length))
            else:  # no length: the body ends when the connection closes
                self.send_header("Connection", "close")
                self.close_connection = True
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            try:
                if reply.trickle_s <= 0:
                    self.wfile.write(reply.body)
                    return
                for index in range(len(reply.body)):
                    if stub.stopping.wait(reply.trickle_s):
                        return
                    self.wfile.write(reply.body[index : index + 1])
                    self.wfile.flush()
            except OSError:
                return  # the client gave up (its deadline): what the test wants

    return Handler


@contextmanager
def serve_stub(stub: QMStub | None = None) -> Iterator[QMStub]:
    """Serve ``stub`` on 127.0.0.1 (a free port); ``stub.url`` is the qm.url to use."""
    stub = stub if stub is not None else QMStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}/qm"
    try:
        yield stub
    finally:
        stub.stopping.set()
        server.shutdown()
        server.server_close()
