"""HTTP errors with a JSON body ``{"error": "..."}``: one line a client can act on."""

import json

from aiohttp import web

KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Connection")
"""Headers of an error response that the JSON error middleware keeps."""


def json_error(
    kind: type[web.HTTPException], message: str, *, headers: dict[str, str] | None = None
) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``."""
    return kind(text=json.dumps({"error": message}), content_type="application/json", headers=headers)
