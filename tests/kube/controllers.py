"""The two controllers of kube-controller-manager that an operator's behaviour depends on.

* **Deployment**: a ReplicaSet per pod template (named ``<deployment>-<pod-template-hash>``,
  labelled with the hash, revision in ``deployment.kubernetes.io/revision``); a changed
  template makes a new revision and scales the previous ones to zero, a template seen before
  brings its ReplicaSet back as the newest revision, and old ReplicaSets beyond
  ``revisionHistoryLimit`` are deleted. A new ReplicaSet means every pod is replaced: tests
  read "did this restart the pods" from it. Not emulated: the gradual rollout (pods are the
  node agent's), ``paused``, and the Deployment's status (the node agent or the test writes it).
* **HorizontalPodAutoscaler**: scales its target through the scale subresource, as
  ``kube-controller-manager``: up to ``minReplicas``, down to ``maxReplicas``, otherwise to what
  :meth:`Controllers.recommend` set (no metrics exist here), and never a target at zero
  replicas (``ScalingActive=False``, reason ``ScalingDisabled``: how the real controller treats
  a workload scaled to zero by someone else).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.kube.cluster import Cluster, ResourceType, WatchEvent

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # rand.SafeEncodeString's alphabet


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


class Controllers:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.recommendations: dict[tuple[str, str], int] = {}

    def _type(self, group: str, plural: str) -> ResourceType:
        return self.cluster.types[(group, plural)]

    def react(self, event: WatchEvent) -> None:
        kind, meta = event.rtype.kind, event.obj["metadata"]
        namespace = meta.get("namespace", "")
        if kind == "Deployment" and event.type != "DELETED":
            self.sync_deployment(namespace, meta["name"])
        if kind == "Deployment":
            hpas = self._type("autoscaling", "horizontalpodautoscalers")
            for hpa in list(self.cluster.stored(hpas, namespace)):
                if (hpa["spec"].get("scaleTargetRef") or {}).get("name") == meta["name"]:
                    self.sync_hpa(namespace, hpa["metadata"]["name"])
        if kind == "HorizontalPodAutoscaler" and event.type != "DELETED":
            self.sync_hpa(namespace, meta["name"])

    def recommend(self, namespace: str, hpa: str, replicas: int) -> None:
        """What the metrics would ask of this autoscaler (a test's stand-in for metrics)."""
        self.recommendations[(namespace, hpa)] = replicas
        self.sync_hpa(namespace, hpa)

    # ------------------------------------------------------------------ Deployments

    def sync_deployment(self, namespace: str, name: str) -> None:
        from tests.kube.cluster import CONTROLLER

        cluster = self.cluster
        deployments, replicasets = (
            self._type("apps", "deployments"),
            self._type("apps", "replicasets"),
        )
        deployment = cluster.find(deployments, namespace, name)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        spec = deployment["spec"]
        template = spec["template"]
        current = template_hash(template)
        uid = deployment["metadata"]["uid"]
        owned = [rs for rtype, rs in cluster.dependents(uid) if rtype is replicasets]
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")) for rs in owned
        ]
        newest = max(revisions, default=0)
        new = next(
            (rs for rs in owned if rs["metadata"]["labels"].get(HASH_LABEL) == current), None
        )
        replicas = spec.get("replicas", 1)
        if new is None:
            revision = newest + 1
            labels = {**(template["metadata"].get("labels") or {}), HASH_LABEL: current}
            body = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": f"{name}-{current}",
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": {REVISION: str(revision)},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "Deployment",
                            "name": name,
                            "uid": uid,
                            "controller": True,
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {
                        "matchLabels": {
                            **(spec["selector"].get("matchLabels") or {}),
                            HASH_LABEL: current,
                        }
                    },
                    "template": {
                        **template,
                        "metadata": {**template["metadata"], "labels": labels},
                    },
                },
            }
            cluster.create(replicasets, namespace, body, CONTROLLER)
        else:
            revision = int(new["metadata"]["annotations"][REVISION])
            if revision != newest:
                revision = newest + 1  # an older template back: its ReplicaSet is the newest
            self._set(replicasets, new, replicas, revision)
        for rs in owned:
            if rs["metadata"]["labels"].get(HASH_LABEL) != current:
                self._set(replicasets, rs, 0, None)
        history = spec.get("revisionHistoryLimit", 10)
        old = sorted(
            (rs for rs in owned if rs["metadata"]["labels"].get(HASH_LABEL) != current),
            key=lambda rs: int(rs["metadata"]["annotations"][REVISION]),
        )
        for rs in old[: max(len(old) - history, 0)]:
            cluster.delete(replicasets, namespace, rs["metadata"]["name"])
        annotations = deployment["metadata"].get("annotations") or {}
        if annotations.get(REVISION) != str(revision):
            updated = copy.deepcopy(deployment)
            updated["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
            cluster.replace(deployments, namespace, name, updated, None, CONTROLLER)

    def _set(self, replicasets: ResourceType, rs: Obj, replicas: int, revision: int | None) -> None:
        from tests.kube.cluster import CONTROLLER

        updated = copy.deepcopy(rs)
        updated["spec"]["replicas"] = replicas
        if revision is not None:
            updated["metadata"]["annotations"][REVISION] = str(revision)
        if updated != rs:
            meta = rs["metadata"]
            self.cluster.replace(
                replicasets, meta["namespace"], meta["name"], updated, None, CONTROLLER
            )

    # ------------------------------------------------------------------ autoscalers

    def sync_hpa(self, namespace: str, name: str) -> None:
        from tests.kube.cluster import CONTROLLER, now

        cluster = self.cluster
        hpas = self._type("autoscaling", "horizontalpodautoscalers")
        hpa = cluster.find(hpas, namespace, name)
        if hpa is None:
            return
        spec = hpa["spec"]
        target_ref = spec.get("scaleTargetRef") or {}
        deployments = self._type("apps", "deployments")
        target = (
            cluster.find(deployments, namespace, target_ref.get("name", ""))
            if target_ref.get("kind") == "Deployment"
            else None
        )
        status: Obj = dict(hpa.get("status") or {})
        if target is None:
            conditions = [
                _condition(
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    f"the HPA controller was unable to get the target's current scale: {target_ref.get('kind')} {target_ref.get('name')} not found",
                )
            ]
            status.update(currentReplicas=0, desiredReplicas=0, conditions=conditions)
        else:
            current = int(target["spec"].get("replicas", 1))
            low, high = int(spec.get("minReplicas", 1)), int(spec["maxReplicas"])
            able = _condition(
                "AbleToScale",
                "True",
                "SucceededGetScale",
                "the HPA controller was able to get the target's current scale",
            )
            if current == 0 and low != 0:
                desired = 0
                active = _condition(
                    "ScalingActive",
                    "False",
                    "ScalingDisabled",
                    "scaling is disabled since the replica count of the target is zero",
                )
            else:
                wanted = self.recommendations.get((namespace, name), current)
                desired = min(max(wanted, low), high)
                active = _condition(
                    "ScalingActive",
                    "True",
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count",
                )
                if desired != current:
                    cluster.replace(
                        deployments,
                        namespace,
                        target["metadata"]["name"],
                        {"spec": {"replicas": desired}},
                        "scale",
                        CONTROLLER,
                    )
                    status["lastScaleTime"] = now()
            status.update(
                currentReplicas=current, desiredReplicas=desired, conditions=[able, active]
            )
        if status != (hpa.get("status") or {}):
            updated = copy.deepcopy(hpa)
            updated["status"] = status
            cluster.replace(hpas, namespace, name, updated, "status", CONTROLLER)


def _condition(kind: str, status: str, reason: str, message: str) -> Obj:
    return {"type": kind, "status": status, "reason": reason, "message": message}
