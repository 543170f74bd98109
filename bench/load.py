"""``python -m bench.load URL --sessions N --seconds S``: N WebRTC sessions streaming speech to a server.

The background load of ``browser --load N``: each session is an aiortc peer
(``bench/webrtc_peer.PacedMicrophone`` at real-time pace, the video received
and discarded), so the server does for them what it does for any peer. Their
own cost on this machine (Opus encoding, VP8 decoding in aiortc) is part of
the load, as other clients on a shared machine would be.
"""

import argparse
import asyncio
import contextlib

import aiohttp
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from bench.speech import paused_speech
from bench.webrtc_peer import PacedMicrophone


async def _session(base_url: str, seconds: float, index: int) -> None:
    speech = paused_speech(seconds, silence_s=1.0 + 0.3 * index, phrase_s=3.0)
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTrack(PacedMicrophone(speech.audio))
    pc.addTransceiver("video", direction="recvonly")
    drains: list[asyncio.Task[None]] = []

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        drains.append(asyncio.create_task(_drain(track)))

    await pc.setLocalDescription(await pc.createOffer())
    body = {"sdp": pc.localDescription.sdp, "type": "offer"}
    async with aiohttp.ClientSession() as http, http.post(f"{base_url}/offer", json=body) as response:
        if response.status != 200:
            raise RuntimeError(f"load session {index}: the server refused the offer: {await response.text()}")
        answer = await response.json()
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
    try:
        await asyncio.sleep(seconds)
    finally:
        for task in drains:
            task.cancel()
        await pc.close()


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def _main(base_url: str, sessions: int, seconds: float) -> None:
    await asyncio.gather(*(_session(base_url, seconds, index) for index in range(sessions)))


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--sessions", type=int, default=3, help="concurrent sessions (default: 3)")
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each streams, s (default: 60)")
    args = parser.parse_args()
    asyncio.run(_main(args.url, args.sessions, args.seconds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
