"""Chat messages and the ``add_messages`` reducer.

A message is stored as a dict ``{"id", "role", "content"}`` (plus any other keys the caller gave,
such as ``tool_calls``). ``content`` is a string or a list of content blocks like
``{"type": "text", "text": "hi"}``, as in agentflow's wire format. A plain string is shorthand for
a user message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agentflow.graph.errors import InvalidUpdateError
from agentflow.ids import new_id

Message = dict[str, Any]


def normalize_message(raw: Any, position: int = 0) -> Message:
    """Return ``raw`` as a message dict with an ``id``, or say precisely what is wrong with it."""
    if isinstance(raw, str):
        return {"id": new_id(), "role": "user", "content": raw}
    if not isinstance(raw, dict):
        raise InvalidUpdateError(
            f"messages[{position}] must be a string or an object with 'role' and 'content', "
            f"not {type(raw).__name__}"
        )
    role = raw.get("role")
    if not isinstance(role, str) or not role:
        raise InvalidUpdateError(f"messages[{position}].role must be a non-empty string")
    _check_content(raw.get("content"), position)
    message = dict(raw)
    if not isinstance(message.get("id"), str) or not message["id"]:
        message["id"] = new_id()
    return message


def _check_content(content: Any, position: int) -> None:
    if isinstance(content, str):
        return
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


def add_messages(left: Sequence[Message] | None, right: Any) -> list[Message]:
    """Append ``right`` (one message or a list) to ``left``; a message whose id is already in
    ``left`` replaces that message in place, so a node can edit an earlier message."""
    incoming = right if isinstance(right, list) else [right]
    merged = list(left or ())
    position_of = {message["id"]: index for index, message in enumerate(merged)}
    for offset, raw in enumerate(incoming):
        message = normalize_message(raw, offset)
        index = position_of.get(message["id"])
        if index is None:
            position_of[message["id"]] = len(merged)
            merged.append(message)
        else:
            merged[index] = message
    return merged


def message_text(message: Message) -> str:
    """The text of a message, joining the text blocks of a list content."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(block.get("text", "") for block in content or () if block.get("type") == "text")
