"""The JSONPath subset of printer columns: ``.a.b``, ``[0]``, ``[*]`` and filters
``[?(@.key=="value")]``."""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r'\.([A-Za-z0-9_-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*"([^"]*)"\)\]'
)


def evaluate(obj: Any, path: str) -> list[Any]:
    values = [obj]
    position = 0
    path = path.strip().removeprefix("{").removesuffix("}").removeprefix("$")
    while position < len(path):
        match = _TOKEN.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {position}")
        position = match.end()
        field, index, key, wanted = match.groups()
        next_values: list[Any] = []
        for value in values:
            if field is not None and isinstance(value, dict) and field in value:
                next_values.append(value[field])
            elif index is not None and isinstance(value, list):
                next_values += value if index == "*" else value[int(index) : int(index) + 1]
            elif key is not None and isinstance(value, list):
                for item in value:
                    found: Any = item
                    for part in key.split("."):
                        found = found.get(part) if isinstance(found, dict) else None
                    if str(found) == wanted:
                        next_values.append(item)
        values = next_values
    return values
