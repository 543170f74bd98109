"""A window that shows what the virtual camera shows, for the speaker to watch themself (Tk, in its own thread).

Tk is not thread-safe: every Tk call happens on the window's thread. The
event loop only leaves the newest picture in a one-item slot, which the
window polls (``POLL_MS``); a window that cannot keep up shows fewer frames.
Closing the window ends the preview, not the session. Tk's own thread works on
Linux and Windows; macOS wants Tk on the main thread, so there the preview may
refuse to open.
"""

import logging
import os
import platform
import threading

import numpy as np

from engine.errors import EngineError
from engine.pipeline import VideoFrame

logger = logging.getLogger(__name__)

POLL_MS = 10
"""How often the window looks for a new picture, ms."""


class PreviewUnavailable(EngineError, RuntimeError):
    """No display to open a window on, or no Tk."""


class PreviewWindow:
    """A video output drawing the newest frame in a window (see the module docstring)."""

    name = "preview"

    def __init__(self, *, title: str) -> None:
        """Raises PreviewUnavailable when there is no display (Linux without DISPLAY / WAYLAND_DISPLAY) or no Tk."""
        if platform.system() == "Linux" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise PreviewUnavailable("--preview needs a display (DISPLAY is not set)")
        try:
            import tkinter  # noqa: F401  (the standard library's, but not in every Python build)
        except ImportError:
            raise PreviewUnavailable("--preview needs Tk (tkinter), which this Python lacks") from None
        self.frames_shown = 0
        self._title = title
        self._newest: np.ndarray | None = None
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._run, name="preview", daemon=True)
        self._thread.start()

    async def send_video(self, frame: VideoFrame) -> None:
        with self._lock:
            self._newest = frame.rgb

    async def close(self) -> None:
        self._closing.set()

    def _run(self) -> None:
        import tkinter

        from PIL import Image, ImageTk

        try:
            root = tkinter.Tk()
        except tkinter.TclError as exc:
            logger.warning("cannot open the preview window: %s", exc)
            return
        root.title(self._title)
        label = tkinter.Label(root)
        label.pack()
        photo: list[ImageTk.PhotoImage] = []  # Tk shows an image only while Python holds it

        def poll() -> None:
            if self._closing.is_set():
                root.destroy()
                return
            with self._lock:
                rgb, self._newest = self._newest, None
            if rgb is not None:
                photo[:] = [ImageTk.PhotoImage(Image.fromarray(rgb))]
                label.configure(image=photo[0])
                self.frames_shown += 1
            root.after(POLL_MS, poll)

        root.protocol("WM_DELETE_WINDOW", self._closing.set)
        root.after(POLL_MS, poll)
        root.mainloop()
