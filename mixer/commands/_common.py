"""Argument and loading steps several commands share: the config option, settings, and the
time zone times are shown in (``--tz``, else ``qm.timezone``)."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mixer.errors import UsageError

if TYPE_CHECKING:
    from mixer.config import Settings

DEFAULT_CONFIG = "/etc/amo-mixer/config.yaml"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-c",
        "--config",
        type=Path,
        default=Path(os.environ.get("AMO_MIXER_CONFIG", DEFAULT_CONFIG)),
        help="configuration file (default: $AMO_MIXER_CONFIG or %(default)s)",
    )


def settings_from(args: argparse.Namespace) -> Settings:
    """Load the settings named by ``--config`` with the process environment."""
    from mixer.config import load_settings

    path: Path = args.config
    return load_settings(path, environ=os.environ)


def add_tz_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tz",
        metavar="ZONE",
        help="time zone for the times shown, e.g. UTC or Europe/Zurich "
        "(default: qm.timezone of the config)",
    )


def zone_from(args: argparse.Namespace, settings: Settings) -> ZoneInfo:
    """``--tz`` when given, else the QM time zone: the one rules speak ("hour 19")."""
    name: str | None = getattr(args, "tz", None)
    if name is None:
        return settings.qm.tz
    return parse_zone(name)


def parse_zone(name: str) -> ZoneInfo:
    """A time zone by IANA name; a usage error with the closest name when unknown."""
    import difflib
    from zoneinfo import available_timezones

    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(name, sorted(available_timezones()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UsageError(
            f"--tz {name!r} is not a time zone{hint}: use an IANA name such as UTC or Europe/Zurich"
        ) from None


def zone_name(zone: tzinfo) -> str:
    """``Europe/Zurich`` for a ZoneInfo, else the zone's own name (``UTC``)."""
    return str(getattr(zone, "key", None) or zone.tzname(None) or zone)


def show_time(moment: datetime, zone: tzinfo, *, seconds: bool = True) -> str:
    """``2026-04-10 08:00:00`` in ``zone``: how a person reads a time."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def parse_when(text: str | None, now: datetime, option: str, zone: tzinfo = UTC) -> datetime | None:
    """``24h``/``7d`` back from ``now``, or an ISO 8601 time (naive means in ``zone``)."""
    if text is None:
        return None
    from mixer.durations import parse_duration

    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is neither a duration (24h, 7d) nor an ISO 8601 time "
            "(2026-04-10T08:00)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=zone)
    return when.astimezone(UTC)


def rules_text(
    rules: object, overridden: object = None, *, empty: str = "-", sep: str = ", "
) -> str:
    """``a, b (overridden: c)``: the rules a decision carries, then those a later rule
    overrode."""
    carried = sep.join(map(str, rules)) if isinstance(rules, list | tuple) else str(rules or "")
    text = carried or empty
    if isinstance(overridden, list | tuple) and overridden:
        text += f" (overridden: {sep.join(map(str, overridden))})"
    return text
