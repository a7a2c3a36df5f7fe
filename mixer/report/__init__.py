"""The self-contained HTML report of the decision log (``amo-mixer report``).

``collect`` folds records into plain data (pure), ``render_report`` turns that into one
offline HTML page with plotly.js inline, ``write_report`` puts it on disk atomically.
"""

from mixer.report.build import (
    INSTALL_HINT,
    ReportDependencyError,
    build_report,
    render_report,
    write_report,
)
from mixer.report.data import DEFAULT_MAX_POINTS, ReportData, collect, keep_indices

__all__ = [
    "DEFAULT_MAX_POINTS",
    "INSTALL_HINT",
    "ReportData",
    "ReportDependencyError",
    "build_report",
    "collect",
    "keep_indices",
    "render_report",
    "write_report",
]
