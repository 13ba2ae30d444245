"""The check that runs after the whole suite over every server log (tests/conftest.py):
what it catches, and what it lets pass."""

import jwt

from tests.conftest import _secrets_in, leaks_in


def test_it_catches_tokens_url_passwords_and_given_secrets():
    token = jwt.encode({"sub": "alice"}, "k" * 32, "HS256")
    log = (
        f"GET /v1/threads?stream_token={token} 200\n"
        "connecting to postgresql://app:hunter22@db:5432/x\n"
        "JWT_SECRET_KEY is my-given-secret-value\n"
    )
    secrets = _secrets_in(
        {"JWT_SECRET_KEY": "my-given-secret-value", "DATABASE_URL": "postgresql://a:pw-123456@h/d"}
    )
    assert secrets == {"my-given-secret-value", "pw-123456"}
    assert leaks_in(log, secrets) == [
        token,
        "postgresql://app:hunter22@",
        "the secret my-...",
    ]


def test_it_lets_redacted_lines_pass():
    log = (
        "GET /v1/threads/t/runs/r/stream?stream_token=*** 200\n"
        "the Postgres checkpointer is unavailable: postgresql://app:***@db:5432/x\n"
        "Authorization header refused: the token's signature is invalid\n"
    )
    assert leaks_in(log, {"my-given-secret-value"}) == []
