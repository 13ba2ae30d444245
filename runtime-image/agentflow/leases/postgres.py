"""Thread leases in Postgres, shared by every worker and replica.

A lease is a row. A lease whose process has lost its liveness lock (it died) is taken over at
once, and any lease runs out after ``lease_s`` at worst; the holder renews it every third of
that while it runs.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agentflow.checkpoint.base import CheckpointerError
from agentflow.leases.base import Holder, ThreadLease, ThreadLeases, ThreadLockedError
from agentflow.postgres import LIVE_WORKERS, PgDatabase

logger = logging.getLogger("agentflow.leases")

GIVE_BACK_AGAIN_S = 1.0

_LOCK = f"""
INSERT INTO agentflow_thread_locks AS l (graph_id, thread_id, holder, worker_key, expires_at)
VALUES ($1, $2, $3, $4, now() + make_interval(secs => $5))
ON CONFLICT (graph_id, thread_id) DO UPDATE
    SET holder = EXCLUDED.holder, worker_key = EXCLUDED.worker_key,
        expires_at = EXCLUDED.expires_at
    WHERE l.expires_at < now() OR l.worker_key NOT IN ({LIVE_WORKERS})
RETURNING holder
"""

_HOLDER = f"""
SELECT holder FROM agentflow_thread_locks AS l
WHERE graph_id = $1 AND thread_id = $2 AND expires_at >= now()
  AND l.worker_key IN ({LIVE_WORKERS})
"""


class PgLeases(ThreadLeases):
    def __init__(self, database: PgDatabase, *, graph_id: str, lease_s: float = 30.0) -> None:
        self.database = database
        self.graph_id = graph_id
        self.lease_s = lease_s
        self._giving_back: set[asyncio.Task[None]] = set()

    async def acquire(self, thread_id: str, holder: Holder) -> ThreadLease:
        try:
            taken = await self.database.run(
                lambda conn: conn.fetchval(
                    _LOCK,
                    self.graph_id,
                    thread_id,
                    str(holder),
                    self.database.worker_key,
                    self.lease_s,
                )
            )
        except CheckpointerError:
            # Postgres may still take the lease (a stalled server runs the statement once it
            # wakes up), for a request that has given up: give it back when it can.
            self.give_back_later(thread_id, holder)
            raise
        if taken is None:
            raise ThreadLockedError(thread_id, await self.holder(thread_id))
        return _PgLease(self, thread_id, holder)

    async def holder(self, thread_id: str) -> Holder | None:
        text: str | None = await self.database.run(
            lambda conn: conn.fetchval(_HOLDER, self.graph_id, thread_id)
        )
        return None if text is None else Holder.parse(text)

    async def renew(self, lease: ThreadLease) -> bool:
        """Push the lease's end back; False when it was lost (taken over after expiring)."""
        renewed = await self.database.run(
            lambda conn: conn.fetchval(
                "UPDATE agentflow_thread_locks SET expires_at = now() + make_interval(secs => $4)"
                " WHERE graph_id = $1 AND thread_id = $2 AND holder = $3 RETURNING 1",
                self.graph_id,
                lease.thread_id,
                str(lease.holder),
                self.lease_s,
            )
        )
        return renewed is not None

    async def give_back(self, thread_id: str, holder: Holder) -> None:
        await self.database.run(
            lambda conn: conn.execute(
                "DELETE FROM agentflow_thread_locks"
                " WHERE graph_id = $1 AND thread_id = $2 AND holder = $3",
                self.graph_id,
                thread_id,
                str(holder),
            )
        )

    def give_back_later(self, thread_id: str, holder: Holder) -> None:
        """Give the thread back as soon as Postgres answers, in the background: a lease that
        could not be given back (or that a request gave up taking) must not keep the thread
        busy until it runs out. Holders are unique, so this never frees someone else's."""
        task = asyncio.create_task(self._give_back_when_possible(thread_id, holder))
        self._giving_back.add(task)
        task.add_done_callback(self._giving_back.discard)

    async def _give_back_when_possible(self, thread_id: str, holder: Holder) -> None:
        deadline = time.monotonic() + self.lease_s  # by then the lease has run out anyway
        delay = 0.05
        while self.database.is_open and time.monotonic() < deadline:
            try:
                await self.give_back(thread_id, holder)
                # Once more, a moment later: a statement a stalled server had received
                # before it stalled may take the lease only now.
                await asyncio.sleep(GIVE_BACK_AGAIN_S)
                await self.give_back(thread_id, holder)
                return
            except CheckpointerError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)


class _PgLease(ThreadLease):
    """Renews itself every third of the lease time until released."""

    def __init__(self, leases: PgLeases, thread_id: str, holder: Holder) -> None:
        super().__init__(thread_id, holder)
        self._leases = leases
        self._renewer = asyncio.create_task(self._keep_renewed())

    async def _keep_renewed(self) -> None:
        while True:
            await asyncio.sleep(self._leases.lease_s / 3)
            try:
                if not await self._leases.renew(self):
                    logger.warning("lost the lease of thread %s (%s)", self.thread_id, self.holder)
                    return
            except CheckpointerError as error:
                logger.warning("could not renew the lease of thread %s: %s", self.thread_id, error)

    async def release(self) -> None:
        if self._renewer.done():
            return
        self._renewer.cancel()
        try:
            await self._leases.give_back(self.thread_id, self.holder)
        except CheckpointerError as error:
            logger.warning("could not release thread %s yet: %s", self.thread_id, error)
            self._leases.give_back_later(self.thread_id, self.holder)
