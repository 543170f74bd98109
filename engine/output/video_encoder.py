"""aiortc's own VP8 and H.264 encoders with the speed options measured here.

aiortc's encoders fix their libvpx / libx264 options, and two of them cost
CPU the avatar's video does not need: VP8 runs libvpx's temporal denoiser
(``noise-sensitivity 4``: rendered frames have no sensor noise to remove) at
speed 6, and H.264 runs libx264 at its default ``medium`` preset. The options
below were chosen by ``python -m bench encoders`` (figures in bench/README.md):
less CPU per 512x512 frame at the same bitrate, with decoded PSNR no lower.

How: :func:`speed_up_video_encoder` gives a sender aiortc's encoder class for
the negotiated codec, whose codec context is wrapped so that these options
are merged into aiortc's own just before it opens; everything else (bitrate
control, packetization, keyframes) stays aiortc's. The sender keeps its
encoder in a private attribute, filled only when its first frame is encoded:
one set before media flows is used instead. If a future aiortc moves it, the
function raises instead of silently leaving the slower settings.

The wrapped context also opens on the RTP video clock (1/90000 s). Left to
PyAV's default (1/1000000 s), encoding rebases each frame's pts to
microseconds and aiortc converts it back by truncation: about half the RTP
timestamps left one tick below the pts the frame was stamped with (and its
trace reports), so a receiver pairing frames with traces missed them.
"""

from typing import Any

from aiortc import RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder

from engine.output.tracks import VIDEO_TIME_BASE

VP8_SPEED_OPTIONS = {"noise-sensitivity": "0", "cpu-used": "-12"}
"""libvpx: no temporal denoiser; fixed speed 12 of 16 (aiortc: denoiser level 4, speed 6)."""
H264_SPEED_OPTIONS = {"preset": "ultrafast"}
"""libx264: the fastest preset (aiortc: the default, medium), still with ``tune zerolatency``."""

_SENDER_ENCODER = "_RTCRtpSender__encoder"
"""aiortc's private attribute holding a sender's encoder (None until its first frame)."""


class _ContextWithOptions:
    """A PyAV codec context that merges ``extra`` into its options, on the RTP clock, the moment before it opens."""

    def __init__(self, context: Any, extra: dict[str, str]) -> None:
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "_extra", extra)
        object.__setattr__(self, "opened_with", None)
        """The options the context was opened with (None until its first frame)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._context, name, value)

    def encode(self, frame: Any = None) -> Any:
        if not self._context.is_open:
            options = {**self._context.options, **self._extra}
            self._context.options = options
            self._context.time_base = VIDEO_TIME_BASE  # so that a frame's pts reaches the wire unchanged
            object.__setattr__(self, "opened_with", options)
        return self._context.encode(frame)


class _SpeedOptions:
    """Mixed into an aiortc encoder: every codec context it creates gets ``speed_options``."""

    speed_options: dict[str, str] = {}

    @property
    def codec(self) -> Any:
        return self._wrapped_codec

    @codec.setter
    def codec(self, context: Any) -> None:
        self._wrapped_codec = None if context is None else _ContextWithOptions(context, self.speed_options)


class FastVp8Encoder(_SpeedOptions, Vp8Encoder):
    """aiortc's VP8 encoder with :data:`VP8_SPEED_OPTIONS`."""

    speed_options = VP8_SPEED_OPTIONS


class FastH264Encoder(_SpeedOptions, H264Encoder):
    """aiortc's H.264 encoder with :data:`H264_SPEED_OPTIONS`."""

    speed_options = H264_SPEED_OPTIONS


FAST_ENCODERS: dict[str, type[Encoder]] = {"vp8": FastVp8Encoder, "h264": FastH264Encoder}
"""By codec name (lower case); codecs not here keep aiortc's encoder."""


def speed_up_video_encoder(transceiver: RTCRtpTransceiver) -> bool:
    """Make a video transceiver's sender encode with the speed options; True if its codec has them.

    Call it after ``setRemoteDescription`` (the codecs are negotiated then)
    and before media flows.

    Raises:
        ValueError: ``transceiver`` is not a video transceiver.
        RuntimeError: this aiortc version keeps the negotiated codecs or the sender's encoder elsewhere.
    """
    if transceiver.kind != "video":
        raise ValueError(f"speed_up_video_encoder() applies to video transceivers only, got {transceiver.kind}")
    codecs = getattr(transceiver, "_codecs", None)
    sender = transceiver.sender
    if not isinstance(codecs, list) or not hasattr(sender, _SENDER_ENCODER):
        raise RuntimeError(
            f"aiortc no longer keeps the negotiated codecs in RTCRtpTransceiver._codecs or the sender's encoder in "
            f"{_SENDER_ENCODER}; update engine/output/video_encoder.py for this aiortc version"
        )
    if not codecs:
        return False
    encoder = FAST_ENCODERS.get(codecs[0].name.lower())
    if encoder is None:
        return False
    setattr(sender, _SENDER_ENCODER, encoder())
    return True
