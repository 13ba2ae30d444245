"""The operator's day-two behaviour in the cluster in a box, driven with kubectl as a user would:
scaling restarts no pod, a field removed from the spec leaves the Deployment, an autoscaled graph
comes back from suspension at minReplicas, a name Kubernetes cannot use is refused with a reason
and an Event, and deleting a graph does not need the operator."""

import json
from collections.abc import Iterator

import pytest
import yaml

from devbox.box import ClusterInABox
from tests.cluster.test_cluster_in_a_box import EXAMPLE, ready
from tests.polling import eventually

GRAPH = "/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs/support-agent"
DEPLOYMENT = "/apis/apps/v1/namespaces/default/deployments/support-agent"


@pytest.fixture(scope="module")
def box(database_url: str, redis_url: str) -> Iterator[ClusterInABox]:
    with ClusterInABox(database_url, redis_url) as running:
        running.kubectl("apply", "-f", str(EXAMPLE))
        eventually(lambda: ready(running), within_s=120, what="the example Ready")
        yield running


def patch(box: ClusterInABox, spec: dict) -> None:
    box.kubectl("patch", "ag", "support-agent", "--type=merge", "-p", json.dumps({"spec": spec}))


def pod_spec(box: ClusterInABox) -> dict:
    return box.get(DEPLOYMENT)["spec"]["template"]["spec"]


def replicasets(box: ClusterInABox) -> set[str]:
    items = box.get("/apis/apps/v1/namespaces/default/replicasets")["items"]
    return {rs["metadata"]["name"] for rs in items}


def test_kubectl_scale_changes_no_pod_template(box):
    template, revisions = box.get(DEPLOYMENT)["spec"]["template"], replicasets(box)
    pids = {name: r.process.pid for name, r in box.nodes.replicas.items()}
    box.kubectl("scale", "ag/support-agent", "--replicas=4")
    eventually(lambda: len(box.processes("support-agent")) == 4, within_s=60, what="4 pods")
    assert box.get(DEPLOYMENT)["spec"]["template"] == template
    assert replicasets(box) == revisions
    still = {name: r.process.pid for name, r in box.nodes.replicas.items() if name in pids}
    assert still == pids  # the three that ran before still run: nothing restarted
    box.kubectl("scale", "ag/support-agent", "--replicas=3")
    eventually(lambda: len(box.processes("support-agent")) == 3, within_s=60, what="3 pods")


def test_a_removed_node_selector_leaves_the_deployment(box):
    patch(box, {"nodeSelector": {"pool": "agents"}})
    eventually(lambda: pod_spec(box).get("nodeSelector") == {"pool": "agents"}, what="set")
    patch(box, {"nodeSelector": None})
    eventually(lambda: "nodeSelector" not in pod_spec(box), what="removed")
    eventually(lambda: ready(box), within_s=120, what="Ready after the rollouts")


def test_an_autoscaled_graph_comes_back_from_suspension_at_min_replicas(box):
    patch(box, {"autoscaling": {"minReplicas": 2, "maxReplicas": 4}})
    eventually(
        lambda: box.get(
            "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/support-agent"
        ),
        what="the autoscaler",
    )
    patch(box, {"suspend": True})
    eventually(lambda: not box.processes("support-agent"), within_s=60, what="no pod")
    patch(box, {"suspend": False})
    eventually(lambda: box.get(DEPLOYMENT)["spec"]["replicas"] == 2, what="minReplicas")
    eventually(
        lambda: ready(box) and len(box.processes("support-agent")) == 2,
        within_s=120,
        what="2 pods serving",
    )
    patch(box, {"autoscaling": None, "replicas": 3})
    eventually(lambda: ready(box) and len(box.processes("support-agent")) == 3, within_s=120)


def test_a_graph_named_9lives_is_refused_with_a_reason_and_an_event(box):
    graph = next(d for d in yaml.safe_load_all(EXAMPLE.read_text()) if d["kind"] == "AgentGraph")
    graph["metadata"]["name"] = "9lives"
    path = box.workdir / "9lives.json"
    path.write_text(json.dumps(graph))
    box.kubectl("apply", "-f", str(path))

    def accepted() -> dict | None:
        found = box.get(GRAPH.replace("support-agent", "9lives")) or {}
        conditions = (found.get("status") or {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Accepted"), None)

    condition = eventually(accepted, within_s=15, what="a verdict within seconds")
    assert (condition["status"], condition["reason"]) == ("False", "InvalidName")
    events = json.loads(box.kubectl("get", "events", "-n", "default", "-o", "json").stdout)
    assert any(
        e["reason"] == "InvalidName" and e["involvedObject"]["name"] == "9lives"
        for e in events["items"]
    )
    box.kubectl("delete", "-f", str(path))


def test_deleting_a_graph_while_the_operator_is_stopped_completes(box):
    box.stop_operator()
    deleted = box.kubectl("delete", "ag", "support-agent", "--timeout=20s", check=False)
    assert deleted.returncode == 0, deleted.stderr
    assert box.get(GRAPH) is None
    assert box.get(DEPLOYMENT) is None  # its objects went with it
    eventually(lambda: not box.processes("support-agent"), within_s=60, what="its pods gone")
