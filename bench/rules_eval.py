"""Rule evaluation cost: compiled rule expressions against hand-written Python predicates.

    python bench/rules_eval.py [--lists 5000] [--repeat 5] [--phase all|expressions|engine]

Phase 1 ("expressions") times the 50 rules' ``when`` (and, where it fires, ``set.weight``)
on the same 5,000 fact dicts, once as compiled expressions and once as hand-written
lambdas doing the same work. Phase 2 ("engine") times the full ``evaluate()`` of a
5,000-list campaign (facts, matching, null checks, for/cooldown memory, the compact
per-rule outcomes traces are built from) against a hand-written loop over the same facts
with the same predicates and null checks, and checks both reach the same weights and
pauses; it also times ``evaluate()`` followed by building every list's full trace (what
``explain`` does for one list). Figures are the best of ``--repeat`` runs; nothing here
asserts on time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from mixer.engine.expressions import Expression, ValueType, compile_expression

Facts = Mapping[str, object]
Predicate = Callable[[Facts], object]

N, B, S, L, D = (ValueType.NUMBER, ValueType.BOOL, ValueType.STRING, ValueType.STRINGS,
                 ValueType.DATE)  # fmt: skip
SCHEMA: Mapping[str, ValueType] = {
    "hours_to_deadline": N, "unpulled": N, "base_weight": N, "can_reserve": B, "hour": N,
    "weekday": N, "idle_minutes": N, "tags": L, "behind_schedule": B, "list": S,
    "remaining": N, "share_of_pulls": N, "campaign_open_lists": N, "date": D, "eta_hours": N,
    "standby": B, "campaign_reservable_lists": N, "priority": N,
}  # fmt: skip
PREFIXES = ("Recall", "Sales", "B2B", "VIP", "Retry")
TAGS = ("recall", "sales", "b2b", "vip", "retry")
HOLIDAYS = (("2024-12-24", "2024-12-25"), ("2025-01-01",), ("2024-08-01", "2024-04-24"),
            ("2024-05-01",), ("2024-12-31", "2025-01-02"))  # fmt: skip


@dataclass(frozen=True)
class BenchRule:
    """One rule, as rule-language source and as the hand-written Python equivalent."""

    name: str
    when: str
    hand_when: Predicate
    reads: tuple[str, ...]  # facts the hand-written version checks for null first
    weight: str | None = None
    hand_weight: Predicate | None = None
    paused: bool | None = None


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def bench_rules() -> list[BenchRule]:
    """10 rule shapes x 5 variants = 50 rules, typical of deadline and hours rules."""
    rules: list[BenchRule] = []
    for i in range(5):
        hours, factor, low, high = 24 + 12 * i, 2 + i, 7 + i, 17 + i
        idle, tag, prefix, share = 30 + 15 * i, TAGS[i], PREFIXES[i], 0.1 * (i + 1)
        remaining, bump, slack, rank = 100 * i, 5 * i, 1 + 0.1 * i, i + 1
        share_1, slack_1 = round(share, 1), round(slack, 1)
        holidays = frozenset(_day(day) for day in HOLIDAYS[i])
        holiday_list = ", ".join(f'"{day}"' for day in HOLIDAYS[i])
        rules += [
            BenchRule(
                f"deadline-{i}",
                f"hours_to_deadline < {hours} and unpulled > 0",
                lambda f, h=hours: f["hours_to_deadline"] < h and f["unpulled"] > 0,
                ("hours_to_deadline", "unpulled"),
                f"base_weight * {factor}",
                lambda f, k=factor: f["base_weight"] * k,
            ),
            BenchRule(
                f"exhausted-{i}",
                f"not can_reserve and unpulled <= {10 * i}",
                lambda f, n=10 * i: not f["can_reserve"] and f["unpulled"] <= n,
                ("can_reserve", "unpulled"),
                paused=True,
            ),
            BenchRule(
                f"office-hours-{i}",
                f"hour < {low} or hour >= {high} or weekday >= 5",
                lambda f, a=low, b=high: f["hour"] < a or f["hour"] >= b or f["weekday"] >= 5,
                ("hour", "weekday"),
                paused=True,
            ),
            BenchRule(
                f"idle-{i}",
                f"idle_minutes > {idle} and unpulled > 0",
                lambda f, m=idle: f["idle_minutes"] > m and f["unpulled"] > 0,
                ("idle_minutes", "unpulled"),
                "max(base_weight // 2, 1)",
                lambda f: max(f["base_weight"] // 2, 1),
            ),
            BenchRule(
                f"tag-behind-{i}",
                f'"{tag}" in tags and behind_schedule',
                lambda f, t=tag: t in f["tags"] and f["behind_schedule"],
                ("tags", "behind_schedule"),
                f"clamp(base_weight * {factor}, 1, 100)",
                lambda f, k=factor: min(max(f["base_weight"] * k, 1), 100),
            ),
            BenchRule(
                f"prefix-{i}",
                f'matches(list, "{prefix}*") and remaining > {remaining}',
                lambda f, p=prefix, r=remaining: f["list"].startswith(p) and f["remaining"] > r,
                ("list", "remaining"),
                f"base_weight + {bump}",
                lambda f, b=bump: f["base_weight"] + b,
            ),
            BenchRule(
                f"share-{i}",
                f"share_of_pulls > {share:.1f} and campaign_open_lists > 1",
                lambda f, s=share_1: f["share_of_pulls"] > s and f["campaign_open_lists"] > 1,
                ("share_of_pulls", "campaign_open_lists"),
                "base_weight / 2",
                lambda f: f["base_weight"] / 2,
            ),
            BenchRule(
                f"holiday-{i}",
                f"date in [{holiday_list}]",
                lambda f, days=holidays: f["date"] in days,
                ("date",),
                paused=True,
            ),
            BenchRule(
                f"eta-{i}",
                f"eta_hours > hours_to_deadline * {slack:.1f}",
                lambda f, k=slack_1: f["eta_hours"] > f["hours_to_deadline"] * k,
                ("eta_hours", "hours_to_deadline"),
                "min(base_weight * 3, 100)",
                lambda f: min(f["base_weight"] * 3, 100),
            ),
            BenchRule(
                f"standby-{i}",
                f"standby and campaign_reservable_lists == 0 and priority <= {rank}",
                lambda f, r=rank: (
                    f["standby"] and f["campaign_reservable_lists"] == 0 and f["priority"] <= r
                ),
                ("standby", "campaign_reservable_lists", "priority"),
                paused=False,
            ),
        ]
    return rules


def _best(repeat: int, work: Callable[[], object]) -> float:
    """The fastest of ``repeat`` runs, in seconds (the least disturbed by other load)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


# -- phase 1: expressions alone --------------------------------------------------------


def synthetic_facts(count: int, seed: int = 7) -> list[dict[str, object]]:
    """``count`` complete fact dicts (no nulls: phase 1 times the expressions alone)."""
    rng = random.Random(seed)
    day = dt.date(2024, 4, 24)
    return [
        {
            "hours_to_deadline": rng.uniform(-5, 200),
            "unpulled": rng.choice([0, rng.randint(1, 2000)]),
            "base_weight": rng.randint(1, 50),
            "can_reserve": rng.random() < 0.8,
            "hour": rng.randint(0, 23),
            "weekday": rng.randint(0, 6),
            "idle_minutes": rng.uniform(0, 240),
            "tags": tuple(rng.sample(TAGS, rng.randint(0, 2))),
            "behind_schedule": rng.random() < 0.3,
            "list": f"{rng.choice(PREFIXES)} {n:05d}",
            "remaining": rng.randint(0, 3000),
            "share_of_pulls": rng.random() / 2,
            "campaign_open_lists": rng.randint(0, 40),
            "date": day + dt.timedelta(days=rng.randint(-10, 250)),
            "eta_hours": rng.uniform(0, 300),
            "standby": rng.random() < 0.1,
            "campaign_reservable_lists": rng.choice([0, 3]),
            "priority": rng.randint(1, 9),
        }
        for n in range(count)
    ]


def _run(rules: Sequence[tuple[Predicate, Predicate | None]], facts: Sequence[Facts]) -> float:
    total = 0.0
    for f in facts:
        for when, weight in rules:
            if when(f) and weight is not None:
                total += weight(f)  # type: ignore[operator]
    return total


def phase_expressions(lists: int, repeat: int) -> float:
    """Phase 1: print and return the compiled / hand-written time ratio."""
    rules = bench_rules()
    facts = synthetic_facts(lists)
    compiled: list[tuple[Predicate, Predicate | None]] = []
    for rule in rules:
        when: Expression = compile_expression(rule.when, SCHEMA, expect=ValueType.BOOL)
        weight = None
        if rule.weight is not None:
            weight = compile_expression(rule.weight, SCHEMA, expect=ValueType.NUMBER)
        compiled.append((when, weight))
    hand = [(rule.hand_when, rule.hand_weight) for rule in rules]
    same = _run(compiled, facts) == _run(hand, facts)
    t_compiled = _best(repeat, lambda: _run(compiled, facts))
    t_hand = _best(repeat, lambda: _run(hand, facts))
    calls = lists * len(rules)
    start = time.perf_counter()
    for rule in rules:
        compile_expression(rule.when, SCHEMA, expect=ValueType.BOOL)
    t_compile = (time.perf_counter() - start) / len(rules)
    print(f"phase 1: {lists} fact dicts x {len(rules)} rules = {calls:,} conditions")
    print(
        f"  compiled expressions   {t_compiled * 1e3:8.1f} ms  ({t_compiled / calls * 1e9:5.0f} ns)"
    )
    print(f"  hand-written lambdas   {t_hand * 1e3:8.1f} ms  ({t_hand / calls * 1e9:5.0f} ns)")
    print(f"  ratio                  {t_compiled / t_hand:8.2f}x   (same results: {same})")
    print(f"  compiling one `when`   {t_compile * 1e6:8.1f} us")
    return t_compiled / t_hand


# -- phase 2: the full engine ----------------------------------------------------------


def rules_yaml(rules: Sequence[BenchRule]) -> str:
    """The 50 rules as a rules file, with ``lists:`` metadata giving tags and deadlines."""
    lines = ["lists:"]
    for prefix, tag in zip(PREFIXES, TAGS, strict=True):
        lines += [
            f'  - match: "{prefix}*"',
            f"    tags: [{tag}]",
            '    deadline: "2024-04-27 18:00"',
        ]
    lines += ['  - match: "* 000*"', "    standby: true", "    priority: 1", "rules:"]
    for rule in rules:
        lines += [f"  - name: {rule.name}", f"    when: '{rule.when}'"]
        if rule.weight is not None:
            lines.append(f'    set: {{weight: "{rule.weight}"}}')
        else:
            lines.append(f"    set: {{paused: {str(rule.paused).lower()}}}")
    return "\n".join(lines) + "\n"


def phase_engine(lists: int, repeat: int) -> float | None:
    """Phase 2: print and return the evaluate() / hand-written time ratio."""
    try:
        from mixer.engine.evaluate import evaluate
        from mixer.engine.facts import EngineSettings, compute_facts
        from mixer.engine.memory import HistorySample, ListMemory
        from mixer.rule_loading import load_rules
        from mixer.snapshot import CampaignSnapshot, ListSnapshot
    except ImportError as exc:
        print(f"phase 2: skipped, the engine is not importable ({exc})")
        return None

    rules = bench_rules()
    campaign = load_rules([], extra_texts=[("bench.yaml", rules_yaml(rules))]).for_campaign("Bench")
    tz = ZoneInfo("Europe/Zurich")
    settings = EngineSettings(timezone=tz)
    now = dt.datetime(2024, 4, 24, 14, 30, tzinfo=dt.UTC)
    rng = random.Random(11)
    items, history = [], {}
    for n in range(lists):
        added = rng.randint(0, 3000)
        pulled = rng.randint(0, added)
        completed = rng.randint(0, pulled)
        name = f"{PREFIXES[n % 5]} {n:05d}"
        never = rng.random() < 0.05
        items.append(
            ListSnapshot(
                name=name,
                notes="",
                weight=rng.randint(1, 50),
                list_state="paused" if rng.random() < 0.1 else "open",
                dialer_state="completed" if added == completed else "open",
                can_reserve_state="open" if rng.random() < 0.8 else "closed",
                added=added,
                completed=completed,
                pulled=pulled,
                last_pull=None if never else now - dt.timedelta(minutes=rng.uniform(0, 240)),
            )
        )
        earlier = max(pulled - rng.randint(0, 200), 0)
        history[name] = [
            HistorySample(now - dt.timedelta(minutes=40), earlier, min(completed, earlier), added)
        ]
    snapshot = CampaignSnapshot("Bench", tuple(items), now)
    memory: dict[str, ListMemory] = {}

    hand = [(r.reads, r.hand_when, r.hand_weight, r.paused) for r in rules]

    def by_hand() -> dict[str, tuple[float, bool]]:
        mem = {
            i.name: ListMemory(base_weight=i.weight, human_paused=i.paused, first_seen=now)
            for i in items
        }
        meta = {i.name: campaign.metadata_for(i.name) for i in items}
        every = compute_facts(snapshot, mem, history, meta, now, settings)
        out = {}
        for item in items:
            f = every[item.name]
            weight, paused = float(item.weight), item.paused
            for reads, when, set_weight, set_paused in hand:
                for name in reads:
                    if f[name] is None:
                        break
                else:
                    if when(f):
                        if set_weight is not None:
                            weight = float(set_weight(f))  # type: ignore[arg-type]
                        if set_paused is not None:
                            paused = set_paused
            out[item.name] = (weight, paused)
        return out

    def by_engine() -> dict[str, tuple[float, bool]]:
        result = evaluate(campaign, snapshot, memory, history, now, settings)
        return {name: (e.weight, e.paused) for name, e in result.lists.items()}

    def with_traces() -> int:
        result = evaluate(campaign, snapshot, memory, history, now, settings)
        return sum(len(e.trace) for e in result.lists.values())

    def facts_only() -> object:
        mem = {
            i.name: ListMemory(base_weight=i.weight, human_paused=i.paused, first_seen=now)
            for i in items
        }
        meta = {i.name: campaign.metadata_for(i.name) for i in items}
        return compute_facts(snapshot, mem, history, meta, now, settings)

    engine_out, hand_out = by_engine(), by_hand()
    differ = sum(1 for name in hand_out if hand_out[name] != engine_out.get(name))
    changed = sum(1 for i in items if engine_out[i.name] != (float(i.weight), i.paused))
    t_engine = _best(repeat, by_engine)
    t_hand = _best(repeat, by_hand)
    t_facts = _best(repeat, facts_only)
    t_traced = _best(repeat, with_traces)
    print(f"phase 2: evaluate() of a {lists}-list campaign x {len(rules)} rules")
    print(f"  engine evaluate()      {t_engine * 1e3:8.1f} ms")
    print(f"  hand-written loop      {t_hand * 1e3:8.1f} ms  (same facts, predicates, null checks)")
    print(f"  of which facts         {t_facts * 1e3:8.1f} ms  (compute_facts, shared by both)")
    print(f"  ratio                  {t_engine / t_hand:8.2f}x   (target <= 5x)")
    rules_part = (t_engine - t_facts) / max(t_hand - t_facts, 1e-9)
    print(f"  ratio without facts    {rules_part:8.2f}x   (rule evaluation alone)")
    traces = f"{t_traced * 1e3:8.1f} ms  ({lists * len(rules):,} RuleTrace records)"
    print(f"  evaluate() + traces    {traces}")
    print(f"  lists the rules changed: {changed}; outcomes differing engine/hand: {differ}")
    return t_engine / t_hand


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lists", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--phase", choices=["all", "expressions", "engine"], default="all")
    args = parser.parse_args(argv)
    print(f"Python {platform.python_version()} on {platform.machine()}, best of {args.repeat}")
    if args.phase in ("all", "expressions"):
        phase_expressions(args.lists, args.repeat)
    if args.phase in ("all", "engine"):
        phase_engine(args.lists, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
