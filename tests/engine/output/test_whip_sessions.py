"""``avatar serve --publish-whip``: a WebSocket session of the real server is also published over WHIP."""

import asyncio
import dataclasses
import time

import pytest

from avatar_client import stream
from bench.speech import looped_speech
from engine.server.config import ServerConfig
from engine.server.protocol import Hello
from tests.engine.output.whip_endpoint import whip_endpoint
from tests.engine.server.live_server import live_server


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_every_server_session_is_published_and_deleted_when_it_ends(server_config: ServerConfig) -> None:
    async with whip_endpoint(token="t") as endpoint:
        config = dataclasses.replace(
            server_config, output_size_px=128, publish_whip_url=endpoint.url, publish_whip_token="t"
        )
        async with live_server(config) as server:
            hello = Hello(sample_rate_hz=16_000, sample_format="s16le", channels=1, fps=25)
            result = await stream(server.ws_url, looped_speech(3.0), hello, realtime=True)
            assert len(result.frames) >= 70  # the WebSocket client got its AU records as usual
            await server.wait_until_idle()
            deadline = time.monotonic() + 10
            while not (endpoint.sessions and endpoint.sessions[0].deleted) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
        (published,) = endpoint.sessions
        assert published.headers["Authorization"] == "Bearer t"
        assert published.deleted, "the session ended but its WHIP resource was not DELETEd"
        assert len(published.video) >= 25, f"only {len(published.video)} frames reached the WHIP endpoint"
        assert (published.video[-1][1].width, published.video[-1][1].height) == (128, 128)
        assert published.audio == []  # the video only
