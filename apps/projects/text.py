"""Text that cannot be stored: PostgreSQL refuses NUL in text, and psycopg cannot encode a lone
surrogate (what JSON's "\\ud800" decodes to). Services check names and descriptions with this,
so such input is a field error, not a server error."""

from __future__ import annotations


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored, or None."""
    if "\x00" in value:
        return "contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (\\ud800-\\udfff)"
    return None
