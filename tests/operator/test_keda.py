"""Autoscaling on the run queue with KEDA: the objects the operator writes are what KEDA's CRDs
accept, a graph asking for KEDA where it is not installed says so, and the operator switches
between KEDA and a HorizontalPodAutoscaler cleanly. The emulator serves KEDA's CRDs
(tests/kube/keda.py) but runs no KEDA: nothing here scales."""

import copy
import typing
from typing import Any

from cloudcoil.models.keda.v1alpha1 import (
    ScaledObject,
    ScaledObjectSpec,
    TriggerAuthentication,
    TriggerAuthenticationSpec,
)
from pydantic import BaseModel

from tests.kube.keda import CRDS
from tests.operator.conftest import Kube
from tests.operator.test_builders import build
from tests.operator.test_operator import AG, condition, deployment_of, graph, jwt_secret, warnings
from tests.polling import eventually

KEDA = "keda.sh/v1alpha1"
QUEUE = {"minReplicas": 2, "maxReplicas": 8, "keda": {"targetRunsPerReplica": 3}}


def install_keda(kube: Kube) -> None:
    for crd in CRDS:
        kube.create(crd, "customresourcedefinitions")


def keda_objects(kube: Kube, name: str = "support-agent") -> tuple[dict | None, dict | None]:
    return (
        kube.get(KEDA, "scaledobjects", "agents", name),
        kube.get(KEDA, "triggerauthentications", "agents", name),
    )


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside an annotation (``Optional[List[Trigger]]`` -> ``Trigger``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _unknown_fields(schema: dict, model: type[BaseModel], path: str) -> list[str]:
    """The properties of ``schema`` that ``model`` (KEDA's published API) does not have."""
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    unknown = []
    for name, child in (schema.get("properties") or {}).items():
        field = fields.get(name)
        if field is None:
            unknown.append(f"{path}.{name}")
            continue
        inner = child.get("items", child)
        nested = _model_of(field.annotation)
        if "properties" in inner and nested is not None:
            unknown += _unknown_fields(inner, nested, f"{path}.{name}")
    return unknown


def test_the_keda_objects_built_are_what_kedas_published_api_takes():
    """Checked with the models generated from KEDA's own CRDs (cloudcoil-models-keda): every
    field known, of its type, the required ones present (a field KEDA does not know would be
    lost in the round trip)."""
    built = [o for o in build("keda") if o["apiVersion"] == KEDA]
    for obj, model in zip(built, (ScaledObject, TriggerAuthentication), strict=True):
        parsed = model.model_validate(obj)
        assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == obj


def test_the_emulators_keda_crds_describe_only_fields_kedas_api_has():
    """The emulator's KEDA CRDs are written from KEDA's documentation (tests/kube/keda.py):
    each field they describe must be one of KEDA's published API."""
    models = {"ScaledObject": ScaledObjectSpec, "TriggerAuthentication": TriggerAuthenticationSpec}
    for crd in CRDS:
        kind = crd["spec"]["names"]["kind"]
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
        assert _unknown_fields(schema, models[kind], kind) == []


def test_the_keda_objects_built_are_what_kedas_crds_accept_unpruned(kube):
    install_keda(kube)
    built = [o for o in build("keda") if o["apiVersion"] == KEDA]
    assert [o["kind"] for o in built] == ["ScaledObject", "TriggerAuthentication"]
    for obj in built:
        body = copy.deepcopy(obj)
        del body["metadata"]["ownerReferences"]  # no such graph here: the collector would act
        plural = "scaledobjects" if obj["kind"] == "ScaledObject" else "triggerauthentications"
        stored = kube.create(body, plural)
        assert stored["spec"] == obj["spec"]  # nothing pruned, nothing defaulted away

    broken = copy.deepcopy(built[0])
    del broken["metadata"]["ownerReferences"]
    broken["metadata"]["name"] = "broken"
    del broken["spec"]["triggers"]
    refused = kube.http.post(kube.path(KEDA, "scaledobjects", "agents"), json=broken)
    assert refused.status_code == 422
    assert "triggers" in refused.json()["message"]


def test_keda_needs_keda_then_replaces_the_hpa_and_gives_way_to_it_again(kube, operator):
    jwt_secret(kube)
    kube.create(graph(autoscaling=QUEUE), "agentgraphs")
    refused = eventually(
        lambda: (
            (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "False" and c
        ),
        what="Accepted=False without KEDA",
    )
    assert refused["reason"] == "KedaNotInstalled"
    assert "ScaledObject (keda.sh/v1alpha1)" in refused["message"]
    eventually(lambda: warnings(kube, "KedaNotInstalled"), what="a Warning Event")

    install_keda(kube)  # the refused graph is retried, with backoff
    scaled, authentication = eventually(
        lambda: all(keda_objects(kube)) and keda_objects(kube),
        within_s=60,
        what="the ScaledObject and TriggerAuthentication once KEDA is installed",
    )
    eventually(
        lambda: condition(kube, "support-agent", "Accepted")["status"] == "True",
        what="Accepted once KEDA is installed",
    )
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["metadata"]["query"] == (
        "SELECT count(*) FROM agentflow_runs WHERE graph_id = 'agents/support-agent'"
        " AND status IN ('pending', 'running')"
    )
    assert trigger["metadata"]["targetQueryValue"] == "3"
    assert (scaled["spec"]["minReplicaCount"], scaled["spec"]["maxReplicaCount"]) == (2, 8)
    assert authentication["spec"]["secretTargetRef"] == [
        {"parameter": "connection", "name": "support-agent-checkpointer", "key": "DATABASE_URL"}
    ]
    env = deployment_of(kube)["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "AGENTFLOW_GRAPH_ID", "value": "agents/support-agent"} in env
    hpa = ("autoscaling/v2", "horizontalpodautoscalers", "agents", "support-agent")
    assert kube.get(*hpa) is None  # KEDA makes its own

    plain = {"minReplicas": 2, "maxReplicas": 8, "keda": None}  # a merge patch: null removes
    kube.patch(AG, "agentgraphs", "agents", "support-agent", {"spec": {"autoscaling": plain}})
    eventually(lambda: kube.get(*hpa), what="the HPA instead")
    eventually(lambda: keda_objects(kube) == (None, None), what="KEDA's objects gone")


def test_keda_is_refused_without_postgres_and_beside_hpa_targets(kube, operator):
    memory = graph(autoscaling=QUEUE, checkpointer={"type": "memory"})
    kube.create(memory, "agentgraphs")
    refused = eventually(
        lambda: (
            (c := condition(kube, "support-agent", "Accepted")) and c["status"] == "False" and c
        ),
        what="Accepted=False with the memory checkpointer",
    )
    assert refused["reason"] == "InvalidSpec"
    assert "needs the Postgres checkpointer" in refused["message"]

    both = graph("both", autoscaling={**QUEUE, "targetCPUUtilizationPercentage": 70})
    response = kube.http.post(kube.path(AG, "agentgraphs", "agents"), json=both)
    assert response.status_code == 422
    assert "keda scales on the graph's run queue" in response.json()["message"]


def test_the_query_counts_the_queue_the_runtime_keeps(database_url):
    """The operator's trigger query, run against the run store's own table."""
    import asyncio
    import uuid

    from agentflow.postgres import PgDatabase
    from agentflow.runstore.depth import queue_depth_sql
    from agentflow.runstore.postgres import PgRunStore
    from tests.runstore.test_contract import new_run

    async def depth_after_work() -> tuple[int, int]:
        database = PgDatabase(database_url)
        await database.setup()
        try:
            graph_id = f"agents/graph-{uuid.uuid4().hex[:8]}"
            store = PgRunStore(database, graph_id=graph_id)
            other = PgRunStore(database, graph_id=graph_id + "-other")
            for index in range(5):
                await store.submit(new_run(f"t{index}"), max_pending=100)
            await other.submit(new_run("t"), max_pending=100)
            claimed = await store.claim(limit=2, max_attempts=3)  # 2 running, 3 pending
            claimed[0].status = "success"
            await store.finish(claimed[0])  # 1 running, 3 pending, 1 ended
            sql = queue_depth_sql(graph_id)
            depth = await database.run(lambda conn: conn.fetchval(sql))
            quoted = await database.run(lambda conn: conn.fetchval(queue_depth_sql("it's")))
            return depth, quoted
        finally:
            await database.close()

    assert asyncio.run(depth_after_work()) == (4, 0)
