"""How the operator writes to a real API server (the strict emulator): server-side apply removes
what the spec no longer asks for, pods restart only when what they see changes, replicas pass
to and from the autoscaler without a dip, and a converged graph costs no request."""

from kopf.testing import KopfRunner

from tests.kube.client import Kube
from tests.operator.test_operator import AG, condition, deployment_of, graph, jwt_secret
from tests.polling import eventually

GRAPH = "support-agent"


def patch_graph(kube: Kube, spec: dict) -> int:
    """Change the graph's spec; its new generation."""
    patched = kube.patch(AG, "agentgraphs", "agents", GRAPH, {"spec": spec})
    return int(patched["metadata"]["generation"])


def reconciled(kube: Kube, generation: int) -> None:
    eventually(
        lambda: (c := condition(kube, GRAPH, "Accepted")) and c["observedGeneration"] >= generation,
        what=f"generation {generation} reconciled",
    )


def revisions(kube: Kube) -> set[str]:
    """The Deployment's ReplicaSets: a new one means every pod was replaced."""
    items = kube.http.get("/apis/apps/v1/namespaces/agents/replicasets").json()["items"]
    return {rs["metadata"]["name"] for rs in items}


def replicas(kube: Kube) -> int | None:
    deployment = deployment_of(kube)
    return None if deployment is None else deployment["spec"].get("replicas")


def pod_spec(kube: Kube) -> dict:
    return deployment_of(kube)["spec"]["template"]["spec"]


def test_fields_the_spec_no_longer_sets_disappear(kube, operator):
    jwt_secret(kube)
    spec = graph()["spec"]
    spec.update(
        nodeSelector={"pool": "agents"},
        serviceAccountName="agent",
        podLabels={"team": "a"},
        podAnnotations={"note": "x"},
        affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
        service={"annotations": {"example.com/lb": "internal"}},
    )
    kube.create({**graph(), "spec": spec}, "agentgraphs")
    reconciled(kube, 1)
    assert pod_spec(kube)["nodeSelector"] == {"pool": "agents"}

    generation = patch_graph(
        kube,
        {
            "nodeSelector": None,
            "serviceAccountName": None,
            "podLabels": None,
            "podAnnotations": None,
            "affinity": None,
            "service": None,
            "disruption": {"minAvailable": None, "maxUnavailable": 1},  # was minAvailable: 2
        },
    )
    reconciled(kube, generation)
    pod = pod_spec(kube)
    assert "nodeSelector" not in pod
    assert "serviceAccountName" not in pod
    assert "affinity" not in pod
    template = deployment_of(kube)["spec"]["template"]["metadata"]
    assert "team" not in template["labels"]
    assert "note" not in template["annotations"]
    service = kube.get("v1", "services", "agents", GRAPH)
    assert "annotations" not in service["metadata"]
    budget = kube.get("policy/v1", "poddisruptionbudgets", "agents", GRAPH)["spec"]
    assert budget["maxUnavailable"] == 1
    assert "minAvailable" not in budget


def test_only_what_pods_see_restarts_them(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    reconciled(kube, 1)
    first = revisions(kube)
    assert len(first) == 1
    kube.patch(AG, "agentgraphs", "agents", GRAPH, {"spec": {"replicas": 5}}, sub="scale")
    eventually(lambda: replicas(kube) == 5, what="5 replicas")
    for change in (
        {"disruption": {"minAvailable": None, "maxUnavailable": 2}},
        {"service": {"port": 8080}},
        {"rollout": {"maxSurge": 2}},
    ):
        reconciled(kube, patch_graph(kube, change))
    assert revisions(kube) == first  # no pod was replaced

    reconciled(kube, patch_graph(kube, {"workers": 3}))
    assert len(revisions(kube) - first) == 1  # the pods run differently: a rollout


def test_replicas_pass_to_the_autoscaler_without_a_dip_and_come_back_from_zero(kube, operator):
    jwt_secret(kube)
    kube.create(graph(), "agentgraphs")
    kube.patch(AG, "agentgraphs", "agents", GRAPH, {"spec": {"replicas": 5}}, sub="scale")
    eventually(lambda: replicas(kube) == 5, what="5 replicas")
    emulator = kube.server.emulator
    since = kube.server.call(lambda: emulator.cluster.rv)

    autoscaled = {"minReplicas": 2, "maxReplicas": 6}
    reconciled(kube, patch_graph(kube, {"autoscaling": autoscaled}))
    eventually(
        lambda: kube.get("autoscaling/v2", "horizontalpodautoscalers", "agents", GRAPH),
        what="the HPA",
    )
    seen = kube.server.call(
        lambda: [
            e.obj["spec"].get("replicas")
            for e in emulator.cluster.history
            if e.rv > since and e.rtype.kind == "Deployment"
        ]
    )
    assert seen, "no Deployment write seen"
    assert min(seen) == 5, seen  # never reset to 1 on the way to the autoscaler

    reconciled(kube, patch_graph(kube, {"suspend": True}))
    eventually(lambda: replicas(kube) == 0, what="suspended")
    reconciled(kube, patch_graph(kube, {"suspend": False}))
    # The autoscaler leaves a workload at zero alone: the operator brings it to minReplicas.
    eventually(lambda: replicas(kube) == 2, what="back to minReplicas")

    reconciled(kube, patch_graph(kube, {"autoscaling": None, "replicas": 0}))
    eventually(lambda: replicas(kube) == 0, what="scaled to zero")
    ready = condition(kube, GRAPH, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ScaledToZero")
    reconciled(kube, patch_graph(kube, {"autoscaling": autoscaled}))
    eventually(lambda: replicas(kube) == 2, what="up from zero")


def test_an_omitted_replica_count_reads_one_through_the_scale_subresource(kube, operator):
    body = graph()
    del body["spec"]["replicas"]
    kube.create(body, "agentgraphs")
    scale = kube.http.get(f"/apis/{AG}/namespaces/agents/agentgraphs/{GRAPH}/scale").json()
    assert scale["spec"]["replicas"] == 1


def test_a_converged_graph_costs_no_request_even_when_resynced(kube, monkeypatch, caplog):
    monkeypatch.setenv("AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET", "agentflow-system/checkpointer")
    monkeypatch.setenv("AGENTFLOW_OPERATOR_RESYNC_S", "0.5")
    jwt_secret(kube)
    body = graph()
    # Quantities the API server stores in another form (1000m -> 1, 1024Mi -> 1Gi).
    body["spec"]["resources"] = {"requests": {"cpu": "1000m", "memory": "1024Mi"}}
    kube.create(body, "agentgraphs")
    args = ["run", "--all-namespaces", "--standalone", "-m", "agentflow_operator.handlers"]
    with KopfRunner(args, timeout=60) as runner:
        reconciled(kube, 1)
        eventually(lambda: condition(kube, GRAPH, "Ready"), what="a status")
        requests = kube.server.emulator.requests
        start = len(requests)

        def resyncs() -> int:
            return sum(r.getMessage().startswith("resync:") for r in caplog.records)

        rounds = resyncs()
        # Several resyncs go by, each comparing the graph with the watch caches.
        eventually(lambda: resyncs() >= rounds + 4, what="four resyncs")
        made = [
            (r.method, r.path)
            for r in requests[start:]
            if not r.user_agent.startswith("python-httpx") and "watch" not in r.query
        ]
        assert made == []
    assert runner.exception is None, runner.output
