"""Identifiers.

``new_id()`` is for ids that only need to be unique (checkpoints, messages, requests): a
random per-process prefix and a counter, no system call per id. ``secret_id()`` is for ids
handed to clients that must not be guessable (threads, runs): 128 bits from the OS.
"""

from __future__ import annotations

import itertools
import os
import uuid

_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count()


def new_id() -> str:
    """Unique across processes (a 64-bit random prefix per process), cheap to make."""
    return f"{_PREFIX}{next(_COUNTER):016x}"


def secret_id() -> str:
    """Unique and unguessable: a random UUID (version 4), as 32 hex digits."""
    return uuid.uuid4().hex


def _reset_after_fork() -> None:
    global _PREFIX, _COUNTER
    _PREFIX, _COUNTER = os.urandom(8).hex(), itertools.count()


os.register_at_fork(after_in_child=_reset_after_fork)
