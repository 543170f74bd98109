"""The real server in its own process: ``avatar serve`` started, watched and stopped by a benchmark.

Client and server run in separate processes so that the client's work (Opus
encoding, VP8 decoding, bookkeeping) never runs on the server's event loop;
on one machine they still share its cores, as a browser and a local server do.
"""

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.models import ModelSetup
from engine.backends.model_files import ModelSource, onnx_file, resolve_source

LISTENING = re.compile(r"listening on (?P<host>[^\s;]+):(?P<port>\d+);")
"""The line ``avatar serve`` prints once it accepts connections."""
STOP_TIMEOUT_S = 15.0
"""How long a stopped server may take to end its sessions before it is killed."""


@dataclass
class ServerProcess:
    """A running ``avatar serve``: its process, its URL and the tail of its output."""

    process: subprocess.Popen[str]
    base_url: str
    output: deque[str] = field(default_factory=lambda: deque(maxlen=200))

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mb(self) -> float:
        """The server's resident memory now, MiB."""
        return rss_mb(self.pid)

    def open_descriptors(self) -> int:
        """File descriptors the server holds open now."""
        return open_descriptors(self.pid)

    def cpu_s(self) -> float:
        """User plus system CPU seconds the server has used so far."""
        return cpu_s(self.pid)


def rss_mb(pid: int) -> float:
    """Process ``pid``'s resident memory now, MiB (Linux: /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_descriptors(pid: int) -> int:
    """File descriptors process ``pid`` holds open now (Linux: /proc/<pid>/fd)."""
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def cpu_s(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (Linux: /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_arguments(
    setup: ModelSetup, generator: ModelSource, *, size_px: int, fps: int, max_sessions: int
) -> list[str]:
    """``avatar serve`` flags for this setup (:func:`model_arguments`), video size, rate and session limit."""
    video = ["--size", str(size_px), "--fps", str(fps), "--max-sessions", str(max_sessions)]
    return model_arguments(setup, generator) + video


def model_arguments(setup: ModelSetup, generator: ModelSource) -> list[str]:
    """The model flags of ``avatar serve``, ``live`` and ``publish`` for this setup: the same weights it would
    load by default (CAUSE) or the generator given, as ONNX files for the ONNX runtimes, exported here once
    (no torch in the process under test)."""
    args = [
        "--backend",
        setup.backend,
        "--precision",
        setup.precision,
        "--threads",
        str(setup.threads),
        "--streams",
        str(setup.streams),
    ]
    if setup.backend == "torch":
        return args + (["--generator", str(generator.path)] if generator.path is not None else [])
    cause = resolve_source("cause", None)
    return args + ["--generator", str(onnx_file(generator)), "--cause", str(onnx_file(cause))]


@contextlib.contextmanager
def running_server(arguments: list[str], *, startup_timeout_s: float = 120.0) -> Iterator[ServerProcess]:
    """``avatar serve --port 0 <arguments>`` on 127.0.0.1 until the block ends (then SIGINT, as Ctrl-C)."""
    command = [sys.executable, "-m", "engine.cli.main", "serve", "--host", "127.0.0.1", "--port", "0", *arguments]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    output: deque[str] = deque(maxlen=200)
    ready = threading.Event()
    address: list[str] = []

    def drain() -> None:  # the pipe must be read for as long as the server writes, or it blocks
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            match = LISTENING.search(line)
            if match and not ready.is_set():
                address.append(f"http://{match['host']}:{match['port']}")
                ready.set()

    reader = threading.Thread(target=drain, name="server-output", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not ready.wait(0.1):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(output)
                raise RuntimeError(f"avatar serve did not start ({' '.join(command)}):\n{tail}")
        yield ServerProcess(process, address[0], output)
    finally:
        _stop(process)
        reader.join(timeout=5)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
