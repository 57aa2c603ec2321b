"""Writing experiment results: one CSV and PNG writer for every experiment."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def save_png(fig: Figure, path: Path, *, tight: bool = True) -> Path:
    """Render headless (Agg canvas, no pyplot state); `tight=False` keeps a figure's own
    hand-set margins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    FigureCanvasAgg(fig).print_png(str(path))  # type: ignore[no-untyped-call]
    return path
