"""Agent pools (issue 15): campaigns that share agents are planned on facts over the pool.

The pure ``pool_*`` facts, the ``agent_pools`` config, the cycle planning a pool's
campaigns together (in-process emulator, fake clock), the simulator declaring the pool its
scenario describes, and replay planning pools as the daemon does.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixer.cli import main
from mixer.config import load_settings
from mixer.emulator.scenario import load_scenario
from mixer.engine.facts import FACT_TYPES, EngineSettings, compute_facts
from mixer.engine.memory import HistorySample, ListMemory
from mixer.engine.pool import POOL_FACT_TYPES, pool_facts
from mixer.errors import ConfigError
from mixer.guardrails import Limits
from mixer.recorded import read_cycle_records, recorded_cycles
from mixer.replay import replay
from mixer.rule_loading import load_rules
from mixer.shipped import shipped_rule_files
from mixer.simulate.backtest import run_strategy
from mixer.simulate.workdir import agent_pools
from mixer.snapshot import CampaignSnapshot, ListSnapshot
from tests.cycle_harness import Mixer
from tests.snapshots import item
from tests.test_facts import NOW, SETTINGS

# -- the facts --------------------------------------------------------------------------


def _facts(campaign: str, *lists: ListSnapshot, **kw: Any) -> dict[str, dict[str, object]]:
    snapshot = CampaignSnapshot(campaign, lists, NOW)
    return compute_facts(
        snapshot,
        kw.get("memory", {}),
        kw.get("history", {}),
        {},
        NOW,
        SETTINGS,
        kw.get("pool"),
    )


def _pool(**campaigns: tuple[ListSnapshot, ...]) -> dict[str, dict[str, dict[str, object]]]:
    """Each campaign's facts, computed again with the pool facts over all of them."""
    alone = {name: _facts(name, *lists) for name, lists in campaigns.items()}
    pooled = pool_facts(alone)
    return {name: _facts(name, *lists, pool=pooled[name]) for name, lists in campaigns.items()}


PAIRS = {
    "pool_deadline_rank": "deadline_rank",
    "pool_deadline_share": "deadline_share",
    "pool_deadline_lists": "campaign_deadline_lists",
    "pool_overdue_lists": "campaign_overdue_lists",
    "pool_unpulled": "campaign_unpulled",
    "pool_pull_rate_per_hour": "campaign_pull_rate_per_hour",
    "pool_required_rate_per_hour": "campaign_required_rate_per_hour",
    "pool_max_base_weight": "campaign_max_base_weight",
    "pool_max_weight": "campaign_max_weight",
    "pool_min_weight": "campaign_min_weight",
    "pool_total_weight": "campaign_total_weight",
}


def test_every_pool_fact_is_a_declared_fact_with_a_campaign_twin() -> None:
    """The pool facts are in FACT_TYPES (rule checks, the JSON Schema, explain) and each
    aggregate but the two pool-only ones has a campaign counterpart."""
    assert set(POOL_FACT_TYPES) <= set(FACT_TYPES)
    assert set(POOL_FACT_TYPES) - set(PAIRS) == {
        "pool_campaigns",
        "pool_reservable_deadline_rank",
    }


def test_a_lone_campaign_is_its_own_pool_and_its_pool_facts_equal_its_campaign_facts() -> None:
    """Seeded random campaigns (deadlines passed and ahead, paused lists, lists the mixer
    paused, rates from history, completed lists): every pool fact equals its campaign
    twin, so rules on pool facts behave on a campaign in no pool as on campaign facts."""
    rng = random.Random(15)
    for _ in range(200):
        lists: list[ListSnapshot] = []
        memory: dict[str, ListMemory] = {}
        history: dict[str, list[HistorySample]] = {}
        for index in range(rng.randint(1, 7)):
            name = f"L{index}"
            hours = rng.choice([None, -2, 1, 5, 5, 30])
            notes = ""
            if hours is not None:
                local = (NOW + timedelta(hours=hours)).astimezone(SETTINGS.timezone)
                notes = f"deadline: {local:%Y-%m-%d %H:%M}"
            added = rng.choice([0, 50, 100])
            pulled = rng.randint(0, added)
            lists.append(
                item(
                    name,
                    notes=notes,
                    weight=rng.choice([1, 5, 10, 100]),
                    list_state=rng.choice(["open", "open", "paused"]),
                    dialer_state=rng.choice(["open", "open", "completed"]),
                    can_reserve_state=rng.choice(["open", "closed"]),
                    added=added,
                    pulled=pulled,
                    completed=rng.randint(0, pulled),
                )
            )
            if rng.random() < 0.3:
                memory[name] = ListMemory(
                    base_weight=rng.choice([5, 20]),
                    human_paused=False,
                    first_seen=NOW,
                    paused_by_mixer=rng.random() < 0.5,
                )
            if rng.random() < 0.7:
                history[name] = [
                    HistorySample(NOW - timedelta(minutes=30), max(pulled - 10, 0), 0, added)
                ]
        facts = _facts("Sales", *lists, memory=memory, history=history)
        general = pool_facts({"Sales": facts})["Sales"]
        for name, values in facts.items():
            assert values["pool_campaigns"] == 1
            for pool_name, campaign_name in PAIRS.items():
                assert values[pool_name] == values[campaign_name], (name, pool_name, values)
            # The general pool computation over the campaign alone agrees, fact by fact.
            assert general[name] == {key: values[key] for key in POOL_FACT_TYPES}, name


def test_the_pool_deadline_rank_orders_deadlines_across_campaigns() -> None:
    """Each campaign ranks its own lists; the pool ranks all of them, so only the pool's
    earliest deadline is rank 1, and the shares add up to 1 over the pool."""
    facts = _pool(
        Renewals=(
            item("Due 12", notes="deadline: 2024-04-29 12:00"),
            item("Due 15", notes="deadline: 2024-04-29 15:00"),
        ),
        Surveys=(
            item("Due 11", notes="deadline: 2024-04-29 11:00"),
            item("No deadline"),
        ),
    )
    renewals, surveys = facts["Renewals"], facts["Surveys"]
    assert renewals["Due 12"]["deadline_rank"] == 1
    assert surveys["Due 11"]["deadline_rank"] == 1
    assert surveys["Due 11"]["pool_deadline_rank"] == 1
    assert renewals["Due 12"]["pool_deadline_rank"] == 2
    assert renewals["Due 15"]["pool_deadline_rank"] == 3
    assert surveys["No deadline"]["pool_deadline_rank"] is None
    assert renewals["Due 12"]["pool_deadline_lists"] == 3
    assert surveys["No deadline"]["pool_campaigns"] == 2
    shares = [
        facts[c][name]["pool_deadline_share"]
        for c, name in (("Renewals", "Due 12"), ("Renewals", "Due 15"), ("Surveys", "Due 11"))
    ]
    assert sum(shares) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_pool_weight_aggregates_span_the_pool_and_leave_out_only_the_list_itself() -> None:
    """A list named alike in two campaigns is two lists: each one's aggregates count the
    other; paused lists do not count."""
    facts = _pool(
        Renewals=(item("Leads", weight=100), item("Parked", weight=90, list_state="paused")),
        Surveys=(item("Leads", weight=4), item("Panel", weight=6)),
    )
    renewals, surveys = facts["Renewals"]["Leads"], facts["Surveys"]["Leads"]
    assert renewals["pool_total_weight"] == 10
    assert renewals["pool_max_weight"] == 6
    assert renewals["pool_min_weight"] == 4
    assert surveys["pool_total_weight"] == 106
    assert surveys["pool_max_weight"] == 100
    assert renewals["campaign_total_weight"] == 0  # the campaign alone has no other
    assert facts["Renewals"]["Parked"]["pool_total_weight"] == 110


def test_the_reservable_deadline_rank_skips_earlier_deadlines_with_nothing_to_call() -> None:
    """An earlier deadline whose numbers all wait (cannot reserve) or that the mixer
    paused does not count ahead: the next deadline is first among those QM can draw."""
    waiting = item("Due 11", notes="deadline: 2024-04-29 11:00", can_reserve_state="closed")
    facts = _pool(
        Surveys=(waiting,),
        Renewals=(
            item("Due 12", notes="deadline: 2024-04-29 12:00"),
            item("Due 15", notes="deadline: 2024-04-29 15:00"),
        ),
    )
    assert facts["Surveys"]["Due 11"]["pool_reservable_deadline_rank"] == 1
    assert facts["Renewals"]["Due 12"]["pool_deadline_rank"] == 2
    assert facts["Renewals"]["Due 12"]["pool_reservable_deadline_rank"] == 1
    assert facts["Renewals"]["Due 15"]["pool_reservable_deadline_rank"] == 2


# -- the config -------------------------------------------------------------------------


def _config(tmp_path: Path, **extra: Any) -> Path:
    document = {
        "qm": {"url": "http://qm.test/qm", "user": "robot"},
        "campaigns": ["Renewals", "Collections", "Surveys", "Inbound"],
        **extra,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_agent_pools_group_campaigns_by_name_or_glob_and_leave_the_rest_alone(
    tmp_path: Path,
) -> None:
    """A group names campaigns or globs; each configured campaign is in exactly one pool,
    in config order; a campaign in no group is its own pool."""
    settings = load_settings(_config(tmp_path, agent_pools=[["Surveys", "Renew*"]]), environ={})
    assert settings.pools() == (("Renewals", "Surveys"), ("Collections",), ("Inbound",))
    assert load_settings(_config(tmp_path), environ={}).pools() == (
        ("Renewals",),
        ("Collections",),
        ("Surveys",),
        ("Inbound",),
    )


def test_a_campaign_in_two_pools_is_one_clear_config_error(tmp_path: Path) -> None:
    """A campaign's agents belong to one pool: two groups naming it are refused with one
    line saying which campaign and which groups, at the key's line."""
    path = _config(tmp_path, agent_pools=[["Renewals", "Surveys"], ["Surv*", "Inbound"]])
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert len(caught.value.problems) == 1
    line = caught.value.problems[0]
    assert "agent_pools" in line
    assert "'Surveys' is in groups 1 and 2" in line


def test_a_pool_name_matching_no_campaign_is_a_warning_check_prints(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Like an unmatched rule glob: a warning (with the configured campaigns), not an
    error; ``check`` prints it."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "rules:\n  - name: r\n    when: pool_deadline_rank == 1\n    set: {weight: 100}\n",
        encoding="utf-8",
    )
    path = _config(tmp_path, agent_pools=[["Renewals", "Survey"]])
    settings = load_settings(path, environ={})
    assert settings.pools()[0] == ("Renewals",)
    assert any("'Survey' matches none of the configured campaigns" in w for w in settings.warnings)
    assert main(["check", "-c", str(path)]) == 0
    assert "warning: agent_pools: 'Survey' matches none" in capsys.readouterr().out


# -- the cycle --------------------------------------------------------------------------

POOL_RULES = """
rules:
  - name: pool-first
    description: "first deadline of the pool"
    when: pool_deadline_rank == 1
    set: {weight: 100}
  - name: pool-later
    description: "a later deadline of the pool"
    when: pool_deadline_rank > 1
    set: {weight: 5}
"""


def _two_campaigns() -> str:
    return yaml.safe_dump(
        {
            "start": "2024-04-29 08:00",
            "duration": "2d",
            "timezone": "Europe/Zurich",
            "seed": 1,
            "campaigns": {
                "Renewals": {
                    "lists": [
                        {
                            "name": "Due Friday",
                            "numbers": 50,
                            "weight": 10,
                            "deadline": "2024-05-03",
                        }
                    ]
                },
                "Surveys": {
                    "lists": [
                        {
                            "name": "Due Today",
                            "numbers": 50,
                            "weight": 10,
                            "deadline": "2024-04-29 17:00",
                        }
                    ]
                },
            },
            "agents": [],
        }
    )


@pytest.fixture
def mixers() -> Any:
    made: list[Mixer] = []
    yield made
    for mixer in made:
        mixer.close()


@pytest.mark.parametrize("concurrency", [1, 4])
def test_campaigns_sharing_agents_are_planned_on_the_pool_facts(
    tmp_path: Path, mixers: list[Mixer], concurrency: int
) -> None:
    """Declared as one pool, only the pool's earliest deadline gets 100 and the other
    campaign's list steps back; each campaign still reads, writes and logs its own cycle
    (with its read-to-write time). Undeclared, each campaign's earliest gets 100."""
    weights = {}
    for pooled in (True, False):
        folder = tmp_path / f"pooled-{pooled}"
        folder.mkdir()
        mixer = Mixer(
            folder,
            lists=[],
            rules=POOL_RULES,
            campaigns=["Renewals", "Surveys"],
            scenario=_two_campaigns(),
            qm={"concurrency": concurrency},
            config={"agent_pools": [["Renewals", "Surveys"]]} if pooled else {},
        )
        mixers.append(mixer)
        report = mixer.cycle()
        assert report.outcomes == {"Renewals": "ok", "Surveys": "ok"}
        weights[pooled] = (
            mixer.qm_list("Due Friday", "Renewals").weight,
            mixer.qm_list("Due Today", "Surveys").weight,
        )
        cycles = {r["campaign"]: r for r in mixer.records("cycle")}
        assert set(cycles) == {"Renewals", "Surveys"}
        assert all(r["read_to_write_ms"] is not None for r in cycles.values())
    assert weights[True] == (5, 100)
    assert weights[False] == (100, 100)


def test_a_pool_campaign_whose_read_fails_leaves_the_others_planned(
    tmp_path: Path, mixers: list[Mixer]
) -> None:
    """A campaign of the pool that cannot be read gets its error and no write; the
    pool's other campaigns are planned on the lists that were read."""
    mixer = Mixer(
        tmp_path,
        lists=[],
        rules=POOL_RULES,
        campaigns=["Renewals", "Ghost", "Surveys"],
        scenario=_two_campaigns(),
        config={"agent_pools": [["Renewals", "Ghost", "Surveys"]]},
    )
    mixers.append(mixer)
    report = mixer.cycle()
    assert report.outcomes == {"Renewals": "ok", "Ghost": "error", "Surveys": "ok"}
    assert mixer.qm_list("Due Today", "Surveys").weight == 100
    assert mixer.qm_list("Due Friday", "Renewals").weight == 5
    assert [r["campaign"] for r in mixer.records("error")] == ["Ghost"]


# -- the simulator and replay -----------------------------------------------------------


def test_the_simulator_declares_the_pool_its_scenario_describes() -> None:
    """Agents without a campaign serve every campaign: those campaigns share agents. Agents
    per campaign, or a single campaign, make no pool."""
    assert agent_pools(load_scenario("short-staffed-week")) == [
        ["Renewals", "Collections", "Surveys"]
    ]
    assert agent_pools(load_scenario("default")) == []  # each campaign has its agents
    assert agent_pools(load_scenario("deadline-crunch")) == []  # one campaign


@pytest.fixture(scope="module")
def pooled_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three simulated hours of short-staffed-week (one pool of three campaigns) under the
    shipped rules."""
    folder = tmp_path_factory.mktemp("pooled")
    run_strategy(
        load_scenario("short-staffed-week"),
        "rules",
        rules=shipped_rule_files(),
        workdir=folder,
        duration=timedelta(hours=3),
    )
    return folder


def test_replay_plans_a_pool_as_the_daemon_did(
    pooled_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Replaying the rules that ran on a pooled recording finds no difference: the replay
    plans the pool's campaigns of each cycle time together, on the same pool facts."""
    start = datetime(2024, 10, 31, 12, 0, tzinfo=UTC)
    code = main(
        [
            "replay",
            "-c",
            str(pooled_run / "config.yaml"),
            "--since",
            start.isoformat(),
            "--until",
            (start + timedelta(hours=3)).isoformat(),
            "--rules",
            *[str(p) for p in shipped_rule_files()],
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cycles"] == 3 * 60 * 3
    assert result["changes"] == []


def test_replay_without_the_pool_decides_otherwise(pooled_run: Path) -> None:
    """The same recording replayed with each campaign on its own: the campaigns' own
    earliest deadlines get full weight, which the pooled run did not give them."""
    start = datetime(2024, 10, 31, 12, 0, tzinfo=UTC)
    records = read_cycle_records(
        pooled_run / "state" / "decisions.jsonl",
        since=start - timedelta(hours=1),
        until=start + timedelta(hours=3),
        campaigns=["Renewals", "Collections", "Surveys"],
    )
    result = replay(
        recorded_cycles(records),
        load_rules(shipped_rule_files()),
        since=start,
        until=start + timedelta(hours=3),
        settings=EngineSettings(timezone=load_scenario("short-staffed-week").tz),
        limits=Limits(manual_hold=timedelta(minutes=30)),
    )
    assert any(c.new[0] == 100 and c.old[0] < 100 for c in result.changes)


# -- explain ----------------------------------------------------------------------------


@pytest.fixture
def loopback_qm() -> Any:
    from mixer.emulator.app import create_app
    from mixer.emulator.server import serve

    app = create_app("default", dialer=False)  # campaigns Sales and My Campaign
    with serve(app, host="127.0.0.1", port=0) as base_url:
        yield app, base_url


def test_explain_reads_the_pool_for_the_pool_facts(
    tmp_path: Path,
    loopback_qm: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`explain` on a campaign of a pool reads the pool's other campaigns live: the pool
    facts count their lists."""
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    app, url = loopback_qm
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yaml").write_text(
        "rules:\n  - name: r\n    when: pool_campaigns > 1\n    set: {weight: 50}\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "qm": {"url": url, "user": "robot", "timezone": "Europe/Zurich"},
                "campaigns": ["Sales", "My Campaign"],
                "agent_pools": [["Sales", "My Campaign"]],
                "rules": ["rules/*.yaml"],
                "state_dir": "state",
            }
        ),
        encoding="utf-8",
    )
    sales = app.state.campaigns["Sales"]
    name = next(iter(sales))
    args = ["explain", "-c", str(config), "--campaign", "Sales", "--list", name, "--json"]
    assert main(args) == 0
    facts = json.loads(capsys.readouterr().out)["facts"]
    assert facts["pool_campaigns"] == 2
    everyone = sum(
        item.weight
        for lists in app.state.campaigns.values()
        for item in lists.values()
        if not item.paused
    )
    assert facts["pool_total_weight"] == everyone - sales[name].weight
    assert facts["pool_total_weight"] > facts["campaign_total_weight"]
