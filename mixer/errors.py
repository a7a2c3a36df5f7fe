"""The exceptions every layer raises for a problem a person must act on.

``MixerError`` carries the exit code and a one-line message: the CLI prints exactly that
line (no traceback unless ``--debug``). Layers subclass it so callers can tell failures
apart without parsing text::

    MixerError                    exit 1 unless said otherwise
    ├── UsageError                exit 2: bad arguments
    ├── ConfigError               exit 2: invalid configuration (all problems listed)
    ├── RuleLoadError             mixer.engine.rules: rule files that do not load
    ├── RuleTestFileError         mixer.ruletests: a rule-test file that does not load
    ├── ExpressionError           mixer.engine.expressions: a rule expression that
    │                             does not compile (name, type, syntax)
    ├── ExpressionEvaluationError an expression that fails on one list's facts
    ├── QMError                   mixer.qm.errors: anything the QM API did wrong
    │   ├── QMAuthError           401, or 403 for a user without USR_AMO
    │   ├── QMUnreachableError    connection refused, DNS, TLS, timeout
    │   ├── QMBadReplyError       not JSON, or JSON of the wrong shape
    │   ├── QMApiError            the reply's ``errors`` list is not empty
    │   └── QMRefusedUpdateError  an update the client refuses to send
    ├── StoreError                mixer.store: the state database cannot be used
    ├── ReportDependencyError     mixer.report: the ``[report]`` extra is missing
    └── LockError                 another daemon holds the state directory
"""

from __future__ import annotations


class MixerError(Exception):
    """A failure with a message meant for the operator, not a developer."""

    exit_code: int = 1

    def __init__(self, message: str, *, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class UsageError(MixerError):
    """Command-line arguments that cannot be honoured."""

    exit_code = 2


class ConfigError(MixerError):
    """Configuration that fails validation; ``problems`` holds one line per issue."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class LockError(MixerError):
    """The state directory is already in use by another daemon."""
