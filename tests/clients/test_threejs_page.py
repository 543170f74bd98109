"""The three.js sample page (clients/threejs/) in headless Chromium against a real server: the head's
mouth opens in speech and closes in silence, in the page's records and in its rendered pixels."""

import io
import shutil
import wave
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from aiohttp import web
from PIL import Image

from bench.browser import CHROMIUM_ARGS as BENCH_CHROMIUM_ARGS
from engine.backends.model_files import resolve_source
from engine.server.config import ServerConfig
from tests.engine.output.speech import speaking, speech_then_silence
from tests.engine.server.live_server import LiveServer, live_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGE = Path(__file__).resolve().parents[2] / "clients" / "threejs"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(120),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
    pytest.mark.skipif(
        not resolve_source("cause", None).trained, reason="no trained CAUSE weights (models/weights/cause_step.onnx)"
    ),
]

CHROMIUM_ARGS = [
    *(arg for arg in BENCH_CHROMIUM_ARGS if arg != "--disable-gpu"),
    "--use-angle=swiftshader",  # WebGL on the CPU: these machines have no GPU
    "--enable-unsafe-swiftshader",
]


@pytest_asyncio.fixture
async def server(server_config: ServerConfig, page_url: str) -> AsyncIterator[LiveServer]:
    """The trained default CAUSE; the page comes from another origin, which the server must be told to allow
    (``avatar serve --allow-origin``): browsers' cross-site WebSockets are refused by default."""
    config = replace(server_config, cause_path=None, allowed_origins=(page_url,))
    async with live_server(config) as running:
        yield running


@pytest_asyncio.fixture
async def page_url(tmp_path: Path) -> AsyncIterator[str]:
    """The page's folder and a speech WAV, served as static files (what `python -m http.server` would do)."""
    with wave.open(str(tmp_path / "speech.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(speech_then_silence().tobytes())
    app = web.Application()
    app.router.add_static("/audio/", tmp_path)
    app.router.add_static("/", PAGE)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


SHOW_SHAPES = """async ([names, values]) => {
    const { head } = await import("./main.js");
    const { applyShapes } = await import("./head.js");
    applyShapes(head, names, values);
    await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
}"""
"""Put one received frame's shapes on the head again (the same module instances the page runs)."""


def mouth_pixels(png: bytes) -> int:
    """Pixels of the mouth's dark red (the inside of the lips) in a screenshot of the canvas."""
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return int(((r > 40) & (r < 140) & (g < 40) & (b < 50) & (r > 2 * g)).sum())


async def test_the_head_speaks_in_the_browser(server: LiveServer, page_url: str, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{page_url}/index.html?ws={server.ws_url}&wav=/audio/speech.wav")
            await page.wait_for_function("() => window.avatar.state === 'speaking'", timeout=20_000)
            await page.wait_for_function("() => window.avatar.state !== 'speaking'", timeout=60_000)
            assert await page.evaluate("() => window.avatar.state") == "done", await page.evaluate(
                "() => window.avatar.error"
            )
            closed_shot = await page.locator("canvas").screenshot()  # the last frame: silence
            shown = await page.evaluate("() => window.avatar.shown")
            names = await page.evaluate("() => window.avatar.names")
            widest = max(shown, key=lambda s: s["jawOpen"])  # show the widest-open frame of the speech again
            await page.evaluate(SHOW_SHAPES, [names, widest["shapes"]])
            open_shot = await page.locator("canvas").screenshot()
        finally:
            await browser.close()
    assert not errors
    audio = speech_then_silence()
    n_frames = int(np.ceil(audio.shape[0] * 25 / 16000))
    times = np.array([s["timeS"] for s in shown])
    jaw = np.array([s["jawOpen"] for s in shown])
    assert len(shown) == n_frames and np.all(np.diff(times) > 0)
    talking = speaking(audio, n_frames)
    assert jaw[talking].mean() > 0.2 and jaw[talking].mean() > 5 * jaw[~talking].mean() and jaw[-25:].max() < 0.02
    (tmp_path / "closed.png").write_bytes(closed_shot)
    (tmp_path / "open.png").write_bytes(open_shot)
    print(
        f"mouth pixels: open {mouth_pixels(open_shot)} (jawOpen {widest['jawOpen']:.2f}), "
        f"closed {mouth_pixels(closed_shot)}; screenshots in {tmp_path}"
    )
    assert mouth_pixels(open_shot) > 3 * mouth_pixels(closed_shot) > 0
