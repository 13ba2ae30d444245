"""The compiled graph and its run loop.

A run proceeds in steps, like Pregel: each step runs a set of nodes concurrently on the same
state, merges their updates through the schema's reducers in a fixed order, asks the edges which
nodes run next, and writes a checkpoint. The run ends when no node is left, or parks when a node
calls :func:`interrupt`.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
from collections.abc import AsyncGenerator, Iterator, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pydantic

from agentflow.checkpoint.base import Checkpoint, Checkpointer
from agentflow.graph.context import GraphInterrupt, NodeContext, Publish, current_node
from agentflow.graph.errors import (
    GraphError,
    GraphRecursionError,
    InterruptPendingError,
    InvalidUpdateError,
    NodeError,
    NothingToResumeError,
    RoutingError,
)
from agentflow.graph.messages import add_messages, is_removal, normalize_messages
from agentflow.graph.publisher import IteratorPublisher
from agentflow.graph.types import END, START, Interrupt, RunConfig, StreamChunk
from agentflow.ids import secret_id

if TYPE_CHECKING:
    from agentflow.graph.builder import Branch, Node, StateGraph

DEFAULT_RECURSION_LIMIT = 25


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Marks "no resume value given" (None is a legitimate resume value)."""


@dataclass(slots=True)
class RunResult:
    """The outcome of one run: the thread's values afterwards and what the run added."""

    thread_id: str
    run_id: str
    values: dict[str, Any]
    is_new_thread: bool
    new_messages: list[dict[str, Any]] = field(default_factory=list)
    interrupts: list[Interrupt] = field(default_factory=list)
    next: list[str] = field(default_factory=list)
    steps: int = 0

    @property
    def status(self) -> str:
        """``interrupted`` (waiting for a resume) or ``success``."""
        return "interrupted" if self.interrupts else "success"


@dataclass(slots=True)
class _Outcome:
    """What one node produced in a step: an update, or a question that parks the run."""

    update: dict[str, Any] | None = None
    interrupt: Interrupt | None = None


class CompiledGraph:
    """A validated graph, ready to run any number of times concurrently."""

    def __init__(
        self, builder: StateGraph, checkpointer: Checkpointer | None, executor: Executor | None
    ) -> None:
        self.schema = builder.schema
        self.nodes: dict[str, Node] = dict(builder.nodes)
        self.edges: dict[str, list[str]] = {k: list(v) for k, v in builder.edges.items()}
        self.branches: dict[str, Branch] = dict(builder.branches)
        self.checkpointer = checkpointer
        self.executor = executor
        self.normalizes_messages = self.schema.channels["messages"].reducer is add_messages

    # ------------------------------------------------------------------ public API

    async def start_run(
        self,
        input: Mapping[str, Any] | None = None,
        *,
        thread_id: str | None = None,
        run_id: str | None = None,
        resume: Any = MISSING,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        metadata: dict[str, Any] | None = None,
        thread_metadata: dict[str, Any] | None = None,
        publish: Publish | None = None,
        continue_run: bool = False,
    ) -> Run:
        """Load the thread, check ``resume`` against it and apply ``input``: everything that can
        go wrong because of the request happens here, before the first node runs. Then call
        :meth:`Run.execute`.

        ``input`` is applied through the reducers on new and existing threads alike. ``resume``
        answers the thread's pending interrupt. ``continue_run`` picks up run ``run_id`` where
        it stopped (its process died): from the thread's latest checkpoint if this run wrote
        it, running the nodes it names next, except those whose writes for that step were
        already kept (a run that had parked ends interrupted again); a run that kept no step
        starts afresh from ``input`` and ``resume``.
        ``publish`` receives every :class:`StreamChunk` as it happens, on the event loop's
        thread, and must not block.
        """
        run = Run(
            graph=self,
            thread_id=thread_id or secret_id(),
            run_id=run_id or secret_id(),
            recursion_limit=recursion_limit,
            metadata=metadata or {},
            thread_metadata=thread_metadata,
            publish=publish,
        )
        await run.prepare(input, resume, continue_run)
        return run

    async def arun(self, input: Mapping[str, Any] | None = None, **options: Any) -> RunResult:
        """:meth:`start_run` and execute it; returns the full :class:`RunResult`."""
        run = await self.start_run(input, **options)
        return await run.execute()

    async def update_state(
        self,
        thread_id: str,
        values: Mapping[str, Any],
        *,
        update_id: str,
        thread_metadata: dict[str, Any] | None = None,
    ) -> Checkpoint:
        """Set the given keys to the given values (no reducers) and keep everything else, a
        pending interrupt included, so a human can correct the state before resuming; stored
        as the thread's next checkpoint (the caller holds the thread)."""
        unknown = sorted(set(values) - set(self.schema.channels))
        if unknown:
            raise InvalidUpdateError(
                f"unknown state key(s) {', '.join(unknown)}; "
                f"the state keys are: {', '.join(self.schema.keys)}"
            )
        checked = self.normalize_update("the state update", values)
        self.schema.check_types(checked, "the state update")
        assert self.checkpointer is not None, "update_state needs a checkpointer"
        latest = await self.checkpointer.get(thread_id)
        if latest is None:
            base = self.schema.initial_values()
            checkpoint = Checkpoint(thread_id, update_id, 0, {**base, **checked})
        else:
            checkpoint = Checkpoint(
                thread_id=thread_id,
                run_id=update_id,
                step=latest.step + 1,
                values={**latest.values, **checked},
                next=latest.next,
                interrupts=latest.interrupts,
                resumes=latest.resumes,
                pending_writes=latest.pending_writes,
                parent_id=latest.checkpoint_id,
            )
        checkpoint.source = "update"
        await self.checkpointer.put(checkpoint, thread_metadata)
        return checkpoint

    def with_checkpointer(self, checkpointer: Checkpointer) -> CompiledGraph:
        """A copy of this graph that keeps its threads in ``checkpointer``."""
        graph = copy.copy(self)
        graph.checkpointer = checkpointer
        return graph

    async def ainvoke(
        self,
        input: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        resume: Any = MISSING,
    ) -> dict[str, Any]:
        """Run to the end (or to an interrupt) and return the state values.

        ``config`` may hold ``thread_id``, ``recursion_limit`` and ``metadata``. When the run
        parks, the values include ``"__interrupt__"``: the pending questions.
        """
        result = await self.arun(input, resume=resume, **_run_options(config))
        if result.interrupts:
            return {**result.values, "__interrupt__": [i.to_dict() for i in result.interrupts]}
        return result.values

    def invoke(
        self,
        input: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        resume: Any = MISSING,
    ) -> dict[str, Any]:
        """Blocking :meth:`ainvoke`, for scripts (not callable from a running event loop)."""
        return asyncio.run(self.ainvoke(input, config, resume=resume))

    async def astream(
        self,
        input: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        resume: Any = MISSING,
    ) -> AsyncGenerator[StreamChunk, None]:
        """Yield the run's :class:`StreamChunk` events as they happen.

        Errors of the run are raised after the events that preceded them. Closing the iterator
        early cancels the run; steps already checkpointed stay.
        """
        publisher = IteratorPublisher()
        run = await self.start_run(input, resume=resume, publish=publisher, **_run_options(config))
        task = asyncio.ensure_future(run.execute())
        task.add_done_callback(lambda _: publisher.close())
        try:
            async for chunk in publisher:
                yield chunk
            await task  # re-raises the run's error, if any
        finally:
            task.cancel()

    def stream(
        self,
        input: Mapping[str, Any] | None = None,
        config: Mapping[str, Any] | None = None,
        *,
        resume: Any = MISSING,
    ) -> Iterator[StreamChunk]:
        """Blocking :meth:`astream`, for scripts."""
        loop = asyncio.new_event_loop()
        chunks = self.astream(input, config, resume=resume)
        try:
            while True:
                try:
                    yield loop.run_until_complete(chunks.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            loop.run_until_complete(chunks.aclose())
            loop.close()

    def describe(self) -> dict[str, Any]:
        """Nodes and edges, for ``GET /v1/graph`` and for drawing the graph: agentflow's shape
        (``info``, nodes with ``name``, edges with ``id``) with ``conditional`` and
        ``state_keys`` beside."""
        pairs: list[tuple[str, str | None, bool]] = [
            (source, target, False) for source, targets in self.edges.items() for target in targets
        ]
        for branch in self.branches.values():
            targets = list(dict.fromkeys(branch.mapping.values())) if branch.mapping else [None]
            pairs += [(branch.source, target, True) for target in targets]
        edges = [
            {
                "id": f"{source}->{target or '*'}",
                "source": source,
                "target": target,
                "conditional": conditional,
            }
            for source, target, conditional in pairs
        ]
        nodes = [{"id": name, "name": name} for name in (START, *self.nodes, END)]
        checkpointer = self.checkpointer
        info = {
            "node_count": len(self.nodes),
            "edge_count": len(edges),
            "checkpointer": checkpointer is not None,
            "checkpointer_type": checkpointer.kind if checkpointer else None,
            "state_type": getattr(self.schema.state_type, "__name__", "dict"),
            "state_fields": self.schema.keys,
        }
        return {"info": info, "nodes": nodes, "edges": edges, "state_keys": self.schema.keys}

    # ------------------------------------------------------------------ used by Run

    async def successors(self, source: str, values: dict[str, Any]) -> list[str]:
        targets = list(self.edges.get(source, ()))
        branch = self.branches.get(source)
        if branch is not None:
            try:
                result = branch.router(self.schema.view(values))
                if branch.is_async:
                    result = await result
            except GraphError:
                raise
            except Exception as error:
                raise NodeError(source, error, in_router=True) from error
            for target in branch.targets(result):
                if target != END and target not in self.nodes:
                    raise RoutingError(
                        f"the router after '{source}' returned {target!r}, which is not a node"
                    )
                targets.append(target)
        return [t for t in targets if t != END]

    def normalize_update(self, writer: str, update: Any) -> dict[str, Any]:
        """Check an update is a dict and give its new messages ids, so that the ids the stream
        reports are the ids stored."""
        if update is None:
            return {}
        if not isinstance(update, Mapping):
            raise InvalidUpdateError(
                f"{writer} must be a dict of state updates (or None), not {type(update).__name__}"
            )
        checked: dict[str, Any] = dict(update)
        if self.normalizes_messages and "messages" in checked:
            try:
                checked["messages"] = normalize_messages(checked["messages"])
            except InvalidUpdateError as error:
                raise InvalidUpdateError(f"{writer}: {error}") from error
        return checked


def _run_options(config: Mapping[str, Any] | None) -> dict[str, Any]:
    config = dict(config or {})
    options = {
        "thread_id": config.pop("thread_id", None),
        "recursion_limit": config.pop("recursion_limit", DEFAULT_RECURSION_LIMIT),
        "metadata": config.pop("metadata", None),
    }
    if config:
        raise TypeError(f"unknown config keys: {', '.join(config)} (known: {', '.join(options)})")
    return options


class Run:
    """One execution of a graph on a thread: :meth:`CompiledGraph.start_run` prepares it, then
    :meth:`execute` runs its steps."""

    def __init__(
        self,
        graph: CompiledGraph,
        thread_id: str,
        run_id: str,
        recursion_limit: int,
        metadata: dict[str, Any],
        thread_metadata: dict[str, Any] | None,
        publish: Publish | None,
    ) -> None:
        self.graph = graph
        self.schema = graph.schema
        self.checkpointer = graph.checkpointer
        self.thread_id = thread_id
        self.run_id = run_id
        self.recursion_limit = recursion_limit
        self.metadata = metadata
        self.thread_metadata = thread_metadata
        self.publish = publish
        self.new_messages: list[dict[str, Any]] = []
        self.latest: Checkpoint | None = None
        self.values: dict[str, Any] = {}
        self.to_run: list[str] = []
        self.resumes: dict[str, list[Any]] = {}
        self.pending_writes: dict[str, dict[str, Any]] = {}
        self.parked: list[Interrupt] = []  # a continued run that had been interrupted
        self.parent_id: str | None = None

    async def prepare(
        self, input: Mapping[str, Any] | None, resume: Any, continue_run: bool = False
    ) -> None:
        latest = await self.checkpointer.get(self.thread_id) if self.checkpointer else None
        values = latest.values if latest else self.schema.initial_values()
        if continue_run and latest is not None and latest.run_id == self.run_id:
            await self._continue(latest, values)
            return
        if resume is not MISSING:
            if latest is None or not latest.interrupts:
                raise NothingToResumeError(
                    f"thread '{self.thread_id}' has no pending interrupt, "
                    "so there is nothing to resume"
                )
            self.resumes = _answer(latest, resume)
            self.pending_writes = latest.pending_writes
        elif latest is not None and latest.interrupts:
            raise InterruptPendingError(
                f"thread '{self.thread_id}' is waiting for an answer to "
                f"{len(latest.interrupts)} interrupt(s); send 'resume' to continue it"
            )
        if input:
            checked = self.graph.normalize_update("the run's input", input)
            self.schema.check_types(checked, "the run's input")
            values = self.schema.apply(values, checked, "the run's input")
            # The caller's messages are part of the run's messages, as agentflow answers them.
            self.new_messages = [m for m in checked.get("messages", ()) if not is_removal(m)]
        if latest is not None and self.resumes:
            self.to_run = list(latest.next)
        else:
            self.to_run = await self.graph.successors(START, values)
        self.latest, self.values = latest, values
        self.parent_id = latest.checkpoint_id if latest else None

    async def _continue(self, latest: Checkpoint, values: dict[str, Any]) -> None:
        """Pick up where the thread's latest checkpoint left off: its next nodes, minus those
        whose writes for the step were kept before the run stopped."""
        self.latest, self.values = latest, values
        self.parent_id = latest.checkpoint_id
        if latest.interrupts:  # the run had parked: it ends interrupted, as it did
            self.parked = [Interrupt(**item) for item in latest.interrupts]
            return
        self.to_run = list(latest.next)
        assert self.checkpointer is not None
        self.pending_writes = await self.checkpointer.pending_writes(
            self.thread_id, latest.step + 1
        )

    async def execute(self) -> RunResult:
        """Run steps until no node is left (or a node interrupts), checkpointing each step."""
        values, to_run = self.values, self.to_run
        resumes, pending_writes = self.resumes, self.pending_writes
        sequence = self.latest.step if self.latest else -1
        steps = 0
        # The caller's messages go out with the first step's events, once it is stored.
        opening = [
            ("message", {"message": m, "metadata": {"node": START}}) for m in self.new_messages
        ]
        while to_run:
            if steps >= self.recursion_limit:
                raise GraphRecursionError(
                    f"the run reached its recursion limit of {self.recursion_limit} steps "
                    f"without reaching END (next: {', '.join(to_run)}); raise recursion_limit "
                    "if the graph is meant to loop this long"
                )
            steps += 1
            sequence += 1
            outcomes = await self._run_step(to_run, values, sequence, resumes, pending_writes)
            interrupts = [o.interrupt for o in outcomes.values() if o.interrupt is not None]
            if interrupts:
                await self._park(sequence, values, to_run, outcomes, interrupts, resumes, opening)
                return self._result(values, interrupts, to_run, steps)
            values, events = self._merge(sequence, values, to_run, outcomes)
            events, opening = opening + events, []
            ran, to_run = to_run, await self._next_nodes(to_run, values)
            await self._save(
                Checkpoint(self.thread_id, self.run_id, sequence, values, next=to_run, nodes=ran)
            )
            # A step's events go out together once its checkpoint is stored: no client sees
            # updates that were not kept, and a broker writes them in one batch.
            for event, fields in events:
                self._emit(event, **fields)
            self._emit("state", state=values, metadata={"step": sequence, "nodes": ran})
            resumes, pending_writes = {}, {}
        if self.parked:
            assert self.latest is not None
            return self._result(values, self.parked, list(self.latest.next), 0)
        return self._result(values, [], [], steps)

    def _merge(
        self, step: int, values: dict[str, Any], ran: list[str], outcomes: dict[str, _Outcome]
    ) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Apply the step's updates in the order the nodes were scheduled; returns the values
        and the step's events to emit (updates, messages) as (event, fields)."""
        events: list[tuple[str, dict[str, Any]]] = []
        for node in ran:
            update = outcomes[node].update or {}
            values = self.schema.apply(values, update, f"node '{node}'")
            events.append(
                ("updates", {"data": {node: update}, "metadata": {"node": node, "step": step}})
            )
            if self.graph.normalizes_messages:
                for message in update.get("messages", ()):
                    if is_removal(message):
                        continue
                    self.new_messages.append(message)
                    events.append(("message", {"message": message, "metadata": {"node": node}}))
        return values, events

    async def _park(
        self,
        step: int,
        values: dict[str, Any],
        to_run: list[str],
        outcomes: dict[str, _Outcome],
        interrupts: list[Interrupt],
        resumes: dict[str, list[Any]],
        opening: list[tuple[str, dict[str, Any]]],
    ) -> None:
        """Checkpoint an interrupted step: the state before it, its questions, the answers
        given so far, and the updates of its nodes that did finish (not run again on resume)."""
        await self._save(
            Checkpoint(
                thread_id=self.thread_id,
                run_id=self.run_id,
                step=step,
                values=values,
                next=to_run,
                interrupts=[i.to_dict() for i in interrupts],
                resumes={i.node: resumes.get(i.node, []) for i in interrupts},
                pending_writes={n: o.update for n, o in outcomes.items() if o.update is not None},
                nodes=to_run,
            )
        )
        for event, fields in opening:
            self._emit(event, **fields)
        for item in interrupts:
            self._emit("interrupt", data=item.to_dict(), metadata={"node": item.node})

    async def _next_nodes(self, ran: list[str], values: dict[str, Any]) -> list[str]:
        following: dict[str, None] = {}
        for node in ran:
            following.update(dict.fromkeys(await self.graph.successors(node, values)))
        return list(following)

    async def _run_step(
        self,
        to_run: list[str],
        values: dict[str, Any],
        step: int,
        resumes: dict[str, list[Any]],
        pending_writes: dict[str, dict[str, Any]],
    ) -> dict[str, _Outcome]:
        outcomes = {n: _Outcome(update=pending_writes[n]) for n in to_run if n in pending_writes}
        fresh = [n for n in to_run if n not in outcomes]
        if len(fresh) == 1:  # the common case: no task to create
            outcomes[fresh[0]] = await self._run_node(fresh[0], values, step, resumes)
        elif fresh:
            tasks = {
                n: asyncio.ensure_future(self._run_and_keep(n, values, step, resumes))
                for n in fresh
            }
            try:
                await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
            finally:  # on a failure, or if this run is cancelled, stop the step's other nodes
                for task in tasks.values():
                    task.cancel()
                await asyncio.gather(*tasks.values(), return_exceptions=True)
            outcomes.update({n: t.result() for n, t in tasks.items()})  # raises the first failure
        return outcomes

    async def _run_and_keep(
        self, name: str, values: dict[str, Any], step: int, resumes: dict[str, list[Any]]
    ) -> _Outcome:
        """Run one of a step's several nodes and keep its update as a pending write: if the run
        stops before the step's checkpoint, continuing it runs only the others."""
        outcome = await self._run_node(name, values, step, resumes)
        if outcome.update is not None and self.checkpointer is not None:
            await self.checkpointer.put_writes(self.thread_id, step, name, outcome.update)
        return outcome

    async def _run_node(
        self, name: str, values: dict[str, Any], step: int, resumes: dict[str, list[Any]]
    ) -> _Outcome:
        node = self.graph.nodes[name]
        config = RunConfig(
            self.thread_id, self.run_id, name, step, self.recursion_limit, self.metadata
        )
        try:
            view = self.schema.view(values)
            args = (view, config) if node.wants_config else (view,)
            if node.is_async:
                context = NodeContext(config, self.publish, resumes.get(name, []))
                token = current_node.set(context)
                try:
                    update = await node.fn(*args)
                finally:
                    current_node.reset(token)
            else:
                loop = asyncio.get_running_loop()
                context = NodeContext(config, self._threadsafe_publish(loop), resumes.get(name, []))
                update = await loop.run_in_executor(
                    self.graph.executor,
                    contextvars.copy_context().run,
                    _call_in_context,
                    context,
                    node.fn,
                    args,
                )
            return _Outcome(
                update=self.graph.normalize_update(f"the result of node '{name}'", update)
            )
        except GraphInterrupt as signal:
            return _Outcome(interrupt=signal.interrupt)
        except GraphError:
            raise
        except pydantic.ValidationError as error:
            raise InvalidUpdateError(
                f"the state does not match {self.schema.state_type.__name__} before node "
                f"'{name}': {error}"
            ) from error
        except Exception as error:
            raise NodeError(name, error) from error

    def _threadsafe_publish(self, loop: asyncio.AbstractEventLoop) -> Publish | None:
        """A publish callable for a node on a pool thread: it hands chunks to the loop."""
        publish = self.publish
        if publish is None:
            return None

        def hand_over(chunk: StreamChunk) -> None:
            loop.call_soon_threadsafe(publish, chunk)

        return hand_over

    async def _save(self, checkpoint: Checkpoint) -> None:
        """Store a checkpoint, chained to the one before it."""
        checkpoint.parent_id = self.parent_id
        if self.checkpointer is not None:
            await self.checkpointer.put(checkpoint, self.thread_metadata)
        self.parent_id = checkpoint.checkpoint_id

    def _emit(self, event: Any, **fields: Any) -> None:
        if self.publish is not None:
            self.publish(StreamChunk(event, self.thread_id, self.run_id, **fields))

    def _result(
        self,
        values: dict[str, Any],
        interrupts: list[Interrupt],
        next_nodes: list[str],
        steps: int,
    ) -> RunResult:
        return RunResult(
            thread_id=self.thread_id,
            run_id=self.run_id,
            values=values,
            is_new_thread=self.latest is None,
            new_messages=self.new_messages,
            interrupts=interrupts,
            next=next_nodes,
            steps=steps,
        )


def _call_in_context(context: NodeContext, fn: Any, args: tuple[Any, ...]) -> Any:
    """Runs on a pool thread, inside a copy of the caller's context."""
    current_node.set(context)
    return fn(*args)


def _answer(latest: Checkpoint, resume: Any) -> dict[str, list[Any]]:
    """Append the resume value(s) to the answers each interrupted node has been given so far."""
    pending = latest.interrupts
    if len(pending) == 1:
        answers = {pending[0]["id"]: resume}
    elif isinstance(resume, dict) and all(i["id"] in resume for i in pending):
        answers = resume
    else:
        ids = ", ".join(i["id"] for i in pending)
        raise InvalidUpdateError(
            f"thread '{latest.thread_id}' has {len(pending)} pending interrupts; 'resume' must be "
            f"an object mapping each interrupt id ({ids}) to its answer"
        )
    return {i["node"]: [*latest.resumes.get(i["node"], []), answers[i["id"]]] for i in pending}
