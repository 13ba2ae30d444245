"""Garbage collection tuned for a server.

Python's cycle collector runs a young-generation pass every 700 net allocations of container
objects. Twenty requests in flight keep thousands of short-lived dicts and frames alive at
once, so at that threshold it ran every few requests and found almost nothing (refcounting
frees them), and its full passes walked every object the server loaded at start-up (FastAPI,
pydantic, the graph): 8% of the time of a short run and pauses of up to 50 ms
(docs/benchmarks.md).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""Net container allocations between young-generation passes: well above what the requests in
flight hold at once, while still bounding the cyclic garbage waiting to be freed to a few MB."""


def tune_for_serving() -> None:
    """Call once start-up is done: what was loaded so far lives as long as the process, so it
    leaves the collector's walks (``gc.freeze``), and young passes become rarer."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
