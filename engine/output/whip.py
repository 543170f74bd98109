"""The HTTP side of a WHIP client (RFC 9725): offer in a POST, the answer and a resource URL back, DELETE to stop.

What a WHIP endpoint (an SFU's ingest: Janus with simple-whip-server,
Cloudflare Stream, LiveKit ingress, MediaMTX, OBS's own targets) expects, and
what this module sends: ``POST <endpoint>`` with ``Content-Type:
application/sdp`` and, when a token is given, ``Authorization: Bearer
<token>``; the endpoint answers ``201 Created`` with the SDP answer as its
body and the session's resource URL in ``Location`` (relative URLs are
resolved against the endpoint's). ``DELETE <resource>`` ends the session. The
offer carries every ICE candidate (aiortc gathers them before it is sent), so
no trickle PATCH is needed; an endpoint that requires trickle is not served.

Errors become :class:`WhipError` with a one-line reason and whether trying
again can help (``retry``): 5xx, 429 and network failures can; 400, 401, 403,
404 and other refusals cannot, and say what to check.
"""

from urllib.parse import urljoin, urlsplit

import aiohttp

from engine.errors import EngineError, UsageError

REQUEST_TIMEOUT_S = 10.0
"""Longest wait for the endpoint to answer one request (it may be setting up a media session)."""

_REFUSALS = {
    400: "refused the offer (400 Bad Request)",
    401: "refused the token (401 Unauthorized): check --token",
    403: "forbidden (403): the token may not publish here, or the endpoint is already in use",
    404: "not found (404): check the URL, or create the endpoint on the server first",
    405: "does not take POST (405): is this a WHIP endpoint URL?",
    406: "refused the content type (406): it does not speak WHIP's application/sdp",
    415: "refused the content type (415): it does not speak WHIP's application/sdp",
}


class WhipError(EngineError, RuntimeError):
    """A WHIP request failed. ``status``: the HTTP status (None for a network failure); ``retry``: whether
    trying again later can help."""

    def __init__(self, message: str, *, status: int | None, retry: bool) -> None:
        super().__init__(message)
        self.status = status
        self.retry = retry


def check_whip_url(url: str) -> str:
    """``url`` if it is an http(s) URL with a host; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"the WHIP URL must be http:// or https:// with a host, got {url!r}")
    return url


class WhipClient:
    """One publishing session's requests to a WHIP endpoint (see the module docstring)."""

    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.url = check_whip_url(url)
        self.resource_url: str | None = None
        """Where the current session lives (from ``Location``), None when none is open."""
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def publish(self, offer_sdp: str) -> str:
        """POST the offer; the answer SDP. Sets :attr:`resource_url`.

        Raises:
            WhipError: the endpoint refused, failed or could not be reached, or answered without SDP or Location.
        """
        headers = {**self._headers, "Content-Type": "application/sdp"}
        async with aiohttp.ClientSession(timeout=self._timeout) as http:
            try:
                async with http.post(self.url, data=offer_sdp.encode(), headers=headers) as response:
                    body = await response.text(errors="replace")
                    if response.status != 201:
                        raise _error(self.url, response.status, body)
                    location = response.headers.get("Location")
                    content_type = response.headers.get("Content-Type", "")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _unreachable(self.url, exc) from None
        if not location:
            raise WhipError(f"WHIP endpoint {self.url} answered 201 without a Location header", status=201, retry=False)
        if "application/sdp" not in content_type or "v=0" not in body:
            raise WhipError(
                f"WHIP endpoint {self.url} answered 201 without an SDP answer (Content-Type {content_type!r})",
                status=201,
                retry=False,
            )
        self.resource_url = urljoin(self.url, location)
        return body

    async def delete(self) -> None:
        """DELETE the session's resource (ends it on the server); nothing when none is open.

        A 404 (already gone) counts as done. Raises WhipError for other failures; the session counts as
        closed on our side either way.
        """
        url, self.resource_url = self.resource_url, None
        if url is None:
            return
        async with aiohttp.ClientSession(timeout=self._timeout) as http:
            try:
                async with http.delete(url, headers=self._headers) as response:
                    body = await response.text(errors="replace")
                    if response.status >= 300 and response.status != 404:
                        raise _error(url, response.status, body)
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise _unreachable(url, exc) from None


def _error(url: str, status: int, body: str) -> WhipError:
    detail = " ".join(body.split())[:200]
    suffix = f": {detail}" if detail else ""
    if status in _REFUSALS:
        return WhipError(f"WHIP endpoint {url} {_REFUSALS[status]}{suffix}", status=status, retry=False)
    if status >= 500 or status == 429:
        return WhipError(f"WHIP endpoint {url} failed (HTTP {status}){suffix}; retrying", status=status, retry=True)
    return WhipError(f"WHIP endpoint {url} answered HTTP {status}, not 201{suffix}", status=status, retry=False)


def _unreachable(url: str, exc: BaseException) -> WhipError:
    reason = str(exc) or type(exc).__name__
    return WhipError(f"cannot reach WHIP endpoint {url}: {reason}; retrying", status=None, retry=True)
