"""Finds the user's graph: ``AGENTFLOW_GRAPH=module:attr`` or ``agentflow.json``'s ``agent``.

Import problems become one :class:`GraphLoadError` sentence naming the module and the cause, so
a typo in a Deployment's env shows up as a readable line in ``kubectl logs``, not a traceback.
"""

from __future__ import annotations

import importlib
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentflow.graph import CompiledGraph, StateGraph
from agentflow.runtime.settings import Settings


class GraphLoadError(Exception):
    """The graph could not be found, imported or built."""


@dataclass(frozen=True, slots=True)
class GraphRef:
    """Where a graph lives: ``module:attr``, importable with ``search_path`` on sys.path."""

    module: str
    attr: str
    search_path: Path

    def __str__(self) -> str:
        return f"{self.module}:{self.attr}"


def find_graph_ref(settings: Settings) -> GraphRef:
    if settings.graph:
        return parse_ref(settings.graph, "AGENTFLOW_GRAPH", Path.cwd())
    path = settings.graph_path
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise GraphLoadError(
            f"no graph configured: set AGENTFLOW_GRAPH=module:attr or create {path} "
            '(or point GRAPH_PATH at one) with {"agent": "module:attr"}'
        ) from None
    except (OSError, ValueError) as error:
        raise GraphLoadError(f"cannot read {path}: {error}") from None
    if not isinstance(config, dict) or not isinstance(config.get("agent"), str):
        raise GraphLoadError(f'{path} must be a JSON object with "agent": "module:attr"')
    return parse_ref(config["agent"], f'{path}\'s "agent"', path.resolve().parent)


def parse_ref(text: str, source: str, search_path: Path) -> GraphRef:
    module, _, attr = text.strip().partition(":")
    if not module or not attr or not all(p.isidentifier() for p in [*module.split("."), attr]):
        raise GraphLoadError(f"{source} must look like 'package.module:attribute', not {text!r}")
    return GraphRef(module, attr, search_path)


def import_target(ref: GraphRef) -> Any:
    """Import the module and return the attribute (a compiled graph or a factory)."""
    if str(ref.search_path) not in sys.path:
        sys.path.insert(0, str(ref.search_path))
    try:
        module = importlib.import_module(ref.module)
    except Exception as error:  # noqa: BLE001 - the user's module may raise anything
        raise GraphLoadError(
            f"cannot import graph module '{ref.module}': {type(error).__name__}: {error}"
        ) from None
    try:
        target = getattr(module, ref.attr)
    except AttributeError:
        raise GraphLoadError(f"module '{ref.module}' has no attribute '{ref.attr}'") from None
    if isinstance(target, StateGraph):
        raise GraphLoadError(
            f"'{ref}' is a StateGraph that was never compiled: point at graph.compile() instead"
        )
    if not isinstance(target, CompiledGraph) and not callable(target):
        raise GraphLoadError(
            f"'{ref}' must be a compiled graph or a function returning one, "
            f"not {type(target).__name__}"
        )
    return target


async def build_graph(ref: GraphRef, target: Any) -> CompiledGraph:
    """Return the compiled graph, calling (and awaiting) a factory if that is what ``target`` is."""
    if isinstance(target, CompiledGraph):
        return target
    try:
        graph = target()
        if inspect.isawaitable(graph):
            graph = await graph
    except Exception as error:  # noqa: BLE001 - the user's factory may raise anything
        raise GraphLoadError(
            f"the graph factory '{ref}' failed: {type(error).__name__}: {error}"
        ) from None
    if not isinstance(graph, CompiledGraph):
        raise GraphLoadError(
            f"the graph factory '{ref}' returned {type(graph).__name__}, not a compiled graph"
        )
    return graph
