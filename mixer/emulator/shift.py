"""Moving a scenario in time: the same run, starting at another moment.

The shipped scenarios are dated (April 2024) so that tests and backtests are reproducible,
but a person trying the mixer against ``amo-mixer emulator`` runs it on the real clock: a
deadline two years past makes every deadline fact nonsense. Shifting moves the start and
every absolute time of the file (list deadlines, numbers added at a date) by the same
amount; offsets ("2h") and agents' clock-time shifts ("09:00") stay as written.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from mixer.emulator.scenario import NumberBatch, Scenario, parse_local_time

__all__ = ["shift_scenario"]

_LOCAL = "%Y-%m-%d %H:%M"


def shift_scenario(scenario: Scenario, start: datetime) -> Scenario:
    """``scenario`` starting at ``start`` (aware; seconds dropped), everything moved along."""
    tz = scenario.tz
    new_start = start.astimezone(tz).replace(second=0, microsecond=0)
    old_local = scenario.start.astimezone(tz).replace(tzinfo=None)
    delta = new_start.replace(tzinfo=None) - old_local
    campaigns = {}
    for name, campaign in scenario.campaigns.items():
        lists = []
        for spec in campaign.lists:
            deadline = spec.deadline_local()
            lists.append(
                spec.model_copy(
                    update={
                        "deadline": None if deadline is None else _text(deadline + delta),
                        "add": [_shift_batch(batch, delta) for batch in spec.add],
                    }
                )
            )
        campaigns[name] = campaign.model_copy(update={"lists": lists})
    shifted = scenario.model_copy(update={"start": new_start, "campaigns": campaigns})
    shifted._name = scenario.name
    return shifted


def _shift_batch(batch: NumberBatch, delta: timedelta) -> NumberBatch:
    try:
        when = parse_local_time(batch.at)
    except ValueError:
        return batch  # an offset from the start: moves with it already
    return batch.model_copy(update={"at": _text(when + delta)})


def _text(naive: datetime) -> str:
    return naive.strftime(_LOCAL)
