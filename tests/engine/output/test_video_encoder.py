"""aiortc's video encoders with our speed options: between two real aiortc peers on loopback."""

import asyncio
import fractions

import av
import numpy as np
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, VideoStreamTrack
from aiortc.mediastreams import MediaStreamError

from engine.output.video_encoder import (
    H264_SPEED_OPTIONS,
    VP8_SPEED_OPTIONS,
    FastH264Encoder,
    FastVp8Encoder,
    speed_up_video_encoder,
)

SIZE_PX = 256


class _Pictures(VideoStreamTrack):
    """A moving gradient at aiortc's pace."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        shift = pts // 3000
        ramp = (np.arange(SIZE_PX)[None, :] + np.arange(SIZE_PX)[:, None] + shift) % 256
        frame = av.VideoFrame.from_ndarray(np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, time_base
        return frame


@pytest.mark.parametrize(("codec", "options"), [("video/VP8", VP8_SPEED_OPTIONS), ("video/H264", H264_SPEED_OPTIONS)])
@pytest.mark.timeout(30)
async def test_video_is_encoded_with_the_speed_options_and_decodes(codec: str, options: dict[str, str]) -> None:
    sender = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver.addTransceiver("video", direction="recvonly").setCodecPreferences(
        [c for c in RTCRtpSender.getCapabilities("video").codecs if c.mimeType == codec]
    )
    await receiver.setLocalDescription(await receiver.createOffer())
    await sender.setRemoteDescription(receiver.localDescription)
    [transceiver] = sender.getTransceivers()
    transceiver.sender.replaceTrack(_Pictures())
    transceiver.direction = "sendonly"
    assert speed_up_video_encoder(transceiver)
    await sender.setLocalDescription(await sender.createAnswer())
    await receiver.setRemoteDescription(sender.localDescription)
    track = receiver.getTransceivers()[0].receiver.track
    try:
        async with asyncio.timeout(20):
            frames = [await track.recv() for _ in range(10)]
    except MediaStreamError:
        pytest.fail("the video track ended")
    finally:
        encoder = transceiver.sender._RTCRtpSender__encoder  # type: ignore[attr-defined]
        await sender.close()
        await receiver.close()
    assert isinstance(encoder, FastVp8Encoder if codec == "video/VP8" else FastH264Encoder)
    assert options.items() <= encoder.codec.opened_with.items()
    assert (frames[-1].width, frames[-1].height) == (SIZE_PX, SIZE_PX)


def test_h264_stream_says_it_was_made_with_the_fast_preset() -> None:
    """libx264 writes its settings into the first keyframe: the ultrafast preset searches least (subme=0)."""
    frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
    frame.pts, frame.time_base = 0, fractions.Fraction(1, 90_000)
    payloads, _ = FastH264Encoder().encode(frame)
    assert b"subme=0" in b"".join(payloads)


@pytest.mark.parametrize("encoder", [FastVp8Encoder, FastH264Encoder])
def test_rtp_timestamps_are_the_pts_the_frames_were_stamped_with(encoder: type) -> None:
    """Frame traces carry the pts set on the picture; a receiver pairs them with RTP timestamps exactly."""
    coder = encoder()
    pts = 1_234_567
    for step in range(50):
        frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24").reformat(format="yuv420p")
        pts += 3600 + (step * 7919) % 400  # send instants: a frame interval and some jitter, in 90 kHz ticks
        frame.pts, frame.time_base = pts, fractions.Fraction(1, 90_000)
        _, timestamp = coder.encode(frame)
        assert timestamp == pts


async def test_audio_transceivers_are_refused() -> None:
    pc = RTCPeerConnection()
    with pytest.raises(ValueError, match="video transceivers only"):
        speed_up_video_encoder(pc.addTransceiver("audio"))
