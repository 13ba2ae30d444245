"""The JWT checks, one by one, on the plain Authenticator (tokens made here with PyJWT)."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from agentflow.runtime.auth import Authenticator, AuthError, StreamTokens, StreamTokensOffError
from agentflow.runtime.settings import Settings, SettingsError

SECRET = "a-test-secret-of-64-bytes-enough-for-hs512-0123456789abcdefghijk"


def settings(**values: object) -> Settings:
    return Settings.model_validate({"JWT_SECRET_KEY": SECRET, **values})


def token(key: object = SECRET, algorithm: str = "HS256", **claims: object) -> str:
    payload = {"sub": "alice", "exp": int(time.time()) + 60, **claims}
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm)


def refusal(authenticator: Authenticator, header: str | None) -> AuthError:
    with pytest.raises(AuthError) as caught:
        authenticator.verify(header)
    assert caught.value.status == 401
    assert caught.value.headers["WWW-Authenticate"].startswith("Bearer")
    return caught.value


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_hmac_tokens_give_their_subject(algorithm):
    authenticator = Authenticator(settings(JWT_ALGORITHM=algorithm))
    assert authenticator.verify(f"Bearer {token(algorithm=algorithm)}") == "alice"


def pem_pair(private_key) -> tuple[object, str]:
    public = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_key, public.decode()


@pytest.mark.parametrize(
    ("algorithm", "make_key"),
    [
        ("RS256", lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ES256", lambda: ec.generate_private_key(ec.SECP256R1())),
    ],
)
def test_public_key_tokens_give_their_subject(algorithm, make_key):
    private, public = pem_pair(make_key())
    authenticator = Authenticator(
        Settings.model_validate({"JWT_ALGORITHM": algorithm, "JWT_PUBLIC_KEY": public})
    )
    assert authenticator.verify(f"Bearer {token(private, algorithm)}") == "alice"
    other, _ = pem_pair(make_key())
    assert refusal(authenticator, f"Bearer {token(other, algorithm)}").code == "bad_signature"


def test_a_public_key_that_is_not_one_is_a_settings_error():
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY is not a PEM public key"):
        Authenticator(Settings.model_validate({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": "x"}))


@pytest.mark.parametrize(
    ("header", "code", "phrase"),
    [
        (None, "missing_token", "needs 'Authorization: Bearer <token>'"),
        ("", "missing_token", "needs"),
        ("Basic dXNlcjpwdw==", "malformed_authorization", "must be 'Bearer <token>'"),
        ("Bearer", "malformed_authorization", "must be 'Bearer <token>'"),
        ("Bearer a b", "malformed_authorization", "single token"),
        ("Bearer not-a-jwt", "malformed_token", "not a well-formed JWT"),
    ],
)
def test_missing_and_garbled_headers(header, code, phrase):
    error = refusal(Authenticator(settings()), header)
    assert error.code == code
    assert phrase in str(error)


def test_each_failed_check_is_named():
    authenticator = Authenticator(settings(JWT_ISSUER="https://issuer", JWT_AUDIENCE="agents"))
    good = {"iss": "https://issuer", "aud": "agents"}
    now = int(time.time())
    cases = {
        "unsigned_token": jwt.encode({"sub": "a", "exp": now + 60, **good}, None, "none"),
        "wrong_algorithm": token(algorithm="HS512", **good),
        "bad_signature": token("x" * 64, **good),
        "token_expired": token(exp=now - 10, **good),
        "token_not_yet_valid": token(nbf=now + 600, **good),
        "wrong_issuer": token(iss="https://evil", aud="agents"),
        "wrong_audience": token(iss="https://issuer", aud="others"),
    }
    for code, bad in cases.items():
        error = refusal(authenticator, f"Bearer {bad}")
        assert error.code == code, (code, str(error))
        assert bad not in str(error)  # never echo the token
    assert authenticator.verify(f"Bearer {token(**good)}") == "alice"


def test_exp_and_sub_are_required():
    authenticator = Authenticator(settings())
    no_exp = jwt.encode({"sub": "alice"}, SECRET, "HS256")
    no_sub = jwt.encode({"exp": int(time.time()) + 60}, SECRET, "HS256")
    assert "'exp' claim" in str(refusal(authenticator, f"Bearer {no_exp}"))
    assert "'sub' claim" in str(refusal(authenticator, f"Bearer {no_sub}"))


def b64_json(value: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def handmade(
    header: dict[str, object], claims: dict[str, object], key: bytes = SECRET.encode()
) -> str:
    """A token with a header PyJWT itself would refuse to write (crit, a numeric kid), signed
    with HMAC-SHA256 and ``key``."""
    signing_input = f"{b64_json({'alg': 'HS256', 'typ': 'JWT', **header})}.{b64_json(claims)}"
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.parametrize(
    "header", [{"crit": ["exp"]}, {"crit": "x"}, {"crit": []}, {"kid": 5}, {"kid": ["a"]}]
)
def test_a_token_header_pyjwt_refuses_is_a_401_not_a_500(header):
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    error = refusal(Authenticator(settings()), f"Bearer {handmade(header, claims)}")
    assert error.code in ("invalid_token", "malformed_token")


def test_a_future_iat_is_named_as_iat():
    future = token(iat=int(time.time()) + 600)
    error = refusal(Authenticator(settings()), f"Bearer {future}")
    assert error.code == "token_not_yet_valid"
    assert "(iat)" in str(error)


# ---------------------------------------------------------------------- stream tokens


def test_a_stream_token_opens_one_runs_stream_for_its_subject():
    tokens = StreamTokens(settings())
    minted = tokens.mint("alice", "t1", "r1")
    assert tokens.verify(minted, "t1", "r1") == "alice"
    with pytest.raises(AuthError, match="another run"):
        tokens.verify(minted, "t1", "r2")
    with pytest.raises(AuthError, match="another run"):
        tokens.verify(minted, "t2", "r1")


def test_a_stream_token_is_no_bearer_token_and_a_bearer_token_no_stream_token():
    tokens = StreamTokens(settings())
    authenticator = Authenticator(settings())
    assert (
        refusal(authenticator, f"Bearer {tokens.mint('alice', 't', 'r')}").code == "bad_signature"
    )
    with pytest.raises(AuthError, match="stream token is not valid"):
        tokens.verify(token(run="t/r", aud="agentflow-stream"), "t", "r")  # the JWT's own key


def test_an_expired_stream_token_says_so():
    tokens = StreamTokens(settings(AGENTFLOW_STREAM_TOKEN_TTL_S=1))
    expired = jwt.encode(
        {"sub": "a", "aud": "agentflow-stream", "run": "t/r", "exp": int(time.time()) - 5},
        tokens.key,
        "HS256",
    )
    with pytest.raises(AuthError, match="expired") as caught:
        tokens.verify(expired, "t", "r")
    assert caught.value.code == "token_expired"


def test_stream_tokens_with_public_key_auth_need_their_own_secret():
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _, public = pem_pair(private)
    keyed_by_public = settings(JWT_SECRET_KEY=None, JWT_ALGORITHM="RS256", JWT_PUBLIC_KEY=public)
    with pytest.raises(StreamTokensOffError, match="AGENTFLOW_STREAM_TOKEN_SECRET"):
        StreamTokens(keyed_by_public).mint("alice", "t", "r")
    own = settings(
        JWT_SECRET_KEY=None,
        JWT_ALGORITHM="RS256",
        JWT_PUBLIC_KEY=public,
        AGENTFLOW_STREAM_TOKEN_SECRET="s" * 40,
    )
    tokens = StreamTokens(own)
    assert tokens.verify(tokens.mint("alice", "t", "r"), "t", "r") == "alice"


def unsigned(alg: str, claims: dict[str, object]) -> str:
    """A token whose header names ``alg`` and that has no signature at all."""
    return f"{b64_json({'alg': alg, 'typ': 'JWT'})}.{b64_json(claims)}."


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
def test_unsigned_tokens_are_refused_however_alg_none_is_spelled(alg):
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    error = refusal(Authenticator(settings()), f"Bearer {unsigned(alg, claims)}")
    assert (error.code, str(error)) == (
        "unsigned_token",
        "unsigned tokens (alg 'none') are refused",
    )


def test_a_token_signed_with_the_public_key_as_an_hmac_secret_is_refused():
    """Algorithm confusion: with RS256 configured, an attacker who knows the public key signs
    an HS256 token with it as the HMAC secret."""
    _, public = pem_pair(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    authenticator = Authenticator(
        Settings.model_validate({"JWT_ALGORITHM": "RS256", "JWT_PUBLIC_KEY": public})
    )
    claims = {"sub": "mallory", "exp": int(time.time()) + 60}
    forged = handmade({"alg": "HS256"}, claims, key=public.encode())
    assert refusal(authenticator, f"Bearer {forged}").code == "wrong_algorithm"
