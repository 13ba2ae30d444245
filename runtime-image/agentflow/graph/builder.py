"""``StateGraph``: declare nodes and edges, then ``compile()`` into a runnable graph."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agentflow.graph.errors import GraphDefinitionError, RoutingError
from agentflow.graph.state import StateSchema
from agentflow.graph.types import END, START

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from agentflow.checkpoint.base import Checkpointer
    from agentflow.graph.engine import CompiledGraph

_RESERVED = {START, END}


def _is_async(fn: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    )


def _wants_config(fn: Callable[..., Any]) -> bool:
    """A node takes ``(state)`` or ``(state, config)``."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: call them with state only
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in parameters)


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    fn: Callable[..., Any]
    is_async: bool
    wants_config: bool


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: ``router(state)`` names the next node(s), through ``mapping`` if any."""

    source: str
    router: Callable[[Any], Any]
    mapping: Mapping[Hashable, str] | None
    is_async: bool

    def targets(self, result: Any) -> list[str]:
        results = result if isinstance(result, list | tuple) else [result]
        if self.mapping is None:
            return [str(r) for r in results]
        targets = []
        for r in results:
            if r not in self.mapping:
                raise RoutingError(
                    f"the router after '{self.source}' returned {r!r}, which is not one of its "
                    f"mapping's keys ({', '.join(map(repr, self.mapping))})"
                )
            targets.append(self.mapping[r])
        return targets


class StateGraph:
    """A graph whose nodes read a shared state and return partial updates to it."""

    def __init__(self, state_type: type) -> None:
        self.schema = StateSchema(state_type)
        self.nodes: dict[str, Node] = {}
        self.edges: dict[str, list[str]] = {}
        self.branches: dict[str, Branch] = {}

    def add_node(
        self, name: str | Callable[..., Any], fn: Callable[..., Any] | None = None
    ) -> StateGraph:
        """Add ``fn`` as node ``name`` (or ``add_node(fn)`` to use the function's name)."""
        if fn is None:
            if not callable(name):
                raise GraphDefinitionError(f"node '{name}' needs a function")
            fn, name = name, name.__name__
        if not isinstance(name, str) or not name:
            raise GraphDefinitionError(f"a node name must be a non-empty string, not {name!r}")
        if name in _RESERVED:
            raise GraphDefinitionError(f"'{name}' is reserved and cannot be a node name")
        if name in self.nodes:
            raise GraphDefinitionError(f"a node named '{name}' already exists")
        if not callable(fn):
            raise GraphDefinitionError(f"node '{name}' must be a function, not {type(fn).__name__}")
        self.nodes[name] = Node(name, fn, _is_async(fn), _wants_config(fn))
        return self

    def add_edge(self, source: str, target: str) -> StateGraph:
        """After ``source`` runs, run ``target`` in the next step."""
        if source == END:
            raise GraphDefinitionError("END has no outgoing edges")
        if target == START:
            raise GraphDefinitionError("START cannot be the target of an edge")
        self.edges.setdefault(source, []).append(target)
        return self

    def add_conditional_edges(
        self,
        source: str,
        router: Callable[[Any], Any],
        mapping: Mapping[Hashable, str] | Sequence[str] | None = None,
    ) -> StateGraph:
        """After ``source`` runs, ``router(state)`` picks the next node(s): a node name, END, or
        a list of them; with ``mapping``, a key of it. A list mapping means ``{name: name}``."""
        if source in self.branches:
            raise GraphDefinitionError(f"node '{source}' already has conditional edges")
        if mapping is not None and not isinstance(mapping, Mapping):
            mapping = {name: name for name in mapping}
        self.branches[source] = Branch(source, router, mapping, _is_async(router))
        return self

    def compile(
        self, checkpointer: Checkpointer | None = None, executor: Executor | None = None
    ) -> CompiledGraph:
        """Check the graph and return it ready to run.

        ``checkpointer`` keeps threads' states between runs (without one, each run starts
        afresh). ``executor`` runs sync nodes; the default is the event loop's own pool.
        """
        from agentflow.graph.engine import CompiledGraph

        self._validate()
        return CompiledGraph(self, checkpointer, executor)

    def _validate(self) -> None:
        known = set(self.nodes) | _RESERVED
        for source, targets in self.edges.items():
            for name in [source, *targets]:
                if name not in known:
                    raise GraphDefinitionError(
                        f"the edge {source} -> {', '.join(targets)} names an unknown node '{name}'"
                    )
        for branch in self.branches.values():
            if branch.source not in known:
                raise GraphDefinitionError(
                    f"conditional edges start at unknown node '{branch.source}'"
                )
            for target in (branch.mapping or {}).values():
                if target not in known:
                    raise GraphDefinitionError(
                        f"the conditional edges of '{branch.source}' map to unknown node '{target}'"
                    )
        if START not in self.edges and START not in self.branches:
            raise GraphDefinitionError("the graph has no entry point: add an edge from START")
