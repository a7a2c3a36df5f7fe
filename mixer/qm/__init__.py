"""The QueueMetrics AMO client: the only module that talks HTTP to QM.

``QMClient`` reads and writes call lists; ``mixer.qm.errors`` holds the exception tree;
``mixer.qm.wire`` the request encoding and lenient reply parsing; ``mixer.qm.verify``
the check that a write took effect.
"""

from mixer.qm.client import QMClient
from mixer.qm.errors import (
    QMApiError,
    QMAuthError,
    QMBadReplyError,
    QMError,
    QMRefusedUpdateError,
    QMUnreachableError,
)
from mixer.qm.verify import changed_mismatches
from mixer.qm.wire import MAX_BODY_BYTES, parse_lists_reply

__all__ = [
    "MAX_BODY_BYTES",
    "QMApiError",
    "QMAuthError",
    "QMBadReplyError",
    "QMClient",
    "QMError",
    "QMRefusedUpdateError",
    "QMUnreachableError",
    "changed_mismatches",
    "parse_lists_reply",
]
