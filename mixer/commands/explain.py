"""``amo-mixer explain``: why one list gets what it gets — every rule, its facts, nulls,
pending ``for:`` timers and guardrails — live from QM or from a saved reply."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mixer.commands._common import (
    add_config_argument,
    add_tz_argument,
    settings_from,
    show_time,
    zone_from,
    zone_name,
)
from mixer.errors import UsageError
from mixer.opsfiles.problems import did_you_mean
from mixer.printable import printable

if TYPE_CHECKING:
    from mixer.plan import CampaignPlan
    from mixer.records import ConfigRecord


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explain",
        help="trace every rule for one list",
        description="Evaluate the rules for one list and show every rule, matched or not, "
        "with the facts it read, the null facts, pending timers and the guardrails' say. "
        "Reads QM live unless --snapshot names a saved amoUpdateLists reply. Writes nothing.",
    )
    add_config_argument(parser)
    parser.add_argument("--campaign", required=True, help="campaign name")
    parser.add_argument("--list", required=True, dest="list_name", help="list name")
    parser.add_argument(
        "--snapshot",
        type=Path,
        help="a saved amoUpdateLists JSON reply to explain instead of reading QM",
    )
    parser.add_argument(
        "--at",
        help="evaluate as of this time (ISO 8601, in the --tz zone unless it has an offset; "
        "default now) — useful with --snapshot",
    )
    parser.add_argument("--json", action="store_true", help="print the trace as JSON")
    add_tz_argument(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from mixer.clock import SystemClock
    from mixer.engine.names import glob_warnings
    from mixer.plan import plan_campaign
    from mixer.preflight import check_setup
    from mixer.wiring import engine_settings_from, limits_from

    settings = settings_from(args)
    zone = zone_from(args, settings)
    if args.campaign not in settings.campaigns:
        raise UsageError(
            f"campaign {args.campaign!r} is not in {settings.config_path}"
            f"{_hint(args.campaign, settings.campaigns)}: the config lists "
            f"{', '.join(settings.campaigns)}"
        )
    checked = check_setup(settings)
    for warning in checked.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    rule_files = settings.rule_files()
    rules = checked.rules.for_campaign(args.campaign)
    drift = rules_drift(rule_files, settings.decision_log)
    now = _parse_at(args.at, zone) if args.at else SystemClock().now()
    snapshot = _read_snapshot(args, settings, now)
    if snapshot.get(args.list_name) is None:
        names = ", ".join(sorted(snapshot.names)) or "none"
        raise UsageError(
            f"campaign {args.campaign!r} has no list {args.list_name!r}"
            f"{_hint(args.list_name, snapshot.names)} (lists: {names})"
        )
    for warning in glob_warnings(
        args.campaign, ((r.name, r.names) for r in rules.rules), snapshot.names, "this read"
    ):
        print(printable(warning), file=sys.stderr)
    memory, history = _stored(settings, args.campaign, snapshot, now)
    pool = _pool_facts(args, settings, checked.rules, snapshot, now)
    plan = plan_campaign(
        rules,
        snapshot,
        memory,
        history,
        now,
        engine_settings_from(settings),
        limits_from(settings),
        pool,
    )
    if args.json:
        document = trace_as_json(plan, args.list_name)
        document["warnings"] = [drift] if drift else []
        print(json.dumps(document, indent=2, default=str, ensure_ascii=False))
    else:
        if drift:
            print(f"note: {drift}\n")
        print(render_trace(plan, args.list_name, zone))
    return 0


def _stored(settings: Any, campaign: str, snapshot: Any, now: datetime) -> tuple[Any, Any]:
    """The campaign's memory and history window from the state store, as the daemon's next
    cycle would see them (empty before the first cycle)."""
    from mixer.intents import resolve_intents
    from mixer.store import StateStore
    from mixer.wiring import state_path

    store_path = state_path(settings)
    if not store_path.exists():
        return {}, {}
    with StateStore(store_path, preview=True) as store:
        memory = store.load_memory(campaign)
        # As the daemon's next cycle would: a value equal to a pending write-ahead
        # intent is the mixer's own write, not a human's override.
        memory, _ = resolve_intents(snapshot, memory, store.intents(campaign), settings.qm.tz)
        history = store.history(campaign, since=now - settings.history.window)
    return memory, history


def _pool_facts(
    args: argparse.Namespace, settings: Any, ruleset: Any, snapshot: Any, now: datetime
) -> Any:
    """The ``pool_*`` facts when the campaign shares agents (config ``agent_pools``): the
    pool's other campaigns are read live too. With ``--snapshot`` only this campaign is
    known, so its pool facts cover it alone (a note says so). None: its own pool."""
    from mixer.engine.pool import pool_facts
    from mixer.plan import campaign_facts
    from mixer.wiring import client_from, engine_settings_from, limits_from

    pool = next(p for p in settings.pools() if args.campaign in p)
    if len(pool) == 1:
        return None
    others = [c for c in pool if c != args.campaign]
    if args.snapshot is not None:
        print(
            f"note: {args.campaign!r} shares agents with {', '.join(others)}; --snapshot "
            "holds this campaign only, so its pool_* facts cover it alone",
            file=sys.stderr,
        )
        return None
    snapshots = {args.campaign: snapshot}
    with client_from(settings) as client:
        for campaign in others:
            snapshots[campaign] = client.read_lists(campaign, now=now)
    facts = {}
    for campaign in pool:
        memory, history = _stored(settings, campaign, snapshots[campaign], now)
        facts[campaign] = campaign_facts(
            ruleset.for_campaign(campaign),
            snapshots[campaign],
            memory,
            history,
            now,
            engine_settings_from(settings),
            limits_from(settings),
        )
    return pool_facts(facts)[args.campaign]


def _hint(word: str, candidates: Iterable[str]) -> str:
    found = did_you_mean(word, candidates)
    return f" ({found})" if found else ""


def rules_drift(files: Sequence[Path], decision_log: Path) -> str | None:
    """A sentence when the rule files on disk differ from the rule set the daemon loaded
    (the ``rules_hash`` of its newest ``config`` event); None when equal or unknown."""
    from mixer.audit import fingerprint

    loaded = _newest_loaded_config(decision_log)
    if loaded is None or loaded.rules_hash is None:
        return None
    if fingerprint(None, files).rules_hash == loaded.rules_hash:
        return None
    when = loaded.ts.isoformat(timespec="seconds") if loaded.ts else "its last (re)load"
    return (
        f"the rule files on disk differ from the rule set the running daemon loaded "
        f"({when}): this trace uses the files on disk; reload the daemon "
        "(systemctl reload amo-mixer) to put them in force"
    )


def _newest_loaded_config(decision_log: Path) -> ConfigRecord | None:
    """The newest ``config`` event that put a rule set in force, read line by line (only
    lines naming the event are parsed: the log may be large)."""
    from mixer.decisions import log_files
    from mixer.records import ConfigRecord, parse_record

    newest: ConfigRecord | None = None
    for path in log_files(decision_log):
        try:
            with path.open(encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    if '"config"' not in line:
                        continue
                    try:
                        raw = json.loads(line)
                    except ValueError:
                        continue
                    record = parse_record(raw) if isinstance(raw, dict) else None
                    if isinstance(record, ConfigRecord) and record.outcome == "loaded":
                        newest = record
        except OSError:
            continue
    return newest


def _parse_at(text: str, zone: tzinfo) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(
            f"--at {text!r} is not an ISO 8601 time (e.g. 2024-04-29T10:32, read in "
            f"{zone_name(zone)}, or 2024-04-29T10:32+02:00)"
        ) from None
    return when.replace(tzinfo=zone) if when.tzinfo is None else when


def _read_snapshot(args: argparse.Namespace, settings: Any, now: datetime) -> Any:
    from mixer.qm.wire import parse_lists_reply
    from mixer.snapshot import CampaignSnapshot
    from mixer.wiring import client_from

    if args.snapshot is not None:
        try:
            body = args.snapshot.read_bytes()
        except OSError as exc:
            raise UsageError(f"cannot read --snapshot {args.snapshot}: {exc.strerror}") from None
        lists = parse_lists_reply(body, timezone=settings.qm.tz, campaign=args.campaign)
        return CampaignSnapshot(args.campaign, tuple(lists), now)
    if settings.qm.password is None:
        raise UsageError("explain reads QM live and needs a password (or use --snapshot FILE)")
    with client_from(settings) as client:
        return client.read_lists(args.campaign, now=now)


def trace_as_json(plan: CampaignPlan, name: str) -> dict[str, Any]:
    evaluated = plan.evaluation.lists[name]
    outcome = plan.outcomes[name]
    item = plan.snapshot.get(name)
    assert item is not None
    return {
        "campaign": plan.campaign,
        "list": name,
        "at": plan.now.isoformat(timespec="seconds"),
        "current": {"weight": item.weight, "paused": item.paused},
        "baseline": {"weight": evaluated.baseline_weight, "paused": evaluated.baseline_paused},
        "rules_wish": {"weight": evaluated.weight, "paused": evaluated.paused},
        "after_guardrails": {"weight": outcome.weight, "paused": outcome.paused},
        "guardrails": list(outcome.notes),
        "campaign_stops": [s.reason for s in plan.stops],
        "fired": list(evaluated.fired),
        "carried": list(evaluated.carried),
        "overridden": list(evaluated.overridden),
        "reason": evaluated.reason,
        "facts": dict(plan.evaluation.facts[name]),
        "rules": [
            {
                "rule": t.rule,
                "file": f"{t.file}:{t.line}",
                "enabled": t.enabled,
                "matched": t.matched,
                "condition": t.condition,
                "null_facts": list(t.null_facts),
                "values": dict(t.values),
                "error": t.error,
                "pending_for_s": t.pending_for.total_seconds() if t.pending_for else None,
                "cooldown_left_s": t.cooldown_left.total_seconds() if t.cooldown_left else None,
                "fired": t.fired,
                "effect": dict(t.effect),
                "stopped_here": t.stopped_here,
                "note": t.note,
            }
            for t in evaluated.trace
        ],
    }


def render_trace(plan: CampaignPlan, name: str, zone: tzinfo = UTC) -> str:
    data = trace_as_json(plan, name)
    lines = [
        f"{data['campaign']} / {name} at {show_time(plan.now, zone)} {zone_name(zone)}",
        f"  current   weight {data['current']['weight']}, paused {_yn(data['current']['paused'])}",
        f"  baseline  weight {data['baseline']['weight']}, "
        f"paused {_yn(data['baseline']['paused'])}",
        "",
        "rules:",
    ]
    overridden = set(data["overridden"])
    for rule in data["rules"]:
        mark = "FIRED" if rule["fired"] else "-"
        lines.append(f"  [{mark:5}] {rule['rule']}  ({rule['file']})")
        note = rule["note"]
        if rule["rule"] in overridden:
            note += " Overridden: a later rule set the same again."
        lines.append(f"          {note}")
        if rule["values"]:
            values = ", ".join(f"{k}={_fmt(v)}" for k, v in rule["values"].items())
            lines.append(f"          facts: {values}")
        if rule["null_facts"]:
            lines.append(f"          null: {', '.join(rule['null_facts'])}")
    wish, final = data["rules_wish"], data["after_guardrails"]
    lines += [
        "",
        f"rules want: weight {_fmt(wish['weight'])}, paused {_yn(wish['paused'])}",
        f"guardrails: {'; '.join(data['guardrails']) or 'nothing to say'}",
    ]
    lines.extend(f"campaign guardrail: {stop}" for stop in data["campaign_stops"])
    lines.append(f"result:     weight {final['weight']}, paused {_yn(final['paused'])}")
    lines.append(f"reason:     {data['reason']}")
    if data["overridden"]:
        lines.append(f"overridden: {', '.join(data['overridden'])}")
    return "\n".join(printable(line) for line in lines)  # each entry is one line


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _yn(value: object) -> str:
    return "yes" if value else "no"
