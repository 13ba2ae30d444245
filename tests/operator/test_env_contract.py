"""The operator and the runtime share an environment contract: every environment the operator
can write for a valid AgentGraph is one the runtime's settings loader accepts (its names come
from the runtime's own settings, agentflow.runtime.settings.ENV_NAMES)."""

import itertools

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agentflow.runtime.auth import Authenticator
from agentflow.runtime.settings import ENV_NAMES, load_settings
from agentflow_operator.api import AgentGraphSpec
from agentflow_operator.builders import Graph, manifest, plan_checkpointer, runtime_env
from agentflow_operator.config import OperatorConfig

ALGORITHMS = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384"]
CHECKPOINTERS = {
    "memory": {"type": "memory"},
    "own postgres": {"postgres": {"dsnSecretRef": {"name": "db", "key": "dsn"}}},
    "default postgres": None,
    "redis by secret": {
        "postgres": {"dsnSecretRef": {"name": "db", "key": "dsn"}},
        "redis": {"urlSecretRef": {"name": "redis", "key": "url"}},
    },
}
CONFIG = OperatorConfig(
    default_dsn_secret="agentflow-system/checkpointer", default_redis_url="redis://redis:6379/0"
)


def pem_public_key(algorithm: str) -> str:
    if algorithm.startswith("RS"):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    else:
        key = ec.generate_private_key(ec.SECP256R1() if algorithm == "ES256" else ec.SECP384R1())
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


SECRET_VALUES = {
    "db/dsn": "postgresql://app:pw@postgres:5432/app",
    "redis/url": "redis://:pw@redis:6379/0",
    "agents-checkpointer/DATABASE_URL": "postgresql://app:pw@postgres:5432/shared",
}


def resolved(env: list[dict], secrets: dict[str, str]) -> dict[str, str]:
    """The environment a pod gets: values as written, secretKeyRefs read from the Secrets."""
    values = {}
    for variable in env:
        if "value" in variable:
            values[variable["name"]] = variable["value"]
        else:
            ref = variable["valueFrom"]["secretKeyRef"]
            values[variable["name"]] = secrets[f"{ref['name']}/{ref['key']}"]
    return values


@pytest.mark.parametrize(
    ("algorithm", "checkpointer"),
    list(itertools.product(ALGORITHMS, CHECKPOINTERS)),
)
def test_every_environment_the_operator_writes_starts_the_runtime(
    algorithm, checkpointer, monkeypatch
):
    spec = {
        "graph": "app.graph:app",
        "mode": "production",
        "logLevel": "DEBUG",
        "origins": ["https://a.example"],
        "auth": {"jwtSecretRef": {"name": "jwt", "key": "key"}, "algorithm": algorithm},
    }
    if CHECKPOINTERS[checkpointer] is not None:
        spec["checkpointer"] = CHECKPOINTERS[checkpointer]
    graph = Graph("agents", "team", "uid", AgentGraphSpec.model_validate(spec))
    plan = plan_checkpointer(graph, CONFIG)
    key = "k" * 64 if algorithm.startswith("HS") else pem_public_key(algorithm)
    env = [manifest(v) for v in runtime_env(graph, plan, CONFIG)]
    values = resolved(env, {**SECRET_VALUES, "jwt/key": key})
    for name in ENV_NAMES.values():  # only what the pod gets
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = load_settings()  # raises SettingsError naming the variable otherwise
    assert settings.auth_enabled
    assert settings.jwt_algorithm == algorithm
    assert settings.checkpointer == ("memory" if checkpointer == "memory" else "postgres")
    Authenticator(settings)  # the key is one the runtime can verify tokens with
