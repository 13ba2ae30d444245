"""The README's main job: the example support agent served by `agentflow api --config`."""

import json
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

from agentflow.graph import message_text
from tests.conftest import ROOT, Server, start_server


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("example"),
        {"AGENTFLOW_GRAPH": ""},
        args=("--config", str(ROOT / "examples" / "agentflow.json")),
    )
    yield server
    server.stop()


def test_an_order_question_uses_the_tool_and_streams_the_answer(example):
    body = {"messages": ["Where is my order 1002?"]}
    with (
        httpx.Client(base_url=example.url, timeout=10) as client,
        connect_sse(client, "POST", "/v1/graph/stream", json=body) as source,
    ):
        events = [(e.event, json.loads(e.data)) for e in source.iter_sse()]
    nodes = [c["metadata"]["node"] for name, c in events if name == "updates"]
    assert nodes == ["classify", "lookup_order", "answer"]
    tokens = "".join(c["data"]["token"] for name, c in events if name == "custom")
    assert tokens == "Order 1002 (coffee grinder) is processing."
    assert events[-1][0] == "end"


def test_a_refund_waits_for_a_human_and_resumes(example):
    with httpx.Client(base_url=example.url, timeout=10) as client:
        config = {"thread_id": "refund-1001"}
        parked = client.post(
            "/v1/graph/invoke",
            json={"messages": ["I want a refund for order 1001"], "config": config},
        ).json()["data"]
        assert parked["meta"]["status"] == "interrupted"
        assert "Refund $249.00 for order 1001" in parked["interrupts"][0]["value"]["question"]
        done = client.post("/v1/graph/invoke", json={"resume": "approve", "config": config}).json()
        assert message_text(done["data"]["messages"][-1]) == (
            "Your refund of $249.00 for order 1001 is approved."
        )
