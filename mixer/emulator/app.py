"""The emulated QM server as a plain WSGI app: the two AMO endpoints, auth, faults, dialer.

The wire follows the vendor's API page (``seed/amo-api.txt``); where it is silent, the
choices are written down in docs/emulator.md. Each request first moves the simulated
dialer to ``clock.now()``, so a reader sees the lists as they are at that instant.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import hmac
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from mixer import json_codec
from mixer.clock import Clock, ScaledClock
from mixer.emulator.dialer import Dialer, ListKey
from mixer.emulator.faults import FAULT_KINDS, FaultError, Faults
from mixer.emulator.scenario import Scenario, load_scenario
from mixer.emulator.state import CallList, EmulatorState

__all__ = ["MAX_PAYLOAD_BYTES", "EmulatorApp", "EmulatorStats", "create_app"]

MAX_PAYLOAD_BYTES = 1_000_000
DEFAULT_USERS: Mapping[str, tuple[str, bool]] = {"robot": ("bot", True), "nokey": ("nokey", False)}
_ENDPOINTS = {"amoUpdateLists.do": "amoUpdateLists", "amoUpdateNumbers.do": "amoUpdateNumbers"}
_REALM = 'Basic realm="QueueMetrics"'

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

_LOGIN_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>QueueMetrics - Login</title></head>\n"
    '<body><form method="post" action="{base}/login.do">\n'
    '<input name="username"> <input name="password" type="password">\n'
    "<button>Log in</button></form></body></html>\n"
)
_ERROR_PAGE = (
    "<!doctype html><html><head><title>HTTP Status 500 - Internal Server Error</title>"
    "</head><body><h1>HTTP Status 500 - Internal Server Error</h1>"
    "<p>java.lang.NullPointerException</p></body></html>"
)


FLAP_WINDOW_SECONDS = 600.0


@dataclass
class EmulatorStats:
    """What the emulator was asked: tests assert "zero writes" with these.

    ``update_calls`` counts calls carrying a non-empty ``listUpdates`` (whether or not a
    fault stopped them); ``list_updates`` counts entries per ``(campaign, list)`` received;
    ``applied_updates`` the ones actually applied. ``flaps`` counts, per list, changes that
    undo the list's previous change of the same kind within ``FLAP_WINDOW_SECONDS``: a
    weight going back to what it was before that change, or a pause flag flipped back.
    """

    requests: Counter[str] = field(default_factory=Counter)
    update_calls: int = 0
    list_updates: Counter[ListKey] = field(default_factory=Counter)
    applied_updates: Counter[ListKey] = field(default_factory=Counter)
    number_writes: int = 0
    flaps: Counter[ListKey] = field(default_factory=Counter)
    _weight_moves: dict[ListKey, tuple[float, int]] = field(default_factory=dict, repr=False)
    _pause_flips: dict[ListKey, float] = field(default_factory=dict, repr=False)

    def note_change(
        self, key: ListKey, before: tuple[int, bool], after: tuple[int, bool], ts: float
    ) -> None:
        """Count a flap when this change undoes the list's previous change of the same kind
        within ``FLAP_WINDOW_SECONDS``: the weight goes back to the value it had before
        that change, or the pause flag flips back."""
        if after[0] != before[0]:
            last = self._weight_moves.get(key)
            if last is not None and last[1] == after[0] and ts - last[0] <= FLAP_WINDOW_SECONDS:
                self.flaps[key] += 1
            self._weight_moves[key] = (ts, before[0])
        if after[1] != before[1]:
            flipped = self._pause_flips.get(key)
            if flipped is not None and ts - flipped <= FLAP_WINDOW_SECONDS:
                self.flaps[key] += 1
            self._pause_flips[key] = ts

    def reset(self) -> None:
        self.requests.clear()
        self.update_calls = 0
        self.list_updates.clear()
        self.applied_updates.clear()
        self.number_writes = 0
        self.flaps.clear()
        self._weight_moves.clear()
        self._pause_flips.clear()


class _HttpError(Exception):
    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json_bytes(document: Any) -> bytes:
    return json_codec.dumps(document)


class EmulatorApp:
    """A QM server's AMO API in one WSGI callable. Thread-safe (one lock per app)."""

    def __init__(
        self,
        scenario: Scenario,
        *,
        clock: Clock,
        users: Mapping[str, tuple[str, bool]],
        base_path: str = "/qm",
        dialer: bool = True,
        policy: str = "weighted",
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.users = dict(users)
        self.base_path = "/" + base_path.strip("/") if base_path.strip("/") else ""
        self.state = EmulatorState.from_scenario(scenario)
        self.dialer: Dialer | None = Dialer(self.state, scenario, policy=policy) if dialer else None
        self.faults = Faults()
        self.stats = EmulatorStats()
        self.lock = threading.RLock()

    # --- time -----------------------------------------------------------------------------

    def advance(self) -> None:
        """Move the simulated dialer to ``clock.now()``."""
        with self.lock:
            if self.dialer is not None:
                self.dialer.advance(self.clock.now())

    def _now_ts(self) -> float:
        if self.dialer is not None:
            return self.dialer.now
        return self.clock.now().timestamp()

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "") or "/"
        prefix = self.base_path + "/"
        self.advance()
        if not path.startswith(prefix):
            return self._error(start_response, "404 Not Found", f"no such page {path}", started)
        page = path[len(prefix) :]
        try:
            self._authorize(environ)
            if page == "_emulator/faults":
                return self._faults_page(environ, start_response)
            if page == "_emulator/metrics":
                return self._metrics_page(start_response)
            endpoint = _ENDPOINTS.get(page)
            if endpoint is None:
                raise _HttpError("404 Not Found", f"no such page {path}")
            method = environ.get("REQUEST_METHOD", "GET")
            if method not in ("GET", "POST"):
                raise _HttpError(
                    "405 Method Not Allowed", f"{method} is not supported: use GET or POST"
                )
            data = self._read_data(environ)
        except _HttpError as exc:
            return self._error(start_response, exc.status, exc.message, started)
        return self._serve_endpoint(endpoint, data, start_response, started)

    def _serve_endpoint(
        self, endpoint: str, data: dict[str, Any], start_response: StartResponse, started: float
    ) -> Iterable[bytes]:
        is_write = bool(data.get("listUpdates")) or bool(data.get("numbers"))
        with self.lock:
            self.stats.requests[endpoint] += 1
            updates = data.get("listUpdates")
            if endpoint == "amoUpdateLists" and isinstance(updates, list) and updates:
                self.stats.update_calls += 1
                campaign = str(data.get("amoCampaignName", ""))
                for entry in updates:
                    if isinstance(entry, dict):
                        self.stats.list_updates[(campaign, str(entry.get("listName", "")))] += 1
            elif endpoint == "amoUpdateNumbers" and is_write:
                self.stats.number_writes += 1
        faults = self.faults
        latency = faults.take("latency", endpoint)
        if latency is not None:
            faults.sleep(float(latency.options["seconds"]))
        if faults.take("unauthorized_401", endpoint) is not None:
            return self._error(start_response, "401 Unauthorized", "bad credentials", started)
        if faults.take("status_500", endpoint) is not None:
            return self._send(start_response, "500 Internal Server Error", _ERROR_PAGE, "text/html")
        if faults.take("html_200", endpoint) is not None:
            page = _LOGIN_PAGE.format(base=self.base_path)
            return self._send(start_response, "200 OK", page, "text/html")
        if faults.take("fail_writes", endpoint, is_write=is_write) is not None:
            return self._send(start_response, "500 Internal Server Error", _ERROR_PAGE, "text/html")
        apply = faults.take("ignore_writes", endpoint, is_write=is_write) is None
        api_errors = faults.take("api_errors", endpoint)
        if api_errors is not None:
            apply = False
        with self.lock:
            if endpoint == "amoUpdateLists":
                reply = self._update_lists(data, apply=apply)
            else:
                reply = self._update_numbers(data, apply=apply)
        if api_errors is not None:
            message = str(api_errors.options.get("message", "Internal error while processing"))
            reply["errors"].append({"error": message})
        reply["durationMs"] = int((time.perf_counter() - started) * 1000)
        body = _json_bytes(reply)
        if faults.take("truncated_json", endpoint) is not None:
            body = body[: max(len(body) // 2, 1)]
        return self._send(start_response, "200 OK", body, "application/json;charset=UTF-8")

    # --- request parsing ------------------------------------------------------------------

    def _authorize(self, environ: Environ) -> None:
        header = environ.get("HTTP_AUTHORIZATION", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic":
            raise _HttpError("401 Unauthorized", "authentication required")
        try:
            user, _, password = base64.b64decode(token.strip()).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _HttpError("401 Unauthorized", "malformed basic authentication") from exc
        known = self.users.get(user)
        if known is None or not hmac.compare_digest(known[0].encode(), password.encode()):
            raise _HttpError("401 Unauthorized", "bad user name or password")
        if not known[1]:
            raise _HttpError("403 Forbidden", f"user {user!r} does not hold the key USR_AMO")

    def _read_body(self, environ: Environ) -> bytes:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError as exc:
            raise _HttpError("400 Bad Request", "bad Content-Length") from exc
        stream = environ["wsgi.input"]
        if length > MAX_PAYLOAD_BYTES:
            remaining = min(length, 64 * MAX_PAYLOAD_BYTES)
            while remaining > 0:  # drain, so the client gets to read our answer
                chunk = stream.read(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
            raise _HttpError(
                "413 Payload Too Large",
                f"payload of {length} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes",
            )
        return bytes(stream.read(length)) if length else b""

    def _read_data(self, environ: Environ) -> dict[str, Any]:
        query = environ.get("QUERY_STRING", "")
        if len(query) > MAX_PAYLOAD_BYTES:
            raise _HttpError(
                "413 Payload Too Large",
                f"query of {len(query)} bytes exceeds the limit of {MAX_PAYLOAD_BYTES} bytes",
            )
        fields = parse_qs(query, keep_blank_values=True)
        raw: Any = fields["data"][0] if "data" in fields else None
        if environ.get("REQUEST_METHOD") == "POST":
            body = self._read_body(environ)
            ctype = environ.get("CONTENT_TYPE", "") or ""
            if ctype.startswith("application/json"):
                try:
                    document = json.loads(body.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise _HttpError("400 Bad Request", f"body is not valid JSON: {exc}") from exc
                raw = document.get("data", document) if isinstance(document, dict) else document
            elif ctype.startswith("multipart/form-data"):
                raw = _multipart_field(ctype, body, "data") or raw
            elif body:
                try:
                    form = parse_qs(body.decode("utf-8"), keep_blank_values=True)
                except UnicodeDecodeError as exc:
                    raise _HttpError("400 Bad Request", "form body is not UTF-8") from exc
                if "data" in form:
                    raw = form["data"][0]
        if raw is None:
            raise _HttpError("400 Bad Request", "missing parameter 'data' (a JSON document)")
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise _HttpError(
                    "400 Bad Request", f"parameter 'data' is not valid JSON: {exc}"
                ) from exc
        if not isinstance(raw, dict):
            raise _HttpError("400 Bad Request", "parameter 'data' must be a JSON object")
        return raw

    # --- amoUpdateLists -------------------------------------------------------------------

    def _hidden(self, campaign: str) -> set[str]:
        """Names of this campaign's lists a ``vanish_list`` fault hides."""
        return {
            str(fault.options.get("list"))
            for fault in self.faults.active()
            if fault.kind == "vanish_list" and fault.options.get("campaign") == campaign
        }

    def _update_lists(self, data: dict[str, Any], *, apply: bool) -> dict[str, Any]:
        campaign = data.get("amoCampaignName")
        reply: dict[str, Any] = {"amoCampaignName": campaign, "lists": [], "errors": []}
        errors: list[dict[str, Any]] = reply["errors"]
        if not isinstance(campaign, str) or campaign not in self.state.campaigns:
            errors.append({"error": f"Unknown campaign {campaign!r}"})
            return reply
        updates = data.get("listUpdates", [])
        if not isinstance(updates, list):
            errors.append({"error": "listUpdates must be an array of list objects"})
            updates = []
        changed = False
        for entry in updates:
            problem = _check_list_update(entry)
            if problem is not None:
                name = entry.get("listName") if isinstance(entry, dict) else None
                errors.append({"listName": name, "error": problem})
                continue
            if apply:
                self._apply_list_update(campaign, entry)
                changed = True
        if changed:
            self.state.on_change()
        now = self._now_ts()
        hidden = self._hidden(campaign)
        reply["lists"] = [
            item.to_wire(now)
            for item in self.state.campaigns[campaign].values()
            if item.name not in hidden
        ]
        return reply

    def _apply_list_update(self, campaign: str, entry: dict[str, Any]) -> None:
        name = entry["listName"]
        call_list = self.state.find_list(campaign, name)
        if call_list is None:
            call_list = self.state.create_list(campaign, name)
        before = (call_list.weight, call_list.paused)
        if "weight" in entry:
            call_list.weight = int(entry["weight"])
        if "paused" in entry:
            call_list.paused = _as_bool(entry["paused"])
        after = (call_list.weight, call_list.paused)
        self.stats.note_change((campaign, name), before, after, self._now_ts())
        notes = entry.get("listNotes")
        if notes is not None:
            call_list.set_notes(str(notes))
        self.stats.applied_updates[(campaign, name)] += 1

    # --- amoUpdateNumbers -----------------------------------------------------------------

    def _update_numbers(self, data: dict[str, Any], *, apply: bool) -> dict[str, Any]:
        campaign = data.get("amoCampaignName")
        list_name = data.get("listName")
        reply: dict[str, Any] = {
            "amoCampaignName": campaign,
            "amoListName": list_name,
            "numbers": [],
            "errors": [],
        }
        errors: list[dict[str, Any]] = reply["errors"]
        if not isinstance(campaign, str) or campaign not in self.state.campaigns:
            errors.append({"error": f"Unknown campaign {campaign!r}"})
            return reply
        call_list = None
        if isinstance(list_name, str) and list_name not in self._hidden(campaign):
            call_list = self.state.find_list(campaign, list_name)
        if call_list is None:
            errors.append({"error": f"Unknown list {list_name!r} in campaign {campaign!r}"})
            return reply
        entries = data.get("numbers", [])
        if not isinstance(entries, list):
            errors.append({"error": "numbers must be an array of number objects"})
            return reply
        added = False
        for entry in entries:
            record, problem = self._write_number(call_list, entry, apply=apply)
            if problem is None:
                reply["numbers"].append({**record, "error": ""})
                added = added or apply
            else:
                errors.append({**record, "error": problem})
        if added:
            self.state.on_change()
        return reply

    def _write_number(
        self, call_list: CallList, entry: Any, *, apply: bool
    ) -> tuple[dict[str, Any], str | None]:
        if not isinstance(entry, dict):
            return {"numberId": "", "number": "", "validFrom": "", "attrs": {}}, (
                "a number must be a JSON object"
            )
        number_id = str(entry.get("numberId") or "").strip()
        phone = entry.get("number")
        valid_text = entry.get("validFrom")
        attrs = entry.get("attrs")
        record: dict[str, Any] = {
            "numberId": number_id,
            "number": "" if phone is None else str(phone),
            "validFrom": "" if valid_text is None else str(valid_text),
            "attrs": attrs if isinstance(attrs, dict) else {},
        }
        if attrs is not None and not isinstance(attrs, dict):
            return record, "attrs must be an object of string attributes"
        clean_attrs = None if attrs is None else {str(k): str(v) for k, v in attrs.items()}
        valid_from = None
        if valid_text is not None:
            try:
                valid_from = self.state.parse_valid_from(str(valid_text))
            except ValueError:
                return record, f"Invalid validFrom {valid_text!r}: use YYYY-MM-DD HH:MM:SS"
        if not number_id:
            if phone is None or not str(phone).strip():
                return record, "Missing number"
            if not apply:
                return record, None
            created = self.state.new_number(
                call_list,
                str(phone),
                valid_from or self.state.parse_valid_from(""),
                clean_attrs or {},
            )
            return created.to_wire(), None
        existing = call_list.numbers.get(int(number_id)) if number_id.isdigit() else None
        if existing is None:
            return record, f"Unknown numberId {number_id!r} in list {call_list.name!r}"
        if not apply:
            return record, None
        call_list.update_number(
            existing,
            phone=None if phone is None else str(phone),
            valid_from=valid_from,
            attrs=clean_attrs,
        )
        return existing.to_wire(), None

    # --- the control pages ----------------------------------------------------------------

    def _faults_page(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "DELETE":
            kind = parse_qs(environ.get("QUERY_STRING", "")).get("kind", [None])[0]
            self.faults.clear(kind)
        elif method == "POST":
            body = self._read_body(environ)
            try:
                document = json.loads(body.decode("utf-8") or "{}")
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise _HttpError("400 Bad Request", f"fault body is not valid JSON: {exc}") from exc
            if not isinstance(document, dict) or "kind" not in document:
                raise _HttpError(
                    "400 Bad Request", f'send {{"kind": ...}}, one of {", ".join(FAULT_KINDS)}'
                )
            options = dict(document)
            kind = str(options.pop("kind"))
            try:
                self.faults.set(kind, **options)
            except (FaultError, TypeError) as exc:
                raise _HttpError("400 Bad Request", str(exc)) from exc
        elif method != "GET":
            raise _HttpError("405 Method Not Allowed", "use GET, POST or DELETE")
        active = [fault.to_dict() for fault in self.faults.active()]
        return self._send(start_response, "200 OK", _json_bytes({"faults": active}))

    def _metrics_page(self, start_response: StartResponse) -> Iterable[bytes]:
        with self.lock:
            metrics = None if self.dialer is None else self.dialer.metrics().to_dict()
        return self._send(start_response, "200 OK", _json_bytes({"dialer": metrics}))

    # --- responses ------------------------------------------------------------------------

    def _send(
        self,
        start_response: StartResponse,
        status: str,
        body: bytes | str,
        content_type: str = "application/json;charset=UTF-8",
        extra: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        payload = body.encode("utf-8") if isinstance(body, str) else body
        headers = [("Content-Type", content_type), ("Content-Length", str(len(payload)))]
        start_response(status, headers + (extra or []))
        return [payload]

    def _error(
        self, start_response: StartResponse, status: str, message: str, started: float
    ) -> list[bytes]:
        extra = [("WWW-Authenticate", _REALM)] if status.startswith("401") else None
        document = {
            "errors": [{"error": message}],
            "durationMs": int((time.perf_counter() - started) * 1000),
        }
        return self._send(start_response, status, _json_bytes(document), extra=extra)


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _check_list_update(entry: Any) -> str | None:
    """Why a ``listUpdates`` entry cannot be applied, or None."""
    if not isinstance(entry, dict):
        return "a list update must be a JSON object"
    name = entry.get("listName")
    if not isinstance(name, str) or not name:
        return "listName is required"
    if "weight" in entry:
        weight = entry["weight"]
        if isinstance(weight, bool) or not (
            isinstance(weight, int) or (isinstance(weight, str) and weight.strip().isdigit())
        ):
            return f"weight must be a non-negative integer, not {weight!r}"
        if int(weight) < 0:
            return "weight must not be negative"
    if "paused" in entry:
        paused = entry["paused"]
        if not isinstance(paused, bool) and str(paused).strip().lower() not in ("true", "false"):
            return f"paused must be true or false, not {paused!r}"
    notes = entry.get("listNotes")
    if notes is not None and not isinstance(notes, str):
        return "listNotes must be a string"
    return None


def _multipart_field(content_type: str, body: bytes, name: str) -> str | None:
    """The text of one field of a multipart/form-data body (None if absent)."""
    header = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(header + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode("utf-8")
    return None


def create_app(
    scenario: Scenario | str | None = None,
    *,
    clock: Clock | None = None,
    users: Mapping[str, tuple[str, bool]] | None = None,
    base_path: str = "/qm",
    dialer: bool = True,
    policy: str = "weighted",
) -> EmulatorApp:
    """An emulator for ``scenario`` (a Scenario, a shipped name or a YAML path; None =
    ``"default"``), in real time from the scenario start unless a clock is given."""
    if scenario is None:
        scenario = "default"
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    return EmulatorApp(
        scenario,
        clock=clock if clock is not None else ScaledClock(scenario.start, 1.0),
        users=users if users is not None else DEFAULT_USERS,
        base_path=base_path,
        dialer=dialer,
        policy=policy,
    )
