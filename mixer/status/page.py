"""The status page: one self-contained HTML document (no external resource), drawn on
the server so that the table and the charts work with JavaScript off; a few lines of
script add a filter box and report the page's state for the browser test.

Charts are inline SVG written here: a bar per list, a few hundred bytes each, so a page
of 500 lists stays small and renders at once (the report's plotly bundle is 3.5 MB).
"""

from __future__ import annotations

import html
import json
from datetime import datetime
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from mixer.status.model import CampaignStatus, ListStatus, StatusSnapshot

CHART_LISTS = 40  # bars per chart: the most relevant lists, the table has them all
MIN_REFRESH_S = 5
MAX_REFRESH_S = 300

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#222;background:#fff}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.2em;margin:1.2em 0 .3em;
border-bottom:1px solid #ccc}h3{font-size:1em;margin:.8em 0 .2em}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:2px 8px;border-bottom:1px solid #eee;
text-align:left;vertical-align:top}th{background:#f4f4f4;position:sticky;top:0}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#176317}.error{color:#b00020;font-weight:bold}.guardrail{color:#a35a00}
.off{color:#b00020;font-weight:bold}.on{color:#176317}.muted{color:#777}
.meta{color:#555}svg{display:block;margin:.3em 0}svg text{font:11px sans-serif}
#filter{display:none;margin:.5em 0;padding:3px;width:24em}pre{background:#f7f7f7;padding:.6em}
"""

SCRIPT = """
(function(){
  var state={errors:[],rendered:false,charts:0,rows:0};
  window.addEventListener('error',function(e){state.errors.push(String(e.message));show();});
  function show(){var el=document.getElementById('page-state');
    if(el){el.textContent=JSON.stringify(state);}}
  var box=document.getElementById('filter');
  var rows=Array.prototype.slice.call(document.querySelectorAll('tr.list'));
  function apply(){var words=box.value.toLowerCase().split(/\\s+/).filter(Boolean);
    rows.forEach(function(r){var t=r.textContent.toLowerCase();
      r.style.display=words.every(function(w){return t.indexOf(w)>=0;})?'':'none';});
    try{history.replaceState(null,'',box.value?'#q='+encodeURIComponent(box.value):'#');}
    catch(e){}}
  box.style.display='block';
  var m=/[#&]q=([^&]*)/.exec(location.hash);
  if(m){box.value=decodeURIComponent(m[1]);}
  box.addEventListener('input',apply);apply();
  state.charts=document.querySelectorAll('svg.chart').length;
  state.rows=rows.length;state.rendered=true;
  state.ms=Math.round(performance.now());show();
})();
"""


def render_page(snapshot: StatusSnapshot, tz: ZoneInfo) -> str:
    """The whole page for ``snapshot``, times shown in ``tz`` (QM's zone)."""
    refresh = int(min(max(snapshot.interval_s or 60, MIN_REFRESH_S), MAX_REFRESH_S))
    parts = [
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv="refresh" content="{refresh}">',
        '<meta name="viewport" content="width=device-width,initial-scale=1">',
        "<title>amo-mixer status</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>amo-mixer status</h1>",
        _header(snapshot, tz, refresh),
        '<input id="filter" type="search" placeholder="filter lists: words, e.g. Sales off">',
    ]
    if not snapshot.campaigns:
        parts.append("<p>No cycle has run yet: this page fills after the first one.</p>")
    parts.extend(_campaign(c, tz) for c in snapshot.campaigns)
    parts += [
        '<pre id="page-state" hidden>{"rendered": false}</pre>',
        f"<script>{SCRIPT}</script></body></html>",
    ]
    return "".join(parts)


def render_why(campaign: str, list_name: str, trace: str | None, at: str | None) -> str:
    """The "why" page of one list: ``explain``'s text for the last cycle."""
    title = f"{campaign} / {list_name}"
    body = (
        f"<pre>{_e(trace)}</pre>"
        if trace is not None
        else "<p>No trace for this list in the last cycle: the campaign has not been "
        "read yet, or the list is not in it.</p>"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        f"<title>why: {_e(title)}</title><style>{STYLE}</style></head><body>"
        f'<p><a href="/">← status</a></p><h1>Why: {_e(title)}</h1>'
        f'<p class="meta">As computed by the cycle at {_e(at or "—")} (no extra QM read). '
        "Same as <code>amo-mixer explain</code>.</p>"
        f"{body}</body></html>"
    )


# -- pieces ---------------------------------------------------------------------------


def _header(s: StatusSnapshot, tz: ZoneInfo, refresh: int) -> str:
    bits = [
        f"last cycle <b>{_e(_local(s.generated_at, tz))}</b> "
        f'<span class="muted">({_e(s.cycle_id or "—")})</span>',
        f"mode <b>{_e(s.mode or '—')}</b>",
        f"rule set <code>{_e((s.rules_hash or '—')[:12])}</code>",
        f"times in {_e(str(tz))}",
        f"refreshes every {refresh} s",
        '<a href="/status.json">status.json</a>',
        '<a href="/metrics">metrics</a>',
    ]
    return f'<p class="meta">{" · ".join(bits)}</p>'


def _campaign(c: CampaignStatus, tz: ZoneInfo) -> str:
    outcome = c.outcome or "—"
    parts = [
        f'<section id="c-{_e(c.name)}"><h2>{_e(c.name)} — '
        f'<span class="{_e(outcome)}">{_e(outcome)}</span></h2>',
        f'<p class="meta">last cycle {_e(_local(c.last_cycle, tz))}',
    ]
    if c.lists_as_of and c.lists_as_of != c.last_cycle:
        parts.append(f" · lists as read at {_e(_local(c.lists_as_of, tz))}")
    parts.append("</p>")
    if c.error:
        parts.append(f'<p class="error">{_e(c.error)}</p>')
    parts.extend(f'<p class="guardrail">guardrail stop: {_e(r)}</p>' for r in c.guardrail_stops)
    off = sorted(
        (i for i in c.lists if i.on_track is False),
        key=lambda i: (i.hours_to_deadline if i.hours_to_deadline is not None else 0.0, i.name),
    )
    if off:
        names = ", ".join(f"{_e(i.name)} ({_num(i.hours_to_deadline)} h left)" for i in off[:20])
        more = f" and {len(off) - 20} more" if len(off) > 20 else ""
        parts.append(
            f'<p class="off" id="off-track-{_e(c.name)}">{len(off)} deadline list(s) off '
            f"track: {names}{more}</p>"
        )
    if c.lists:
        parts.append(_deadline_chart(c))
        parts.append(_weight_chart(c))
        parts.append(_list_table(c))
    parts.append(_holds_and_timers(c, tz))
    parts.append(_decisions(c, tz))
    parts.append("</section>")
    return "".join(parts)


def _list_table(c: CampaignStatus) -> str:
    head = (
        "<tr><th>list</th><th>weight</th><th>base</th><th>paused</th><th>plan</th>"
        "<th>progress</th><th>unpulled</th><th>pulls/h</th><th>h to deadline</th>"
        "<th>ETA h</th><th>on track</th><th>rules fired</th><th>note</th></tr>"
    )
    rows = [f"<h3>Lists ({len(c.lists)})</h3><table><thead>{head}</thead><tbody>"]
    for item in c.lists:
        why = "/why?" + urlencode({"campaign": c.name, "list": item.name})
        plan = _plan(item)
        rows.append(
            '<tr class="list">'
            f'<td><a href="{_e(why)}" title="why">{_e(item.name)}</a></td>'
            f'<td class="n">{item.weight}</td><td class="n">{item.base_weight}</td>'
            f"<td>{_paused(item)}</td><td>{_e(plan)}</td>"
            f'<td class="n">{_pct(item.progress)}</td><td class="n">{item.unpulled}</td>'
            f'<td class="n">{_num(item.pull_rate_per_hour)}</td>'
            f'<td class="n">{_num(item.hours_to_deadline)}</td>'
            f'<td class="n">{_num(item.eta_hours)}</td><td>{_track(item.on_track)}</td>'
            f"<td>{_e(', '.join(item.rules))}</td><td>{_e(item.note)}</td></tr>"
        )
    rows.append("</tbody></table>")
    return "".join(rows)


def _holds_and_timers(c: CampaignStatus, tz: ZoneInfo) -> str:
    parts = [f"<h3>Manual holds ({len(c.holds)})</h3>"]
    if c.holds:
        parts.append("<table><tr><th>list</th><th>left alone until</th></tr>")
        parts.extend(
            f"<tr><td>{_e(h.list)}</td><td>{_e(_local(h.until, tz))}</td></tr>" for h in c.holds
        )
        parts.append("</table>")
    else:
        parts.append('<p class="muted">none</p>')
    parts.append(f"<h3>Pending <code>for:</code> timers ({len(c.timers)})</h3>")
    if c.timers:
        parts.append(
            "<table><tr><th>list</th><th>rule</th><th>holds since</th><th>fires at</th></tr>"
        )
        parts.extend(
            f"<tr><td>{_e(t.list)}</td><td>{_e(t.rule)}</td><td>{_e(_local(t.since, tz))}</td>"
            f"<td>{_e(_local(t.fires_at, tz))}</td></tr>"
            for t in c.timers
        )
        parts.append("</table>")
    else:
        parts.append('<p class="muted">none</p>')
    return "".join(parts)


def _decisions(c: CampaignStatus, tz: ZoneInfo) -> str:
    parts = [f"<h3>Last decisions ({len(c.decisions)})</h3>"]
    if not c.decisions:
        return parts[0] + '<p class="muted">none yet</p>'
    parts.append(
        "<table><tr><th>time</th><th>list</th><th>weight</th><th>paused</th>"
        "<th>rules</th><th>reason</th><th>applied</th></tr>"
    )
    for d in c.decisions:
        parts.append(
            f"<tr><td>{_e(_local(d.ts, tz))}</td><td>{_e(d.list)}</td>"
            f"<td>{d.weight_before}→{d.weight_after}</td>"
            f"<td>{_yn(d.paused_before)}→{_yn(d.paused_after)}</td>"
            f"<td>{_e(', '.join(d.rules))}</td><td>{_e(d.reason)}</td>"
            f"<td>{_yn(d.applied)}</td></tr>"
        )
    parts.append("</table>")
    return "".join(parts)


def _deadline_chart(c: CampaignStatus) -> str:
    """Time left vs ETA for the lists with a deadline: off track first, then the
    nearest deadline."""
    lists = sorted(
        (i for i in c.lists if i.hours_to_deadline is not None),
        key=lambda i: (i.on_track is not False, i.hours_to_deadline or 0.0, i.name),
    )[:CHART_LISTS]
    if not lists:
        return ""
    top = max(max(i.hours_to_deadline or 0.0 for i in lists), 1.0)
    scale = top * 1.25
    width, label, row = 760, 200, 18
    plot = width - label - 20
    height = row * len(lists) + 30
    out = [
        f"<h3>Deadline lists: hours left (grey) vs ETA (bar)</h3>"
        f'<svg class="chart" role="img" aria-label="hours to deadline vs ETA" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for n, item in enumerate(lists):
        y = 10 + n * row
        left = max(item.hours_to_deadline or 0.0, 0.0)
        out.append(
            f'<text x="{label - 6}" y="{y + 12}" text-anchor="end">{_e(_short(item.name))}</text>'
            f'<rect class="bar" x="{label}" y="{y + 1}" width="{_w(left, scale, plot)}" '
            f'height="{row - 3}" fill="#ddd"><title>{_e(item.name)}: {left:.1f} h left'
            "</title></rect>"
        )
        if item.eta_hours is not None:
            colour = "#2a8a2a" if item.on_track else "#c0392b"
            out.append(
                f'<rect class="bar" x="{label}" y="{y + 5}" '
                f'width="{_w(item.eta_hours, scale, plot)}" height="{row - 11}" '
                f'fill="{colour}"><title>{_e(item.name)}: ETA {item.eta_hours:.1f} h'
                "</title></rect>"
            )
    axis_y = 10 + len(lists) * row + 12
    out.append(
        f'<text x="{label}" y="{axis_y}">0 h</text>'
        f'<text x="{label + plot}" y="{axis_y}" text-anchor="end">{scale:.0f} h</text></svg>'
    )
    return "".join(out)


def _weight_chart(c: CampaignStatus) -> str:
    """Weight per list (paused lists hatched grey), heaviest first."""
    lists = sorted(c.lists, key=lambda i: (i.paused, -i.weight, i.name))[:CHART_LISTS]
    top = max(max((i.weight for i in lists), default=1), 1)
    width, label, row = 760, 200, 16
    plot = width - label - 60
    height = row * len(lists) + 10
    out = [
        "<h3>Weights (paused lists grey)</h3>"
        f'<svg class="chart" role="img" aria-label="weight per list" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
    ]
    for n, item in enumerate(lists):
        y = 5 + n * row
        colour = "#bbb" if item.paused else "#3869b0"
        w = _w(float(max(item.weight, 0)), float(top), plot)
        out.append(
            f'<text x="{label - 6}" y="{y + 11}" text-anchor="end">{_e(_short(item.name))}</text>'
            f'<rect class="bar" x="{label}" y="{y + 1}" width="{w}" height="{row - 3}" '
            f'fill="{colour}"><title>{_e(item.name)}: weight {item.weight}</title></rect>'
            f'<text x="{label + float(w) + 4:.1f}" y="{y + 11}">{item.weight}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _w(value: float, scale: float, plot: int) -> str:
    return f"{max(min(value / scale, 1.0), 0.0) * plot:.1f}"


def _short(name: str) -> str:
    return name if len(name) <= 30 else name[:29] + "…"


def _plan(item: ListStatus) -> str:
    if (item.planned_weight, item.planned_paused) == (item.weight, item.paused):
        return "—"
    bits = []
    if item.planned_weight != item.weight:
        bits.append(f"weight → {item.planned_weight}")
    if item.planned_paused != item.paused:
        bits.append("pause" if item.planned_paused else "resume")
    return ", ".join(bits)


def _paused(item: ListStatus) -> str:
    if not item.paused:
        return "no"
    return f"yes ({_e(item.paused_by or '?')})"


def _track(value: bool | None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    return '<span class="on">yes</span>' if value else '<span class="off">OFF TRACK</span>'


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def _yn(value: bool) -> str:
    return "yes" if value else "no"


def _local(ts: str | None, tz: ZoneInfo) -> str:
    if not ts:
        return "—"
    try:
        return datetime.fromisoformat(ts).astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return ts


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def as_json_bytes(snapshot: StatusSnapshot) -> bytes:
    return json.dumps(snapshot.as_json(), ensure_ascii=False, indent=1).encode()
