"""A customer-support agent that needs no API key: every "model" here is deterministic.

    classify --(order question)--> lookup_order --> answer --> END
             --(refund request)--> lookup_order --> approve_refund --> answer
             --(anything else)---------------------------------------> answer

* ``classify`` (async) reads the last user message and picks an intent.
* ``lookup_order`` (sync, blocking like a database driver) runs in the server's thread pool.
* ``approve_refund`` asks a human with ``interrupt``; the thread waits for ``resume``.
* ``answer`` (async) streams its reply token by token as ``custom`` events, as an LLM would.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Annotated, Any, Literal, TypedDict

from agentflow.graph import END, START, StateGraph, add_messages, emit, interrupt, message_text

Intent = Literal["order_status", "refund", "chat"]

ORDERS: dict[str, dict[str, Any]] = {
    "1001": {"id": "1001", "item": "espresso machine", "status": "shipped", "total": 249.0},
    "1002": {"id": "1002", "item": "coffee grinder", "status": "processing", "total": 89.5},
    "1003": {"id": "1003", "item": "milk frother", "status": "delivered", "total": 35.0},
}

TOKEN_DELAY_S = 0.005  # a model streaming about 200 tokens per second
LOOKUP_DELAY_S = 0.02  # a database round trip


class SupportState(TypedDict, total=False):
    messages: Annotated[list[dict[str, Any]], add_messages]
    intent: Intent
    order_id: str | None
    order: dict[str, Any] | None
    refund: Literal["approved", "rejected"] | None


async def classify(state: SupportState) -> dict[str, Any]:
    text = message_text(state["messages"][-1]).lower()
    match = re.search(r"\b(\d{4})\b", text)
    intent: Intent = "chat"
    if "refund" in text or "money back" in text:
        intent = "refund"
    elif match or "order" in text:
        intent = "order_status"
    order_id = match.group(1) if match else None
    return {"intent": intent, "order_id": order_id, "order": None, "refund": None}


def lookup_order(state: SupportState) -> dict[str, Any]:
    time.sleep(LOOKUP_DELAY_S)  # blocking on purpose: sync nodes run in a thread pool
    return {"order": ORDERS.get(state.get("order_id") or "")}


def approve_refund(state: SupportState) -> dict[str, Any]:
    order = state.get("order")
    if order is None:
        return {"refund": "rejected"}
    decision = interrupt(
        {
            "question": f"Refund ${order['total']:.2f} for order {order['id']} ({order['item']})?",
            "expects": "approve or reject",
        }
    )
    approved = str(decision).strip().lower() in {"approve", "approved", "yes", "y", "true"}
    return {"refund": "approved" if approved else "rejected"}


def compose_reply(state: SupportState) -> str:
    order = state.get("order")
    intent = state.get("intent", "chat")
    if intent == "chat":
        return "Hello! I can check an order's status or request a refund. Which order is it?"
    if order is None:
        return "I could not find that order. Could you give me its four-digit number?"
    if intent == "order_status":
        return f"Order {order['id']} ({order['item']}) is {order['status']}."
    if state.get("refund") == "approved":
        return f"Your refund of ${order['total']:.2f} for order {order['id']} is approved."
    return f"Sorry, the refund for order {order['id']} was not approved."


async def answer(state: SupportState) -> dict[str, Any]:
    reply = compose_reply(state)
    for token in re.findall(r"\S+\s*", reply):
        emit({"token": token})
        await asyncio.sleep(TOKEN_DELAY_S)
    return {"messages": [{"role": "assistant", "content": reply}]}


def after_classify(state: SupportState) -> str:
    return "answer" if state["intent"] == "chat" else "lookup_order"


def after_lookup(state: SupportState) -> str:
    return "approve_refund" if state["intent"] == "refund" else "answer"


builder = StateGraph(SupportState)
builder.add_node("classify", classify)
builder.add_node("lookup_order", lookup_order)
builder.add_node("approve_refund", approve_refund)
builder.add_node("answer", answer)
builder.add_edge(START, "classify")
builder.add_conditional_edges("classify", after_classify, ["lookup_order", "answer"])
builder.add_conditional_edges("lookup_order", after_lookup, ["approve_refund", "answer"])
builder.add_edge("approve_refund", "answer")
builder.add_edge("answer", END)

app = builder.compile()
