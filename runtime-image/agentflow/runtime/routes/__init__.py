"""HTTP routes: thin translations between requests and the services (:class:`Runs`,
:class:`Threads`).

Routes take the services and the caller's subject from the request (:func:`runs_of`,
:func:`threads_of`, :func:`agentflow.runtime.auth.subject_of`) rather than as FastAPI
dependencies: each dependency costs every request its own resolution step, which measured
about 15% of the server's time for a short run (docs/benchmarks.md).
"""

from __future__ import annotations

from fastapi import Request

from agentflow.runtime.runs import Runs
from agentflow.runtime.threads import Threads


def runs_of(request: Request) -> Runs:
    runs: Runs = request.app.state.runs
    return runs


def threads_of(request: Request) -> Threads:
    threads: Threads = request.app.state.threads
    return threads
