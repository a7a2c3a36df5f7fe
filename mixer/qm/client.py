"""The AMO client: the only code in amo-mixer that talks HTTP to QueueMetrics.

One ``httpx.Client`` per ``QMClient`` (connection reuse, basic auth, timeouts); the
transport can be injected, so tests and the simulator run the real client against
``httpx.MockTransport`` or the emulator's WSGI app in-process. Reads are retried with
stamina on transport errors, 5xx and 429; writes never are (a retried write could apply
twice, and the reply after a write is the proof of what QM holds).
"""

from __future__ import annotations

import base64
import logging
import re
import ssl
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, tzinfo
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

import httpx
import stamina

from mixer.closing import Closing
from mixer.errors import ConfigError
from mixer.qm import deadline
from mixer.qm.errors import (
    QMAuthError,
    QMBadReplyError,
    QMError,
    QMRefusedUpdateError,
    QMUnreachableError,
)
from mixer.qm.wire import (
    MAX_BODY_BYTES,
    ReplyContext,
    api_error,
    decode_json,
    form_body,
    latest_not_after,
    list_update_bodies,
    lists_from_document,
    number_bodies,
    reply_errors,
    snippet,
)
from mixer.snapshot import CampaignSnapshot, ListSnapshot, ListUpdate

__all__ = ["QMClient"]

LISTS = "amoUpdateLists"
NUMBERS = "amoUpdateNumbers"
_FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
_READ_BODIES_KEPT = 1_000  # campaigns whose read request body is kept
MAX_REPLY_BYTES = 32 * 1024 * 1024
"""Default cap on one reply's (decoded) size: far above any real listing, far below RAM."""
_FRAGMENT_MIN = 4  # shorter pieces of a password are too common to redact
_URL_DELIMITERS = re.compile(r"[\s:/?#\[\]@!$&'()*+,;=%]+")
_T = TypeVar("_T")


def _quiet_httpx_loggers() -> None:
    """httpx logs every request URL at INFO: keep its loggers at WARNING or above."""
    for name in ("httpx", "httpcore"):
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))


def _secret_forms(user: str, password: str) -> tuple[str, ...]:
    """The password as it could show up in text: plain, URL-encoded, base64 (alone and
    as the ``user:password`` of a basic-auth header), and each piece of it between URL
    delimiters and spaces (a URL parser quotes "Invalid port: 'Sup3r'" from a server's
    ``Location``), of at least four characters. Longest first."""
    if not password:
        return ()
    forms = {
        password,
        quote(password, safe=""),
        quote_plus(password),
        base64.b64encode(password.encode()).decode("ascii"),
        base64.b64encode(f"{user}:{password}".encode()).decode("ascii"),
    }
    for piece in _URL_DELIMITERS.split(password):
        if len(piece) >= _FRAGMENT_MIN:
            forms.update((piece, quote(piece, safe=""), quote_plus(piece)))
    return tuple(sorted(forms, key=len, reverse=True))


def _shown_location(location: str) -> str:
    """A redirect target as a message may show it: scheme, host, port and path only (no
    user, password, query or fragment), or a placeholder when it does not parse."""
    try:
        url = httpx.URL(location)
        host = url.host
    except Exception:
        return "a location that is not a valid URL"
    if not host:
        return f"the path {url.path[:80]!r}" if url.path else "an empty location"
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}{url.path}"[:120]


def _tls_context(url: httpx.URL, verify_tls: bool) -> ssl.SSLContext | bool:
    """What the transport verifies TLS with: for an ``https://`` QM, as ``qm.verify_tls``
    says (httpx loads the CA bundle, ~17 ms); an ``http://`` QM never speaks TLS through
    this transport (one base URL, no redirects followed), so it gets a context that
    trusts no certificate: nothing to load, and a TLS use could only fail, never pass
    unverified."""
    if url.scheme == "https":
        return verify_tls
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def _is_transient(exc: Exception) -> bool:
    return isinstance(exc, QMError) and exc.transient


class QMClient(Closing):
    """Reads and writes AMO call lists of one QM server.

    ``read_lists`` and ``update_lists`` return ``CampaignSnapshot``; every failure is a
    ``QMError`` whose one-line message names host, endpoint and campaign.
    """

    def __init__(
        self,
        base_url: str,
        user: str,
        password: str,
        *,
        timezone: tzinfo,
        timeout: float = 10.0,
        verify_tls: bool = True,
        transport: httpx.BaseTransport | None = None,
        read_attempts: int = 3,
        max_reply_bytes: int = MAX_REPLY_BYTES,
    ) -> None:
        if read_attempts < 1:
            raise ValueError("read_attempts must be at least 1")
        if max_reply_bytes < 1:
            raise ValueError("max_reply_bytes must be at least 1")
        try:
            url = httpx.URL(base_url)
        except httpx.InvalidURL:
            raise ConfigError("qm.url is not a valid URL: use http://host:8080/qm") from None
        if url.userinfo:
            raise ConfigError(
                "qm.url must not carry a user name or password: set qm.user and the password"
            )
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError("qm.url must be an http:// or https:// URL like http://host:8080/qm")
        _quiet_httpx_loggers()
        self.base_url = str(url).rstrip("/")
        self.user = user
        self.timezone = timezone
        self.timeout = timeout
        self.read_attempts = read_attempts
        self.max_reply_bytes = max_reply_bytes
        self._deadlines = deadline.Deadlines()
        if transport is None:  # the real network: every request gets a total deadline
            transport = httpx.HTTPTransport(verify=_tls_context(url, verify_tls))
            self.total_deadline = deadline.install(transport, self._deadlines)
        else:  # an in-process transport (tests, simulator) has no sockets to bound
            self.total_deadline = False
        host = f"[{url.host}]" if ":" in url.host else url.host
        self.host = f"{host}:{url.port}" if url.port is not None else host
        self._secrets = _secret_forms(user, password)
        self._urls: dict[str, httpx.URL] = {}
        self._read_bodies: dict[str, bytes] = {}
        self._http = httpx.Client(
            auth=httpx.BasicAuth(user, password),
            timeout=httpx.Timeout(timeout),
            verify=verify_tls,
            transport=transport,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        )

    def _url(self, endpoint: str) -> httpx.URL:
        """The endpoint's URL, parsed once: httpx parses a string URL on every request."""
        url = self._urls.get(endpoint)
        if url is None:
            url = self._urls[endpoint] = httpx.URL(f"{self.base_url}/{endpoint}.do")
        return url

    def __repr__(self) -> str:
        return f"QMClient({self.base_url!r}, user={self.user!r})"

    # --- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def interrupt(self) -> None:
        """End reads in flight at once and send no new ones (the daemon is stopping); a
        write in flight still ends within its deadline."""
        self._deadlines.interrupt()

    # --- the API ------------------------------------------------------------------------

    def read_lists(self, campaign: str, *, now: datetime) -> CampaignSnapshot:
        """Every list of ``campaign``, stamped ``read_at=now`` (retried when transient)."""
        lists = tuple(_not_in_future(item, now) for item in self._read(campaign))
        return CampaignSnapshot(campaign, lists, now)

    def update_lists(
        self, campaign: str, updates: Sequence[ListUpdate], *, read: CampaignSnapshot
    ) -> CampaignSnapshot:
        """Send ``updates`` and return the listing QM answers with (``read_at`` of ``read``).

        Refuses, before any HTTP call, an update for a name not read byte-for-byte in
        ``read`` (QM would create a list). Splits the updates so each request body stays
        under 900,000 bytes. Never retried. When the reply is not a full listing, re-reads.
        """
        if not updates:
            return read
        self._check_updates(campaign, updates, read)
        try:
            bodies = list_update_bodies(campaign, updates, limit=MAX_BODY_BYTES)
        except ValueError as exc:
            raise self._refuse(campaign, str(exc), "shorten the notes") from None
        lists: tuple[ListSnapshot, ...] | None = None
        for body in bodies:
            reply, context = self._post(LISTS, body, campaign)
            lists = lists_from_document(decode_json(reply, context), self.timezone, context)
        if lists is None or not {u.name for u in updates} <= {item.name for item in lists}:
            lists = self._read(campaign)
        return CampaignSnapshot(campaign, lists, read.read_at)

    def add_numbers(
        self, campaign: str, list_name: str, numbers: Sequence[Mapping[str, object]]
    ) -> dict[str, Any]:
        """Add or edit numbers (``amoUpdateNumbers``); the raw reply, merged when the
        numbers needed several calls. Raises ``QMApiError`` when ``errors`` is not empty."""
        envelope = {"amoCampaignName": campaign, "listName": list_name}
        try:
            bodies = number_bodies(envelope, numbers, limit=MAX_BODY_BYTES)
        except (TypeError, ValueError) as exc:
            raise self._refuse(campaign, str(exc), "fix the numbers", endpoint=NUMBERS) from None
        merged: dict[str, Any] | None = None
        for body in bodies:
            raw, context = self._post(NUMBERS, body, campaign)
            document = decode_json(raw, context)
            if not isinstance(document, dict):
                raise context.bad_reply(
                    "sent a reply that is not a JSON object",
                    f"it starts with {snippet(raw, self._redact)}; check the QM version",
                )
            errors = reply_errors(document)
            if errors:
                raise api_error(errors, context)
            merged = document if merged is None else _merge_number_replies(merged, document)
        assert merged is not None  # number_bodies always yields at least one body
        return merged

    # --- internals ----------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _refuse(
        self, campaign: str, why: str, todo: str, *, endpoint: str = LISTS
    ) -> QMRefusedUpdateError:
        context = ReplyContext(f"update to QM at {self.host}", endpoint, campaign)
        return QMRefusedUpdateError(
            context.message(f"refused: {why}", f"nothing was sent; {todo}"),
            campaign=campaign,
            endpoint=endpoint,
        )

    def _check_updates(
        self, campaign: str, updates: Sequence[ListUpdate], read: CampaignSnapshot
    ) -> None:
        if campaign != read.campaign:
            raise self._refuse(
                campaign,
                f"the lists were read for campaign '{read.campaign}'",
                "read this campaign's lists first",
            )
        unknown = [u.name for u in updates if u.name not in read.names]
        if unknown:
            names = ", ".join(f"'{name}'" for name in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise self._refuse(
                campaign,
                f"list {names}{more} was not read this cycle and QM would create it",
                "update only lists read in the same cycle, byte for byte",
            )
        twice = [name for name, count in Counter(u.name for u in updates).items() if count > 1]
        if twice:
            names = ", ".join(f"'{name}'" for name in twice[:5])
            raise self._refuse(
                campaign, f"more than one update for list {names}", "send one update per list"
            )

    def _read(self, campaign: str) -> tuple[ListSnapshot, ...]:
        body = self._read_bodies.get(campaign)
        if body is None:  # the same bytes every cycle: encode them once per campaign
            if len(self._read_bodies) >= _READ_BODIES_KEPT:
                self._read_bodies.clear()
            body = self._read_bodies[campaign] = form_body({"amoCampaignName": campaign})

        def attempt(number: int) -> tuple[ListSnapshot, ...]:
            reply, context = self._post(LISTS, body, campaign, attempt=number, reading=True)
            lists = lists_from_document(decode_json(reply, context), self.timezone, context)
            if lists is None:
                raise context.bad_reply(
                    "sent a reply without an array of lists",
                    f"it starts with {snippet(reply, self._redact)}; check the QM version",
                )
            return lists

        return self._retrying(attempt)

    def _retrying(self, call: Callable[[int], _T]) -> _T:
        """``call(attempt_number)`` under stamina: transient QMErrors only."""
        for attempt in stamina.retry_context(
            on=_is_transient,
            attempts=self.read_attempts,
            timeout=None,
            wait_initial=0.5,
            wait_max=5.0,
        ):
            with attempt:
                return call(attempt.num)
        raise AssertionError("stamina ended without a result")  # pragma: no cover

    def _post(
        self, endpoint: str, body: bytes, campaign: str, *, attempt: int = 1, reading: bool = False
    ) -> tuple[bytes, ReplyContext]:
        """POST ``body`` to ``endpoint``; the reply body of a 2xx, else a ``QMError``.

        The whole call, connect to last byte, ends within ``timeout`` on a real network;
        a read (``reading``) also ends at once on ``interrupt``."""
        source = f"QM at {self.host}"
        context = ReplyContext(source, endpoint, campaign, redact=self._redact)
        tries = (f"after {attempt} attempts",) if attempt > 1 else ()
        if reading and self._deadlines.interrupted:
            raise QMUnreachableError(
                context.message("was not asked", "the daemon is stopping; nothing was sent"),
                campaign=campaign,
                endpoint=endpoint,
            )
        self._deadlines.start(self.timeout, interruptible=reading)
        try:
            response, content = self._send(endpoint, body, context)
        except httpx.TimeoutException as exc:
            if reading and self._deadlines.interrupted:
                raise QMUnreachableError(
                    context.message("was interrupted", "the daemon is stopping", *tries),
                    campaign=campaign,
                    endpoint=endpoint,
                ) from exc
            raise QMUnreachableError(
                context.message(
                    f"did not answer within the timeout of {self.timeout:g} s",
                    "check that QM is running and reachable, or raise qm.timeout",
                    type(exc).__name__,
                    *tries,
                ),
                campaign=campaign,
                endpoint=endpoint,
                transient=True,
            ) from exc
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc):
                raise self._bad_location(context) from exc  # its text quotes the Location
            detail = self._redact(str(exc)) or "no detail"
            raise QMUnreachableError(
                context.message(
                    "cannot be reached",
                    "check qm.url and that QM is running",
                    f"{type(exc).__name__}: {detail}",
                    f"timeout {self.timeout:g} s",
                    *tries,
                ),
                campaign=campaign,
                endpoint=endpoint,
                transient=not isinstance(exc, httpx.UnsupportedProtocol),
            ) from exc
        except httpx.HTTPError as exc:  # e.g. a body that fails to decompress
            detail = self._redact(str(exc)) or "no detail"
            raise QMBadReplyError(
                context.message(
                    f"sent a reply that cannot be read ({type(exc).__name__}: {detail})",
                    "check the QM server or the proxy in front of it",
                ),
                campaign=campaign,
                endpoint=endpoint,
            ) from exc
        except httpx.InvalidURL as exc:  # a Location httpx cannot parse: it may hold secrets
            raise self._bad_location(context) from exc
        finally:
            self._deadlines.clear()
        context = ReplyContext(
            source, endpoint, campaign, status=response.status_code, redact=self._redact
        )
        self._check_status(response, content, context, tries)
        return content, context

    def _bad_location(self, context: ReplyContext) -> QMBadReplyError:
        """A redirect whose ``Location`` does not parse: never quoted (it may carry the
        password, and httpx's message quotes pieces of it)."""
        return QMBadReplyError(
            context.message(
                "redirected the call to a location that is not a valid URL",
                "check qm.url (http or https, host, path)",
            ),
            campaign=context.campaign,
            endpoint=context.endpoint,
        )

    def _send(
        self, endpoint: str, body: bytes, context: ReplyContext
    ) -> tuple[httpx.Response, bytes]:
        """POST and read the reply, refusing one larger than ``max_reply_bytes`` before
        holding more than that (the declared length first, then the bytes as they come)."""
        cap = self.max_reply_bytes
        with self._http.stream("POST", self._url(endpoint), content=body, headers=_FORM) as r:
            declared = r.headers.get("content-length", "")
            too_big = declared.isdigit() and len(declared) < 20 and int(declared) > cap
            chunks: list[bytes] = []
            size = 0
            if not too_big:
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    if size > cap:
                        too_big = True
                        break
                    chunks.append(chunk)
            if too_big:
                raise QMBadReplyError(
                    ReplyContext(
                        context.source,
                        context.endpoint,
                        context.campaign,
                        status=r.status_code,
                        redact=self._redact,
                    ).message(
                        f"sent a reply larger than qm.max_reply_bytes ({cap:,} bytes)",
                        "check the QM server and the campaign, or raise qm.max_reply_bytes",
                    ),
                    campaign=context.campaign,
                    endpoint=context.endpoint,
                    status=r.status_code,
                )
            return r, b"".join(chunks)

    def _check_status(
        self,
        response: httpx.Response,
        content: bytes,
        context: ReplyContext,
        tries: tuple[str, ...],
    ) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 401:
            raise QMAuthError(
                context.message(
                    f"refused the credentials for user '{self.user}'",
                    "check qm.user and the password",
                ),
                campaign=context.campaign,
                endpoint=context.endpoint,
                status=status,
            )
        if status == 403:
            raise QMAuthError(
                context.message(
                    f"denied access to user '{self.user}'",
                    "the user lacks the security key USR_AMO; grant it to the user in QM",
                ),
                campaign=context.campaign,
                endpoint=context.endpoint,
                status=status,
            )
        said = self._server_says(content, context)
        if status == 404:
            path = response.request.url.path
            raise context.bad_reply(
                f"has no page {path}", f"it answered {said}; check qm.url (it ends in /qm)"
            )
        if 300 <= status < 400:
            location = response.headers.get("location")
            where = self._redact(_shown_location(location)) if location else "elsewhere"
            raise context.bad_reply(
                f"redirected the call to {where}", "check qm.url (http or https, host, path)"
            )
        if status == 429:
            raise context.bad_reply(
                "is limiting the rate of calls",
                f"it answered {said}; retry later or raise the interval",
                *tries,
                transient=True,
            )
        if status >= 500:
            raise context.bad_reply(
                "failed with a server error",
                f"it answered {said}; check the QM server and its logs",
                *tries,
                transient=True,
            )
        raise context.bad_reply(
            "rejected the call", f"it answered {said}; check qm.url and the QM version"
        )

    def _server_says(self, body: bytes, context: ReplyContext) -> str:
        """The ``errors`` of a JSON error body, else its first bytes."""
        try:
            document = decode_json(body, context)
        except QMBadReplyError:
            return snippet(body, self._redact)
        errors = reply_errors(document)
        if errors:
            return "; ".join(self._redact(text) for text in errors[:3])
        return snippet(body, self._redact)


def _merge_number_replies(first: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    merged = dict(first)
    for key in ("numbers", "errors"):
        if isinstance(more.get(key), list):
            merged[key] = [*(merged.get(key) or []), *more[key]]
    if isinstance(first.get("durationMs"), int) and isinstance(more.get("durationMs"), int):
        merged["durationMs"] = first["durationMs"] + more["durationMs"]
    return merged


def _not_in_future(item: ListSnapshot, now: datetime) -> ListSnapshot:
    """The list with an ambiguous ``lastPull`` read as the latest reading not after now."""
    if item.last_pull is None or item.last_pull.fold == 0:
        return item
    when = latest_not_after(item.last_pull, now)
    return item if when is item.last_pull else replace(item, last_pull=when)
