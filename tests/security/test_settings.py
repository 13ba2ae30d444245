"""Settings: every bad value stops start-up with one line naming the variable."""

import pytest

from tests.cli.test_api_command import run_agentflow

GRAPH = {"AGENTFLOW_GRAPH": "tests.graphs.versatile:app"}


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"MODE": "staging"},
            "MODE='staging' is invalid: Input should be 'development' or 'production'",
        ),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is invalid"),
        ({"ORIGINS": "https://ok.example,ftp://bad"}, "'ftp://bad' is not an origin"),
        ({"ORIGINS": "https://trailing.example/"}, "is not an origin"),
        ({"JWT_SECRET_KEY": "s" * 40, "JWT_ALGORITHM": "none"}, "JWT_ALGORITHM='none' is invalid"),
        (
            {"JWT_SECRET_KEY": "s" * 40, "JWT_ALGORITHM": "RS256"},
            "JWT_ALGORITHM=RS256 verifies with a public key",
        ),
        (
            {"CORS_ALLOW_CREDENTIALS": "true"},
            "CORS_ALLOW_CREDENTIALS=true cannot go with ORIGINS=*",
        ),
        ({"AGENTFLOW_MAX_BODY_BYTES": "lots"}, "AGENTFLOW_MAX_BODY_BYTES='lots' is invalid"),
        (
            {"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": "not a key"},
            "JWT_PUBLIC_KEY is not a PEM public key",
        ),
        (
            {"AGENTFLOW_WEBHOOK_ALLOWED_URLS": "https://hooks.example/"},
            "AGENTFLOW_WEBHOOK_ALLOWED_URLS needs AGENTFLOW_WEBHOOK_SECRET",
        ),
        (
            {
                "AGENTFLOW_WEBHOOK_ALLOWED_URLS": "ftp://hooks.example/",
                "AGENTFLOW_WEBHOOK_SECRET": "k",
            },
            "'ftp://hooks.example/' is not a webhook URL prefix",
        ),
        (
            {"AGENTFLOW_WEBHOOK_ALLOWED_URLS": "https://u:PW-s3cret@hooks.example/"},
            "a webhook URL prefix must not carry credentials",
        ),
    ],
)
def test_a_bad_setting_stops_startup_with_one_line_naming_it(env, line):
    result = run_agentflow("api", env={**GRAPH, **env})
    assert result.returncode != 0
    lines = [text for text in result.stderr.splitlines() if text.strip()]
    assert len(lines) == 1, result.stderr
    assert line in lines[0]
    assert "Traceback" not in result.stderr


def test_secret_values_are_never_repeated_in_settings_errors():
    result = run_agentflow(
        "api", env={**GRAPH, "JWT_SECRET_KEY": "hunter2-hunter2", "JWT_ALGORITHM": "ES256"}
    )
    assert result.returncode != 0
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("DATABASE_URL", "postgresql:/postgres:PW-s3cret@host:5460/db", "starting with"),
        ("DATABASE_URL", "host=127.0.0.1 password=PW-s3cret dbname=x", "starting with"),
        ("DATABASE_URL", "postgres//bad:PW-s3cret@@host", "starting with"),
        ("DATABASE_URL", "postgresql://u:PW-s3cret@@127.0.0.1:1/db", "more than one '@'"),
        ("DATABASE_URL", "postgresql://u:PW-s3cret@127.0.0.1:port/db", "port"),
        ("REDIS_URL", "redis://:PW-s3cret@h:port/0", "port"),
        ("REDIS_URL", "http://:PW-s3cret@h/0", "starting with redis://"),
    ],
)
def test_a_malformed_connection_url_is_one_line_without_its_password(variable, value, problem):
    env = {**GRAPH, "CHECKPOINTER": "postgres", "DATABASE_URL": "postgresql://u@h/db"}
    result = run_agentflow("api", env={**env, variable: value})
    assert result.returncode != 0
    lines = [text for text in result.stderr.splitlines() if text.strip()]
    assert len(lines) == 1, result.stderr
    assert f"{variable} is invalid" in lines[0]
    assert problem in lines[0]
    assert "PW-s3cret" not in result.stderr
