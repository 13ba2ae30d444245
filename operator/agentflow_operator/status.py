"""Pure status logic: the AgentGraph's conditions from what the operator saw.

Ready is honest: it follows the Deployment's own Available and Progressing conditions (so a
rollout stuck on a bad image says ProgressDeadlineExceeded), never "the objects exist".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def condition(
    kind: str, verdict: Verdict, generation: int, previous: list[Manifest], now: str
) -> Manifest:
    """A condition, keeping the previous transition time while the status is unchanged."""
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != verdict.status
    return {
        "type": kind,
        "status": verdict.status,
        "reason": verdict.reason,
        "message": verdict.message,
        "observedGeneration": generation,
        "lastTransitionTime": now if changed else before["lastTransitionTime"],  # type: ignore[index]
    }


def readiness(deployment: Manifest | None, suspended: bool) -> Verdict:
    if suspended:
        return Verdict("False", "Suspended", "suspended: scaled to zero, nothing deleted")
    if deployment is None:
        return Verdict("False", "DeploymentMissing", "the Deployment does not exist yet")
    status = deployment.get("status") or {}
    wanted = int(deployment.get("spec", {}).get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    count = f"{ready}/{wanted} replicas ready"
    if int(status.get("observedGeneration") or 0) < int(
        deployment["metadata"].get("generation", 1)
    ):
        return Verdict("False", "RolloutPending", f"the new spec is not rolled out yet; {count}")
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    progressing = conditions.get("Progressing", {})
    if progressing.get("reason") == "ProgressDeadlineExceeded":
        detail = progressing.get("message") or "the rollout made no progress"
        return Verdict("False", "ProgressDeadlineExceeded", f"{detail}; {count}")
    available = conditions.get("Available", {})
    if available.get("status") == "True" and (ready > 0 or wanted == 0):
        updated = int(status.get("updatedReplicas") or 0)
        reason = "Available" if updated >= wanted else "RollingOut"
        return Verdict("True", reason, count)
    reason = available.get("reason") or "Unavailable"
    return Verdict("False", reason, count)
