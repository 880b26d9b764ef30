"""What every observable shares: a grid, labels for files and plots, and one call on a batch."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch


class Observable(ABC):
    """A differentiable spectrum ``F(x)`` of a batch of structures on a fixed grid.

    Subclasses set the class attributes and implement ``__call__(positions [N,3] Å, cells [S,3,3] Å,
    numbers [N], batch [N] | None) -> Tensor [S, n_grid]`` (one spectrum per structure, differentiable
    with respect to ``positions`` and ``cells``).
    """

    kind: ClassVar[str]  # short name used on the command line, e.g. "gr"
    quantity: ClassVar[str]  # what y is, with its convention, e.g. "g(r), number-weighted total PDF"
    x_label: ClassVar[str]  # e.g. "r (Å)"
    y_label: ClassVar[str]  # e.g. "g(r)"

    grid: torch.Tensor

    @abstractmethod
    def __call__(
        self,
        positions: torch.Tensor,
        cells: torch.Tensor,
        numbers: torch.Tensor,
        batch: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """One spectrum per structure ``[S, n_grid]``; every concrete observable implements it."""

    def header(self) -> str:
        """Text for the ``#`` header of a two-column file: quantity, convention and units."""
        return f"{self.quantity}\ncolumns: {self.x_label}, {self.y_label}"
