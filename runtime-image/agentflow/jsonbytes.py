"""JSON bytes that are kept (in logs, buffers and in-memory stores), at the size they are.

orjson (3.13) writes into a buffer sized by an estimate and hands that buffer back without
shrinking it: 213 bytes of JSON hold 4 KiB, 20 KB hold 260 KB. Harmless for a response
written and dropped; for what is kept, a ten- to twenty-fold waste that every bound counted
in bytes (``AGENTFLOW_STREAM_MAX_BYTES``) would miss. One copy of the exact size costs a
memcpy.
"""

from __future__ import annotations

from typing import Any

import orjson


def dumps_to_keep(value: Any) -> bytes:
    """``orjson.dumps(value)``, holding no more memory than its length."""
    return bytes(memoryview(orjson.dumps(value)))
