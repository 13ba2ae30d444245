"""The state schema: which keys a graph's state has and how updates to each key are merged.

A state type is a ``TypedDict`` or a pydantic model. ``Annotated[T, reducer]`` on a key makes
updates merge as ``reducer(current, update)``; a key without a reducer is overwritten. The
``messages`` key always exists and merges with :func:`add_messages` unless annotated otherwise,
so every graph accepts the ``messages`` of an HTTP request.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic

from agentflow.graph.errors import InvalidUpdateError
from agentflow.graph.messages import add_messages

Reducer = Callable[[Any, Any], Any]

# Empty values a reducer starts from when a key has never been written.
_EMPTY_OF_TYPE: dict[type, Callable[[], Any]] = {list: list, dict: dict, set: set}


@dataclass(frozen=True, slots=True)
class Channel:
    reducer: Reducer | None
    empty: Callable[[], Any] | None


class StateSchema:
    """Introspects a state type once, at compile time, so each step only does dict lookups."""

    def __init__(self, state_type: type) -> None:
        self.state_type = state_type
        self.model: type[pydantic.BaseModel] | None = (
            state_type
            if isinstance(state_type, type) and issubclass(state_type, pydantic.BaseModel)
            else None
        )
        self.channels = self._read_channels(state_type)

    @staticmethod
    def _read_channels(state_type: type) -> dict[str, Channel]:
        try:
            hints = typing.get_type_hints(state_type, include_extras=True)
        except Exception as error:  # a forward reference that does not resolve, for one
            raise InvalidUpdateError(
                f"cannot read the annotations of state type {state_type.__name__}: {error}"
            ) from error
        channels: dict[str, Channel] = {}
        for key, hint in hints.items():
            if key.startswith("_") or typing.get_origin(hint) is typing.ClassVar:
                continue
            reducer: Reducer | None = None
            base = hint
            if typing.get_origin(hint) is typing.Annotated:
                base = hint.__origin__
                reducer = next((m for m in hint.__metadata__ if callable(m)), None)
            empty = _EMPTY_OF_TYPE.get(typing.get_origin(base) or base)
            channels[key] = Channel(reducer, empty)
        messages = channels.get("messages")
        if messages is None or messages.reducer is None:
            channels["messages"] = Channel(add_messages, list)
        return channels

    @property
    def keys(self) -> list[str]:
        return list(self.channels)

    @functools.cached_property
    def json_schema(self) -> dict[str, Any]:
        """The state as JSON Schema (agentflow's ``GET /v1/graph:StateSchema``): a pydantic
        model's own, or one built key by key (a key whose type has none accepts any value)."""
        if self.model is not None:
            return self.model.model_json_schema()
        hints = typing.get_type_hints(self.state_type)  # without the reducers
        properties = {key: _value_schema(hints.get(key, Any)) for key in self.keys}
        required = sorted(getattr(self.state_type, "__required_keys__", ()))
        schema: dict[str, Any] = {
            "title": self.state_type.__name__,
            "type": "object",
            "properties": properties,
        }
        if required:
            schema["required"] = required
        return schema

    @functools.cached_property
    def _checkers(self) -> dict[str, pydantic.TypeAdapter[Any]]:
        """A validator of each key's declared type (messages and untyped keys have none)."""
        if self.model is not None:
            hints = {name: field.annotation for name, field in self.model.model_fields.items()}
        else:
            hints = typing.get_type_hints(self.state_type)
        checkers: dict[str, pydantic.TypeAdapter[Any]] = {}
        for key, hint in hints.items():
            if key == "messages" or hint in (Any, object, None):
                continue
            try:
                checkers[key] = pydantic.TypeAdapter(hint)
            except pydantic.PydanticUserError:  # a type pydantic cannot check: trusted
                continue
        return checkers

    def check_types(self, update: Mapping[str, Any], writer: str) -> None:
        """Refuse a value of another type than its key declares. For what clients write (a
        run's input, a state update): stored as it is, it would fail every later run."""
        for key, value in update.items():
            checker = self._checkers.get(key)
            if checker is None:
                continue
            try:
                checker.validate_python(value, strict=True)
            except pydantic.ValidationError as error:
                problem = error.errors()[0]
                where = "".join(f"[{part!r}]" for part in problem["loc"])
                raise InvalidUpdateError(
                    f"{writer} sets '{key}'{where} to {problem['input']!r}: {problem['msg']}"
                ) from None

    def initial_values(self) -> dict[str, Any]:
        """Values of a brand-new thread: pydantic defaults, or nothing but empty messages."""
        values: dict[str, Any] = {"messages": []}
        if self.model is not None:
            for name, info in self.model.model_fields.items():
                if not info.is_required():
                    values[name] = info.get_default(call_default_factory=True)
        return values

    def apply(
        self, values: dict[str, Any], update: Mapping[str, Any], writer: str
    ) -> dict[str, Any]:
        """Return a new values dict with ``update`` merged in; ``values`` is not modified."""
        if not isinstance(update, Mapping):
            raise InvalidUpdateError(
                f"{writer} must return a dict of state updates (or None), "
                f"not {type(update).__name__}"
            )
        merged = dict(values)
        for key, value in update.items():
            channel = self.channels.get(key)
            if channel is None:
                raise InvalidUpdateError(
                    f"{writer} wrote unknown state key '{key}'; "
                    f"the state keys are: {', '.join(self.channels)}"
                )
            if channel.reducer is None:
                merged[key] = value
                continue
            try:
                if key in merged:
                    merged[key] = channel.reducer(merged[key], value)
                elif channel.empty is not None:
                    merged[key] = channel.reducer(channel.empty(), value)
                else:
                    merged[key] = value
            except InvalidUpdateError as error:
                raise InvalidUpdateError(f"{writer}: {error}") from error
            except Exception as error:
                raise InvalidUpdateError(
                    f"{writer} wrote '{key}', whose reducer failed: {type(error).__name__}: {error}"
                ) from error
        return merged

    def view(self, values: dict[str, Any]) -> Any:
        """What a node receives: a pydantic model instance, or a shallow copy of the dict (so a
        node that assigns to its argument cannot change the checkpointed values)."""
        if self.model is not None:
            return self.model.model_validate(values)
        return dict(values)


class MessagesState(typing.TypedDict):
    """The simplest chat state: a list of messages merged with :func:`add_messages`."""

    messages: typing.Annotated[list[dict[str, Any]], add_messages]


def _value_schema(hint: Any) -> dict[str, Any]:
    try:
        schema: dict[str, Any] = pydantic.TypeAdapter(hint).json_schema()
    except pydantic.PydanticUserError:  # a type with no JSON Schema (a class of the graph's)
        return {}
    return schema
