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


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping.

    Plain YAML keeps the last one silently; in a reviewed rubric file a repeated `anchor:` is
    a mistake, and the level would quietly lose the text written first.
    """


def _construct_mapping(loader: _Loader, node: yaml.MappingNode, deep: bool = False):
    seen: dict = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may be overridden, by design
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.setdefault((type(key), key), key_node)  # 1 and true differ
        except TypeError:  # an unhashable key; the constructor below reports it
            continue
        if first is not key_node:
            raise yaml.constructor.ConstructorError(
                None, None,
                f"'{key}' appears twice in one mapping (first on line {first.start_mark.line + 1})",
                key_node.start_mark,
            )
    return loader.construct_mapping(node, deep=deep)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def parse(text: str) -> dict:
    """YAML text to validated content; raises ContentError listing every problem."""
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError([f"(yaml) {where}{problem}"]) from None
    if data is None:
        raise ContentError(["(yaml): the file is empty"])
    return validate(data)
