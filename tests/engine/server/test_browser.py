"""A real browser against the real server: headless Chromium opens the page, shares a fake
microphone that plays the sample speech, and must end up playing the avatar's video.

Needs Debian's ``chromium`` (apt) and the Python ``playwright`` package; Playwright's own
browser download is never used. Skipped, saying why, when either is missing.
"""

import asyncio
import contextlib
import dataclasses
import json
import shutil
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from avatar_protocol import PROTOCOL_VERSION
from bench.browser import CHROMIUM_ARGS
from engine.au import au_index
from engine.audio import SAMPLE_SPEECH
from engine.server.app import WEBRTC_SESSIONS
from engine.server.config import ServerConfig
from tests.engine.server.webrtc_client import running_server, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
]


FAKE_MICROPHONE = [
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    f"--use-file-for-fake-audio-capture={SAMPLE_SPEECH}",
]
"""A microphone that plays the sample, granted without asking."""


@contextlib.asynccontextmanager
async def chromium_page(url: str, *, microphone: bool = True) -> AsyncIterator[tuple[Any, list[str]]]:
    """Headless Chromium (the bench's flags, FIELD_NOTES.md) on the page at ``url``; the page and its errors.

    Playwright adds ``--headless`` itself and gives each launch a new empty profile.
    """
    playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    args = CHROMIUM_ARGS + (FAKE_MICROPHONE if microphone else FAKE_MICROPHONE[1:])
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True, timeout=30_000)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{url}/")
            yield page, errors
        finally:
            await browser.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_chromium_plays_the_avatar(server_config: ServerConfig) -> None:
    async with running_server(server_config) as (url, app), chromium_page(url) as (page, errors):
        await page.click("#start")
        await page.wait_for_function("() => document.querySelector('#video').videoWidth > 0", timeout=30_000)
        size = await page.evaluate("() => [video.videoWidth, video.videoHeight]")
        first = await page.evaluate("() => video.currentTime")
        started_s = time.perf_counter()
        await asyncio.sleep(2.0)
        second = await page.evaluate("() => video.currentTime")
        elapsed_s = time.perf_counter() - started_s
        await page.wait_for_function(
            "() => document.querySelector('#latency').textContent.includes('ms')", timeout=10_000
        )
        await page.wait_for_function(
            "() => document.querySelector('#browser-buffer').textContent.includes('ms')", timeout=10_000
        )
        latency = await page.text_content("#latency")
        received_fps = await page.text_content("#received-fps")
        status = await page.text_content("#status")
        held = await page.text_content("#browser-buffer")
        print(
            f"Chromium: {size[0]}x{size[1]}, currentTime +{second - first:.2f} s in {elapsed_s:.2f} s, "
            f"server latency {latency}, received {received_fps} fps, jitter buffer {held}, status {status!r}"
        )
        # A preset button sends the sliders over the data channel; the server applies them.
        session = next(iter(app[WEBRTC_SESSIONS]))
        await page.click("button[data-preset='smile']")
        await wait_for(lambda: session.live.expression.bias[au_index("AU12")] == 3.0, 5, "the smile preset")
        assert session.live.expression.bias[au_index("AU06")] == 2.0
        assert size == [server_config.output_size_px, server_config.output_size_px]
        assert second - first > 0.5 * elapsed_s, "the video is not playing"
        # Asked for playout delay 0 (engine/output/playout_delay.py), Chromium shows frames as they are
        # decoded; left to itself it holds each one 10 ms or more (bench/README.md, browser).
        assert float(held.split()[0]) < 4, f"Chromium holds each frame {held}"
        assert not errors, errors


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_sample_speech_end_to_end_figure_and_stop_start(server_config: ServerConfig) -> None:
    """The page plays the sample speech, shows its own end-to-end latency, and Stop/Start does not double-count."""
    async with running_server(server_config) as (url, _), chromium_page(url) as (page, errors):
        await page.check("#sample-speech")
        for attempt in range(2):
            await page.click("#start")
            await page.wait_for_function(
                "() => document.querySelector('#e2e-latency').textContent.includes('ms')", timeout=30_000
            )
            await asyncio.sleep(2.5)
            e2e, server, fps = [
                await page.text_content(f"#{name}") for name in ("e2e-latency", "latency", "received-fps")
            ]
            print(f"attempt {attempt}: end to end {e2e}, server {server}, presented {fps} fps")
            e2e_p50 = float(e2e.split("/")[0])
            server_p50 = float(server.split("/")[0])
            assert server_p50 < e2e_p50 < 3000, (e2e, server)
            assert 0.5 * server_config.fps <= float(fps) <= 1.3 * server_config.fps, fps
            await page.click("#stop")
            await page.wait_for_function("() => !document.querySelector('#start').disabled")
        assert not errors, errors


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_the_page_says_why_it_cannot_start(server_config: ServerConfig) -> None:
    """A refused microphone and a full server each get a sentence a person can act on."""
    config = dataclasses.replace(server_config, max_sessions=1)
    # No --use-fake-ui-for-media-stream: nobody grants the permission, so the microphone is refused.
    async with running_server(config) as (url, _), chromium_page(url, microphone=False) as (page, _errors):
        await page.click("#start")
        await page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
        refused = await page.text_content("#status")
        async with aiohttp.ClientSession() as http, http.ws_connect(url.replace("http", "ws") + "/ws") as ws:
            await ws.send_str(json.dumps({"type": "hello", "version": PROTOCOL_VERSION}))
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "ready"  # the one slot is taken
            await page.check("#sample-speech")
            await page.click("#start")
            await page.wait_for_function(
                "() => document.querySelector('#status').textContent.includes('full')", timeout=20_000
            )
            full = await page.text_content("#status")
        print(f"refused: {refused!r}; full: {full!r}")
        assert "microphone was refused" in refused
        assert "retry in" in full
