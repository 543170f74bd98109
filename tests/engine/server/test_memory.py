"""Ended WebRTC sessions give their memory back (issue 13, failure 9: RSS 271 -> 507 MB over 48 sessions).

RSS itself is measured by ``python -m bench churn`` (a server process, 200
sessions); here the cause is checked: an ended session's objects (and the
native buffers they hold) must not wait in reference cycles for a full
garbage collection that may come many sessions later.
"""

import gc

import pytest

from engine.server.app import WEBRTC_SESSIONS
from engine.server.config import ServerConfig
from engine.server.context import ENGINE
from engine.server.webrtc import WebRTCSession
from tests.engine.server.webrtc_client import PacedSpeechTrack, connect, running_server, sample_speech, wait_for


def _sessions_in_memory() -> int:
    """WebRTCSession objects the interpreter still holds, garbage awaiting collection included (no collect here)."""
    return sum(isinstance(o, WebRTCSession) for o in gc.get_objects())


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_ended_sessions_are_freed_without_waiting_for_a_full_collection(server_config: ServerConfig) -> None:
    """Failure 9: memory grew with WebRTC churn and was never released."""
    gc.collect()
    async with running_server(server_config) as (url, app):
        for _ in range(6):
            peer = await connect(url, PacedSpeechTrack(sample_speech(2.0)), keep_pictures=False)
            await wait_for(lambda video=peer.video: len(video.times_s) > 2, 20, "video")
            await peer.close()
            await wait_for(lambda: not app[ENGINE].slots.active and not len(app[WEBRTC_SESSIONS]), 10, "the end")
        await wait_for(lambda: _sessions_in_memory() == 0, 5, "the ended sessions to be freed")
