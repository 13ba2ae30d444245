"""Label and field selectors, as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Matcher = Callable[[dict[str, str]], bool]

_SET = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [p.strip() for p in [*parts, current] if p.strip()]


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``key op values``."""

    key: str
    op: str  # in | notin | = | != | exists | !exists
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op in ("in", "="):
            return value in self.values
        if self.op in ("notin", "!="):
            return value not in self.values
        return (self.key in labels) == (self.op == "exists")


def _requirement(term: str) -> Requirement:
    if match := _SET.match(term):
        values = frozenset(v.strip() for v in match.group(3).split(","))
        return Requirement(match.group(1), match.group(2), values)
    for op in ("!=", "==", "="):
        if op in term:
            key, value = (part.strip() for part in term.split(op, 1))
            return Requirement(key, "!=" if op == "!=" else "=", frozenset([value]))
    if term.startswith("!"):
        return Requirement(term[1:].strip(), "!exists")
    if re.fullmatch(r"[\w./-]+", term):
        return Requirement(term, "exists")
    raise SelectorError(f"unable to parse requirement: {term!r}")


def label_matcher(selector: str | None) -> Matcher:
    """Equality (=, ==, !=), set (in, notin) and existence (key, !key) requirements."""
    requirements = [_requirement(term) for term in _split(selector or "")]
    return lambda labels: all(r.matches(labels) for r in requirements)


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """metadata.name and metadata.namespace, with = or != (what clients use)."""
    requirements: list[tuple[str, str, bool]] = []  # metadata field, value, negated
    for term in _split(selector or ""):
        negated = "!=" in term
        key, value = (s.strip() for s in term.replace("==", "=").replace("!=", "=").split("=", 1))
        if key not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f'field label not supported: "{key}"')
        requirements.append((key.split(".")[1], value, negated))
    return lambda obj: all(
        (obj["metadata"].get(field) == value) != negated for field, value, negated in requirements
    )
