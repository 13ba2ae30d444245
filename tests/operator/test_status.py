from agentflow_operator.status import Verdict, condition, readiness

NOW, EARLIER = "2026-11-27T08:00:00Z", "2026-11-27T07:00:00Z"


def deployment(replicas=3, ready=3, updated=3, generation=2, observed=2, **conditions):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": observed,
            "readyReplicas": ready,
            "updatedReplicas": updated,
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": f"{kind} says {reason}",
                }
                for kind, (status, reason) in conditions.items()
            ],
        },
    }


def test_ready_follows_the_deployment():
    available = {"Available": ("True", "MinimumReplicasAvailable")}
    assert readiness(deployment(**available), False) == Verdict(
        "True", "Available", "3/3 replicas ready"
    )
    rolling = readiness(deployment(updated=1, **available), False)
    assert rolling == Verdict("True", "RollingOut", "3/3 replicas ready")
    none_ready = readiness(
        deployment(ready=0, Available=("False", "MinimumReplicasUnavailable")), False
    )
    assert none_ready == Verdict("False", "MinimumReplicasUnavailable", "0/3 replicas ready")


def test_a_stuck_rollout_is_not_ready_and_says_why():
    stuck = deployment(
        ready=2,
        Available=("True", "MinimumReplicasAvailable"),
        Progressing=("False", "ProgressDeadlineExceeded"),
    )
    verdict = readiness(stuck, False)
    assert verdict.status == "False"
    assert verdict.reason == "ProgressDeadlineExceeded"
    assert verdict.message == "Progressing says ProgressDeadlineExceeded; 2/3 replicas ready"


def test_an_unobserved_spec_is_pending_and_missing_or_suspended_say_so():
    assert readiness(deployment(observed=1), False).reason == "RolloutPending"
    assert readiness(None, False).reason == "DeploymentMissing"
    assert readiness(deployment(), True) == Verdict(
        "False", "Suspended", "suspended: scaled to zero, nothing deleted"
    )


def test_transition_time_moves_only_when_the_status_changes():
    previous = [{"type": "Ready", "status": "True", "lastTransitionTime": EARLIER}]
    same = condition("Ready", Verdict("True", "Available", "3/3"), 4, previous, NOW)
    assert same.last_transition_time == EARLIER
    assert same.observed_generation == 4
    flipped = condition("Ready", Verdict("False", "Unavailable", "0/3"), 4, previous, NOW)
    assert flipped.last_transition_time == NOW
