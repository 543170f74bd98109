"""A Python client of the avatar engine's WebSocket API (clients/PROTOCOL.md).

    import asyncio
    from avatar_client import read_wav, stream

    audio = read_wav("speech.wav")
    result = asyncio.run(stream("ws://127.0.0.1:8080/ws", audio.samples, audio.hello(outputs=("aus", "blendshapes"))))
    for frame in result.frames:
        print(frame.index, frame.time_s, frame.aus, frame.blendshapes)

Command line: ``python -m avatar_client --help``.
"""

from avatar_client.client import (
    DEFAULT_URL,
    AvatarClient,
    ServerError,
    StreamResult,
    chunks,
    send_paced,
    stream,
)
from avatar_client.csv_writer import RecordCsv
from avatar_client.microphone import MicrophoneUnavailable, microphone_chunks
from avatar_client.wav import WavAudio, WavError, read_wav
from avatar_protocol import End, FrameRecord, Hello, JpegRecord, Ready

__all__ = [
    "DEFAULT_URL",
    "AvatarClient",
    "End",
    "FrameRecord",
    "Hello",
    "JpegRecord",
    "MicrophoneUnavailable",
    "Ready",
    "RecordCsv",
    "ServerError",
    "StreamResult",
    "WavAudio",
    "WavError",
    "chunks",
    "microphone_chunks",
    "read_wav",
    "send_paced",
    "stream",
]
