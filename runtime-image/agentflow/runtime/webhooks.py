"""Webhooks: a background run's result POSTed to the URL its submitter gave, signed.

* Only URLs that start with a prefix of ``AGENTFLOW_WEBHOOK_ALLOWED_URLS`` are accepted (when
  the run is submitted), and redirects are not followed: a tenant cannot make the server call
  an address the operator did not allow.
* Every delivery is signed: ``X-Agentflow-Signature: v1=<hex>``, the HMAC-SHA256, keyed with
  ``AGENTFLOW_WEBHOOK_SECRET``, of ``<timestamp>.<body>``, where the timestamp (Unix seconds) is
  ``X-Agentflow-Timestamp``. A receiver checks both with :func:`verify`; an old timestamp is a
  replay.
* A delivery is retried (1, 2, 4... s apart, at most 60 s) on a network failure, a timeout,
  408, 429 and 5xx, up to ``AGENTFLOW_WEBHOOK_MAX_ATTEMPTS``; any other answer ends it. The
  receiver may see a delivery more than once (at least once): the run id names it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from agentflow.runstore import Delivery
from agentflow.runtime.errors import InvalidRequestError
from agentflow.runtime.metrics import Metrics

logger = logging.getLogger("agentflow.runtime")

SIGNATURE_HEADER = "X-Agentflow-Signature"
TIMESTAMP_HEADER = "X-Agentflow-Timestamp"
REPLAY_TOLERANCE_S = 300
RETRY_MAX_S = 60.0
_RETRIED_STATUSES = {408, 429}


class WebhookNotAllowedError(InvalidRequestError):
    code = "webhook_not_allowed"


def allowed_url(url: str, prefixes: list[str]) -> str:
    """``url`` if a run may name it as its webhook, or :class:`WebhookNotAllowedError`."""
    if not prefixes:
        raise WebhookNotAllowedError(
            "webhooks are off on this server: its operator allows none "
            "(AGENTFLOW_WEBHOOK_ALLOWED_URLS)"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise WebhookNotAllowedError(
            "the webhook must be an http(s) URL with a host and without credentials"
        )
    if not any(url.startswith(prefix) for prefix in prefixes):
        raise WebhookNotAllowedError(
            "the webhook's URL is not one this server may call: it must start with one of the "
            "prefixes of AGENTFLOW_WEBHOOK_ALLOWED_URLS"
        )
    return url


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256)
    return f"v1={digest.hexdigest()}"


def verify(
    secret: bytes,
    body: bytes,
    headers: Mapping[str, str],
    *,
    tolerance_s: float = REPLAY_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """What a receiver runs: whether ``body`` was signed with ``secret`` less than
    ``tolerance_s`` ago (``headers`` as received, any case)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    stamp = lowered.get(TIMESTAMP_HEADER.lower(), "")
    given = lowered.get(SIGNATURE_HEADER.lower(), "")
    if not stamp.isascii() or not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, int(stamp), body))


class Deliverer:
    """POSTs webhook bodies, with retries; one HTTP client (pooled, bounded) per process."""

    def __init__(
        self,
        secret: bytes,
        *,
        timeout_s: float,
        max_attempts: int,
        max_in_flight: int,
        metrics: Metrics,
    ) -> None:
        self.secret = secret
        self.max_attempts = max_attempts
        self.max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)  # attempts beyond wait, not fail
        self.metrics = metrics
        self.client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            limits=httpx.Limits(
                max_connections=max_in_flight, max_keepalive_connections=min(max_in_flight, 10)
            ),
            headers={"User-Agent": "agentflow-webhooks"},
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    async def deliver(self, delivery: Delivery, run_id: str, body: bytes) -> Delivery:
        """Deliver ``body`` until it is accepted, refused, or out of attempts; ``delivery``
        updated with how it went (also after each attempt, should the process stop)."""
        while delivery.attempts < self.max_attempts:
            delivery.attempts += 1
            async with self._slots:
                outcome = await self._attempt(delivery.url, run_id, body, delivery.attempts)
            if outcome is None:
                delivery.status, delivery.last_error = "delivered", None
                delivery.delivered_at = time.time()
                self.metrics.webhook_deliveries.labels("delivered").inc()
                return delivery
            retry, delivery.last_error = outcome
            if not retry or delivery.attempts >= self.max_attempts:
                break
            self.metrics.webhook_deliveries.labels("retried").inc()
            await asyncio.sleep(min(2 ** (delivery.attempts - 1), RETRY_MAX_S))
        delivery.status = "failed"
        self.metrics.webhook_deliveries.labels("failed").inc()
        logger.warning(
            "webhook of run %s failed after %d attempt(s): %s",
            run_id,
            delivery.attempts,
            delivery.last_error,
        )
        return delivery

    async def _attempt(
        self, url: str, run_id: str, body: bytes, attempt: int
    ) -> tuple[bool, str] | None:
        """None when delivered; else whether to retry, and why it failed."""
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: signature(self.secret, stamp, body),
            "X-Agentflow-Run-Id": run_id,
            "X-Agentflow-Delivery-Attempt": str(attempt),
        }
        try:
            response = await self.client.post(url, content=body, headers=headers)
        except httpx.HTTPError as error:
            return True, f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        if 200 <= response.status_code < 300:
            return None
        retry = response.status_code >= 500 or response.status_code in _RETRIED_STATUSES
        return retry, f"the receiver answered {response.status_code}"
