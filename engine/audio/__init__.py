"""Audio front end: any ingest audio -> 16 kHz mono float32 -> causal log-mel hops."""

from engine.audio.errors import AudioFileError, AudioFormatError
from engine.audio.files import load_audio_file
from engine.audio.frames import frame_samples
from engine.audio.grid import HOP_MS, HOP_RATE_HZ, HOP_SAMPLES, SAMPLE_RATE_HZ, WINDOW_MS, WINDOW_SAMPLES
from engine.audio.mel import (
    MelConfig,
    StreamingLogMel,
    hop_count,
    log_mel,
    mel_filterbank,
    silence_log_mel,
)
from engine.audio.resample import (
    MAX_CHANNELS,
    MAX_INPUT_RATE_HZ,
    MIN_INPUT_RATE_HZ,
    AudioConverter,
)
from engine.audio.samples import SAMPLE_SPEECH

__all__ = [
    "HOP_MS",
    "HOP_RATE_HZ",
    "HOP_SAMPLES",
    "MAX_CHANNELS",
    "MAX_INPUT_RATE_HZ",
    "MIN_INPUT_RATE_HZ",
    "SAMPLE_RATE_HZ",
    "SAMPLE_SPEECH",
    "WINDOW_MS",
    "WINDOW_SAMPLES",
    "AudioConverter",
    "AudioFileError",
    "AudioFormatError",
    "MelConfig",
    "StreamingLogMel",
    "hop_count",
    "frame_samples",
    "load_audio_file",
    "log_mel",
    "mel_filterbank",
    "silence_log_mel",
]
