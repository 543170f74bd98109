"""``avatar serve --publish-whip URL``: every live session of the server also published over WHIP.

The server's sessions (WebRTC and WebSocket alike) are built from the same
``LiveParts``; their ``on_session`` hook attaches a :class:`WhipPublisher` to
each new session as one more video output, which connects in the background
and ends (DELETE) with the session. ``{session}`` in the URL is replaced by the
session's id, for SFUs whose WHIP endpoints take one publisher each. A session
is never harmed by its publisher: connection failures are retried or logged,
never raised into the session. The video only: the voice of a server session
is the client's own, and stays between the client and the server.
"""

from collections.abc import Callable

import numpy as np

from engine.live import LiveSession
from engine.output.whip import WhipClient, check_whip_url
from engine.output.whip_publisher import WhipPublisher

SESSION_PLACEHOLDER = "{session}"


def publish_every_session(
    url: str, still_rgb: np.ndarray, *, token: str | None, size_px: int, video_codec: str = "vp8"
) -> Callable[[LiveSession], None]:
    """The ``LiveParts.on_session`` hook that publishes each session to ``url`` (see the module docstring).

    ``still_rgb``: the portrait, sent until a session's first rendered frame. The publishers report nothing
    into the sessions' stats: those describe what the session's own client receives.
    """
    check_whip_url(url.replace(SESSION_PLACEHOLDER, "session"))

    def attach(session: LiveSession) -> None:
        client = WhipClient(url.replace(SESSION_PLACEHOLDER, str(session.session_id)), token=token)
        publisher = WhipPublisher(
            client,
            still_rgb,
            fps=session.fps,
            size_px=size_px,
            video_codec=video_codec,
            voice=False,
        )
        session.add_video_output(publisher, reports_sends=True)
        publisher.start()

    return attach
