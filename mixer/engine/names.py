"""How list and campaign names are compared with the globs of rule files.

QM passes names through as it got them: a list typed on a Mac may arrive decomposed (NFD:
``u`` + combining diaeresis) while the rule file says ``Rückrufe*`` composed (NFC), and
the two would never match. Both sides are normalised to NFC before matching. Matching
stays case-sensitive, as QM's own names are (an update naming ``b2b leads`` when the list
is ``B2B Leads`` would create a new list): ``B2B*`` does not match ``b2b leads``, and
``check``/``explain`` warn when a glob matches no list they can see.
"""

from __future__ import annotations

import fnmatch
import unicodedata
from collections.abc import Iterable
from functools import lru_cache


def nfc(text: str) -> str:
    """``text`` in Unicode NFC (ASCII, the common case, is returned as is)."""
    return text if text.isascii() else unicodedata.normalize("NFC", text)


@lru_cache(maxsize=4096)
def _nfc_glob(glob: str) -> str:
    return nfc(glob)


def glob_matches(name: str, glob: str) -> bool:
    """Whether ``name`` matches ``glob`` (fnmatch, case-sensitive, both sides NFC)."""
    return fnmatch.fnmatchcase(nfc(name), _nfc_glob(glob))


def unmatched_globs(globs: Iterable[str], names: Iterable[str]) -> list[str]:
    """The globs that match none of ``names``, in order."""
    seen = [nfc(name) for name in names]
    return [g for g in globs if not any(fnmatch.fnmatchcase(n, _nfc_glob(g)) for n in seen)]


def case_hint(glob: str, names: Iterable[str]) -> str | None:
    """A name the glob would match ignoring case, to point at a case mismatch."""
    folded = _nfc_glob(glob).casefold()
    for name in names:
        if fnmatch.fnmatchcase(nfc(name).casefold(), folded):
            return name
    return None


def glob_warnings(
    campaign: str, rules: Iterable[tuple[str, Iterable[str]]], names: Iterable[str], seen: str
) -> list[str]:
    """One warning per (rule, glob) that matches none of ``names`` (the lists of
    ``campaign`` in ``seen``, e.g. "this read"), with a case-mismatch hint if there is one."""
    listed = list(names)
    warnings = []
    for rule, globs in rules:
        for glob in unmatched_globs(globs, listed):
            hint = case_hint(glob, listed)
            more = f"; matching is case-sensitive: did you mean {hint!r}?" if hint else ""
            warnings.append(
                f"warning: rule {rule!r}: match {glob!r} matches no list of campaign "
                f"{campaign!r} in {seen}{more}"
            )
    return warnings
