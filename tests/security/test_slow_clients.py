"""Clients that open connections and never finish a request (slowloris): each is answered or
closed within AGENTFLOW_HEADER_TIMEOUT_S, and a flood of them displaces itself, not the
clients that send whole requests."""

from __future__ import annotations

import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.conftest import ROOT, Server, start_server

GRAPH = {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}
FLOOD = 20_000
FLOODERS = 4  # processes, so that no one of them needs 20,000 descriptors
READY_WITHIN_S = 120


@pytest.fixture(scope="module")
def impatient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("impatient"), {**GRAPH, "AGENTFLOW_HEADER_TIMEOUT_S": "1"}
    )
    yield server
    server.stop()


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    return sock


def read_all(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_and_error(answer: bytes) -> tuple[str, dict[str, str]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0].decode(), orjson.loads(body)["error"]


def test_a_half_sent_request_gets_408_and_the_connection_is_closed(impatient):
    with connect(impatient) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: appl")
        status, error = status_and_error(read_all(sock))
    assert status == "HTTP/1.1 408 Request Timeout"
    assert error == {
        "code": "request_timeout",
        "message": "the request's head did not arrive within 1 s",
    }


def test_a_head_sent_a_byte_at_a_time_is_cut_at_the_deadline_too(impatient):
    """The deadline is for the whole head, not renewed by each byte."""
    with connect(impatient) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        deadline = time.monotonic() + 10  # bounds the test; the server cuts it after 1 s
        answer = b""
        sock.settimeout(0.2)
        while not answer and time.monotonic() < deadline:
            sock.sendall(b"X")
            try:
                answer = sock.recv(65536)
            except TimeoutError:
                continue
        answer += read_all(sock)
    assert status_and_error(answer)[0] == "HTTP/1.1 408 Request Timeout"


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(impatient):
    with connect(impatient) as sock:
        assert read_all(sock) == b""


def test_an_idle_kept_alive_connection_is_closed_after_its_answer(impatient):
    with connect(impatient) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 200 OK")
    assert answer.count(b"HTTP/1.1") == 1


def test_a_head_that_never_ends_is_refused_unread(impatient):
    with connect(impatient) as sock:
        # Over the 32 KiB it reads of a head (16 KiB of headers + 16 KiB), and unfinished.
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: " + b"a" * 40_000)
        status, error = status_and_error(read_all(sock))
    assert status == "HTTP/1.1 431 Request Header Fields Too Large"
    assert error["code"] == "headers_too_large"


def test_whole_requests_still_work_on_a_kept_alive_connection(impatient):
    with httpx.Client(base_url=impatient.url, timeout=30) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
            assert client.post("/v1/graph/invoke", json={"messages": ["hi"]}).status_code == 200


def start_flooders(server: Server) -> list[subprocess.Popen[str]]:
    port = server.url.rsplit(":", 1)[1]
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tests.security.half_open", port, str(FLOOD // FLOODERS)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(FLOODERS)
    ]


def first_lines(flooders: list[subprocess.Popen[str]], within_s: float) -> list[str]:
    """Each flooder's first line, waiting at most ``within_s`` in all."""
    lines: dict[int, str] = {}
    deadline = time.monotonic() + within_s
    with selectors.DefaultSelector() as selector:
        for index, flooder in enumerate(flooders):
            assert flooder.stdout is not None
            selector.register(flooder.stdout, selectors.EVENT_READ, index)
        while len(lines) < len(flooders) and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                lines[key.data] = key.fileobj.readline().strip()  # type: ignore[union-attr]
                selector.unregister(key.fileobj)
    assert len(lines) == len(flooders), f"flooders not ready within {within_s} s: {lines}"
    return [lines[index] for index in range(len(flooders))]


@pytest.mark.slow
def test_twenty_thousand_half_open_connections_do_not_stop_a_normal_client(tmp_path):
    """The server runs under a limit of 8,192 open files, as a container may: without a
    connection cap the flood takes them all, and nobody else gets a connection."""
    server = start_server(tmp_path, {**GRAPH, "AGENTFLOW_HEADER_TIMEOUT_S": "60"}, descriptors=8192)
    flooders = start_flooders(server)
    try:
        opened = first_lines(flooders, READY_WITHIN_S)
        assert sum(int(line.split()[1]) for line in opened) == FLOOD, opened
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.get("/healthz").status_code == 200
            invoked = client.post("/v1/graph/invoke", json={"messages": ["still here"]})
            assert invoked.status_code == 200
        closed = []
        for flooder in flooders:
            output, _ = flooder.communicate("", timeout=60)
            closed.append(int(output.split()[-1]))
        # The flood displaced itself: the server kept at most its cap of connections open.
        assert sum(closed) >= FLOOD - 4096, closed
    finally:
        for flooder in flooders:
            flooder.kill()
            flooder.wait()
        server.stop()
    assert "Traceback" not in server.log()


def test_past_the_cap_with_every_connection_busy_a_new_one_gets_503(tmp_path):
    """Two connections streaming long runs, a cap of two: nothing can be displaced, so the
    third connection is told why before it is closed, not reset."""
    server = start_server(tmp_path, {**GRAPH, "AGENTFLOW_MAX_CONNECTIONS": "2"})
    body = {"messages": ["hi"], "initial_state": {"events": 1, "async_sleep_s": 30}}
    try:
        with (
            httpx.Client(base_url=server.url, timeout=30) as first,
            httpx.Client(base_url=server.url, timeout=30) as second,
        ):
            streams = [c.stream("POST", "/v1/graph/stream", json=body) for c in (first, second)]
            opened = [stream.__enter__() for stream in streams]
            assert [response.status_code for response in opened] == [200, 200]
            with connect(server) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                status, error = status_and_error(read_all(sock))
            for stream in streams:
                stream.__exit__(None, None, None)
    finally:
        server.stop()
    assert status == "HTTP/1.1 503 Service Unavailable"
    assert error == {
        "code": "too_many_connections",
        "message": "the server holds 2 connections, all busy, its limit "
        "(AGENTFLOW_MAX_CONNECTIONS): retry later",
    }
