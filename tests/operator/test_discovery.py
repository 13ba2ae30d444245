"""The operator discovers the API server's resources afresh in each process: a discovery cache
another process left behind (the kubernetes client's default: one file per API host in /tmp)
may name resources the server no longer serves."""

import hashlib
import tempfile
from pathlib import Path

import httpx
import yaml
from kubernetes.client import ApiClient, Configuration
from kubernetes.dynamic import DynamicClient

from agentflow_operator.apiserver import ApiServer
from tests.conftest import free_port
from tests.kube.client import ROOT, Kube
from tests.kube.emulator import EmulatorServer

PEERING = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering", "metadata": {"name": "x"}}


def api_client(url: str) -> ApiClient:
    configuration = Configuration()
    configuration.host = url
    return ApiClient(configuration)


def test_a_stale_discovery_cache_of_the_same_host_is_not_read():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    default_cache = Path(tempfile.gettempdir()) / (
        f"osrcp-{hashlib.md5(url.encode(), usedforsecurity=False).hexdigest()}.json"
    )
    try:
        # An earlier API server on this host served kopf's peering CRDs, and a process cached
        # that where the client caches by default.
        earlier = EmulatorServer(port).start()
        with httpx.Client(base_url=url, timeout=10) as http:
            kube = Kube(earlier, http)
            for crd in yaml.safe_load_all((ROOT / "crds" / "kopf-peering.yaml").read_text()):
                kube.create(crd, "customresourcedefinitions")
        DynamicClient(api_client(url)).resources.get(
            api_version="kopf.dev/v1", kind=PEERING["kind"]
        )
        earlier.stop()
        assert default_cache.exists()

        # Now the server at that address serves no such CRD: the operator must see that (and
        # carry on without peering), not request what the stale cache names and fail on a 404.
        now = EmulatorServer(port).start()
        try:
            assert ApiServer(api_client(url)).create_if_missing(PEERING) is False
        finally:
            now.stop()
    finally:
        default_cache.unlink(missing_ok=True)
