"""The AMO wire format: request bodies out, lenient reply parsing in.

The vendor page documents the list objects but not the envelope of an ``amoUpdateLists``
reply, so parsing accepts what a QM server (or a proxy in front of it) plausibly sends:
a top-level array of list objects, or an object whose list-of-objects value holds them.
Unknown fields are ignored, numbers may be strings, state words come in any case. What
cannot be trusted (not JSON, a documented field missing, an unreadable ``lastPull``)
raises ``QMBadReplyError`` naming the list and field, never a half-read snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import quote_plus

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from mixer.qm.errors import QMApiError, QMBadReplyError
from mixer.snapshot import ListSnapshot, ListUpdate

__all__ = [
    "MAX_BODY_BYTES",
    "SNIPPET_BYTES",
    "ReplyContext",
    "api_error",
    "decode_json",
    "find_lists",
    "form_body",
    "latest_not_after",
    "list_update_bodies",
    "lists_from_document",
    "local_time",
    "number_bodies",
    "parse_last_pull",
    "parse_list",
    "parse_lists_reply",
    "reply_errors",
    "snippet",
    "update_entry",
]

MAX_BODY_BYTES = 900_000  # QM allows ~1 MB per call; stay well under it
SNIPPET_BYTES = 120
_MAX_ERRORS_SHOWN = 5


def _no_redaction(text: str) -> str:
    return text


@dataclass(frozen=True, slots=True)
class ReplyContext:
    """Where a reply came from, so every message names host, endpoint and campaign.

    ``redact`` scrubs secrets out of any text that came from the server or from httpx.
    """

    source: str  # "QM at 127.0.0.1:8080", or "snapshot file x.json"
    endpoint: str | None = None
    campaign: str | None = None
    status: int | None = None
    redact: Callable[[str], str] = field(default=_no_redaction)

    def details(self, *extra: str) -> str:
        """``HTTP 200, amoUpdateLists, campaign 'Sales'`` plus any extra parts."""
        parts: list[str] = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.endpoint:
            parts.append(self.endpoint)
        if self.campaign is not None:
            parts.append(f"campaign '{self.campaign}'")
        parts.extend(extra)
        return ", ".join(parts)

    def message(self, what: str, todo: str, *extra: str) -> str:
        """``<source> <what> (<details>): <todo>`` on one line."""
        details = self.details(*extra)
        where = f"{self.source} {what}" + (f" ({details})" if details else "")
        return _one_line(self.redact(f"{where}: {todo}"))  # list labels come from QM too

    def bad_reply(
        self, what: str, todo: str, *extra: str, transient: bool = False
    ) -> QMBadReplyError:
        return QMBadReplyError(
            self.message(what, todo, *extra),
            campaign=self.campaign,
            endpoint=self.endpoint,
            status=self.status,
            transient=transient,
        )


# --- requests ------------------------------------------------------------------------


def form_body(document: Mapping[str, Any]) -> bytes:
    """``data=<JSON>`` form-encoded: the exact bytes POSTed (so sizes are exact)."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return b"data=" + quote_plus(text).encode("ascii")


def update_entry(update: ListUpdate) -> dict[str, Any]:
    """One ``listUpdates`` object: weight and paused always, listNotes only when set."""
    entry: dict[str, Any] = {
        "listName": update.name,
        "weight": update.weight,
        "paused": update.paused,
    }
    if update.notes is not None:
        entry["listNotes"] = update.notes
    return entry


def _array_bodies(
    envelope: Mapping[str, Any], key: str, entries: Sequence[Mapping[str, Any]], limit: int
) -> list[bytes]:
    """Bodies carrying ``envelope`` plus ``entries`` under ``key``, in order, each strictly
    under ``limit`` bytes (at least one body, even for no entries).

    Form encoding is per character, so a body's size is the empty envelope plus each
    entry plus a comma between entries: greedy packing is exact. Raises ``IndexError``
    with the position of an entry that cannot fit alone.
    """
    base = len(form_body({**envelope, key: []}))
    comma = len(quote_plus(","))
    chunks: list[list[Mapping[str, Any]]] = [[]]
    size = base
    for index, entry in enumerate(entries):
        entry_size = len(form_body(entry)) - len(b"data=")
        if base + entry_size >= limit:
            raise IndexError(index, base + entry_size)
        extra = entry_size + (comma if chunks[-1] else 0)
        if chunks[-1] and size + extra >= limit:
            chunks.append([entry])
            size = base + entry_size
        else:
            chunks[-1].append(entry)
            size += extra
    bodies = [form_body({**envelope, key: chunk}) for chunk in chunks]
    if any(len(body) >= limit for body in bodies):  # pragma: no cover - arithmetic above
        raise AssertionError("a request body grew over the limit")
    return bodies


def list_update_bodies(
    campaign: str, updates: Sequence[ListUpdate], *, limit: int = MAX_BODY_BYTES
) -> list[bytes]:
    """``amoUpdateLists`` bodies carrying ``updates`` in order, each under ``limit`` bytes.

    Raises ``ValueError`` naming the list when one update alone cannot fit.
    """
    try:
        return _array_bodies(
            {"amoCampaignName": campaign},
            "listUpdates",
            [update_entry(update) for update in updates],
            limit,
        )
    except IndexError as exc:
        index, size = exc.args
        raise ValueError(
            f"the update for list '{updates[index].name}' alone needs {size} bytes, "
            f"over the limit of {limit} per call"
        ) from None


def number_bodies(
    envelope: Mapping[str, Any],
    numbers: Sequence[Mapping[str, object]],
    *,
    limit: int = MAX_BODY_BYTES,
) -> list[bytes]:
    """``amoUpdateNumbers`` bodies carrying ``numbers`` in order, each under ``limit``.

    Raises ``ValueError`` when one number alone cannot fit, ``TypeError`` when a number
    holds something JSON cannot carry.
    """
    try:
        return _array_bodies(envelope, "numbers", list(numbers), limit)
    except IndexError as exc:
        index, size = exc.args
        raise ValueError(
            f"number #{index + 1} alone needs {size} bytes, over the limit of {limit} per call"
        ) from None


# --- replies: envelope ----------------------------------------------------------------


def snippet(body: bytes, redact: Callable[[str], str] = _no_redaction) -> str:
    """The first bytes of a body as one escaped, quoted line (secrets redacted first)."""
    if not body:
        return "an empty body"
    # redact on a wider window so a secret crossing the cut is still caught whole
    text = redact(body[: SNIPPET_BYTES * 4].decode("utf-8", errors="replace"))
    cut = text[:SNIPPET_BYTES]
    more = "..." if len(cut) < len(text) or len(body) > SNIPPET_BYTES * 4 else ""
    return json.dumps(cut, ensure_ascii=True) + more


def decode_json(body: bytes, context: ReplyContext) -> Any:
    """The JSON document in ``body``, or ``QMBadReplyError`` with the first bytes."""
    try:
        return json.loads(body)
    except RecursionError:
        raise context.bad_reply(
            "sent JSON nested too deeply to read", "check the QM server and any proxy"
        ) from None
    except ValueError as exc:
        if not isinstance(exc, UnicodeDecodeError | json.JSONDecodeError):
            # e.g. an integer of more than 4,300 digits (CPython's conversion limit)
            raise context.bad_reply(
                "sent a value that cannot be read",
                f"{' '.join(str(exc).split())[:120]}; check the QM server and any proxy",
            ) from None
        looks_like_json = body.lstrip()[:1] in (b"{", b"[")
        start = snippet(body, context.redact)
        if looks_like_json and isinstance(exc, json.JSONDecodeError):
            raise context.bad_reply(
                "sent broken JSON",
                f"it starts with {start}; the reply was cut short or damaged: check the QM "
                "server and any proxy in front of it",
                f"{exc.msg}, char {exc.pos} of {len(body)}",
            ) from None
        raise context.bad_reply(
            "sent a reply that is not JSON",
            f"it starts with {start}; check that qm.url points at QM's web app, not at a "
            "login page or a proxy",
        ) from None


def _key(document: Mapping[str, Any], name: str) -> Any:
    """``document[name]`` with the key compared case-insensitively."""
    if name in document:
        return document[name]
    for key, value in document.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def find_lists(document: Any) -> list[Any] | None:
    """The list objects in a reply, or None when it holds no array that could be them.

    A top-level array; else the value of ``lists``; else an array of objects carrying
    ``listName``; else any array of objects; else an empty array (a campaign without
    lists). ``errors`` is never taken for the lists.
    """
    if isinstance(document, list):
        return document
    if not isinstance(document, dict):
        return None
    arrays = [
        (str(key).lower(), value)
        for key, value in document.items()
        if isinstance(value, list) and str(key).lower() != "errors"
    ]
    for key, value in arrays:
        if key == "lists":
            return value
    objects = [v for _, v in arrays if v and all(isinstance(item, dict) for item in v)]
    for value in objects:
        if any("listName" in item for item in value):
            return value
    if objects:
        return objects[0]
    for _, value in arrays:
        if not value:
            return value
    return None


def _error_text(entry: Any) -> str:
    if entry is None:
        return ""
    if isinstance(entry, str):
        return entry.strip()
    if isinstance(entry, dict):
        message = next(
            (str(entry[k]).strip() for k in ("error", "message", "msg") if entry.get(k)), ""
        )
        if not message:
            other = {k: v for k, v in entry.items() if k not in ("error", "message", "msg")}
            return json.dumps(other, ensure_ascii=True, sort_keys=True) if other else ""
        for key, label in (("listName", "list"), ("number", "number"), ("numberId", "numberId")):
            if entry.get(key):
                return f"{label} '{entry[key]}': {message}"
        return message
    return str(entry).strip()


def reply_errors(document: Any) -> tuple[str, ...]:
    """The ``errors`` entries of a reply, one line each (empty entries skipped)."""
    if not isinstance(document, dict):
        return ()
    raw = _key(document, "errors")
    if raw is None or raw == "":
        return ()
    entries: Iterable[Any] = raw if isinstance(raw, list) else [raw]
    texts = (_one_line(_error_text(entry))[:200] for entry in entries)
    return tuple(text for text in texts if text)


def api_error(errors: Sequence[str], context: ReplyContext) -> QMApiError:
    """``QMApiError`` listing (the first few of) ``errors``."""
    shown = [context.redact(text) for text in errors[:_MAX_ERRORS_SHOWN]]
    listed = "; ".join(shown)
    if len(errors) > _MAX_ERRORS_SHOWN:
        listed += f"; and {len(errors) - _MAX_ERRORS_SHOWN} more"
    noun = "error" if len(errors) == 1 else "errors"
    return QMApiError(
        context.message(
            f"reported {len(errors)} {noun}: {listed}",
            "check the campaign and list names, and QM's own logs",
        ),
        errors=tuple(errors),
        campaign=context.campaign,
        endpoint=context.endpoint,
        status=context.status,
    )


# --- replies: list objects ------------------------------------------------------------


def _reject_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a count, not true/false")
    return value


# State words as QM sends them: no need to strip or lower-case these.
_PLAIN_STATES = frozenset({"open", "paused", "closed", "completed"})


def _state_word(value: str) -> str:
    return value if value in _PLAIN_STATES else value.strip().lower()


_Count = Annotated[int, BeforeValidator(_reject_bool)]
_State = Annotated[str, AfterValidator(_state_word)]


class _WireList(BaseModel):
    """One list object as documented; extra fields ignored, numbers may be strings."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(alias="listName", min_length=1)
    notes: str | None = Field(default=None, alias="listNotes")
    weight: _Count = Field(alias="weight")
    list_state: _State = Field(alias="listState")
    dialer_state: _State = Field(alias="dialerState")
    can_reserve_state: _State = Field(alias="dialerCanReserve")
    added: _Count = Field(alias="nNumbersAdded")
    completed: _Count = Field(alias="nNumbersCompleted")
    pulled: _Count = Field(alias="nNumbersPulled")
    last_pull: str | None = Field(default=None, alias="lastPull")


def parse_last_pull(value: str | None, tz: tzinfo) -> datetime | None:
    """``YYYY-MM-DD HH:MM:SS`` in QM's time zone -> aware datetime; blank -> None.

    ISO 8601 (``T``, fractions, an offset) is accepted too; MySQL's zero date
    ``0000-00-00 ...`` means never pulled. Raises ``ValueError`` for anything else.
    """
    if value is None:
        return None
    text = value.strip()
    if not text or text.startswith("0000-00-00"):
        return None
    try:  # fromisoformat reads QM's form too, ~30x faster than strptime
        parsed = datetime.fromisoformat(text)
    except ValueError:  # e.g. unpadded fields, which strptime still takes
        parsed = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    if parsed.tzinfo is None:
        return local_time(parsed, tz)
    return parsed.astimezone(tz)


def local_time(naive: datetime, tz: tzinfo) -> datetime:
    """A wall-clock time QM sent, in ``tz``: an ambiguous one (the repeated hour of a
    DST fall-back) is read as its later occurrence (``fold=1``); ``latest_not_after``
    takes it back to the earlier one when that lies in the future."""
    early = naive.replace(tzinfo=tz)
    late = naive.replace(tzinfo=tz, fold=1)
    if early.utcoffset() == late.utcoffset():
        return early
    if late.astimezone(UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return early  # a time in the spring-forward gap: not ambiguous, keep the usual reading
    return late


def latest_not_after(when: datetime, now: datetime) -> datetime:
    """``when`` read as the latest of its readings that is not after ``now``: a time of
    the repeated hour whose later reading is still in the future is the earlier one."""
    if when.fold == 1 and when > now:
        earlier = when.replace(fold=0)
        if earlier.utcoffset() != when.utcoffset():
            return earlier
    return when


def _list_label(item: Any, index: int) -> str:
    name = item.get("listName") if isinstance(item, dict) else None
    if isinstance(name, str) and name:
        return f"list '{name}'"
    return f"list #{index + 1}"


def _model_list(
    item: dict[str, Any], index: int, tz: tzinfo, context: ReplyContext
) -> ListSnapshot:
    """A list object through ``_WireList``: coerced where it can be, else
    ``QMBadReplyError`` naming the list and the field. The one path: a hand-written
    shortcut for well-formed objects saved ~3 µs a list but nothing measurable end to
    end (docs/benchmarks.md), so it went."""
    label = _list_label(item, index)
    todo = "the reply does not match QM's API page; check the QM version and qm.url"
    try:
        wire = _WireList.model_validate(item)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "?"
        if problem["type"] == "missing":
            what = f"sent {label} without the field '{where}'"
        else:
            shown = context.redact(repr(problem.get("input")))[:60]
            what = f"sent {label} with a bad '{where}' ({problem['msg']}, got {shown})"
        raise context.bad_reply(what, todo) from None
    try:
        last_pull = parse_last_pull(wire.last_pull, tz)
    except ValueError:
        shown = context.redact(repr(wire.last_pull))[:60]
        raise context.bad_reply(
            f"sent {label} with an unreadable 'lastPull' {shown}",
            "expected 'YYYY-MM-DD HH:MM:SS' in QM's time zone; check the QM version",
        ) from None
    return ListSnapshot(
        name=wire.name,
        notes=wire.notes or "",
        weight=wire.weight,
        list_state=wire.list_state,
        dialer_state=wire.dialer_state,
        can_reserve_state=wire.can_reserve_state,
        added=wire.added,
        completed=wire.completed,
        pulled=wire.pulled,
        last_pull=last_pull,
    )


def parse_list(item: Any, index: int, tz: tzinfo, context: ReplyContext) -> ListSnapshot:
    """One wire list object -> ``ListSnapshot``, or ``QMBadReplyError`` naming list+field."""
    if not isinstance(item, dict):
        todo = "the reply does not match QM's API page; check the QM version and qm.url"
        raise context.bad_reply(f"sent {_list_label(item, index)} that is not an object", todo)
    parsed = _model_list(item, index, tz, context)
    _check_ranges(parsed, context)
    return parsed


# QM is a Java application: a weight is an ``int``, a counter at most a ``long`` (and the
# state store keeps 64-bit integers). Anything outside is a bad reply, never a value to
# act on or to write back.
MAX_WEIGHT = 2**31 - 1
MAX_COUNT = 2**63 - 1


def _check_ranges(item: ListSnapshot, context: ReplyContext) -> None:
    checks = (
        ("weight", item.weight, MAX_WEIGHT),
        ("nNumbersAdded", item.added, MAX_COUNT),
        ("nNumbersCompleted", item.completed, MAX_COUNT),
        ("nNumbersPulled", item.pulled, MAX_COUNT),
    )
    for field_name, value, top in checks:
        if 0 <= value <= top:
            continue
        bits = abs(value).bit_length()
        shown = str(value) if bits < 128 else f"a number of about {round(bits * 0.30103)} digits"
        name = context.redact(item.name)[:60]
        raise context.bad_reply(
            f"sent list '{name}' with '{field_name}' out of range ({shown}; expected 0 to {top})",
            "nothing was written to this campaign; check the QM server and any proxy in front "
            "of it",
        )


def lists_from_document(
    document: Any, tz: tzinfo, context: ReplyContext
) -> tuple[ListSnapshot, ...] | None:
    """The lists of a decoded reply; ``QMApiError`` on ``errors``; None when it holds none."""
    errors = reply_errors(document)
    if errors:
        raise api_error(errors, context)
    raw = find_lists(document)
    if raw is None:
        return None
    return tuple(parse_list(item, index, tz, context) for index, item in enumerate(raw))


def parse_lists_reply(
    body: bytes,
    *,
    timezone: tzinfo,
    campaign: str | None = None,
    context: ReplyContext | None = None,
) -> tuple[ListSnapshot, ...]:
    """Parse a whole ``amoUpdateLists`` reply (from QM or a saved file) into snapshots.

    Raises ``QMBadReplyError`` (not JSON, no lists, a bad field) or ``QMApiError``.
    """
    if context is None:
        context = ReplyContext("the amoUpdateLists reply", "amoUpdateLists", campaign)
    lists = lists_from_document(decode_json(body, context), timezone, context)
    if lists is None:
        raise context.bad_reply(
            "sent a reply without an array of lists",
            f"it starts with {snippet(body, context.redact)}; check the QM version",
        )
    return lists


def _one_line(text: str) -> str:
    """Join the lines of ``text`` (a message must stay on one line)."""
    return " ".join(text.splitlines())
