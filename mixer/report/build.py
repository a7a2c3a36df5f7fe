"""The report page: one HTML file with the data, the script and plotly.js inline.

Nothing is fetched when the page opens (no CDN, no fonts), so it can be mailed or
archived and read offline. Text from the log is never pasted into markup: the data sits
in a ``<script type="application/json">`` block with ``<``, ``>`` and ``&`` escaped, and
the page's script puts it on screen with ``textContent``.
"""

from __future__ import annotations

import html
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from importlib import resources
from pathlib import Path
from typing import Any

from mixer.errors import MixerError
from mixer.report.data import DEFAULT_MAX_POINTS, ReportData, collect

INSTALL_HINT = "pip install 'amo-mixer[report]'"
_TOKEN = re.compile(r"@@([A-Z_]+)@@")
_EMPTY = (
    '<section class="panel" id="nothing-yet"><p class="empty">Nothing yet: the decision log '
    "has no records in this range. Once the mixer has run a few cycles, build the report "
    "again.</p></section>"
)


class ReportDependencyError(MixerError):
    """plotly, the optional dependency that draws the charts, is not installed."""


def build_report(
    records: Iterable[Mapping[str, Any]],
    *,
    title: str,
    generated_at: datetime,
    max_points: int = DEFAULT_MAX_POINTS,
    zone: tzinfo = UTC,
) -> str:
    """The whole report page for ``records`` (decision-log records, in log order)."""
    return render_report(
        collect(records, max_points=max_points, zone=zone),
        title=title,
        generated_at=generated_at,
        zone=zone,
    )


def render_report(
    data: ReportData,
    *,
    title: str,
    generated_at: datetime,
    zone: tzinfo = UTC,
    replay: Mapping[str, Any] | None = None,
) -> str:
    """The page for already collected ``data`` (collected in the same ``zone``);
    ``replay`` (``ReplayResult.to_dict()``) adds the section comparing the running rules
    with new ones."""
    stamp = f"{generated_at.astimezone(zone):%Y-%m-%d %H:%M:%S} {data.zone}"
    document = {"title": title, "generated_at": stamp, **data.as_json()}
    if replay is not None:
        document["replay"] = dict(replay)
    values = {
        "TITLE": html.escape(title),
        "GENERATED": html.escape(stamp),
        "ZONE": html.escape(data.zone),
        "DATA": embed_json(document),
        "PLOTLY": plotly_js(),
        "EMPTY": _EMPTY if data.empty else "",
    }
    template = resources.files("mixer.report").joinpath("template.html").read_text("utf-8")
    # One pass, so nothing inserted (plotly.js included) is scanned for tokens again.
    return _TOKEN.sub(lambda m: values[m.group(1)], template)


def embed_json(value: object) -> str:
    """JSON safe to sit inside a ``<script>`` element: no ``</script>``, no ``<!--``."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def plotly_js() -> str:
    """The plotly.js bundle shipped inside the installed ``plotly`` package."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as exc:
        raise ReportDependencyError(
            f"the HTML report needs plotly, which is not installed: {INSTALL_HINT}"
        ) from exc
    script: str = get_plotlyjs()
    if "</script" in script.lower():  # would end the inline <script> element early
        raise ReportDependencyError(
            "this plotly version's bundle cannot be inlined; install another: " + INSTALL_HINT
        )
    return script


def write_report(path: Path, text: str) -> None:
    """Write the page atomically: a temp file in the same folder, then ``os.replace``."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise MixerError(
            f"cannot write the report in {folder}: {exc.strerror}; choose another -o path"
        ) from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise MixerError(
            f"cannot write the report to {path}: {exc.strerror}; choose another -o path"
        ) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
