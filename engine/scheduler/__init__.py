"""Cross-session render scheduling: batches due frames of many sessions, deadline first.

``RenderScheduler`` is what sessions await; ``BatchPlanner`` is its I/O-free
policy (one pending request per session, earliest deadline first, a short
batching window, late drops); ``RenderTimeEstimator`` learns batch costs.
"""

from engine.scheduler.planner import Batch, BatchPlanner, Pending
from engine.scheduler.render_time import RenderTimeEstimator
from engine.scheduler.scheduler import LATE_DROP_MS, RenderScheduler, SchedulerStats

__all__ = [
    "Batch",
    "BatchPlanner",
    "LATE_DROP_MS",
    "Pending",
    "RenderScheduler",
    "RenderTimeEstimator",
    "SchedulerStats",
]
