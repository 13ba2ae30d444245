"""Label and field selectors, as the API server parses them."""

from __future__ import annotations

import re
from collections.abc import Callable
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


def label_matcher(selector: str | None) -> Matcher:
    """Equality (=, ==, !=), set (in, notin) and existence (key, !key) requirements."""
    tests: list[Matcher] = []
    for term in _split(selector or ""):
        if match := _SET.match(term):
            key, op, values = (
                match.group(1),
                match.group(2),
                {v.strip() for v in match.group(3).split(",")},
            )
            if op == "in":
                tests.append(lambda labels, k=key, vs=values: labels.get(k) in vs)
            else:
                tests.append(lambda labels, k=key, vs=values: labels.get(k) not in vs)
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) != v)
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(lambda labels, k=key, v=value: labels.get(k) == v)
        elif term.startswith("!"):
            absent = term[1:].strip()
            tests.append(lambda labels, k=absent: k not in labels)
        elif re.fullmatch(r"[\w./-]+", term):
            tests.append(lambda labels, k=term: k in labels)
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return lambda labels: all(test(labels) for test in tests)


def field_matcher(selector: str | None) -> Callable[[dict[str, Any]], bool]:
    """metadata.name and metadata.namespace, with = or != (what clients use)."""
    tests = []
    for term in _split(selector or ""):
        negate = "!=" in term
        key, value = (s.strip() for s in term.replace("==", "=").replace("!=", "=").split("=", 1))
        if key not in ("metadata.name", "metadata.namespace"):
            raise SelectorError(f'field label not supported: "{key}"')
        field = key.split(".")[1]
        tests.append(lambda obj, f=field, v=value, n=negate: (obj["metadata"].get(f) == v) != n)
    return lambda obj: all(test(obj) for test in tests)
