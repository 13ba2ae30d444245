"""Production start-up warnings, and SIGTERM ending open streams cleanly."""

import json
import os
import signal
import threading

import httpx

from tests.conftest import start_server
from tests.polling import eventually

GRAPH = {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}


def warnings_of(log: str) -> list[str]:
    return [
        json.loads(line)["message"]
        for line in log.splitlines()
        if line.startswith("{") and json.loads(line)["level"] == "WARNING"
    ]


def test_production_warns_once_per_unsafe_default(tmp_path):
    server = start_server(
        tmp_path,
        {**GRAPH, "MODE": "production", "JWT_SECRET_KEY": "short", "AGENTFLOW_DOCS": "true"},
    )
    server.stop()
    assert warnings_of(server.log()) == [
        "unsafe for production: ORIGINS=* lets any web page call this API from a browser",
        "unsafe for production: JWT_SECRET_KEY is shorter than 32 bytes, the least RFC 7518 allows for HS256: use a longer secret",
        "unsafe for production: AGENTFLOW_DOCS is on: /docs and /openapi.json are public",
    ]
    open_server = start_server(tmp_path, {**GRAPH, "MODE": "production"})
    open_server.stop()
    assert (
        "unsafe for production: no JWT_SECRET_KEY or JWT_PUBLIC_KEY: the API is open to anyone"
        in warnings_of(open_server.log())
    )


def read_events(
    url: str, body: dict, events: list[tuple[str, dict]], first: threading.Event
) -> None:
    with (
        httpx.Client(timeout=30) as client,
        client.stream("POST", f"{url}/v1/graph/stream", json=body) as response,
    ):
        name = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name or "", json.loads(line[6:])))
                first.set()


def test_sigterm_lets_short_runs_finish_and_ends_long_streams_with_an_error(tmp_path):
    server = start_server(tmp_path, {**GRAPH, "AGENTFLOW_SHUTDOWN_GRACE_S": "1"})
    long_events: list[tuple[str, dict]] = []
    short_events: list[tuple[str, dict]] = []
    long_started, short_started = threading.Event(), threading.Event()
    long_body = {"initial_state": {"events": 400, "async_sleep_s": 0.05}}
    short_body = {"initial_state": {"events": 5, "async_sleep_s": 0.1}}
    readers = [
        threading.Thread(
            target=read_events, args=(server.url, long_body, long_events, long_started)
        ),
        threading.Thread(
            target=read_events, args=(server.url, short_body, short_events, short_started)
        ),
    ]
    for reader in readers:
        reader.start()
    assert long_started.wait(10)
    assert short_started.wait(10)
    os.kill(server.process.pid, signal.SIGTERM)
    for reader in readers:
        reader.join(30)
    assert server.process.wait(30) == 0

    assert [name for name, _ in short_events][-1] == "end"  # finished within the grace
    assert short_events[-1][1]["data"]["status"] == "success"
    assert [name for name, _ in long_events][-2:] == ["error", "end"]
    error = long_events[-2][1]["data"]
    assert error["code"] == "run_stopped"
    assert "the server shut down" in error["message"]


def test_sigterm_does_not_wait_for_a_sync_node_past_the_grace_period(tmp_path):
    """A sync node blocking for 300 s: its run is stopped after the grace period and its
    stream ends, and the process exits then, since nothing can interrupt the node's thread."""
    server = start_server(tmp_path, {**GRAPH, "AGENTFLOW_SHUTDOWN_GRACE_S": "1"})
    events: list[tuple[str, dict]] = []
    body = {"initial_state": {"sleep_s": 300}}
    reader = threading.Thread(
        target=read_events, args=(server.url, body, events, threading.Event())
    )
    try:
        reader.start()
        eventually(
            lambda: "agentflow_runs_in_flight 1.0" in httpx.get(f"{server.url}/metrics").text,
            within_s=10,
            what="the run in its sync node",
        )
        os.kill(server.process.pid, signal.SIGTERM)
        reader.join(30)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert [name for name, _ in events][-2:] == ["error", "end"]
    assert events[-2][1]["data"]["code"] == "run_stopped"
    assert (
        "shut down; 1 sync node(s) of stopped runs still running: exiting without waiting for "
        "them" in server.log()
    )
