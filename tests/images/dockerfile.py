"""A small Dockerfile reader: instructions per stage, continuation lines joined, exec-form
arguments parsed. Enough to replay a Dockerfile's contract without a Docker engine."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [value for key, value in self.instructions if key == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in self.all("ENV"):
            for pair in shlex.split(line):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def copies(self) -> list[tuple[list[str], str]]:
        """(sources, destination) of COPY instructions without --from."""
        found = []
        for line in self.all("COPY"):
            parts = [p for p in shlex.split(line) if not p.startswith("--chown")]
            if parts and parts[0].startswith("--from"):
                continue
            found.append((parts[:-1], parts[-1]))
        return found


def exec_form(value: str) -> list[str]:
    parsed = json.loads(value)
    assert isinstance(parsed, list), f"not exec form: {value}"
    return [str(part) for part in parsed]


def read(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """The ARG defaults before the first FROM, and the stages."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        current += (
            stripped.removesuffix("\\").strip() + " " if stripped.endswith("\\") else stripped
        )
        if not stripped.endswith("\\"):
            lines.append(current.strip())
            current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        keyword, _, value = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not stages:
            name, _, default = value.partition("=")
            args[name] = default
        elif keyword == "FROM":
            parts = value.split()
            base = parts[0]
            for name, default in args.items():
                base = base.replace(f"${{{name}}}", default)
            stages.append(Stage(base, parts[2] if len(parts) > 2 else None))
        else:
            stages[-1].instructions.append((keyword, value.strip()))
    return args, stages
