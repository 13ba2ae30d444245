"""A real browser (headless Chromium) as the client: a page on another origin invokes with a
bearer token, reads a stream with fetch, and joins a run with EventSource under JWT auth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest

from tests.conftest import Server, free_port, start_server
from tests.polling import eventually

PAGE = Path(__file__).with_name("page.html")
SECRET = "browser-secret-" + "b" * 49


def find_chromium() -> str:
    """Chromium from Debian packages, installed on first use where apt can (as in CI)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and shutil.which("apt-get") and os.geteuid() == 0:
        subprocess.run(
            "apt-get update -qq && apt-get install -y -qq chromium",
            shell=True,
            check=True,
            capture_output=True,
            timeout=600,
        )
        found = shutil.which("chromium")
    if found is None:
        pytest.fail("the browser tests need Chromium: apt-get install chromium")
    return found


class PageServer:
    """Serves the page from its own origin and takes the results it posts back."""

    def __init__(self) -> None:
        self.results: dict[str, Any] | None = None
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = PAGE.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                owner.results = json.loads(self.rfile.read(length))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> PageServer:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def page() -> Iterator[PageServer]:
    with PageServer() as server:
        yield server


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, page: PageServer) -> Iterator[Server]:
    env = {
        "AGENTFLOW_GRAPH": "tests.graphs.versatile:app",
        "MODE": "production",
        "JWT_SECRET_KEY": SECRET,
        "ORIGINS": page.origin,
    }
    server = start_server(tmp_path_factory.mktemp("browser"), env)
    yield server
    server.stop()


def test_a_page_on_another_origin_invokes_streams_and_joins_with_eventsource(
    page: PageServer, secured: Server, tmp_path: Path
) -> None:
    token = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, SECRET, "HS256")
    # The API on localhost, the page on 127.0.0.1: two origins, so every call is CORS.
    api = secured.url.replace("127.0.0.1", "localhost")
    url = f"{page.origin}/page.html?api={api}&token={token}"
    browser = subprocess.Popen(
        [
            find_chromium(),
            "--headless=new",
            "--no-sandbox",  # as root in a container; the page is our own
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        results = eventually(lambda: page.results, within_s=60, what="the page's results")
    finally:
        browser.kill()
        browser.wait(10)
    assert "crash" not in results, results["crash"]

    invoke = results["invoke"]
    assert invoke["status"] == 200
    assert invoke["requestId"]  # X-Request-ID is exposed to the page's script
    assert [m["role"] for m in invoke["data"]["messages"]] == ["user", "assistant"]

    stream = results["stream"]
    assert stream["status"] == 200
    assert stream["type"].startswith("text/event-stream")
    assert [e["event"] for e in stream["events"]][-1] == "end"

    joined = results["join"]
    assert joined["failures"] == []
    # A join sends every event of the run; the stream request left out state events (low).
    assert [e["event"] for e in joined["events"] if e["event"] != "state"] == [
        e["event"] for e in stream["events"]
    ]
    assert results["afterEnd"] == 204  # EventSource stops reconnecting on 204
    assert results["noToken"]["status"] == 401
    assert results["noToken"]["wwwAuthenticate"].startswith("Bearer")  # exposed to scripts
    assert results["wrongRun"] == 401
    log = secured.log()
    assert "stream_token=***" in log  # the access log shows the query's token as ***
    assert results["streamToken"] not in log

    failed = results["failedJoin"]
    assert [e["event"] for e in failed["events"]] == ["error", "end"]
    assert failed["events"][0]["data"]["data"]["code"] == "node_failed"
    assert failed["failures"] == []  # the run's error was not taken for a connection failure
