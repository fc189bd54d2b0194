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


MAX_DEPTH = 20  # a rubric is five levels deep; anything far deeper is a mistake or an attack


def _depth_error(node: yaml.Node) -> str | None:
    """Walk the composed node graph without recursion; report nesting beyond MAX_DEPTH. Each
    node once: aliases share nodes, and an alias bomb must not make this walk exponential."""
    stack = [(node, 1)]
    seen: set[int] = set()
    while stack:
        current, depth = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if depth > MAX_DEPTH:
            mark = current.start_mark
            return (f"(yaml) line {mark.line + 1}, column {mark.column + 1}: nested more than "
                    f"{MAX_DEPTH} levels deep")
        if isinstance(current, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            stack.extend((child, depth + 1) for pair in current.value for child in pair)
    return None


def parse(text: str) -> dict:
    """YAML text to validated content; raises ContentError listing every problem."""
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ContentError([f"(yaml) line {line}: contains a NUL character"])
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise ContentError(["(yaml): the file is empty"])
            deep = _depth_error(node)
            if deep:
                raise ContentError([deep])
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ContentError([f"(yaml) {where}{problem}"]) from None
    except RecursionError:  # the composer itself recursed too deep before we could look
        raise ContentError([f"(yaml): nested more than {MAX_DEPTH} levels deep"]) from None
    if data is None:
        raise ContentError(["(yaml): the file is empty"])
    return validate(data)
