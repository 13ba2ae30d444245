"""A started server collects garbage as tuned for serving (its own process: the settings are
process-wide)."""

import json
import os
import subprocess
import sys

from agentflow.runtime.collector import YOUNG_THRESHOLD
from tests.conftest import ROOT

STARTED_APP = """
import asyncio, gc, json
from agentflow.runtime.app import create_app
from agentflow.runtime.settings import load_settings

async def main():
    app = create_app(load_settings())
    before = gc.get_threshold()[0]
    async with app.router.lifespan_context(app):
        print(json.dumps([before, gc.get_threshold()[0], gc.get_freeze_count()]))

asyncio.run(main())
"""


def test_start_up_freezes_what_it_loaded_and_makes_young_passes_rarer():
    env = {**os.environ, "AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}
    out = subprocess.run(
        [sys.executable, "-c", STARTED_APP], cwd=ROOT, env=env, capture_output=True, check=True
    ).stdout
    before, after, frozen = json.loads(out.splitlines()[-1])
    assert before == 700  # Python's default, until the server has started
    assert after == YOUNG_THRESHOLD
    assert frozen > 10_000  # FastAPI, pydantic and the graph: left out of every collection
