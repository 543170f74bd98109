"""Bearer tokens: static and HS256 JWTs, where clients put them, and what each may open."""

import time

import jwt
import pytest

from engine.server.auth import (
    ANONYMOUS,
    METRICS_SCOPE,
    SESSION_SCOPE,
    Authenticator,
    AuthError,
    auth_required,
    is_loopback,
    request_token,
)

TOKEN = "s3cret-access-token-0123456789"
METRICS = "metrics-token-0123456789abcdef"
SECRET = "jwt-secret-0123456789abcdefghijklmnop"


def authenticator(**overrides: object) -> Authenticator:
    settings: dict = {"required": True, "access_token": TOKEN, "metrics_token": METRICS, "jwt_secret": SECRET}
    settings.update(overrides)
    return Authenticator(**settings)


def make_jwt(**claims: object) -> str:
    return jwt.encode({"exp": int(time.time()) + 60, **claims}, SECRET, algorithm="HS256")


def test_auth_is_required_off_loopback_unless_turned_off() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.1.2.3") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert auth_required("auto", "0.0.0.0", has_credentials=False)
    assert not auth_required("auto", "127.0.0.1", has_credentials=False)
    assert auth_required("auto", "127.0.0.1", has_credentials=True)
    assert not auth_required("off", "0.0.0.0", has_credentials=True)
    assert auth_required("on", "127.0.0.1", has_credentials=False)
    with pytest.raises(ValueError, match="auto, on or off"):
        auth_required("maybe", "127.0.0.1", has_credentials=False)


def test_static_tokens_open_their_own_scope_only() -> None:
    auth = authenticator()
    assert auth.authorize(TOKEN, SESSION_SCOPE).holder == "access-token"
    assert auth.authorize(METRICS, METRICS_SCOPE).holder == "metrics-token"
    with pytest.raises(AuthError) as refused:
        auth.authorize(TOKEN, METRICS_SCOPE)
    assert refused.value.status == 403
    with pytest.raises(AuthError) as refused:
        auth.authorize(METRICS, SESSION_SCOPE)
    assert refused.value.status == 403
    for bad in (None, "", "wrong-token-0123456789"):
        with pytest.raises(AuthError) as refused:
            auth.authorize(bad, SESSION_SCOPE)
        assert refused.value.status == 401


def test_no_token_needed_when_not_required() -> None:
    assert Authenticator(required=False).authorize(None, SESSION_SCOPE) is ANONYMOUS


def test_jwt_claims_scope_avatar_and_sessions() -> None:
    auth = authenticator(avatar_name="astronaut")
    grant = auth.authorize(make_jwt(sub="game-7", max_sessions=2), SESSION_SCOPE)
    assert grant.holder == "jwt:game-7" and grant.max_sessions == 2
    assert auth.authorize(make_jwt(scope="metrics"), METRICS_SCOPE)
    assert auth.authorize(make_jwt(avatar="astronaut"), SESSION_SCOPE)
    cases = [
        (make_jwt(scope="metrics"), SESSION_SCOPE, 403, "scope"),
        (make_jwt(avatar="someone-else"), SESSION_SCOPE, 403, "avatar"),
        (make_jwt(max_sessions=0), SESSION_SCOPE, 401, "max_sessions"),
        (jwt.encode({"exp": int(time.time()) - 60}, SECRET, algorithm="HS256"), SESSION_SCOPE, 401, "expired"),
        (jwt.encode({"sub": "x"}, SECRET, algorithm="HS256"), SESSION_SCOPE, 401, "expiry"),
        (
            jwt.encode({"exp": int(time.time()) + 60}, "another-secret-0123456789abcdefghijklmno", algorithm="HS256"),
            SESSION_SCOPE,
            401,
            "not valid",
        ),
    ]
    for token, scope, status, words in cases:
        with pytest.raises(AuthError) as refused:
            auth.authorize(token, scope)
        assert refused.value.status == status and words in refused.value.message, refused.value.message


def test_jwt_with_another_algorithm_is_refused() -> None:
    unsigned = jwt.encode({"exp": int(time.time()) + 60}, None, algorithm="none")
    with pytest.raises(AuthError):
        authenticator().authorize(unsigned, SESSION_SCOPE)


def test_short_secrets_and_no_credentials_are_configuration_errors() -> None:
    with pytest.raises(ValueError, match="too short"):
        Authenticator(required=True, access_token="short")
    with pytest.raises(ValueError, match="no access token or JWT secret"):
        Authenticator(required=True)


def test_tokens_are_found_where_each_kind_of_client_puts_them() -> None:
    assert request_token({"Authorization": f"Bearer {TOKEN}"}, {}) == TOKEN
    assert request_token({"Authorization": f"bearer  {TOKEN} "}, {}) == TOKEN
    assert request_token({}, {"token": TOKEN}) == TOKEN
    assert request_token({"Sec-WebSocket-Protocol": f"avatar.v1, bearer.{TOKEN}"}, {}) == TOKEN
    assert request_token({"Authorization": "Basic abc"}, {}) is None
    assert request_token({"Sec-WebSocket-Protocol": "avatar.v1, bearer."}, {}) is None
