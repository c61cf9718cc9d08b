"""YAML loading that remembers line numbers, refuses duplicate keys, and reads numbers as written.

PyYAML silently keeps the last of two equal keys and forgets where values came from; a matrix error must name
the line, so mappings and lists are built as subclasses that carry the 1-based line of each entry.

A matrix is small, hand-written configuration, so the loader takes YAML's plain subset and refuses the rest in
one line each, before anything is expanded: files over MAX_BYTES, nesting deeper than MAX_DEPTH, anchors and
aliases (a billion-laughs file expands them exponentially; a recursive one never ends), merge keys, custom
tags, and YAML 1.1's surprising scalars — `032` (octal 26), `1:00` (sexagesimal 60), `0x20`, `.nan`, `.inf`,
`yes`/`no`/`on`/`off` — which would change a number or a word silently.
"""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from genrec_bench.matrices.errors import MatrixError

MAX_BYTES = 1 << 20
MAX_DEPTH = 32
_TAG = "tag:yaml.org,2002:"
# Dates (an acknowledgement's expiry) read as dates: no number changes under them.
PLAIN_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp")}
_DECIMAL = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?")
_BOOL = re.compile(r"true|false|True|False|TRUE|FALSE")


class LineDict(dict):
    """A mapping from YAML with `.line` (where it starts) and `.lines[key]` (where each key is)."""

    line: int
    lines: dict


class LineList(list):
    """A sequence from YAML with `.line` (where it starts) and `.lines[i]` (where each item is)."""

    line: int
    lines: list


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _check_tag(node: yaml.Node, path: str, where: str) -> None:
    if node.tag == _TAG + "merge":
        raise MatrixError(path, _line(node), where, "merge keys (<<) are not supported; write the keys out")
    if node.tag not in PLAIN_TAGS:
        raise MatrixError(
            path,
            _line(node),
            where,
            f"tag {node.tag!r} is not supported; plain strings, "
            f"numbers, booleans, dates, lists and mappings only",
        )


def _scalar(node: yaml.ScalarNode, path: str, where: str) -> Any:
    """The scalar as written: a number only when its text is a plain decimal number."""
    text, tag, explicit = node.value, node.tag, node.style is not None
    if tag == _TAG + "int" and not _DECIMAL.fullmatch(text):
        raise MatrixError(
            path,
            _line(node),
            where,
            f"{text!r} is not a plain decimal integer (YAML 1.1 reads "
            f"it as something else); write the number in decimal, or "
            f"quote it to mean text",
        )
    if tag == _TAG + "float" and not explicit and not _FLOAT.fullmatch(text):
        raise MatrixError(
            path,
            _line(node),
            where,
            f"{text!r} is not a finite decimal number; matrices take "
            f"finite numbers only (no .nan, .inf or 1:30)",
        )
    if tag == _TAG + "bool" and not _BOOL.fullmatch(text):
        raise MatrixError(
            path,
            _line(node),
            where,
            f"{text!r} reads as a boolean in YAML 1.1; write true or false, or quote it to mean text",
        )
    try:
        value = _SCALARS.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        raise MatrixError(
            path,
            _line(node),
            where,
            f"{text!r} cannot be read as {tag.rsplit(':', 1)[-1]}: {str(exc).splitlines()[0]}",
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise MatrixError(path, _line(node), where, f"{text!r} is not a finite number; write a finite number")
    return value


def _build(node: yaml.Node, path: str, depth: int, seen: set[int], where: str) -> Any:
    """`where` names the node as the loader's errors do (`axes.batch[1]`), `yaml` at the top."""
    if depth > MAX_DEPTH:
        raise MatrixError(
            path, _line(node), where, f"nested deeper than {MAX_DEPTH} levels; a matrix is flat"
        )
    if id(node) in seen:  # the composer hands an alias back as the very node its anchor named
        raise MatrixError(
            path,
            _line(node),
            where,
            "anchors and aliases (&name / *name) are not supported; write the values out",
        )
    seen.add(id(node))
    _check_tag(node, path, where)
    if isinstance(node, yaml.MappingNode):
        out = LineDict()
        out.line, out.lines = _line(node), {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise MatrixError(path, _line(key_node), "key", "keys must be plain names")
            _check_tag(key_node, path, where)
            key = _scalar(key_node, path, where)
            if key in out:
                raise MatrixError(
                    path,
                    _line(key_node),
                    str(key),
                    f"duplicate key (first at line {out.lines[key]}); keep one of them",
                )
            out[key] = _build(
                value_node, path, depth + 1, seen, str(key) if where == "yaml" else f"{where}.{key}"
            )
            out.lines[key] = _line(key_node)
        return out
    if isinstance(node, yaml.SequenceNode):
        out = LineList(
            _build(item, path, depth + 1, seen, f"{where}[{i}]") for i, item in enumerate(node.value)
        )
        out.line = _line(node)
        out.lines = [_line(item) for item in node.value]
        return out
    return _scalar(node, path, where)


_SCALARS = yaml.SafeLoader("")


def load_yaml(path: str) -> Any:
    """Parse one YAML document from `path` into LineDict/LineList/scalars; errors are MatrixError."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise MatrixError(
            path, None, "file", "not found; pass --matrix with the path of a matrix YAML file"
        ) from None
    except IsADirectoryError:
        raise MatrixError(
            path, None, "file", "is a directory; pass --matrix with a matrix YAML file"
        ) from None
    except OSError as exc:
        raise MatrixError(path, None, "file", f"cannot be read ({exc.__class__.__name__}: {exc})") from None
    if len(data) > MAX_BYTES:
        raise MatrixError(
            path,
            None,
            "file",
            f"is larger than {MAX_BYTES // 1024} KiB; a matrix is a short hand-written file",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MatrixError(
            path, None, "file", f"is not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        raise MatrixError(path, line, "yaml", f"not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise MatrixError(path, None, "yaml", f"not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise MatrixError(
            path,
            None,
            "yaml",
            f"nested deeper than the parser can follow; a matrix is flat (at most {MAX_DEPTH} levels)",
        ) from None
    if node is None:
        raise MatrixError(path, None, "file", "is empty; a matrix needs at least an `axes:` mapping")
    return _build(node, path, 0, set(), "yaml")
