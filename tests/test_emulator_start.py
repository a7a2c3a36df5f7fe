"""The emulator starts its scenario now (or at --at), with every date moved along."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mixer.cli import main
from mixer.emulator.scenario import load_scenario
from mixer.emulator.shift import shift_scenario
from tests.test_commands import write_config
from tests.test_emulator_e2e import amo_mixer, free_port


@pytest.fixture(autouse=True)
def _password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMO_MIXER_QM_PASSWORD", "bot")
    monkeypatch.delenv("AMO_MIXER_MODE", raising=False)


def start_emulator(*extra: str) -> Iterator[tuple[str, str]]:
    port = free_port()
    with subprocess.Popen(
        [*amo_mixer(), "emulator", "--port", str(port), *extra],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = process.stdout.readline()
            process.stdout.readline()
            yield f"http://127.0.0.1:{port}/qm", banner
        finally:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def emulator_now() -> Iterator[tuple[str, str]]:
    yield from start_emulator()


def test_shift_moves_deadlines_and_dated_additions_not_offsets() -> None:
    """Shifting moves start, deadlines and dated additions by one amount; offsets stay."""
    scenario = load_scenario("exhaustion-refill")
    start = datetime(2030, 1, 7, 7, 0, 30, tzinfo=UTC)
    shifted = shift_scenario(scenario, start)
    delta = shifted.start - scenario.start
    assert shifted.start == start.replace(second=0)
    assert shifted.name == scenario.name
    for name, campaign in scenario.campaigns.items():
        for before, after in zip(campaign.lists, shifted.campaigns[name].lists, strict=True):
            if before.deadline is not None:
                assert after.deadline_local() == before.deadline_local() + delta  # type: ignore[operator]
            for old, new in zip(before.add, after.add, strict=True):
                local = scenario.start.astimezone(scenario.tz).replace(tzinfo=None)
                moved = shifted.start.astimezone(scenario.tz).replace(tzinfo=None)
                assert new.when(moved) == old.when(local) + delta
    assert any(lst.add for c in scenario.campaigns.values() for lst in c.lists)


def test_scenario_file_may_start_now(tmp_path: Path) -> None:
    """`start: now` loads, starting at the current minute."""
    path = tmp_path / "mine.yaml"
    path.write_text(
        "start: now\ncampaigns:\n  Sales:\n    lists:\n      - {name: A, numbers: 10}\n",
        encoding="utf-8",
    )
    scenario = load_scenario(path)
    assert abs(scenario.start - datetime.now(UTC)) < timedelta(minutes=2)


def test_emulator_default_start_is_now_so_deadlines_are_ahead(
    tmp_path: Path, emulator_now: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Against `amo-mixer emulator`, a deadline 9 h after the scenario start is 9 h ahead."""
    url, banner = emulator_now
    assert "starting 2024" not in banner
    config = write_config(tmp_path, url)
    assert main(["explain", "-c", str(config), "--campaign", "Sales", "--list",
                 "Callbacks Today", "--json"]) == 0  # fmt: skip
    facts = json.loads(capsys.readouterr().out)["facts"]
    assert 8.9 < facts["hours_to_deadline"] <= 9.0


def test_emulator_at_pins_the_start() -> None:
    """`--at` starts the scenario at a given local time; `--at scenario` keeps the file's."""
    for at, expected in (
        ("2026-05-04 08:00", "2026-05-04 08:00"),
        ("scenario", "2024-04-22 08:00"),
    ):
        for _, banner in start_emulator("--at", at):
            assert f"starting {expected} Europe/Zurich" in banner


def test_emulator_bad_at_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """An --at that is not a time is exit 2 with the forms it accepts."""
    assert main(["emulator", "--port", "0", "--at", "tomorrow"]) == 2
    err = capsys.readouterr().err
    assert "--at 'tomorrow' is not a time" in err
    assert err.count("\n") == 1
