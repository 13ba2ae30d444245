"""The shell examples of the README and docs/http-api.md, run as written against the example
graph (only the port is this server's): a reader who copies them gets answers, not errors.
Examples with placeholders (``<run_id>``) or that need a cluster or other hosts are left out,
and this list says which are run."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, Server, start_server

BLOCK = re.compile(r"^```sh\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_blocks(document: Path) -> list[str]:
    return BLOCK.findall(document.read_text())


def runnable(block: str) -> bool:
    return "localhost:8000" in block and "<" not in block and "kubectl" not in block


EXAMPLES = [
    block
    for document in (ROOT / "README.md", ROOT / "docs" / "http-api.md")
    for block in shell_blocks(document)
    if runnable(block)
]


@pytest.fixture(scope="module")
def example_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = start_server(
        tmp_path_factory.mktemp("docs"), args=("--config", "examples/agentflow.json")
    )
    yield server
    server.stop()


def test_the_examples_that_can_run_here_are_found():
    assert len(EXAMPLES) == 3  # the README's "Try it", http-api.md's invoke and stream


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda block: block.split("\n")[0][:60])
def test_a_documented_example_answers_without_error(example_server, block):
    script = block.replace("localhost:8000", example_server.url.removeprefix("http://"))
    ran = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()
    assert '"error"' not in ran.stdout
    assert "event: error" not in ran.stdout
