"""``amo-mixer schema``: JSON Schemas of the config, rule and scenario files.

The schemas come from the same pydantic models that validate the files, so editor
completion never disagrees with ``check``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

KINDS = ("config", "rules", "scenario")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "schema",
        help="print JSON Schemas for editor completion",
        description="Print the JSON Schema of a config, rules or scenario file (all three "
        "in one object when no kind is given), or write them to a folder with --output-dir.",
    )
    parser.add_argument("kind", nargs="?", choices=KINDS, help="which schema")
    parser.add_argument(
        "--output-dir", type=Path, help="write <kind>.schema.json files into this folder"
    )
    parser.set_defaults(handler=run)


def schemas() -> dict[str, Callable[[], dict[str, Any]]]:
    from mixer.config import settings_json_schema
    from mixer.emulator.scenario import scenario_json_schema

    return {
        "config": settings_json_schema,
        "rules": rules_schema_with_facts,
        "scenario": scenario_json_schema,
    }


def rules_schema_with_facts() -> dict[str, Any]:
    """The rules file schema plus ``$defs.Facts``: every built-in fact an expression may
    read, typed (the file format knows nothing of the engine, so they meet here)."""
    from mixer.engine.facts import facts_json_schema
    from mixer.rulefile import rules_json_schema

    schema = rules_json_schema()
    schema.setdefault("$defs", {})["Facts"] = facts_json_schema()
    return schema


def run(args: argparse.Namespace) -> int:
    builders = schemas()
    kinds = [args.kind] if args.kind else list(KINDS)
    if args.output_dir is not None:
        args.output_dir.mkdir(parents=True, exist_ok=True)
        for kind in kinds:
            path = args.output_dir / f"{kind}.schema.json"
            path.write_text(json.dumps(builders[kind](), indent=2) + "\n", encoding="utf-8")
            print(path)
        return 0
    if args.kind:
        document: dict[str, Any] = builders[args.kind]()
    else:
        document = {kind: builders[kind]() for kind in kinds}
    print(json.dumps(document, indent=2))
    return 0
