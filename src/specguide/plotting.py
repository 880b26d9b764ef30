"""Figures people would rather look at than read. Matplotlib with the non-interactive Agg backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specguide.io import write_atomically  # noqa: E402


def save_figure(figure: plt.Figure, path: Path) -> None:
    """Save ``figure`` to ``path`` atomically and close it."""
    write_atomically(
        Path(path),
        lambda tmp: figure.savefig(tmp, dpi=130, bbox_inches="tight", format=Path(path).suffix[1:] or "png"),
    )
    plt.close(figure)


def plot_spectrum(path: Path, x: np.ndarray, y: np.ndarray, observable, title: str = "") -> None:
    """One spectrum with the observable's axis labels."""
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.plot(x, y, lw=1.4)
    axis.set_xlabel(observable.x_label)
    axis.set_ylabel(observable.y_label)
    axis.set_title(f"{title}\n{observable.quantity}", fontsize=9)
    axis.grid(alpha=0.3)
    save_figure(figure, path)
