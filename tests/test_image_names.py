"""One name per image: every place that names the runtime or the operator image (docs,
Dockerfiles, the chart, the operator's default, generated projects, the cluster box) names one
that the release workflow publishes, for this version."""

from __future__ import annotations

import re

import yaml

from agentflow import PYTHON_VERSIONS, __version__
from agentflow.build import Project, dockerfile
from tests.conftest import ROOT

IMAGE = re.compile(r"ghcr\.io/agentflow/(runtime|operator)(?::([\w.-]+))?")
# Builds of our two Dockerfiles (a graph image of one's own may have any name).
DOCKER_BUILD_TAG = re.compile(r"docker build -f (?:runtime-image|operator)/Dockerfile -t (\S+)")
RELEASE = ROOT / ".github" / "workflows" / "release.yml"
PUBLISHED = {
    "runtime": {__version__, *(f"{__version__}-python{p}" for p in PYTHON_VERSIONS)},
    "operator": {__version__},
}


def naming_texts() -> dict[str, str]:
    paths = [
        ROOT / "README.md",
        *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "runtime-image" / "Dockerfile",
        ROOT / "operator" / "Dockerfile",
        *sorted((ROOT / "examples").rglob("Dockerfile")),
        ROOT / "charts" / "agentflow-operator" / "values.yaml",
        ROOT / "operator" / "agentflow_operator" / "config.py",
        ROOT / "devbox" / "box.py",
    ]
    texts = {str(path.relative_to(ROOT)): path.read_text() for path in paths}
    for python in PYTHON_VERSIONS:  # what `agentflow build --python-version X` writes
        generated = dockerfile(Project("agent", "graph:app", python_version=python))
        texts[f"generated Dockerfile ({python})"] = generated.replace("${PYTHON_VERSION}", python)
    return texts


def test_every_image_named_is_one_the_release_publishes():
    wrong = []
    for where, text in naming_texts().items():
        for match in IMAGE.finditer(text):
            image, tag = match.groups()
            if tag is not None and tag not in PUBLISHED[image]:  # untagged: the name in prose
                wrong.append(f"{where}: {match.group(0)}")
    assert wrong == []


def test_docker_build_commands_tag_the_published_names():
    commands = [
        (where, tag)
        for where, text in naming_texts().items()
        for tag in DOCKER_BUILD_TAG.findall(text)
    ]
    assert len(commands) >= 3  # the two Dockerfiles' and the deploy guide's
    assert [(where, tag) for where, tag in commands if not IMAGE.fullmatch(tag)] == []


def test_the_release_workflow_publishes_each_python_and_the_operator():
    workflow = yaml.safe_load(RELEASE.read_text())
    matrix = workflow["jobs"]["images"]["strategy"]["matrix"]["include"]
    runtime = [row for row in matrix if row["image"] == "runtime"]
    assert [row["python"] for row in runtime] == list(PYTHON_VERSIONS)
    assert [row["python"] for row in runtime if row["default"]] == [PYTHON_VERSIONS[0]]
    assert [row["file"] for row in matrix if row["image"] == "operator"] == ["operator/Dockerfile"]
    assert workflow["jobs"]["images"]["needs"] == "test"  # nothing is published untested


def test_the_chart_names_the_operator_image_of_this_version():
    chart = yaml.safe_load((ROOT / "charts" / "agentflow-operator" / "Chart.yaml").read_text())
    values = yaml.safe_load((ROOT / "charts" / "agentflow-operator" / "values.yaml").read_text())
    assert chart["appVersion"] == chart["version"] == __version__
    assert values["image"]["repository"] == "ghcr.io/agentflow/operator"
    assert IMAGE.fullmatch(values["graphDefaults"]["runtimeImage"])


def test_a_name_outside_the_release_is_caught():
    """The check itself: a stray name (the runtime Dockerfile once said agentflow/runtime)."""
    text = "docker build -f runtime-image/Dockerfile -t agentflow/runtime ."
    assert not IMAGE.fullmatch(DOCKER_BUILD_TAG.findall(text)[0])
    assert IMAGE.search("FROM ghcr.io/agentflow/runtime:0.0.9").group(2) not in PUBLISHED["runtime"]
