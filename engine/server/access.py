"""The checks every request that opens, ends or watches a session goes through, as HTTP errors.

The decisions are made in ``engine.server.auth`` (tokens) and
``engine.server.origins`` (Origin and Host); this module reads them from a
request and turns a refusal into a JSON HTTP error, counted in the gate's
refusals.
"""

from aiohttp import web

from engine.server.auth import AuthError, Grant, request_token
from engine.server.context import ENGINE
from engine.server.http_errors import json_error

WWW_AUTHENTICATE = 'Bearer realm="avatar"'


def client_address(request: web.Request) -> str:
    """The peer's IP address (the key of per-address limits)."""
    return request.remote or "unknown"


def authorize(request: web.Request, scope: str, *, check_origin: bool = True) -> Grant:
    """The request's grant for ``scope``; 403 for a foreign Origin, 401/403 for a missing or wrong token."""
    gate = request.app[ENGINE].gate
    if check_origin:
        problem = gate.origins.origin_error(request.headers.get("Origin"), request.headers.get("Host"))
        if problem is not None:
            gate.refuse("origin")
            raise json_error(web.HTTPForbidden, problem)
    try:
        return gate.auth.authorize(request_token(request.headers, request.query), scope)
    except AuthError as exc:
        gate.refuse("auth")
        if exc.status == 401:
            challenge = {"WWW-Authenticate": WWW_AUTHENTICATE}
            raise json_error(web.HTTPUnauthorized, exc.message, headers=challenge) from None
        raise json_error(web.HTTPForbidden, exc.message) from None


def check_host(request: web.Request) -> None:
    """403 when the Host header names something this server does not serve (DNS rebinding)."""
    gate = request.app[ENGINE].gate
    problem = gate.origins.host_error(request.headers.get("Host"))
    if problem is not None:
        gate.refuse("host")
        raise json_error(web.HTTPForbidden, problem)


def check_connect_rate(request: web.Request) -> None:
    """429 when the client's address opens sessions faster than ``max_connects_per_s_per_address``."""
    gate = request.app[ENGINE].gate
    if not gate.connect_rates.take(client_address(request)):
        gate.refuse("connect_rate")
        rate = gate.connect_rates.rate_per_s
        raise json_error(
            web.HTTPTooManyRequests,
            f"more than {rate:g} new connections per second from {client_address(request)}; slow down",
            headers={"Retry-After": "1"},
        )


def check_request_rate(request: web.Request) -> None:
    """429 (and the connection closed) when the client's address makes requests faster than its limit."""
    gate = request.app[ENGINE].gate
    if not gate.request_rates.take(client_address(request)):
        gate.refuse("request_rate")
        error = json_error(
            web.HTTPTooManyRequests,
            f"more than {gate.request_rates.rate_per_s:g} requests per second from {client_address(request)}",
            headers={"Retry-After": "1", "Connection": "close"},
        )
        raise error
