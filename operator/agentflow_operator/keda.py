"""KEDA's objects, typed, as far as the operator writes them: a ScaledObject whose trigger is
the graph's background run queue (KEDA's PostgreSQL scaler), and the TriggerAuthentication that
hands the scaler the graph's DSN Secret. KEDA publishes Go types only; these follow its
documented ``keda.sh/v1alpha1`` API, and the tests check what they build against the CRD schema
the API emulator serves for KEDA."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

KEDA_API_VERSION = "keda.sh/v1alpha1"
QUEUE_TRIGGER = "run-queue"


class _Keda(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class ScaleTargetRef(_Keda):
    api_version: str = "apps/v1"
    kind: str = "Deployment"
    name: str


class AuthenticationRef(_Keda):
    name: str


class Trigger(_Keda):
    type: str
    name: str
    metadata: dict[str, str]
    authentication_ref: AuthenticationRef


class HorizontalPodAutoscalerConfig(_Keda):
    behavior: dict[str, Any]


class Advanced(_Keda):
    horizontal_pod_autoscaler_config: HorizontalPodAutoscalerConfig


class ScaledObjectSpec(_Keda):
    scale_target_ref: ScaleTargetRef
    polling_interval: int
    cooldown_period: int
    min_replica_count: int
    max_replica_count: int
    advanced: Advanced | None = None
    triggers: list[Trigger]


class SecretTargetRef(_Keda):
    parameter: str
    name: str
    key: str


class TriggerAuthenticationSpec(_Keda):
    secret_target_ref: list[SecretTargetRef]
