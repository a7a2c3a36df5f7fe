"""Bounds on the ``{fact:spec}`` format specs of rule descriptions.

A spec like ``{list:>100000000}`` is valid Python and would render 100 MB into every
reason sentence of every cycle. ``check`` refuses widths and precisions above
``MAX_SPEC_NUMBER``; at run time an over-wide spec falls back to the plain value and a
rendered description is cut at ``MAX_RENDERED_CHARS``, whatever the facts hold.
"""

from __future__ import annotations

import re
import string

MAX_SPEC_NUMBER = 100
"""The largest width or precision a description's format spec may ask for."""
MAX_RENDERED_CHARS = 2000
"""A rendered description longer than this is cut (with an ellipsis)."""

_SPEC = re.compile(
    r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>\d*)[,_]?(?:\.(?P<precision>\d*))?[a-zA-Z%]?",
    re.DOTALL,
)


def spec_too_large(spec: str | None) -> bool:
    """Whether ``spec`` asks for a width or precision above ``MAX_SPEC_NUMBER``."""
    if not spec:
        return False
    found = _SPEC.fullmatch(spec)
    if found is None:
        return False  # not a plain spec: formatting fails and shows the bare value
    width, precision = found.group("width"), found.group("precision")
    return any(len(part) > 3 or int(part) > MAX_SPEC_NUMBER for part in (width, precision) if part)


def spec_problem(description: str) -> str | None:
    """The check-time message for the first over-wide spec of ``description``, if any."""
    try:
        parsed = list(string.Formatter().parse(description))
    except ValueError:
        return None  # unbalanced braces are reported on their own
    for _literal, name, spec, _conversion in parsed:
        if name and spec_too_large(spec):
            return (
                f"description: the format spec '{{{name}:{spec}}}' asks for more than "
                f"{MAX_SPEC_NUMBER} characters; use a width and precision of at most "
                f"{MAX_SPEC_NUMBER}"
            )
    return None


def capped(text: str) -> str:
    """``text`` cut to ``MAX_RENDERED_CHARS`` characters."""
    if len(text) <= MAX_RENDERED_CHARS:
        return text
    return text[: MAX_RENDERED_CHARS - 1] + "…"
