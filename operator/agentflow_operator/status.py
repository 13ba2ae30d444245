"""Pure status logic: the AgentGraph's conditions and status from what the operator saw.

Ready is honest: it follows the Deployment's own Available and Progressing conditions (so a
rollout stuck on a bad image says ProgressDeadlineExceeded), never "the objects exist", and a
graph running no pods is never Ready. The status is built as the typed ``AgentGraphStatus``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentflow_operator.api import AgentGraphStatus, Condition

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def condition(
    kind: str, verdict: Verdict, generation: int, previous: list[Manifest], now: str
) -> Condition:
    """A condition, keeping the previous transition time while the status is unchanged."""
    before = next((c for c in previous if c.get("type") == kind), None)
    changed = before is None or before.get("status") != verdict.status
    return Condition(
        type=kind,
        status=verdict.status,
        reason=verdict.reason,
        message=verdict.message,
        observed_generation=generation,
        last_transition_time=now if changed else str(before["lastTransitionTime"]),  # type: ignore[index]
    )


def readiness(deployment: Manifest | None, suspended: bool) -> Verdict:
    if suspended:
        return Verdict("False", "Suspended", "suspended: scaled to zero, nothing deleted")
    if deployment is None:
        return Verdict("False", "DeploymentMissing", "the Deployment does not exist yet")
    status = deployment.get("status") or {}
    wanted = int(deployment.get("spec", {}).get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    count = f"{ready}/{wanted} replicas ready"
    if wanted == 0:
        return Verdict("False", "ScaledToZero", "the Deployment is scaled to zero: nothing serves")
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
    if available.get("status") == "True" and ready > 0:
        updated = int(status.get("updatedReplicas") or 0)
        reason = "Available" if updated >= wanted else "RollingOut"
        return Verdict("True", reason, count)
    reason = available.get("reason") or "Unavailable"
    return Verdict("False", reason, count)


def build_status(
    generation: int,
    previous: list[Manifest],
    accepted: Verdict,
    deployment: Manifest | None,
    suspended: bool,
    now: str,
    selector: str | None,
    url: str | None,
) -> AgentGraphStatus:
    """The whole status: Accepted as decided, Ready and the counts from the Deployment."""
    ready = readiness(deployment, suspended)
    status = AgentGraphStatus(
        observed_generation=generation,
        conditions=[
            condition("Accepted", accepted, generation, previous, now),
            condition("Ready", ready, generation, previous, now),
        ],
        selector=selector,
        url=url,
    )
    if deployment is not None:
        observed = deployment.get("status") or {}
        status.replicas = int(observed.get("replicas") or 0)
        status.ready_replicas = int(observed.get("readyReplicas") or 0)
        status.image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    return status


def comparable(status: Manifest) -> Manifest:
    """A status without transition times, to tell whether writing it changes anything."""
    conditions = [
        {k: v for k, v in c.items() if k != "lastTransitionTime"}
        for c in status.get("conditions", [])
    ]
    return {**status, "conditions": conditions}
