"""Rubric YAML: parse with line-aware errors, dump in a stable, readable form."""

from __future__ import annotations

import yaml

from apps.rubrics.content import ContentError, validate


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str):
    # Multi-line text (templates, anchors) as literal blocks, so files diff well in review.
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def dump(content: dict) -> str:
    # Literal blocks cannot keep trailing spaces on a line; strip them so the round trip is exact.
    return yaml.dump(
        _strip_trailing_spaces(content),
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )


def _strip_trailing_spaces(value):
    if isinstance(value, str):
        return "\n".join(line.rstrip() for line in value.split("\n"))
    if isinstance(value, list):
        return [_strip_trailing_spaces(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_trailing_spaces(v) for k, v in value.items()}
    return value


def parse(text: str) -> dict:
    """YAML text to validated content; raises ContentError listing every problem."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError([f"(yaml) {where}{problem}"]) from None
    if data is None:
        raise ContentError(["(yaml): the file is empty"])
    return _strip_trailing_spaces(validate(data))
