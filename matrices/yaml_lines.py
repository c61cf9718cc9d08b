"""YAML loading that remembers line numbers and refuses duplicate keys.

PyYAML silently keeps the last of two equal keys and forgets where values came from; a matrix error must name
the line, so mappings and lists are built as subclasses that carry the 1-based line of each entry.
"""
from __future__ import annotations

from typing import Any

import yaml

from genrec_bench.matrices.errors import MatrixError


class LineDict(dict):
    """A mapping from YAML with `.line` (where it starts) and `.lines[key]` (where each key is)."""

    line: int
    lines: dict


class LineList(list):
    """A sequence from YAML with `.line` (where it starts) and `.lines[i]` (where each item is)."""

    line: int
    lines: list


def _build(node: yaml.Node, path: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.lines = node.start_mark.line + 1, {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise MatrixError(path, key_node.start_mark.line + 1, "key", "keys must be plain names")
            key = _SCALARS.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in out:
                raise MatrixError(path, line, str(key),
                                  f"duplicate key (first at line {out.lines[key]}); keep one of them")
            out[key] = _build(value_node, path)
            out.lines[key] = line
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LineList(_build(item, path) for item in node.value)
        out.line = node.start_mark.line + 1
        out.lines = [item.start_mark.line + 1 for item in node.value]
        return out
    # Scalars: the composer already resolved their tags; the safe constructor turns them into ints, floats,
    # bools and nulls exactly as yaml.safe_load would.
    return _SCALARS.construct_object(node, deep=True)


_SCALARS = yaml.SafeLoader("")


def load_yaml(path: str) -> Any:
    """Parse one YAML document from `path` into LineDict/LineList/scalars; errors are MatrixError."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise MatrixError(path, None, "file",
                          "not found; pass --matrix with the path of a matrix YAML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(path, None, "file", f"cannot be read ({exc.__class__.__name__}: {exc})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise MatrixError(path, line, "yaml", f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise MatrixError(path, None, "yaml", f"not valid YAML: {exc}") from None
    if node is None:
        raise MatrixError(path, None, "file", "is empty; a matrix needs at least an `axes:` mapping")
    return _build(node, path)
