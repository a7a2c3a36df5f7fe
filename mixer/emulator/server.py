"""Serve an emulator app on a loopback port, in a background thread.

``wsgiref`` with one thread per request is plenty for tests, the demo and curl, and adds
no dependency. The server logs nothing: a test run's output stays readable.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from mixer.emulator.app import EmulatorApp
from mixer.errors import MixerError

__all__ = ["serve"]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a request body never reaches a log anyway (POST)."""


@contextmanager
def serve(app: EmulatorApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields the base URL (``http://host:port/qm``)."""
    try:
        server = make_server(
            host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
        )
    except OSError as exc:
        raise MixerError(
            f"emulator cannot listen on {host}:{port}: {exc.strerror or exc}; "
            "pick another --port or stop what is using it"
        ) from exc
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
    )
    thread.start()
    bound_port = server.server_address[1]
    try:
        yield f"http://{host}:{bound_port}{app.base_path}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
