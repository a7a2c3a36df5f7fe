"""Argument and loading steps several commands share: the config option, settings."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

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
