"""JWT bearer authentication for ``/v1/*``.

:class:`Authenticator` is plain logic (``verify(authorization_header) -> subject``) so it is
tested without a server; :class:`AuthMiddleware` applies it to requests, and routes read the
result with :func:`subject_of`.
Each refusal names the check that failed and never repeats the token.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import jwt
from jwt.algorithms import get_default_algorithms
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from agentflow.errors import AgentflowError
from agentflow.runtime.errors import describe
from agentflow.runtime.responses import error_response
from agentflow.runtime.settings import HMAC_ALGORITHMS, Settings, SettingsError


class AuthError(AgentflowError):
    status = 401

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        # RFC 6750: tell the client which scheme to use, and (without the token) why.
        reason = "invalid_request" if code == "missing_token" else "invalid_token"
        self.headers = {"WWW-Authenticate": f'Bearer error="{reason}"'}


RESERVED_CLAIMS = ("sub", "iat", "exp", "iss", "aud")


def mint_token(
    settings: Settings,
    subject: str,
    ttl_s: int,
    claims: Mapping[str, Any] | None = None,
    private_key: str | None = None,
) -> str:
    """A token this server's settings accept: ``sub``, ``iat``, ``exp``, the configured
    ``iss`` and ``aud``, and ``claims``, signed with JWT_SECRET_KEY (HS*) or, for RS*/ES*,
    with ``private_key`` (PEM: the server itself holds only the public key)."""
    now = int(time.time())
    payload: dict[str, Any] = {**(claims or {}), "sub": subject, "iat": now, "exp": now + ttl_s}
    if settings.jwt_issuer:
        payload["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        payload["aud"] = settings.jwt_audience
    algorithm = settings.jwt_algorithm
    if algorithm in HMAC_ALGORITHMS:
        if settings.jwt_secret_key is None:
            raise SettingsError(
                "JWT_SECRET_KEY is not set: a server without it needs no token; set it to the "
                "server's value to mint one"
            )
        key: Any = settings.jwt_secret_key.get_secret_value()
    elif private_key is None:
        raise SettingsError(
            f"{algorithm} tokens are signed with a private key: pass --private-key with the "
            "PEM file whose public key the server has as JWT_PUBLIC_KEY"
        )
    else:
        key = private_key
    try:
        return jwt.encode(payload, key, algorithm)
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise SettingsError(f"the private key cannot sign {algorithm} tokens: {error}") from None


class Authenticator:
    """Verifies ``Authorization: Bearer <jwt>`` against the configured key and claims."""

    def __init__(self, settings: Settings) -> None:
        self.algorithm = settings.jwt_algorithm
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        if self.algorithm in HMAC_ALGORITHMS:
            assert settings.jwt_secret_key is not None  # Settings guarantees it
            self.key: Any = settings.jwt_secret_key.get_secret_value()
        else:
            assert settings.jwt_public_key is not None
            try:
                algorithm = get_default_algorithms()[self.algorithm]
                self.key = algorithm.prepare_key(settings.jwt_public_key.get_secret_value())
            except (jwt.PyJWTError, ValueError, TypeError):  # not a key PyJWT can load
                raise SettingsError(
                    f"JWT_PUBLIC_KEY is not a PEM public key usable with {self.algorithm}"
                ) from None

    def verify(self, authorization: str | None) -> str:
        """The token's subject (``sub``), or :class:`AuthError` saying which check failed."""
        token = _bearer_token(authorization)
        try:  # every problem PyJWT finds, in the header too, is a 401 saying which
            self._check_algorithm(token)
            claims = jwt.decode(
                token,
                self.key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "sub"], "verify_aud": self.audience is not None},
            )
        except jwt.PyJWTError as error:
            raise self._refusal(error) from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthError("missing_claim", "the token's 'sub' claim must be a non-empty string")
        return subject

    def _check_algorithm(self, token: str) -> None:
        """Refuse unsigned tokens and other algorithms before verifying anything."""
        header = jwt.get_unverified_header(token)  # malformed: a PyJWTError, for _refusal
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm.lower() in ("none", ""):
            raise AuthError("unsigned_token", "unsigned tokens (alg 'none') are refused")
        if algorithm != self.algorithm:
            raise AuthError(
                "wrong_algorithm",
                f"the token is signed with {algorithm}, but this server accepts only "
                f"{self.algorithm}",
            )

    def _refusal(self, error: jwt.PyJWTError) -> AuthError:
        """Which check a token failed, in words."""
        if isinstance(error, jwt.MissingRequiredClaimError):
            return AuthError(
                "missing_claim", f"the token has no '{error.claim}' claim, which is required"
            )
        if isinstance(error, jwt.ImmatureSignatureError):  # a future nbf, or a future iat
            claim = "iat" if "iat" in str(error) else "nbf"
            return AuthError("token_not_yet_valid", f"the token is not valid yet ({claim})")
        checks: list[tuple[type[jwt.PyJWTError], str, str]] = [
            # InvalidSignatureError is a DecodeError: the first that matches wins.
            (jwt.InvalidSignatureError, "bad_signature", "the token's signature does not verify"),
            (jwt.DecodeError, "malformed_token", "the bearer token is not a well-formed JWT"),
            (jwt.ExpiredSignatureError, "token_expired", "the token has expired (exp)"),
            (jwt.InvalidIssuerError, "wrong_issuer", f"the token's issuer is not '{self.issuer}'"),
            (
                jwt.InvalidAudienceError,
                "wrong_audience",
                f"the token's audience does not include '{self.audience}'",
            ),
        ]
        for kind, code, message in checks:
            if isinstance(error, kind):
                return AuthError(code, message)
        # What is left is about the token's header (crit, kid...): say so, echo nothing.
        return AuthError("invalid_token", "the token is not valid: its header is not acceptable")


def _bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise AuthError("missing_token", "this endpoint needs 'Authorization: Bearer <token>'")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError(
            "malformed_authorization",
            "the Authorization header must be 'Bearer <token>' with a single token",
        )
    return token


STREAM_AUDIENCE = "agentflow-stream"
# The one route a stream token opens: joining a run's stream (GET, as EventSource does).
_JOIN_PATH = re.compile(r"/v1/threads/(?P<thread>[^/]+)/runs/(?P<run>[^/]+)/stream")


class StreamTokens:
    """Tokens for a browser's ``EventSource``, which cannot send ``Authorization``: minted
    for an authenticated caller, good for joining one run's stream only, for a few minutes,
    and signed with a key of the server's own, so the caller's JWT never goes into a URL and a
    stream token is no bearer token."""

    def __init__(self, settings: Settings) -> None:
        self.ttl_s = settings.stream_token_ttl_s
        self.key: bytes | None = None
        if settings.stream_token_secret is not None:
            self.key = settings.stream_token_secret.get_secret_value().encode()
        elif settings.jwt_secret_key is not None:
            secret = settings.jwt_secret_key.get_secret_value().encode()
            self.key = hmac.new(secret, b"agentflow stream tokens", hashlib.sha256).digest()

    def mint(self, subject: str, thread_id: str, run_id: str) -> str:
        if self.key is None:
            raise StreamTokensOffError(
                "stream tokens need AGENTFLOW_STREAM_TOKEN_SECRET when tokens are verified "
                "with a public key (JWT_ALGORITHM RS256/ES256)"
            )
        now = int(time.time())
        claims = {
            "sub": subject,
            "aud": STREAM_AUDIENCE,
            "run": f"{thread_id}/{run_id}",
            "iat": now,
            "exp": now + int(self.ttl_s),
        }
        return jwt.encode(claims, self.key, algorithm="HS256")

    def verify(self, token: str, thread_id: str, run_id: str) -> str:
        """The subject the token was minted for, if it opens this run's stream."""
        if self.key is None:
            raise AuthError("invalid_token", "this server issues no stream tokens")
        try:
            claims = jwt.decode(
                token,
                self.key,
                algorithms=["HS256"],
                audience=STREAM_AUDIENCE,
                options={"require": ["exp", "sub", "run"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthError(
                "token_expired", "the stream token has expired: get a new one"
            ) from None
        except jwt.PyJWTError:
            raise AuthError("invalid_token", "the stream token is not valid") from None
        if claims["run"] != f"{thread_id}/{run_id}":
            raise AuthError("invalid_token", "the stream token is for another run")
        subject: str = claims["sub"]
        return subject


class StreamTokensOffError(AgentflowError):
    status, code = 501, "stream_tokens_unavailable"


class AuthMiddleware:
    """Requires a valid bearer token on every path under ``prefix`` (the API: ``/v1``) and
    puts its subject in ``scope["state"]["subject"]`` for :func:`subject_of`. Refusals are the
    JSON 401 answers of every other error, with ``WWW-Authenticate``.

    A middleware rather than a FastAPI dependency: it covers every route under the prefix,
    unknown ones too (no route enumeration without a token), and costs a request no
    dependency resolution (docs/benchmarks.md).
    """

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        prefix: str,
        stream_tokens: StreamTokens | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.prefix = prefix
        self.stream_tokens = stream_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _under(scope["path"], self.prefix):
            await self.app(scope, receive, send)
            return
        authorizations = [value for name, value in scope["headers"] if name == b"authorization"]
        authorization = authorizations[0] if authorizations else None
        try:
            if len(authorizations) > 1:  # which one a proxy checked is anyone's guess
                raise AuthError(
                    "malformed_authorization", "the request carries more than one Authorization"
                )
            if authorization is None and (stream_token := self._stream_token(scope)):
                subject = stream_token
            else:
                subject = self.authenticator.verify(
                    None if authorization is None else authorization.decode("latin-1")
                )
        except AuthError as error:
            response = error_response(
                Request(scope), describe(error, production=False), error.headers
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["subject"] = subject
        await self.app(scope, receive, send)

    def _stream_token(self, scope: Scope) -> str | None:
        """The subject of a ``stream_token`` query parameter on a GET of a run's stream;
        None when the request carries none (or is another request)."""
        found = _JOIN_PATH.fullmatch(scope["path"])
        if self.stream_tokens is None or found is None or scope["method"] != "GET":
            return None
        tokens = parse_qs(scope["query_string"].decode("latin-1")).get("stream_token")
        if not tokens:
            return None
        if len(tokens) > 1:  # which one a proxy checked is anyone's guess: refuse both
            raise AuthError("malformed_token", "the request carries more than one stream_token")
        return self.stream_tokens.verify(tokens[0], found["thread"], found["run"])


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def subject_of(request: Request) -> str | None:
    """The caller's token subject; None when auth is off."""
    subject: str | None = request.scope.get("state", {}).get("subject")
    return subject
