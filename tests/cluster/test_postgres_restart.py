"""Postgres restarted under load, in the cluster in a box: every replica stays in the Service and
answers 503 with a clear body while it is down, and the same processes serve again once it is
back."""

import time

import httpx

from devbox.box import ClusterInABox
from tests.cluster.test_cluster_in_a_box import EXAMPLE, ready, token
from tests.polling import eventually


def test_postgres_restarting_mid_load(own_postgres, redis_url):
    postgres = own_postgres
    with ClusterInABox(postgres.url, redis_url) as box:
        box.kubectl("apply", "-f", str(EXAMPLE))
        eventually(lambda: ready(box), within_s=120, what="Ready")
        service = box.service("default", "support-agent")
        eventually(lambda: len(service.endpoints) == 3, what="3 endpoints")
        pids = {name: r.process.pid for name, r in box.nodes.replicas.items()}
        statuses, bodies = [], []
        with httpx.Client(base_url=service.url, timeout=30) as client:

            def ask() -> int:
                answer = client.post(
                    "/v1/graph/invoke", json={"messages": ["where is order 1001?"]}, headers=token()
                )
                statuses.append(answer.status_code)
                if answer.status_code != 200:
                    bodies.append(answer.json())
                return answer.status_code

            assert ask() == 200
            postgres.stop()
            down_since = time.monotonic()
            while time.monotonic() - down_since < 3:
                ask()
            postgres.start()
            eventually(
                lambda: ask() == 200 and ask() == 200 and ask() == 200,
                within_s=60,
                what="service resumed",
            )
        failures = [s for s in statuses if s != 200]
        assert failures, sorted(set(statuses))
        assert set(failures) == {503}, sorted(set(statuses))
        # Every answer came from a replica (none was "no endpoints"): readiness does not follow
        # the Postgres all replicas share, so the Service kept them and they said why.
        assert all(b["error"]["code"] == "checkpointer_unavailable" for b in bodies)
        assert len(service.endpoints) == 3
        # None was restarted either.
        assert {name: r.process.pid for name, r in box.nodes.replicas.items()} == pids
        assert all(r.restarts == 0 for r in box.nodes.replicas.values())
