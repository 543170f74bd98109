"""The built-in speech sample: the default audio of ``avatar render``, the page's and the benchmarks' speech."""

from importlib import resources
from pathlib import Path

SAMPLE_SPEECH = Path(str(resources.files("engine.audio") / "assets" / "sample_speech.wav"))
"""8.7 s of English speech with a pause, 16 kHz mono PCM16, synthesized by this project with espeak-ng."""
