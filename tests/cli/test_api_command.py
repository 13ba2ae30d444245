"""`agentflow api` and `agentflow init` as a user runs them: real processes."""

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from agentflow.graph import message_text
from tests.conftest import ROOT, agentflow_command, start_server


def run_agentflow(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT):
    return subprocess.run(
        agentflow_command(*args),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("graph", "message"),
    [
        ("nope_module:app", "cannot import graph module 'nope_module': ModuleNotFoundError"),
        (
            "tests.graphs.broken_import:app",
            "cannot import graph module 'tests.graphs.broken_import': ModuleNotFoundError: "
            "No module named 'module_that_does_not_exist'",
        ),
        (
            "tests.graphs.factories:missing",
            "module 'tests.graphs.factories' has no attribute 'missing'",
        ),
        ("tests.graphs.factories:uncompiled", "is a StateGraph that was never compiled"),
        ("tests.graphs.factories:not_a_graph", "must be a compiled graph or a function"),
        ("no-colon", "must look like 'package.module:attribute'"),
    ],
)
def test_a_bad_graph_stops_startup_with_one_clear_line(graph, message):
    result = run_agentflow("api", "--port", "1", env={"AGENTFLOW_GRAPH": graph})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_missing_config_file_says_what_to_do(tmp_path):
    result = run_agentflow("api", env={"AGENTFLOW_GRAPH": ""}, cwd=tmp_path)
    assert result.returncode != 0
    assert (
        "no graph configured: set AGENTFLOW_GRAPH=module:attr or create agentflow.json"
        in result.stderr
    )


def test_a_bad_setting_names_the_variable():
    result = run_agentflow(
        "api", env={"AGENTFLOW_GRAPH": "tests.graphs.versatile:app", "LOG_LEVEL": "LOUD"}
    )
    assert result.returncode != 0
    assert "LOG_LEVEL='LOUD' is invalid" in result.stderr
    assert "Traceback" not in result.stderr


def test_several_workers_with_the_in_memory_checkpointer_are_refused():
    result = run_agentflow(
        "api", "--workers", "2", env={"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}
    )
    assert result.returncode != 0
    assert "--workers 2 needs a checkpointer shared between processes" in result.stderr


@pytest.mark.parametrize("factory", ["make_graph", "make_graph_async"])
def test_the_graph_may_be_a_sync_or_async_factory(tmp_path, factory):
    server = start_server(tmp_path, {"AGENTFLOW_GRAPH": f"tests.graphs.factories:{factory}"})
    try:
        response = httpx.post(f"{server.url}/v1/graph/invoke", json={"messages": ["hi"]})
        assert message_text(response.json()["data"]["messages"][0]) == "hi"
    finally:
        server.stop()


def test_a_factory_returning_something_else_is_refused_at_startup(tmp_path):
    with pytest.raises(
        RuntimeError,
        match=r"the graph factory 'tests\.graphs\.factories:make_nothing' returned int",
    ):
        start_server(tmp_path, {"AGENTFLOW_GRAPH": "tests.graphs.factories:make_nothing"})


def test_init_writes_a_project_that_serves(tmp_path):
    project = tmp_path / "starter"
    result = run_agentflow("init", str(project))
    assert result.returncode == 0, result.stderr
    assert (project / "graph.py").exists()
    assert (project / "agentflow.json").exists()
    refused = run_agentflow("init", str(project))
    assert refused.returncode != 0
    assert "--force" in refused.stderr

    server = start_server(tmp_path, {"AGENTFLOW_GRAPH": ""}, cwd=project)
    try:
        response = httpx.post(
            f"{server.url}/v1/graph/invoke", json={"messages": ["what time is it?"]}, timeout=10
        )
        roles = [m["role"] for m in response.json()["data"]["messages"]]
        assert roles == ["user", "tool", "assistant"]
    finally:
        server.stop()


def test_the_body_limit_is_configurable(tmp_path):
    server = start_server(
        tmp_path,
        {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app", "AGENTFLOW_MAX_BODY_BYTES": "200"},
    )
    try:
        small = httpx.post(f"{server.url}/v1/graph/invoke", json={"messages": ["hi"]})
        big = httpx.post(f"{server.url}/v1/graph/invoke", json={"messages": ["x" * 300]})
        assert small.status_code == 200
        assert big.status_code == 413
        assert "limit of 200 bytes" in big.json()["error"]["message"]
    finally:
        server.stop()
