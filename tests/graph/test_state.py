import operator
from typing import Annotated, TypedDict

import pydantic
import pytest

from agentflow.graph import InvalidUpdateError, add_messages
from agentflow.graph.state import StateSchema


def append_one(left: list[str], item: str) -> list[str]:
    return [*left, item]


class Counter(TypedDict):
    total: Annotated[int, operator.add]
    log: Annotated[list[str], operator.add]
    name: str
    tags: Annotated[list[str], append_one]


def test_keys_without_reducer_are_overwritten_and_reducers_merge():
    schema = StateSchema(Counter)
    values = schema.apply({}, {"total": 2, "log": ["a"], "name": "x"}, "test")
    values = schema.apply(values, {"total": 3, "log": ["b"], "name": "y"}, "test")
    assert values == {"total": 5, "log": ["a", "b"], "name": "y"}


def test_a_reducer_on_an_unwritten_list_starts_from_empty():
    schema = StateSchema(Counter)
    assert schema.apply({}, {"tags": "a"}, "test")["tags"] == ["a"]


def test_a_failing_reducer_is_reported_with_its_key():
    schema = StateSchema(Counter)
    with pytest.raises(
        InvalidUpdateError, match="node 'x' wrote 'log', whose reducer failed: TypeError"
    ):
        schema.apply({"log": []}, {"log": 5}, "node 'x'")


def test_messages_always_exist_and_merge():
    schema = StateSchema(Counter)
    assert schema.channels["messages"].reducer is add_messages
    assert schema.initial_values() == {"messages": []}


def test_apply_does_not_modify_its_input():
    schema = StateSchema(Counter)
    before = {"total": 1, "messages": []}
    schema.apply(before, {"total": 1}, "test")
    assert before == {"total": 1, "messages": []}


def test_unknown_keys_are_refused_naming_the_writer_and_the_known_keys():
    schema = StateSchema(Counter)
    with pytest.raises(
        InvalidUpdateError,
        match="node 'x' wrote unknown state key 'bogus'; "
        "the state keys are: total, log, name, tags, messages",
    ):
        schema.apply({}, {"bogus": 1}, "node 'x'")


class Model(pydantic.BaseModel):
    topic: str = "coffee"
    hits: Annotated[int, operator.add] = 0


def test_pydantic_state_has_defaults_and_reducers_and_views_as_a_model():
    schema = StateSchema(Model)
    values = schema.initial_values()
    assert values == {"messages": [], "topic": "coffee", "hits": 0}
    values = schema.apply(values, {"hits": 2}, "test")
    view = schema.view(values)
    assert isinstance(view, Model)
    assert view.hits == 2
