"""What can go wrong talking to QM, as one small exception tree.

Every message is one line an operator can act on: where (host, endpoint, campaign), what
happened, what to do. Messages never carry the password: the client redacts anything
that comes from the server or from httpx before it lands in a message::

    MixerError (mixer.errors)
    └── QMError                  anything the QM API did wrong; .campaign, .endpoint, .status
        ├── QMAuthError          HTTP 401 (credentials) or 403 (no USR_AMO key)
        ├── QMUnreachableError   connect error, timeout, broken connection
        ├── QMBadReplyError      not JSON, broken JSON, a field missing, an unexpected status
        ├── QMApiError           the reply carries ``errors`` entries; .errors holds them
        └── QMRefusedUpdateError the client would not send an update (unread list name, …)

``transient`` marks the errors a read may retry: unreachable, HTTP 5xx and 429.
"""

from __future__ import annotations

from mixer.errors import MixerError

__all__ = [
    "QMApiError",
    "QMAuthError",
    "QMBadReplyError",
    "QMError",
    "QMRefusedUpdateError",
    "QMUnreachableError",
]


class QMError(MixerError):
    """A QM API call failed; the message names where and what to do."""

    def __init__(
        self,
        message: str,
        *,
        campaign: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.campaign = campaign
        self.endpoint = endpoint
        self.status = status
        self.transient = transient


class QMAuthError(QMError):
    """QM refused the credentials (401) or the user lacks the key ``USR_AMO`` (403)."""


class QMUnreachableError(QMError):
    """No answer: connection refused, DNS, TLS, timeout, connection dropped."""


class QMBadReplyError(QMError):
    """QM answered, but not with what the API page promises."""


class QMApiError(QMError):
    """QM answered with ``errors`` entries; ``errors`` holds them, one line each."""

    def __init__(
        self,
        message: str,
        *,
        errors: tuple[str, ...] = (),
        campaign: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, campaign=campaign, endpoint=endpoint, status=status)
        self.errors = errors


class QMRefusedUpdateError(QMError):
    """The client refused to send an update (before any HTTP call): sending it would
    create a list in QM or could not be done safely."""
