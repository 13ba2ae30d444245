"""A graph that asks the client to run a tool, as agentflow's remote tools do: the assistant
answers with a ``remote_tool_call`` block; agentflow's client runs the tool and sends back a
``tool`` message with a ``tool_result`` block; the graph then answers with the result.

    START -> agent -> END    (one step per request: the client drives the loop)
"""

from typing import Any

from agentflow.graph import END, START, MessagesState, StateGraph


def agent(state: MessagesState) -> dict[str, Any]:
    last = state["messages"][-1]
    if last["role"] == "tool":
        results = [b for b in last["content"] if b["type"] == "tool_result"]
        outputs = ", ".join(str(r["output"]) for r in results)
        return {"messages": [{"role": "assistant", "content": f"the tool said: {outputs}"}]}
    call = {
        "type": "remote_tool_call",
        "id": "call-1",
        "name": "weather",
        "args": {"city": "Paris"},
    }
    return {"messages": [{"role": "assistant", "content": [call]}]}


builder = StateGraph(MessagesState)
builder.add_node("agent", agent)
builder.add_edge(START, "agent").add_edge("agent", END)
app = builder.compile()
