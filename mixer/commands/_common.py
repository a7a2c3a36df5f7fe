"""Argument and loading steps several commands share: the config option, settings."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

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


def parse_when(text: str | None, now: datetime, option: str) -> datetime | None:
    """``24h``/``7d`` back from ``now``, or an ISO 8601 time (naive means UTC)."""
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
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
