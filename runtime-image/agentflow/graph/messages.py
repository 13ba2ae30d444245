"""Chat messages, in agentflow's message model, and the ``add_messages`` reducer.

Every message is stored and sent as agentflow's clients expect it::

    {"message_id": "...", "role": "user" | "assistant" | "system" | "tool",
     "content": [{"type": "text", "text": "hi"}, ...], "delta": false,
     "timestamp": 1764633600.0, "metadata": {}}

plus any other key the writer gave (``tools_calls``, ``usages``, ``reasoning``...). Graph authors
and callers may write less: a plain string is a user message, a string ``content`` is one text
block, and ``id`` is read as ``message_id``. Content must be a list for agentflow's TypeScript
client, which calls ``content.some(...)`` on every message it receives.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from agentflow.graph.errors import InvalidUpdateError
from agentflow.ids import new_id

Message = dict[str, Any]
ROLES = ("user", "assistant", "system", "tool")
# agentflow's client sends message_id "0" for a message it has not given an id: not an id.
_NO_ID = (None, "", "0")
_REMOVE = "remove_message_id"


def remove_message(message_id: str) -> dict[str, str]:
    """An entry of a ``messages`` update that removes the message with this id."""
    return {_REMOVE: message_id}


def is_removal(item: Message) -> bool:
    """Whether an entry of a normalised ``messages`` update removes a message."""
    return _REMOVE in item


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def normalize_message(raw: Any, position: int = 0) -> Message:
    """``raw`` as an agentflow message, or say precisely what is wrong with it. Normalising a
    normalised message changes nothing."""
    if isinstance(raw, str):
        raw = {"role": "user", "content": raw}
    if not isinstance(raw, dict):
        raise InvalidUpdateError(
            f"messages[{position}] must be a string or an object with 'role' and 'content', "
            f"not {type(raw).__name__}"
        )
    role = raw.get("role")
    if role not in ROLES:
        raise InvalidUpdateError(
            f"messages[{position}].role must be one of {', '.join(ROLES)}, not {role!r}"
        )
    rest = dict(raw)
    legacy_id, given = rest.pop("id", None), rest.pop("message_id", None)
    message: Message = {
        "message_id": _given_id(legacy_id if given in _NO_ID else given),
        "role": rest.pop("role"),
        "content": _blocks(rest.pop("content", None), position),
        "delta": rest.pop("delta", False),
        "timestamp": rest.pop("timestamp", None),
        "metadata": rest.pop("metadata", None),
        **rest,
    }
    if isinstance(message["timestamp"], bool) or not isinstance(message["timestamp"], int | float):
        message["timestamp"] = time.time()
    if not isinstance(message["metadata"], dict):
        message["metadata"] = {}
    return message


def _given_id(value: Any) -> str:
    if isinstance(value, str) and value not in _NO_ID:
        return value
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        return str(value)
    return new_id()


def normalize_messages(raw: Any) -> list[Message]:
    """A ``messages`` update (one message or a list) as a list of normalised messages, its
    :func:`remove_message` entries kept as they are."""
    items = raw if isinstance(raw, list) else [raw]
    return [
        item if isinstance(item, dict) and _REMOVE in item else normalize_message(item, index)
        for index, item in enumerate(items)
    ]


def _blocks(content: Any, position: int) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_block(content)]
    if not isinstance(content, list):
        raise InvalidUpdateError(
            f"messages[{position}].content must be a string or a list of content blocks"
        )
    for index, block in enumerate(content):
        where = f"messages[{position}].content[{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidUpdateError(f"{where} must be an object with a string 'type'")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise InvalidUpdateError(f"{where} is a text block without a string 'text'")
    return content


def add_messages(left: Sequence[Message] | None, right: Any) -> list[Message]:
    """Append ``right`` (one message or a list) to ``left``. A message whose ``message_id`` is
    already in ``left`` replaces that message in place, so a node can edit an earlier message;
    :func:`remove_message` entries remove one."""
    merged = list(left or ())
    position_of = {message["message_id"]: index for index, message in enumerate(merged)}
    removed: set[str] = set()
    for message in normalize_messages(right):
        if is_removal(message):
            removed.add(str(message[_REMOVE]))
            continue
        index = position_of.get(message["message_id"])
        if index is None:
            position_of[message["message_id"]] = len(merged)
            merged.append(message)
        else:
            merged[index] = message
    if removed:
        merged = [m for m in merged if m["message_id"] not in removed]
    return merged


def message_text(message: Message) -> str:
    """The text of a message: its text blocks joined (a string content as it is)."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or () if block.get("type") == "text")
