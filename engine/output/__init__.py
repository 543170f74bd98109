"""Where finished frames go when they do not go to a live peer: files."""

from engine.output.mp4 import Mp4Writer

__all__ = ["Mp4Writer"]
