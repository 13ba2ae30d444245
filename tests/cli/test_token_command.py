"""`agentflow token` as a user runs it: the token it prints is one the server accepts."""

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.cli.test_api_command import run_agentflow
from tests.conftest import start_server

SECRET = "token-command-secret-" + "t" * 43


def test_a_minted_token_opens_a_production_server(tmp_path):
    env = {"JWT_SECRET_KEY": SECRET, "JWT_ISSUER": "https://issuer", "JWT_AUDIENCE": "agents"}
    server = start_server(
        tmp_path, {**env, "AGENTFLOW_GRAPH": "tests.graphs.versatile:app", "MODE": "production"}
    )
    try:
        minted = run_agentflow("token", "--sub", "alice", "--ttl", "600", env=env)
        assert minted.returncode == 0, minted.stderr
        token = minted.stdout.strip()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            headers = {"Authorization": f"Bearer {token}"}
            assert client.get("/v1/threads", headers=headers).status_code == 200
            assert client.get("/v1/threads").status_code == 401
    finally:
        server.stop()
    claims = jwt.decode(token, SECRET, ["HS256"], issuer="https://issuer", audience="agents")
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 600


def test_claims_are_json_when_they_parse_and_text_otherwise():
    minted = run_agentflow(
        "token",
        "--claim",
        "role=admin",
        "--claim",
        "n=5",
        "--claim",
        "tags=[1,2]",
        env={"JWT_SECRET_KEY": SECRET},
    )
    claims = jwt.decode(minted.stdout.strip(), SECRET, ["HS256"])
    assert (claims["sub"], claims["role"], claims["n"], claims["tags"]) == (
        "dev",
        "admin",
        5,
        [1, 2],
    )


def test_rs256_tokens_are_signed_with_the_private_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "key.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    env = {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": public.decode()}
    minted = run_agentflow("token", "--private-key", str(private), env=env)
    assert jwt.decode(minted.stdout.strip(), public, ["RS256"])["sub"] == "dev"
    without = run_agentflow("token", env=env)
    assert without.returncode == 1
    assert "RS256 tokens are signed with a private key: pass --private-key" in without.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {}, "JWT_SECRET_KEY is not set: a server without it needs no token"),
        ((), {"JWT_SECRET_KEY": ""}, "JWT_SECRET_KEY is invalid: must not be empty"),
        (("--claim", "sub=x"), {"JWT_SECRET_KEY": SECRET}, "sub is set from --sub, --ttl"),
        (("--claim", "novalue"), {"JWT_SECRET_KEY": SECRET}, "'novalue' is not NAME=VALUE"),
        (("--ttl", "0"), {"JWT_SECRET_KEY": SECRET}, "--ttl"),
    ],
)
def test_what_cannot_make_a_token_is_said_in_one_line(args, env, message):
    refused = run_agentflow("token", *args, env=env)
    assert refused.returncode != 0
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
