"""The garbage collector's pace for a process the ``amo-mixer`` command owns.

CPython collects its youngest generation every 700 net allocations and, now and then,
walks every object the process holds. A command allocates in bursts of objects that
live until the burst ends (imports at start-up: modules, classes, schemas; a cycle: the
facts, evaluations and records of every list) and makes few reference cycles, so most of
those walks find nothing: they were about a tenth of ``once``'s start-up and of a cycle
over 2,000 lists. A larger first threshold keeps collection, at a pace fit for that.
Only the command's own process is tuned (``mixer.cli.main`` without arguments); code
that imports the package, tests included, keeps its collector as it is.
"""

from __future__ import annotations

import gc

# Youngest generation every 200,000 net allocations (tens of ms to walk); the older two keep
# CPython's ratios, so a full collection still comes after 100 young ones at most.
THRESHOLDS = (200_000, 10, 10)


def pace_for_commands() -> None:
    gc.set_threshold(*THRESHOLDS)
