"""The engine's behaviour, run for real (no mocks): steps, routing, loops, interrupts,
checkpoints, streaming and errors."""

import asyncio
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pydantic
import pytest

from agentflow.checkpoint import InMemoryCheckpointer, StateNotSerializableError
from agentflow.graph import (
    END,
    START,
    GraphDefinitionError,
    GraphRecursionError,
    InterruptPendingError,
    InvalidUpdateError,
    MessagesState,
    NodeError,
    NothingToResumeError,
    RoutingError,
    RunConfig,
    StateGraph,
    emit,
    interrupt,
    message_text,
)


class State(TypedDict, total=False):
    messages: list
    trail: Annotated[list[str], operator.add]
    count: int
    route: str


def mark(name: str):
    def node(state: State) -> dict[str, Any]:
        return {"trail": [name]}

    node.__name__ = name
    return node


def linear(*names: str, checkpointer=None):
    builder = StateGraph(State)
    for name in names:
        builder.add_node(name, mark(name))
    for source, target in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(source, target)
    return builder.compile(checkpointer=checkpointer)


async def test_nodes_run_in_order_and_updates_merge():
    result = await linear("a", "b", "c").ainvoke({"trail": ["start"]})
    assert result["trail"] == ["start", "a", "b", "c"]


def test_sync_invoke_works_from_a_script():
    assert linear("a").invoke({})["trail"] == ["a"]


async def test_conditional_edges_with_mapping_list_and_end():
    builder = StateGraph(State)
    builder.add_node("left", mark("left")).add_node("right", mark("right"))
    builder.add_conditional_edges(
        START, lambda s: s["route"], {"l": "left", "r": "right", "stop": END}
    )
    builder.add_edge("left", END).add_edge("right", END)
    graph = builder.compile()
    assert (await graph.ainvoke({"route": "l"}))["trail"] == ["left"]
    assert (await graph.ainvoke({"route": "r"}))["trail"] == ["right"]
    assert "trail" not in await graph.ainvoke({"route": "stop"})


async def test_a_router_may_fan_out_and_the_step_merges_in_declared_order():
    builder = StateGraph(State)
    started: list[str] = []

    async def slow(state: State) -> dict[str, Any]:
        started.append("slow")
        await asyncio.sleep(0.05)
        return {"trail": ["slow"]}

    async def fast(state: State) -> dict[str, Any]:
        started.append("fast")
        return {"trail": ["fast"]}

    builder.add_node("slow", slow).add_node("fast", fast).add_node("join", mark("join"))
    builder.add_conditional_edges(START, lambda s: ["slow", "fast"])
    builder.add_edge("slow", "join").add_edge("fast", "join").add_edge("join", END)
    result = await builder.compile().ainvoke({})
    # Both ran in the same step (concurrently), merged in declared order, join ran once.
    assert sorted(started) == ["fast", "slow"]
    assert result["trail"] == ["slow", "fast", "join"]


async def test_routers_may_be_async():
    builder = StateGraph(State).add_node("a", mark("a"))

    async def route(state: State) -> str:
        return "a"

    builder.add_conditional_edges(START, route)
    builder.add_edge("a", END)
    assert (await builder.compile().ainvoke({}))["trail"] == ["a"]


async def test_loops_run_until_the_router_ends_them():
    builder = StateGraph(State)
    builder.add_node("tick", lambda s: {"count": s.get("count", 0) + 1})
    builder.add_edge(START, "tick")
    builder.add_conditional_edges("tick", lambda s: "tick" if s["count"] < 5 else END)
    assert (await builder.compile().ainvoke({}))["count"] == 5


async def test_an_endless_loop_stops_at_the_recursion_limit_with_a_clear_error():
    builder = StateGraph(State)
    builder.add_node("spin", lambda s: {"count": s.get("count", 0) + 1})
    builder.add_edge(START, "spin").add_edge("spin", "spin")
    graph = builder.compile(checkpointer=InMemoryCheckpointer())
    with pytest.raises(GraphRecursionError, match="recursion limit of 7 steps"):
        await graph.ainvoke({}, {"thread_id": "t", "recursion_limit": 7})
    state = await graph.checkpointer.get("t")
    assert state is not None
    assert state.values["count"] == 7


async def test_the_default_recursion_limit_is_25():
    builder = StateGraph(State)
    builder.add_node("spin", lambda s: {"count": s.get("count", 0) + 1})
    builder.add_edge(START, "spin").add_edge("spin", "spin")
    with pytest.raises(GraphRecursionError, match="limit of 25 steps"):
        await builder.compile().ainvoke({})


async def test_sync_nodes_run_off_the_event_loop_thread_and_async_nodes_on_it():
    threads: dict[str, int] = {}
    builder = StateGraph(State)

    def blocking(state: State) -> None:
        threads["sync"] = threading.get_ident()
        time.sleep(0.01)

    async def cooperative(state: State) -> None:
        threads["async"] = threading.get_ident()

    builder.add_node("blocking", blocking).add_node("cooperative", cooperative)
    builder.add_edge(START, "blocking").add_edge("blocking", "cooperative")
    await builder.compile().ainvoke({})
    assert threads["async"] == threading.get_ident()
    assert threads["sync"] != threading.get_ident()


async def test_a_node_may_ask_for_its_run_config():
    seen: list[RunConfig] = []

    def node(state: State, config: RunConfig) -> None:
        seen.append(config)

    builder = StateGraph(State).add_node("node", node)
    builder.add_edge(START, "node")
    await builder.compile().ainvoke({}, {"thread_id": "t9", "metadata": {"user": "u"}})
    assert seen[0].thread_id == "t9"
    assert seen[0].node == "node"
    assert seen[0].metadata == {"user": "u"}


async def test_input_goes_through_reducers_on_new_and_existing_threads():
    graph = linear("a", checkpointer=InMemoryCheckpointer())
    first = await graph.ainvoke({"messages": ["hi"], "trail": ["in1"]}, {"thread_id": "t"})
    second = await graph.ainvoke({"messages": ["again"], "trail": ["in2"]}, {"thread_id": "t"})
    assert first["trail"] == ["in1", "a"]
    assert second["trail"] == ["in1", "a", "in2", "a"]
    assert [message_text(m) for m in second["messages"]] == ["hi", "again"]


async def test_a_checkpoint_is_written_after_every_step():
    store = InMemoryCheckpointer()
    await linear("a", "b", "c", checkpointer=store).ainvoke({}, {"thread_id": "t"})
    history = await store.history("t")
    assert [c.nodes for c in history] == [["c"], ["b"], ["a"]]
    assert [c.next for c in history] == [[], ["c"], ["b"]]
    assert history[0].parent_id == history[1].checkpoint_id
    assert history[2].values["trail"] == ["a"]


async def test_without_a_checkpointer_every_run_starts_afresh():
    graph = linear("a")
    await graph.ainvoke({}, {"thread_id": "t"})
    assert (await graph.ainvoke({}, {"thread_id": "t"}))["trail"] == ["a"]


async def test_a_failing_node_keeps_the_last_good_checkpoint():
    store = InMemoryCheckpointer()
    builder = StateGraph(State)
    builder.add_node("ok", mark("ok"))

    def broken(state: State) -> None:
        raise ValueError("the tool is down")

    builder.add_node("broken", broken)
    builder.add_edge(START, "ok").add_edge("ok", "broken")
    with pytest.raises(NodeError, match="node 'broken' failed: ValueError: the tool is down"):
        await builder.compile(checkpointer=store).ainvoke({}, {"thread_id": "t"})
    latest = await store.get("t")
    assert latest is not None
    assert latest.values["trail"] == ["ok"]
    assert latest.next == ["broken"]


async def test_a_run_continued_after_a_crash_re_runs_only_the_unfinished_nodes():
    store = InMemoryCheckpointer()
    calls: list[str] = []
    crash = True

    async def search(state: State) -> dict[str, Any]:
        calls.append("search")
        return {"trail": ["search"]}

    async def flaky(state: State) -> dict[str, Any]:
        calls.append("flaky")
        # Crash only once search's write is kept (a barrier on the store, not a sleep).
        for _ in range(500):
            if crash and await store.pending_writes("t", 1):
                raise RuntimeError("the worker died")
            if not crash:
                return {"trail": ["flaky"]}
            await asyncio.sleep(0.01)
        raise AssertionError("search's write was never kept")

    builder = StateGraph(State)
    builder.add_node("plan", mark("plan")).add_node("search", search)
    builder.add_node("flaky", flaky).add_node("join", mark("join"))
    builder.add_edge(START, "plan").add_conditional_edges("plan", lambda s: ["search", "flaky"])
    builder.add_edge("search", "join").add_edge("flaky", "join").add_edge("join", END)
    graph = builder.compile(checkpointer=store)
    with pytest.raises(NodeError, match="the worker died"):
        await graph.ainvoke({}, {"thread_id": "t"})
    assert await store.pending_writes("t", 1) == {"search": {"trail": ["search"]}}

    crash, calls = False, []
    crashed = await store.get("t")
    assert crashed is not None
    result = await graph.arun(None, thread_id="t", run_id=crashed.run_id, continue_run=True)
    assert calls == ["flaky"]  # search's kept write stands in for running it again
    assert result.values["trail"] == ["plan", "search", "flaky", "join"]
    assert result.status == "success"
    assert await store.pending_writes("t", 1) == {}


async def test_continuing_a_thread_with_nothing_left_to_run_changes_nothing():
    store = InMemoryCheckpointer()
    graph = linear("a", checkpointer=store)
    await graph.ainvoke({}, {"thread_id": "t"})
    ended = await store.get("t")
    assert ended is not None
    result = await graph.arun(None, thread_id="t", run_id=ended.run_id, continue_run=True)
    assert result.values["trail"] == ["a"]
    assert [c.step for c in await store.history("t")] == [0]  # no step, no checkpoint


async def test_continuing_a_run_that_kept_no_step_starts_it_from_its_input():
    store = InMemoryCheckpointer()
    graph = linear("a", checkpointer=store)
    await graph.ainvoke({"trail": ["earlier"]}, {"thread_id": "t"})  # another run's checkpoint
    result = await graph.arun(
        {"trail": ["input"]}, thread_id="t", run_id="never-kept", continue_run=True
    )
    assert result.values["trail"] == ["earlier", "a", "input", "a"]
    assert result.steps == 1


async def test_continuing_a_run_that_had_parked_ends_it_interrupted_again():
    store = InMemoryCheckpointer()
    builder = StateGraph(State)
    builder.add_node("ask", lambda state: {"trail": [interrupt("go on?")]})
    builder.add_edge(START, "ask").add_edge("ask", END)
    graph = builder.compile(checkpointer=store)
    parked = await graph.arun({}, thread_id="t", run_id="r1")
    again = await graph.arun(None, thread_id="t", run_id="r1", continue_run=True)
    assert again.status == "interrupted"
    assert again.interrupts == parked.interrupts
    assert again.next == ["ask"]
    assert len(await store.history("t")) == 1  # nothing ran, nothing was kept


async def test_a_failing_router_is_named():
    builder = StateGraph(State).add_node("a", mark("a"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: s["missing"])
    with pytest.raises(NodeError, match="the router after node 'a' failed: KeyError"):
        await builder.compile().ainvoke({})


@pytest.mark.parametrize(
    ("route", "mapping", "problem"),
    [
        ("nowhere", None, "returned 'nowhere', which is not a node"),
        ("x", {"y": "a"}, "returned 'x', which is not one of its mapping's keys"),
    ],
)
async def test_a_router_naming_nothing_is_an_error(route, mapping, problem):
    builder = StateGraph(State).add_node("a", mark("a"))
    builder.add_conditional_edges(START, lambda s: route, mapping)
    with pytest.raises(RoutingError, match=problem):
        await builder.compile().ainvoke({})


@pytest.mark.parametrize(
    ("update", "problem"),
    [
        ({"nope": 1}, "node 'bad' wrote unknown state key 'nope'"),
        (["a list"], "the result of node 'bad' must be a dict of state updates"),
        ({"messages": [{"content": "x"}]}, r"the result of node 'bad': messages\[0\].role"),
    ],
)
async def test_bad_node_results_are_refused_naming_the_node(update, problem):
    builder = StateGraph(State).add_node("bad", lambda s: update)
    builder.add_edge(START, "bad")
    with pytest.raises(InvalidUpdateError, match=problem):
        await builder.compile().ainvoke({})


async def test_state_that_cannot_be_stored_fails_the_step_and_keeps_the_thread():
    builder = StateGraph(State).add_node("bad", lambda s: {"count": object()})
    builder.add_edge(START, "bad")
    graph = builder.compile(checkpointer=InMemoryCheckpointer())
    with pytest.raises(StateNotSerializableError):
        await graph.ainvoke({}, {"thread_id": "t"})
    assert await graph.checkpointer.get("t") is None


class Approval(TypedDict, total=False):
    messages: list
    answers: Annotated[list, operator.add]
    prepared: Annotated[int, operator.add]


def approval_graph(calls: list[str]):
    builder = StateGraph(Approval)

    def prepare(state: Approval) -> dict[str, Any]:
        calls.append("prepare")
        return {"prepared": 1}

    def ask(state: Approval) -> dict[str, Any]:
        calls.append("ask")
        first = interrupt({"question": "approve?"})
        second = interrupt({"question": "really?"})
        return {"answers": [first, second]}

    builder.add_node("prepare", prepare).add_node("ask", ask)
    builder.add_edge(START, "prepare").add_edge("prepare", "ask").add_edge("ask", END)
    return builder.compile(checkpointer=InMemoryCheckpointer())


async def test_interrupt_parks_the_thread_and_resume_continues_from_that_node():
    calls: list[str] = []
    graph = approval_graph(calls)
    result = await graph.arun({}, thread_id="t")
    assert [i.value for i in result.interrupts] == [{"question": "approve?"}]
    assert result.next == ["ask"]

    result = await graph.arun(None, thread_id="t", resume="yes")
    assert [i.value for i in result.interrupts] == [{"question": "really?"}]

    result = await graph.arun(None, thread_id="t", resume="sure")
    assert result.interrupts == []
    assert result.values["answers"] == ["yes", "sure"]
    assert result.values["prepared"] == 1  # the step before the interrupt did not run again
    assert calls == ["prepare", "ask", "ask", "ask"]


async def test_ainvoke_reports_pending_interrupts():
    graph = approval_graph([])
    values = await graph.ainvoke({}, {"thread_id": "t"})
    assert values["__interrupt__"][0]["value"] == {"question": "approve?"}
    assert values["__interrupt__"][0]["node"] == "ask"


async def test_a_parked_thread_refuses_new_input_and_resume_needs_an_interrupt():
    graph = approval_graph([])
    with pytest.raises(NothingToResumeError, match="thread 't' has no pending interrupt"):
        await graph.arun(None, thread_id="t", resume="yes")
    await graph.arun({}, thread_id="t")
    with pytest.raises(InterruptPendingError, match="send 'resume' to continue it"):
        await graph.arun({"messages": ["hello?"]}, thread_id="t")


async def test_in_a_step_only_the_interrupted_node_runs_again_on_resume():
    calls: list[str] = []
    builder = StateGraph(Approval)

    def worker(state: Approval) -> dict[str, Any]:
        calls.append("worker")
        return {"prepared": 1}

    def asker(state: Approval) -> dict[str, Any]:
        calls.append("asker")
        return {"answers": [interrupt("ok?")]}

    builder.add_node("worker", worker).add_node("asker", asker)
    builder.add_conditional_edges(START, lambda s: ["worker", "asker"])
    graph = builder.compile(checkpointer=InMemoryCheckpointer())
    await graph.arun({}, thread_id="t")
    result = await graph.arun(None, thread_id="t", resume="fine")
    assert result.values["prepared"] == 1
    assert result.values["answers"] == ["fine"]
    assert calls == ["worker", "asker", "asker"]


async def test_several_pending_interrupts_are_answered_by_id():
    builder = StateGraph(Approval)
    builder.add_node("one", lambda s: {"answers": [interrupt("one?")]})
    builder.add_node("two", lambda s: {"answers": [interrupt("two?")]})
    builder.add_conditional_edges(START, lambda s: ["one", "two"])
    graph = builder.compile(checkpointer=InMemoryCheckpointer())
    parked = await graph.arun({}, thread_id="t")
    assert len(parked.interrupts) == 2
    with pytest.raises(InvalidUpdateError, match="has 2 pending interrupts"):
        await graph.arun(None, thread_id="t", resume="both")
    answers = {i.id: f"answer to {i.value}" for i in parked.interrupts}
    result = await graph.arun(None, thread_id="t", resume=answers)
    assert result.values["answers"] == ["answer to one?", "answer to two?"]


async def test_streams_carry_updates_messages_custom_events_and_state():
    builder = StateGraph(MessagesState)

    def tool(state: MessagesState) -> dict[str, Any]:
        emit({"progress": 0.5})  # from a pool thread
        return {"messages": [{"role": "tool", "content": "42"}]}

    async def talk(state: MessagesState) -> dict[str, Any]:
        for token in ("the ", "answer"):
            emit({"token": token})
        return {"messages": [{"role": "assistant", "content": "the answer"}]}

    builder.add_node("tool", tool).add_node("talk", talk)
    builder.add_edge(START, "tool").add_edge("tool", "talk")
    chunks = [c async for c in builder.compile().astream({"messages": ["q"]}, {"thread_id": "t"})]
    assert [(c.event, c.metadata.get("node")) for c in chunks] == [
        ("custom", "tool"),
        ("message", START),  # the caller's message, with the first step's events
        ("updates", "tool"),
        ("message", "tool"),
        ("state", None),
        ("custom", "talk"),
        ("custom", "talk"),
        ("updates", "talk"),
        ("message", "talk"),
        ("state", None),
    ]
    assert [c.data for c in chunks if c.event == "custom"][1:] == [
        {"token": "the "},
        {"token": "answer"},
    ]
    assert chunks[-1].state is not None
    assert len(chunks[-1].state["messages"]) == 3
    assert {c.thread_id for c in chunks} == {"t"}
    timestamps = [c.timestamp for c in chunks]
    assert timestamps == sorted(timestamps)
    assert len(set(timestamps)) > 1


def test_sync_stream_works_from_a_script():
    assert [c.event for c in linear("a").stream({})] == ["updates", "state"]


async def test_closing_a_stream_early_cancels_the_run():
    finished = asyncio.Event()
    builder = StateGraph(State)

    async def long(state: State) -> None:
        emit("started")
        await asyncio.sleep(5)
        finished.set()

    builder.add_node("long", long).add_edge(START, "long")
    stream = builder.compile().astream({})
    assert (await anext(stream)).data == "started"
    await stream.aclose()
    await asyncio.sleep(0.05)
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert pending == []
    assert not finished.is_set()


async def test_a_stream_raises_the_run_error_after_its_events():
    builder = StateGraph(State)
    builder.add_node("a", mark("a")).add_node("b", lambda s: 1 / 0)
    builder.add_edge(START, "a").add_edge("a", "b")
    seen = []

    async def read() -> None:
        async for chunk in builder.compile().astream({}):
            seen.append(chunk.event)

    with pytest.raises(NodeError, match="ZeroDivisionError"):
        await read()
    assert seen == ["updates", "state"]


class Pydantic(pydantic.BaseModel):
    topic: str = "none"
    hits: Annotated[int, operator.add] = 0


async def test_pydantic_state_nodes_receive_a_model():
    builder = StateGraph(Pydantic)

    def node(state: Pydantic) -> dict[str, Any]:
        assert isinstance(state, Pydantic)
        return {"hits": 1, "topic": state.topic.upper()}

    builder.add_node("node", node).add_edge(START, "node")
    result = await builder.compile().ainvoke({"topic": "tea"})
    assert result["topic"] == "TEA"
    assert result["hits"] == 1


async def test_state_that_breaks_the_pydantic_model_is_reported():
    builder = StateGraph(Pydantic).add_node("writer", lambda s: {"topic": 5})
    builder.add_node("node", lambda s: None)
    builder.add_edge(START, "writer").add_edge("writer", "node")
    with pytest.raises(InvalidUpdateError, match="does not match Pydantic before node 'node'"):
        await builder.compile().ainvoke({"topic": "tea"})


async def test_input_of_the_wrong_type_is_refused_before_any_node_runs():
    builder = StateGraph(Pydantic).add_node("node", lambda s: None)
    builder.add_edge(START, "node")
    with pytest.raises(InvalidUpdateError, match="the run's input sets 'topic' to 5"):
        await builder.compile().ainvoke({"topic": 5})


def test_graph_definition_errors_are_caught_at_compile_time():
    with pytest.raises(GraphDefinitionError, match="no entry point"):
        StateGraph(State).add_node("a", mark("a")).compile()
    with pytest.raises(GraphDefinitionError, match="unknown node 'ghost'"):
        StateGraph(State).add_edge(START, "ghost").compile()
    with pytest.raises(GraphDefinitionError, match="already exists"):
        StateGraph(State).add_node("a", mark("a")).add_node("a", mark("a"))
    with pytest.raises(GraphDefinitionError, match="reserved"):
        StateGraph(State).add_node(END, mark("x"))
    with pytest.raises(GraphDefinitionError, match="map to unknown node 'ghost'"):
        StateGraph(State).add_conditional_edges(START, lambda s: "x", {"x": "ghost"}).compile()


def test_emit_and_interrupt_outside_a_node_say_so():
    with pytest.raises(RuntimeError, match=r"emit\(\) can only be called from a node"):
        emit("x")
    with pytest.raises(RuntimeError, match=r"interrupt\(\) can only be called from a node"):
        interrupt("x")


def test_describe_lists_nodes_and_edges():
    builder = StateGraph(State).add_node("a", mark("a")).add_node("b", mark("b"))
    builder.add_edge(START, "a").add_conditional_edges("a", lambda s: "b", {"go": "b", "stop": END})
    description = builder.compile().describe()
    assert [n["id"] for n in description["nodes"]] == [START, "a", "b", END]
    assert {"id": f"a->{END}", "source": "a", "target": END, "conditional": True} in description[
        "edges"
    ]


async def test_a_step_whose_checkpoint_fails_emits_none_of_its_updates():
    class FailingSecondWrite(InMemoryCheckpointer):
        async def put(self, checkpoint, thread_metadata=None):
            if checkpoint.step == 1:
                raise RuntimeError("the store went away")
            await super().put(checkpoint, thread_metadata)

    seen = []

    async def read() -> None:
        async for chunk in linear("a", "b", checkpointer=FailingSecondWrite()).astream({}):
            seen.append((chunk.event, (chunk.metadata or {}).get("node")))

    with pytest.raises(RuntimeError, match="went away"):
        await read()
    assert seen == [("updates", "a"), ("state", None)]  # nothing of b's step, which was not kept
