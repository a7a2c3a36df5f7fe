"""A stateful QM stub on a loopback socket: ``amoUpdateLists`` as the vendor page
describes it, with the misbehaviours a test needs switched on by assignment.

Unlike the emulator (a faithful QM with dialer and agents), the stub sends exactly the
list objects a test gives it — odd states, duplicate names, huge numbers — applies
updates by name as QM does (an unknown name creates a list), and can apply a write and
then drop the reply, fail the next reads, or answer with any bytes. (``qm_stub.QMStub``
is the scripted one: any reply, trickled, redirected; this one keeps the lists' state
across reads and writes, which the write-path tests need.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import yaml

from mixer.config import Settings, load_settings


def qm_list(name: str, weight: int = 10, **fields: Any) -> dict[str, Any]:
    """One list object as QM sends it; ``fields`` override (or add) wire fields."""
    item: dict[str, Any] = {
        "listName": name,
        "listNotes": "",
        "weight": weight,
        "listState": "open",
        "dialerState": "open",
        "dialerCanReserve": "open",
        "nNumbersAdded": 100,
        "nNumbersCompleted": 10,
        "nNumbersPulled": 20,
        "lastPull": "",
    }
    item.update(fields)
    return item


@dataclass
class StatefulQM:
    """The stub's state and switches; ``serve()`` puts it on a loopback port."""

    campaigns: dict[str, list[dict[str, Any]]]
    # Every amoUpdateLists call with listUpdates: (campaign, the entries as sent).
    writes: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    reads: int = 0
    drop_write_replies: int = 0  # apply the next N writes, then cut the connection
    fail_reads: int = 0  # answer the next N reads with HTTP 500
    # campaign -> raw reply body for reads (bytes sent as they are), when set
    raw_reads: dict[str, bytes] = field(default_factory=dict)
    on_write: Callable[[str, list[dict[str, Any]]], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def list(self, campaign: str, name: str) -> dict[str, Any]:
        found = [item for item in self.campaigns[campaign] if item["listName"] == name]
        assert len(found) == 1, (name, found)
        return found[0]

    def weights(self, campaign: str) -> dict[str, int]:
        return {item["listName"]: item["weight"] for item in self.campaigns[campaign]}

    def handle(self, data: dict[str, Any]) -> tuple[int, bytes | None]:
        """(status, body) for one request; body None = cut the connection, no reply."""
        campaign = str(data.get("amoCampaignName"))
        updates = data.get("listUpdates")
        with self.lock:
            if updates:
                self.writes.append((campaign, list(updates)))
                lists = self.campaigns.setdefault(campaign, [])
                for entry in updates:
                    target = next((i for i in lists if i["listName"] == entry["listName"]), None)
                    if target is None:  # as QM does: an unknown name creates a list
                        target = qm_list(entry["listName"], nNumbersAdded=0, nNumbersPulled=0)
                        lists.append(target)
                    target["weight"] = entry["weight"]
                    target["listState"] = "paused" if entry["paused"] else "open"
                if self.on_write is not None:
                    self.on_write(campaign, list(updates))
                if self.drop_write_replies > 0:
                    self.drop_write_replies -= 1
                    return 200, None
            else:
                self.reads += 1
                if self.fail_reads > 0:
                    self.fail_reads -= 1
                    return 500, b"<html><body>HTTP Status 500</body></html>"
                raw = self.raw_reads.get(campaign)
                if raw is not None:
                    return 200, raw
            document = {
                "amoCampaignName": campaign,
                "lists": self.campaigns.get(campaign, []),
                "errors": [],
            }
            return 200, json.dumps(document).encode()

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on 127.0.0.1 (a free port) until the block ends; yields the base URL."""
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(size).decode())
                data = json.loads(form.get("data", ["{}"])[0])
                status, body = stub.handle(data)
                if body is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/qm"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def stub_config(
    tmp_path: Path,
    url: str,
    rules: str,
    *,
    campaigns: list[str] | None = None,
    guardrails: dict[str, Any] | None = None,
    timeout: str = "2s",
) -> Path:
    """A config (mode apply) for the stub at ``url``, with ``rules`` as the one rule file."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir(exist_ok=True)
    (rules_dir / "50-test.yaml").write_text(rules, encoding="utf-8")
    config = {
        "qm": {
            "url": url,
            "user": "robot",
            "password": "bot",
            "timezone": "Europe/Zurich",
            "timeout": timeout,
        },
        "campaigns": campaigns or ["Sales"],
        "rules": ["rules/*.yaml"],
        "mode": "apply",
        "interval": "60s",
        "state_dir": "state",
        "guardrails": guardrails or {},
        "history": {"window": "60m", "min_history": "15m"},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def stub_settings(config: Path) -> Settings:
    return load_settings(config, environ={})
