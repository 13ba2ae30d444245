"""`agentflow build`: the files it writes parse, wire Postgres and Redis, validate against the
CRD, and the generated Dockerfile's steps, replayed on the runtime image, serve the graph."""

import copy
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from agentflow_operator.crd import build_crd
from tests.cli.test_api_command import run_agentflow
from tests.images.dockerfile import read
from tests.images.staging import copy_into, lock, run_steps, running, stage_runtime
from tests.kube.validation import apply_defaults, crd_schema, validate


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "Travel Agent"
    assert run_agentflow("init", str(folder)).returncode == 0
    return folder


def test_docker_compose_runs_the_api_with_postgres_and_redis(project):
    result = run_agentflow(
        "build", "--docker-compose", "--output", str(project), "--workers", "3", "--port", "9000"
    )
    assert result.returncode == 0, result.stderr
    compose = yaml.safe_load((project / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"api", "postgres", "redis"}
    api = services["api"]
    env = api["environment"]
    assert env["MODE"] == "production"
    assert env["AGENTFLOW_WORKERS"] == "3"
    assert env["CHECKPOINTER"] == "postgres"
    assert env["DATABASE_URL"].startswith("postgresql://agentflow:")
    assert "@postgres:5432/agentflow" in env["DATABASE_URL"]
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert api["ports"] == ["9000:8000"]
    assert api["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert api["read_only"] is True
    assert api["tmpfs"] == ["/tmp"]
    for name in ("api", "postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "postgres-data:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert "postgres-data" in compose["volumes"]
    assert api["image"] == "travel-agent:0.1.0"


def test_the_generated_dockerfile_lints_clean(project):
    run_agentflow("build", "--docker-compose", "--output", str(project), "--python-version", "3.12")
    dockerfile = project / "Dockerfile"
    assert "ARG PYTHON_VERSION=3.12" in dockerfile.read_text()
    result = subprocess.run(
        [shutil.which("hadolint") or "hadolint", str(dockerfile)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_files_are_never_overwritten_silently(project):
    assert run_agentflow("build", "--k8s", "--output", str(project)).returncode == 0
    (project / "agentgraph.yaml").write_text("# mine\n")
    refused = run_agentflow("build", "--k8s", "--docker-compose", "--output", str(project))
    assert refused.returncode != 0
    assert "agentgraph.yaml exists already; pass --force" in refused.stderr
    assert (project / "agentgraph.yaml").read_text() == "# mine\n"
    assert not (project / "Dockerfile").exists()  # all or nothing
    assert (
        run_agentflow(
            "build", "--k8s", "--docker-compose", "--force", "--output", str(project)
        ).returncode
        == 0
    )
    nothing = run_agentflow("build", "--output", str(project))
    assert nothing.returncode != 0
    assert "--docker-compose and/or --k8s" in nothing.stderr


def test_the_agentgraph_manifest_is_valid(project):
    run_agentflow("build", "--k8s", "--output", str(project))
    graph = yaml.safe_load((project / "agentgraph.yaml").read_text())
    schema = crd_schema(build_crd())
    assert validate(apply_defaults(copy.deepcopy(graph), schema), schema) == []
    assert graph["spec"]["graph"] == "graph:app"
    assert graph["metadata"]["name"] == "travel-agent"


@pytest.fixture
def staged() -> Iterator[Path]:
    root = stage_runtime()
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_the_generated_image_serves_the_project_with_its_requirements(project, staged):
    (project / "requirements.txt").write_text("six>=1.16\n")
    graph = project / "graph.py"
    graph.write_text(
        "import six  # a dependency of the project, from requirements.txt\n" + graph.read_text()
    )
    run_agentflow("build", "--docker-compose", "--output", str(project))
    stage = read(project / "Dockerfile")[1][-1]
    app = staged / "app"
    for sources, destination in stage.copies():
        copy_into(sources, staged / destination.lstrip("/"), project)
    run_steps(stage, staged, app)
    lock(staged)
    env = {
        **stage.env(),
        "MODE": "production",
        "AGENTFLOW_WORKERS": "1",
        "AGENTFLOW_SHUTDOWN_GRACE_S": "1",
    }
    with running(staged, env) as container:
        answer = httpx.post(
            f"{container.url}/v1/graph/invoke", json={"messages": ["what time is it?"]}, timeout=10
        )
        assert [m["role"] for m in answer.json()["data"]["messages"]] == [
            "user",
            "tool",
            "assistant",
        ]
