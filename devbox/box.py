"""Cluster in a box: a local simulation of Kubernetes running the real operator and real
runtime processes, for tests and for people (``python -m devbox``).

* the API emulator (tests/kube), with the generated CRDs and the Helm chart's RBAC objects
  applied by kubectl;
* the real operator, as an ``agentflow-operator run`` process acting as the chart's
  ServiceAccount (so the chart's RBAC decides every request it makes), pointed by its default
  checkpointer settings at this machine's Postgres and Redis;
* the node agent (node_agent.py): Deployments become local runtime processes;
* a Service proxy (service_proxy.py) per Service, on a loopback port.

It is a simulation: no container isolation, no scheduler, no network policies, no real
kube-proxy (see the node agent and the proxy for what each does not do).
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from devbox.node_agent import NodeAgent
from devbox.service_proxy import ServiceProxy
from tests.conftest import ROOT, free_port
from tests.kube.emulator import EmulatorServer
from tests.tools import helm

OPERATOR_NAMESPACE = "agentflow-system"
OPERATOR_ACCOUNT = "agentflow"  # the chart's ServiceAccount for the release "agentflow"
# The images the node agent can run, and the code each would hold.
IMAGES = {
    "ghcr.io/agentflow/runtime:0.1.0": ROOT / "examples",
    "ghcr.io/agentflow/support-agent:0.1.0": ROOT / "examples",
    "ghcr.io/agentflow/test-graphs:0.1.0": ROOT,  # tests/graphs, for scenarios
    "ghcr.io/agentflow/test-graphs:0.1.1": ROOT,  # the same code: an image change to roll out
}


class ClusterInABox:
    def __init__(self, database_url: str, redis_url: str, workdir: Path | None = None) -> None:
        self.owns_workdir = workdir is None  # a folder of its own: removed at stop
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="cluster-in-a-box-"))
        self.database_url = database_url
        self.redis_url = redis_url
        self.proxies: dict[tuple[str, str], ServiceProxy] = {}

    # ------------------------------------------------------------------ life cycle

    def start(self) -> ClusterInABox:
        self.emulator = EmulatorServer(free_port()).start()
        self.kubeconfig = self.emulator.kubeconfig(self.workdir / "kubeconfig")
        self.operator_kubeconfig = self.emulator.kubeconfig(
            self.workdir / "operator-kubeconfig", (OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
        )
        self.api = httpx.Client(base_url=self.emulator.url, timeout=10)
        self.kubectl("apply", "-f", str(ROOT / "crds"))
        self._apply_chart_rbac()
        self._create_checkpointer_secret()
        self.operator = self._start_operator()
        self.nodes = NodeAgent(self.emulator.url, IMAGES, self.workdir).start()
        return self

    def stop(self) -> None:
        for proxy in self.proxies.values():
            proxy.stop()
        self.nodes.stop()
        self.stop_operator()
        self.api.close()
        self.emulator.stop()
        if self.owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def stop_operator(self) -> None:
        """Stop the operator (as an uninstall or a crash loop would), leaving the rest running."""
        if self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            self.operator.wait(30)

    def __enter__(self) -> ClusterInABox:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        result = subprocess.run(
            ["kubectl", *args], capture_output=True, text=True, env=env, timeout=60
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def _apply_chart_rbac(self) -> None:
        """The operator's ServiceAccount and RBAC, exactly as the chart renders them: the
        emulator enforces them on every request the operator makes."""
        self._create("/api/v1/namespaces", {"metadata": {"name": OPERATOR_NAMESPACE}})
        rendered = subprocess.run(
            [
                helm(),
                "template",
                "agentflow",
                str(ROOT / "charts" / "agentflow-operator"),
                "--namespace",
                OPERATOR_NAMESPACE,
                "--set",
                "crds.install=false",
                "--set",
                f"graphDefaults.dsnSecret={OPERATOR_NAMESPACE}/checkpointer",
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        wanted = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
        objects = [o for o in yaml.safe_load_all(rendered) if o and o["kind"] in wanted]
        path = self.workdir / "rbac.yaml"
        path.write_text(yaml.safe_dump_all(objects))
        self.kubectl("apply", "-f", str(path))

    def _create_checkpointer_secret(self) -> None:
        secret = {"metadata": {"name": "checkpointer"}, "stringData": {"dsn": self.database_url}}
        self._create(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets", secret)

    def _create(self, path: str, body: dict[str, Any]) -> None:
        # Not `kubectl create`: it speaks protobuf for built-in kinds, which the emulator does not.
        self.api.post(path, json=body).raise_for_status()

    def _start_operator(self) -> subprocess.Popen[bytes]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.operator_kubeconfig),
            # Its own port: a second box (or anything on 8080) must not stop it from starting.
            "AGENTFLOW_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{free_port()}/healthz",
            "AGENTFLOW_OPERATOR_DEFAULT_DSN_SECRET": f"{OPERATOR_NAMESPACE}/checkpointer",
            "AGENTFLOW_OPERATOR_DEFAULT_REDIS_URL": self.redis_url,
            # Short grace periods keep scale-downs and rollouts quick in a simulation.
            "AGENTFLOW_OPERATOR_SHUTDOWN_GRACE_S": "3",
        }
        log = (self.workdir / "operator.log").open("ab")
        code = "from agentflow_operator.cli import main; main()"
        return subprocess.Popen(
            [sys.executable, "-c", code, "run"], env=env, stdout=log, stderr=log
        )

    # ------------------------------------------------------------------ observing

    def get(self, path: str) -> dict[str, Any] | None:
        response = self.api.get(path)
        return response.json() if response.status_code == 200 else None

    def service(self, namespace: str, name: str) -> ServiceProxy:
        """The loopback address of a Service, proxied to its Ready pods."""
        key = (namespace, name)
        if key not in self.proxies:
            self.proxies[key] = ServiceProxy(
                self.emulator.url, namespace, name, free_port()
            ).start()
        return self.proxies[key]

    def processes(self, deployment: str) -> list[str]:
        return [
            name
            for name, r in list(self.nodes.replicas.items())
            if r.deployment == deployment and r.process.returncode is None
        ]


def example_token(manifest: Path) -> str:
    """A day's token for the example graph, made by ``agentflow token`` with its JWT Secret's
    key, as a user would make it."""
    secret = next(
        d for d in yaml.safe_load_all(manifest.read_text()) if d and d["kind"] == "Secret"
    )
    minted = subprocess.run(
        [sys.executable, "-m", "agentflow", "token", "--sub", "devbox", "--ttl", "86400"],
        env={**os.environ, "JWT_SECRET_KEY": secret["stringData"]["secret"]},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return minted.stdout.strip()


def main() -> None:
    """Start everything, apply the example, print how to reach it, tear down on Ctrl-C."""
    database = os.environ.get(
        "AGENTFLOW_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    redis_url = os.environ.get("AGENTFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # each line at once, piped too
    box = ClusterInABox(database, redis_url).start()
    print("a local SIMULATION of Kubernetes: the real operator and runtime, no real cluster")
    print(f"kubectl: export KUBECONFIG={box.kubeconfig}")
    try:
        example = ROOT / "examples" / "agentgraph.yaml"
        box.kubectl("apply", "-f", str(example))
        proxy = box.service("default", "support-agent")
        print(f"Service support-agent: {proxy.url}")
        print(f"a token for it: export TOKEN={example_token(example)}")
        print(
            f"try: curl -s {proxy.url}/v1/graph/invoke -H 'content-type: application/json' "
            '-H "Authorization: Bearer $TOKEN" -d \'{"messages": ["Where is my order 1002?"]}\''
        )
        last = ""
        while True:
            graph = (
                box.get("/apis/agentflow.dev/v1alpha1/namespaces/default/agentgraphs/support-agent")
                or {}
            )
            ready: dict[str, Any] = next(
                (
                    c
                    for c in (graph.get("status") or {}).get("conditions", [])
                    if c["type"] == "Ready"
                ),
                {},
            )
            processes = len(box.processes("support-agent"))
            status, message = ready.get("status", "?"), ready.get("message", "starting")
            line = f"Ready={status} ({message}), processes: {processes}"
            if line != last:
                print(line, flush=True)
                last = line
            time.sleep(1)
    except KeyboardInterrupt:
        print("tearing down")
    finally:
        box.stop()
