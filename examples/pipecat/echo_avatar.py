"""A voice pipeline with a face, runnable with no cloud service: the bot echoes your speech through the avatar.

    pip install 'avatar-engine[pipecat]'
    python examples/pipecat/echo_avatar.py --port 7860     # then open http://localhost:7860/ and allow the mic

Pipecat's SmallWebRTC transport (aiortc) carries your microphone in and the avatar's video and voice out.
With no LLM or TTS keys there is no agent to talk to, so an echo stands in for one: what you say comes back,
said by the avatar (lips and voice in sync: AvatarVideoService re-times the audio to the frames). Put
``stt, llm, tts`` where ``EchoAsTTS`` is for a real agent.
"""

import argparse
import asyncio
import contextlib
from pathlib import Path

from aiohttp import web
from pipecat.frames.frames import Frame, InputAudioRawFrame, TTSAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import SmallWebRTCConnection
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pipecat.workers.runner import WorkerRunner

from engine.integrations.pipecat import AvatarVideoService
from engine.live import LiveParts
from engine.live.build import PartsSettings, build_parts, running_parts
from engine.output.pictures import output_dimensions

RATE_HZ = 16_000
PAGE = Path(__file__).with_name("index.html")


class EchoAsTTS(FrameProcessor):
    """The user's microphone audio, passed on as if a TTS service had said it."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(TTSAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate, num_channels=1))
        else:
            await self.push_frame(frame, direction)


async def run_bot(connection: SmallWebRTCConnection, parts: LiveParts, size_px: int) -> None:
    width, height = output_dimensions(*parts.avatar.portrait.shape[:2], size_px)
    transport = SmallWebRTCTransport(
        connection,
        TransportParams(
            audio_in_enabled=True,
            audio_out_enabled=True,
            video_out_enabled=True,
            video_out_is_live=True,
            video_out_width=width,
            video_out_height=height,
        ),
    )
    pipeline = Pipeline([transport.input(), EchoAsTTS(), AvatarVideoService(parts), transport.output()])
    params = PipelineParams(audio_in_sample_rate=RATE_HZ, audio_out_sample_rate=RATE_HZ)
    worker = PipelineWorker(pipeline, params=params)

    @transport.event_handler("on_client_disconnected")
    async def _gone(transport: SmallWebRTCTransport, client: object) -> None:
        await worker.cancel()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()


def make_app(parts: LiveParts, size_px: int) -> web.Application:
    bots: set[asyncio.Task[None]] = set()

    async def offer(request: web.Request) -> web.Response:
        body = await request.json()
        connection = SmallWebRTCConnection()
        await connection.initialize(sdp=body["sdp"], type=body["type"])
        bot = asyncio.get_running_loop().create_task(run_bot(connection, parts, size_px))
        bots.add(bot)
        bot.add_done_callback(bots.discard)
        return web.json_response(connection.get_answer())

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(PAGE)

    async def stop_bots(app: web.Application) -> None:
        for bot in list(bots):
            bot.cancel()
        await asyncio.gather(*bots, return_exceptions=True)

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_post("/api/offer", offer)
    app.on_shutdown.append(stop_bots)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="TCP port (default: 7860)")
    parser.add_argument("--size", type=int, default=384, metavar="PX", help="video's longer side (default: 384)")
    args = parser.parse_args()
    async with running_parts(build_parts(PartsSettings(serving=False)).parts) as parts:
        runner = web.AppRunner(make_app(parts, args.size))
        await runner.setup()
        await web.TCPSite(runner, args.host, args.port).start()
        print(f"open http://localhost:{args.port}/ and allow the microphone (Ctrl-C to stop)", flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
