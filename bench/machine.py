"""What a result was measured on: CPU, cores, load, library versions, git commit, and the models' setup."""

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = (
    "numpy",
    "torch",
    "onnxruntime",
    "openvino",
    "av",
    "aiortc",
    "aiohttp",
    "prometheus-client",
    "pyvirtualcam",
    "pipecat-ai",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, cwd=Path(__file__).resolve().parent
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def load_average() -> list[float] | None:
    """1, 5 and 15 minute load averages at the time of writing (a busy machine shows here)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


STEAL_FIELD = 7
"""Index of ``steal`` among /proc/stat's CPU counters (user, nice, system, idle, iowait, irq, softirq, steal)."""
NOTICEABLE_STEAL = 0.05
"""A run that lost more than this share of CPU time to the hypervisor is not a quiet-machine figure."""


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters from /proc/stat (jiffies, all cores), or None where there is none."""
    try:
        return [int(value) for value in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    except (OSError, ValueError, IndexError):
        return None


def steal_share(since: list[int] | None) -> float | None:
    """Share of the CPU time since ``since`` (``cpu_times()``) that the hypervisor gave to other guests.

    A virtual machine's cores are not always its own: on this project's VM
    the same run has met 0 % and 30 % steal, which no load average shows.
    """
    now = cpu_times()
    if since is None or now is None or len(now) <= STEAL_FIELD:
        return None
    delta = [after - before for before, after in zip(since, now)]
    total = sum(delta)
    return round(delta[STEAL_FIELD] / total, 4) if total > 0 else None


def describe_machine(**setup: Any) -> dict[str, object]:
    """The machine and library versions, plus ``setup``: backend(s), precision, generator width(s), threads."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "libraries": versions,
        "git_commit": git_commit(),
        **setup,
    }
