"""The page from another machine on the LAN: https with the self-signed certificate, a token in the URL.

Issue 13's done-when: headless Chromium opens the page on this machine's
non-loopback address (not localhost: only a secure context gets the
microphone there), over TLS with the certificate ``--self-signed`` makes.
Chromium is told to trust exactly that certificate's key
(``--ignore-certificate-errors-spki-list``), as a person accepts it once;
any other certificate would still be refused. Skipped without Chromium,
Playwright, or a non-loopback IPv4 address.
"""

import base64
import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from bench.browser import CHROMIUM_ARGS
from engine.server.app import WEBRTC_SESSIONS, create_app
from engine.server.config import ServerConfig
from engine.server.context import ENGINE
from engine.server.listener import start_listening
from engine.server.tls import certificate_names, local_addresses, self_signed_certificate, server_ssl_context
from tests.engine.server.test_browser import CHROMIUM, FAKE_MICROPHONE
from tests.engine.server.webrtc_client import wait_for

TOKEN = "browser-test-token-0123456789abcdef"
LAN_ADDRESS = next((a for a in local_addresses() if not a.startswith("127.") and ":" not in a), None)

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)"),
    pytest.mark.skipif(LAN_ADDRESS is None, reason="this machine has no non-loopback IPv4 address"),
]


def spki_sha256(cert_path: Path) -> str:
    """Base64 SHA-256 of the certificate's public key: what Chromium's SPKI allow-list takes."""
    certificate = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


@asynccontextmanager
async def lan_server(config: ServerConfig, folder: Path) -> AsyncIterator[tuple[str, Path, object]]:
    assert LAN_ADDRESS is not None
    config = replace(config, host=LAN_ADDRESS, access_token=TOKEN, self_signed=True)
    dns, addresses = certificate_names(config.host)
    files = self_signed_certificate(dns, addresses, folder=folder)
    app = create_app(config)
    runner, _ = await start_listening(app, host=LAN_ADDRESS, port=0, ssl_context=server_ssl_context(files))
    try:
        yield f"https://{LAN_ADDRESS}:{runner.addresses[0][1]}", files.cert_path, app
    finally:
        await runner.cleanup()


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_the_page_works_over_https_from_a_lan_address(server_config: ServerConfig, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    async with lan_server(server_config, tmp_path) as (url, cert, app), playwright_api.async_playwright() as playwright:
        args = [*CHROMIUM_ARGS, *FAKE_MICROPHONE, f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}"]
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True, timeout=30_000)
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            await page.goto(f"{url}/#token={TOKEN}")
            assert await page.evaluate("() => window.isSecureContext") is True  # the microphone is allowed here
            assert "token" not in page.url  # taken out of the address bar
            await page.click("#start")
            await page.wait_for_function("() => document.querySelector('#video').videoWidth > 0", timeout=40_000)
            status = await page.text_content("#status")
            assert len(app[WEBRTC_SESSIONS]) == 1  # type: ignore[index]
            await page.click("#stop")
            await wait_for(lambda: not app[ENGINE].slots.active, 10, "the DELETE to end the session")  # type: ignore[index]
            print(f"Chromium at {url}: secure context, video playing, status {status!r}")
            assert not errors, errors
        finally:
            await browser.close()


@pytest.mark.slow
@pytest.mark.timeout(90)
async def test_without_the_token_the_page_says_so(server_config: ServerConfig, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api", reason="the playwright package is not installed")
    async with lan_server(server_config, tmp_path) as (url, cert, app), playwright_api.async_playwright() as playwright:
        args = [*CHROMIUM_ARGS, *FAKE_MICROPHONE, f"--ignore-certificate-errors-spki-list={spki_sha256(cert)}"]
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=args, headless=True)
        try:
            page = await browser.new_page()
            await page.goto(f"{url}/")
            await page.click("#start")
            await page.wait_for_function("() => document.querySelector('#status').classList.contains('error')")
            status = await page.text_content("#status")
            print(f"without a token: {status!r}")
            assert "#token=" in (status or "") and not app[ENGINE].slots.active  # type: ignore[index]
        finally:
            await browser.close()
