"""Watching the live session of an ``avatar live`` or ``avatar publish`` run from outside, with no engine change.

The benchmarks run those commands as they are (``engine.cli.main.main``) and
read what the engine already records: each input chunk's arrival
(``AudioChunk.arrival_s``, stamped by the paced file or stdin reader) and each
sent frame's trace (``LiveSession.stats_report()['frames']``). For the
duration of a run, :func:`watching` wraps three names the command's module
looks up when it runs (as ``bench/probes.py`` wraps the engine's stages):

- ``load_parts``: the parts get an ``on_session`` hook (``LiveParts``), which
  starts a task reading the session's stats every ``report_every_s``;
- ``open_input``: every chunk is reported with its place on the session's
  16 kHz audio clock before the session gets it;
- ``stats_line``: the command's own last report (at the end of the input)
  is read too, so no trace is lost.

Run the command with ``--stats-interval 0``: its periodic reports would take
traces from this reader.
"""

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol, TextIO

import numpy as np

from engine.live import LiveSession
from engine.live.build import BuiltParts
from engine.live.sources import AudioChunk, AudioChunks
from engine.pipeline import SAMPLE_RATE_HZ

REPORT_EVERY_S = 1.0
"""How often the session's stats (and traces) are read, seconds."""


class SessionObserver(Protocol):
    """What :func:`watching` reports."""

    def chunk(self, start_sample: int, end_sample: int, arrival_s: float) -> None:
        """An input chunk covering [start_sample, end_sample) of the 16 kHz audio clock arrived at ``arrival_s``."""

    def frames(self, traces: list[dict[str, Any]]) -> None:
        """Traces of frames sent (``engine.live.stats.FrameStats.report``'s ``frames``), in send order."""


@dataclass
class SessionLog:
    """A :class:`SessionObserver` keeping everything in memory (a run of minutes in this process)."""

    chunk_starts: list[int] = field(default_factory=list)
    chunk_ends: list[int] = field(default_factory=list)
    chunk_arrivals_s: list[float] = field(default_factory=list)
    traces: list[dict[str, Any]] = field(default_factory=list)

    def chunk(self, start_sample: int, end_sample: int, arrival_s: float) -> None:
        self.chunk_starts.append(start_sample)
        self.chunk_ends.append(end_sample)
        self.chunk_arrivals_s.append(arrival_s)

    def frames(self, traces: list[dict[str, Any]]) -> None:
        self.traces.extend(traces)

    def arrival_of(self, sample: int) -> float | None:
        """When the chunk holding ``sample`` (16 kHz audio clock) arrived; None if no chunk held it."""
        i = int(np.searchsorted(self.chunk_starts, sample, side="right")) - 1
        if i < 0 or sample >= self.chunk_ends[i]:
            return None
        return self.chunk_arrivals_s[i]


class JsonLinesWriter:
    """A :class:`SessionObserver` writing each record as a JSON line, keeping nothing (an hour-long run whose
    memory is measured). :func:`read_json_lines` reads the file back into a :class:`SessionLog`."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def chunk(self, start_sample: int, end_sample: int, arrival_s: float) -> None:
        self._out.write(json.dumps({"chunk": [start_sample, end_sample, arrival_s]}) + "\n")

    def frames(self, traces: list[dict[str, Any]]) -> None:
        for trace in traces:
            self._out.write(json.dumps({"frame": trace}) + "\n")
        self._out.flush()


def read_json_lines(path: Path) -> SessionLog:
    """What a :class:`JsonLinesWriter` wrote (a last line cut short by a killed process is skipped)."""
    log = SessionLog()
    with path.open() as lines:
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if "chunk" in record:
                log.chunk(*record["chunk"])
            else:
                log.frames([record["frame"]])
    return log


@contextlib.contextmanager
def watching(
    command: ModuleType, observer: SessionObserver, *, report_every_s: float = REPORT_EVERY_S
) -> Iterator[list[LiveSession]]:
    """Wrap ``command``'s ``load_parts``, ``open_input`` and ``stats_line`` for the block (see the module
    docstring); yields the sessions it sees, as they are made."""
    sessions: list[LiveSession] = []
    originals = {name: getattr(command, name) for name in ("load_parts", "open_input", "stats_line")}
    readers: list[asyncio.Task[None]] = []

    def session_made(session: LiveSession) -> None:
        sessions.append(session)
        readers.append(asyncio.get_running_loop().create_task(_read_stats(session, observer, report_every_s)))

    def load_parts(args: Any) -> BuiltParts:
        built: BuiltParts = originals["load_parts"](args)
        return dataclasses.replace(built, parts=dataclasses.replace(built.parts, on_session=session_made))

    def open_input(args: Any) -> AudioChunks:
        return _reported(originals["open_input"](args), observer)

    def stats_line(report: dict[str, Any], where: str) -> str:
        observer.frames(report["frames"])
        line: str = originals["stats_line"](report, where)
        return line

    for name, wrapper in (("load_parts", load_parts), ("open_input", open_input), ("stats_line", stats_line)):
        setattr(command, name, wrapper)
    try:
        yield sessions
    finally:
        for name, original in originals.items():
            setattr(command, name, original)


async def _read_stats(session: LiveSession, observer: SessionObserver, every_s: float) -> None:
    """Until cancelled (the command's event loop ends), the session's traces every ``every_s``."""
    while True:
        await asyncio.sleep(every_s)
        observer.frames(session.stats_report()["frames"])


async def _reported(chunks: AudioChunks, observer: SessionObserver) -> AsyncIterator[AudioChunk]:
    """The chunks, each reported on the 16 kHz audio clock (as ``LiveSession.push_audio`` places it)."""
    samples = 0
    async for chunk in chunks:
        start = samples * SAMPLE_RATE_HZ // chunk.rate_hz
        samples += chunk.samples.shape[0]
        observer.chunk(start, samples * SAMPLE_RATE_HZ // chunk.rate_hz, chunk.arrival_s)
        yield chunk


SEGMENTS = ("audio_window", "wait", "render", "output")
"""The parts of a sent frame's latency inside the process, in order; they add up to ``SentFrame.latency_ms``:

- audio_window: the chunk holding the shown sample arrived -> the chunk
  completing the frame's audio (mel window and lookahead) arrived;
- wait: -> render start (AU thread, CAUSE, the render scheduler);
- render: generator, compose (blend + paste + I420 at full resolution);
- output: the output's conversion (camera pixel format, or the video size),
  its pacing, and the hand-over (``camera.send``; the WHIP track's ``recv``).
"""


@dataclass(frozen=True)
class SentFrame:
    """A sent frame's trace with the arrival of the audio it shows; wall times in ``perf_counter`` seconds.

    pts: the video track's RTP pts (90 kHz, from the send instant), None for outputs without one.
    sample_in_s: when the input chunk holding the shown sample arrived.
    """

    pts: int | None
    shown_sample: int
    sample_in_s: float
    audio_arrival_s: float
    render_start_s: float
    render_end_s: float
    send_s: float

    @property
    def latency_ms(self) -> float:
        """The shown sample arrived -> the frame showing it was handed to the output."""
        return (self.send_s - self.sample_in_s) * 1e3

    def segments_ms(self) -> dict[str, float]:
        """``latency_ms`` split at each hand-over (``SEGMENTS``)."""
        points = (self.sample_in_s, self.audio_arrival_s, self.render_start_s, self.render_end_s, self.send_s)
        return {name: (b - a) * 1e3 for name, a, b in zip(SEGMENTS, points, points[1:])}


def sent_frames(log: SessionLog) -> list[SentFrame]:
    """The traced frames with every time set whose shown sample arrived in an input chunk, in send order."""
    frames = []
    for trace in log.traces:
        times = [trace.get(k) for k in ("audio_arrival_s", "render_start_s", "render_end_s", "send_s")]
        sample_in_s = log.arrival_of(trace["shown_sample"])
        if sample_in_s is None or any(t is None for t in times):
            continue
        arrival_s, start_s, end_s, send_s = (float(t) for t in times if t is not None)
        shown = trace["shown_sample"]
        frames.append(SentFrame(trace.get("pts"), shown, sample_in_s, arrival_s, start_s, end_s, send_s))
    return frames
