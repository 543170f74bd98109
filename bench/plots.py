"""Figures drawn without pyplot: no global backend switch, no window, PNG through Agg."""

from pathlib import Path

from matplotlib.figure import Figure


def new_figure(width_in: float = 8.0, height_in: float = 4.5) -> Figure:
    """An empty figure of ``width_in`` x ``height_in`` inches."""
    return Figure(figsize=(width_in, height_in), layout="constrained")


def save(figure: Figure, path: Path) -> None:
    """Write ``figure`` as a PNG at ``path`` (100 dpi)."""
    figure.savefig(path, format="png", dpi=100)
