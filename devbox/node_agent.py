"""A node agent: the stand-in for the Deployment controller, kubelet and the container runtime.

It polls the API emulator for Deployments and runs every desired replica as a real local
process of the runtime, built from the pod template only:

* the container's ``command``/``args`` (``agentflow api ...``) run with this Python; the
  image must be one the agent knows (an image catalog maps it to the code the image would
  hold, put on the import path); anything else is refused with a clear Pod status;
* env: values, and ``secretKeyRef``/``configMapKeyRef`` resolved from the emulator;
* the container port becomes a free loopback port (``--host``/``--port`` are rewritten to
  127.0.0.1 and that port: nothing binds beyond loopback); the ``tmp`` emptyDir becomes a
  temporary folder; other volumes are refused;
* the readiness probe is run as written (path, period, timeout, failureThreshold); Pods are
  written back to the emulator with their Ready condition and their loopback port
  (annotation ``agentflow.dev/host-port``), and the Deployment's status (replicas, updated,
  ready, available, conditions) follows;
* a changed pod template rolls the replicas within maxSurge/maxUnavailable; a replica going
  away first leaves the endpoints (not Ready), runs its preStop sleep, then gets SIGTERM and
  terminationGracePeriodSeconds before SIGKILL; a crashed replica is restarted.

It does not emulate: scheduling, resource limits, other probe kinds than httpGet, image
pulls, init containers, several containers per pod, volumes other than emptyDir.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port

logger = logging.getLogger("node-agent")

HOST_PORT_ANNOTATION = "agentflow.dev/host-port"
POLL_S = 0.2


class Refused(Exception):
    """The pod template asks for something this agent cannot honour."""


def template_hash(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


def _count(value: Any, total: int, round_up: bool) -> int:
    """maxSurge/maxUnavailable: an int, or a percent of the replicas."""
    if isinstance(value, str) and value.endswith("%"):
        share = total * int(value[:-1]) / 100
        return int(-(-share // 1)) if round_up else int(share)
    return int(value)


@dataclass
class Replica:
    name: str
    deployment: str
    namespace: str
    template_hash: str
    port: int
    process: asyncio.subprocess.Process
    tmp: Path
    labels: dict[str, str]
    image: str
    ready: bool = False
    terminating: bool = False
    pod_created: bool = False
    restarts: int = 0
    started: float = field(default_factory=time.monotonic)
    log: list[str] = field(default_factory=list)


class NodeAgent:
    def __init__(self, api_url: str, images: dict[str, Path], log_dir: Path) -> None:
        self.api_url = api_url
        self.images = images  # image -> the folder its code lives in
        self.log_dir = log_dir
        self.replicas: dict[str, Replica] = {}
        self.events: list[str] = []  # what happened, for tests and people
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[Any]] = set()

    def _background(self, work: Any) -> None:
        """Run ``work`` concurrently, keeping a reference until it is done."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ life cycle

    def start(self) -> NodeAgent:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        if self._thread is not None:
            self._thread.join(60)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10) as api:
            self.api = api
            while not self._stopping:
                try:
                    await self._sync()
                except Exception as error:  # keep going, like a kubelet
                    logger.exception("node agent round failed: %s", error)
                await asyncio.sleep(POLL_S)
            await asyncio.gather(
                *(self._terminate(r, grace=5) for r in list(self.replicas.values()))
            )

    def kill(self, name: str) -> None:
        """SIGKILL a replica (a test's fault injection)."""
        replica = self.replicas[name]
        os.kill(replica.process.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ reconciliation

    async def _sync(self) -> None:
        deployments = (await self.api.get("/apis/apps/v1/deployments")).json()["items"]
        wanted = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in deployments}
        for replica in list(self.replicas.values()):
            if (replica.namespace, replica.deployment) not in wanted and not replica.terminating:
                self._background(self._terminate(replica))
        for deployment in deployments:
            await self._sync_deployment(deployment)

    async def _sync_deployment(self, deployment: dict[str, Any]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        namespace, name = meta["namespace"], meta["name"]
        template = spec["template"]
        current = template_hash(template)
        desired = int(spec.get("replicas", 1))
        strategy = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        surge = _count(strategy.get("maxSurge", "25%"), desired, round_up=True)
        unavailable = _count(strategy.get("maxUnavailable", "25%"), desired, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        mine = [
            r
            for r in self.replicas.values()
            if (r.namespace, r.deployment) == (namespace, name) and not r.terminating
        ]
        for replica in mine:  # crashed: restart in place (the kubelet's restartPolicy Always)
            if replica.process.returncode is not None and not replica.terminating:
                await self._restart(replica, template)
        new = [r for r in mine if r.template_hash == current]
        old = [r for r in mine if r.template_hash != current]
        ready = [r for r in mine if r.ready]
        error = None
        if len(new) < desired and len(mine) < desired + surge:
            try:
                await self._launch(deployment, template, current)
            except Refused as refusal:
                error = str(refusal)
        elif old and len(ready) > desired - unavailable:
            victim = next((r for r in old if not r.ready), None) or old[0]
            self._background(self._terminate(victim, template=template))
        elif not old and len(new) > desired:
            victim = next((r for r in new if not r.ready), None) or max(
                new, key=lambda r: r.started
            )
            self._background(self._terminate(victim, template=template))
        await self._write_status(deployment, current, desired, max(desired - unavailable, 0), error)

    async def _launch(
        self, deployment: dict[str, Any], template: dict[str, Any], current: str
    ) -> None:
        meta = deployment["metadata"]
        name = f"{meta['name']}-{current[:5]}-{uuid.uuid4().hex[:5]}"
        port = free_port()
        tmp = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        process = await self._spawn(meta["namespace"], template, port, tmp, name)
        labels = template["metadata"].get("labels", {})
        image = template["spec"]["containers"][0]["image"]
        self.replicas[name] = Replica(
            name, meta["name"], meta["namespace"], current, port, process, tmp, labels, image
        )
        self.events.append(f"started {name} on 127.0.0.1:{port}")
        self._background(self._probe(self.replicas[name], template))

    async def _restart(self, replica: Replica, template: dict[str, Any]) -> None:
        replica.restarts += 1
        replica.ready = False
        replica.process = await self._spawn(
            replica.namespace, template, replica.port, replica.tmp, replica.name
        )
        self.events.append(f"restarted {replica.name} (crash {replica.restarts})")
        self._background(self._probe(replica, template))

    async def _spawn(
        self, namespace: str, template: dict[str, Any], port: int, tmp: Path, name: str
    ) -> asyncio.subprocess.Process:
        pod = template["spec"]
        containers = pod["containers"]
        if len(containers) != 1:
            raise Refused("the node agent runs pods of exactly one container")
        container = containers[0]
        image = container["image"]
        if image not in self.images:
            raise Refused(
                f"the node agent cannot run image {image!r}: "
                f"it runs only {', '.join(sorted(self.images))}"
            )
        for volume in pod.get("volumes", []):
            if "emptyDir" not in volume:
                raise Refused(
                    f"the node agent supports only emptyDir volumes, not {volume['name']!r}"
                )
        if container.get("command", [])[:1] != ["agentflow"]:
            raise Refused("the node agent runs only the runtime's `agentflow` command")
        args = list(container.get("args", []))
        for flag, value in (("--host", "127.0.0.1"), ("--port", str(port))):  # loopback only
            if flag in args:
                args[args.index(flag) + 1] = value
            else:
                args += [flag, value]
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(tmp),
            "TMPDIR": str(tmp),
            "PYTHONPATH": str(self.images[image]),
        }
        for variable in container.get("env", []):
            env[variable["name"]] = await self._value(namespace, variable)
        for source in container.get("envFrom", []):
            raise Refused(f"the node agent does not resolve envFrom ({source})")
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115, ASYNC230 - the child keeps it
        command = [sys.executable, "-m", "agentflow", *container["command"][1:], *args]
        return await asyncio.create_subprocess_exec(
            *command, cwd=self.images[image], env=env, stdout=log, stderr=log
        )

    async def _value(self, namespace: str, variable: dict[str, Any]) -> str:
        if "value" in variable:
            return str(variable["value"])
        source = variable.get("valueFrom", {})
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = await self.api.get(f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}")
            if secret.status_code != 200:
                raise Refused(f"Secret {namespace}/{ref['name']} does not exist")
            return base64.b64decode(secret.json()["data"][ref["key"]]).decode()
        if "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            config = await self.api.get(f"/api/v1/namespaces/{namespace}/configmaps/{ref['name']}")
            return str(config.json()["data"][ref["key"]])
        raise Refused(f"the node agent cannot resolve env {variable['name']}")

    async def _probe(self, replica: Replica, template: dict[str, Any]) -> None:
        probe = template["spec"]["containers"][0].get("readinessProbe") or {}
        path = (probe.get("httpGet") or {}).get("path", "/")
        period = float(probe.get("periodSeconds", 10))
        # As the kubelet: ready after one success, not ready after failureThreshold failures in
        # a row (one slow answer on a busy machine does not take a Pod out of its Service).
        threshold = int(probe.get("failureThreshold", 3))
        failures = 0
        async with httpx.AsyncClient(timeout=float(probe.get("timeoutSeconds", 1))) as client:
            while (
                replica.name in self.replicas
                and not replica.terminating
                and replica.process.returncode is None
            ):
                try:
                    answer = await client.get(f"http://127.0.0.1:{replica.port}{path}")
                    passed = answer.status_code == 200
                except httpx.HTTPError:
                    passed = False
                failures = 0 if passed else failures + 1
                if passed or failures >= threshold:
                    replica.ready = passed
                # Not yet ready: probe often (a startup); ready: every period, as written.
                await asyncio.sleep(period if replica.ready else 0.2)
        replica.ready = False

    async def _terminate(
        self, replica: Replica, grace: float | None = None, template: dict[str, Any] | None = None
    ) -> None:
        """What a kubelet does: leave the endpoints, preStop, SIGTERM, grace, SIGKILL."""
        if replica.terminating:
            return
        replica.terminating = True
        replica.ready = False
        self.events.append(f"stopping {replica.name}")
        await self._write_pod(replica)
        pod = (template or {}).get("spec", {})
        container = (pod.get("containers") or [{}])[0]
        pre_stop = (
            container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command") or []
        )
        if pre_stop[:1] == ["sleep"]:
            await asyncio.sleep(float(pre_stop[1]))
        if replica.process.returncode is None:
            replica.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    replica.process.wait(),
                    grace or float(pod.get("terminationGracePeriodSeconds", 30)),
                )
            if replica.process.returncode is None:
                replica.process.kill()
                await replica.process.wait()
        self.events.append(f"stopped {replica.name} (exit {replica.process.returncode})")
        self.replicas.pop(replica.name, None)
        await self.api.delete(f"/api/v1/namespaces/{replica.namespace}/pods/{replica.name}")
        shutil.rmtree(replica.tmp, ignore_errors=True)

    # ------------------------------------------------------------------ status

    async def _write_pod(self, replica: Replica) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": replica.name,
                "namespace": replica.namespace,
                "labels": replica.labels,
                "annotations": {HOST_PORT_ANNOTATION: str(replica.port)},
            },
            "spec": {"containers": [{"name": "runtime", "image": replica.image}]},
        }
        path = f"/api/v1/namespaces/{replica.namespace}/pods"
        if replica.name not in self.replicas:
            return  # gone meanwhile: its Pod was deleted
        if not replica.pod_created:
            (await self.api.post(path, json=body)).raise_for_status()
            replica.pod_created = True
        status = {
            "phase": "Running" if replica.process.returncode is None else "Failed",
            "podIP": "127.0.0.1",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if replica.ready and not replica.terminating else "False",
                }
            ],
            "containerStatuses": [
                {
                    "name": "runtime",
                    "ready": replica.ready,
                    "restartCount": replica.restarts,
                    "image": replica.image,
                    "imageID": "",  # no registry here: nothing was pulled
                }
            ],
        }
        await self._patch_status(f"{path}/{replica.name}/status", status)

    async def _patch_status(self, path: str, status: dict[str, Any]) -> None:
        """Write an object's status, as the kubelet and controllers do (a merge patch of the
        status subresource); an object deleted meanwhile (404) is nothing to write."""
        written = await self.api.patch(
            path, json={"status": status}, headers={"content-type": "application/merge-patch+json"}
        )
        if written.status_code != 404:
            written.raise_for_status()

    async def _write_status(
        self,
        deployment: dict[str, Any],
        current: str,
        desired: int,
        minimum: int,
        error: str | None,
    ) -> None:
        meta = deployment["metadata"]
        mine = [
            r
            for r in self.replicas.values()
            if (r.namespace, r.deployment) == (meta["namespace"], meta["name"])
        ]
        for replica in mine:
            await self._write_pod(replica)
        ready = sum(1 for r in mine if r.ready)
        updated = sum(1 for r in mine if r.template_hash == current and not r.terminating)
        available = ready >= minimum and (ready > 0 or desired == 0)
        conditions = [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            },
            {
                "type": "Progressing",
                "status": "False" if error else "True",
                "reason": "ProgressDeadlineExceeded" if error else "ReplicaSetUpdated",
                "message": error or "",
            },
        ]
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": len(mine),
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "conditions": conditions,
        }
        if deployment.get("status") != status:
            await self._patch_status(
                f"/apis/apps/v1/namespaces/{meta['namespace']}/deployments/{meta['name']}/status",
                status,
            )
