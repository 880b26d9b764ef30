"""XANES / EXAFS through a learned per-atom surrogate (:mod:`specguide.models.surrogate`).

``F(x)_s = (1 / |A_s|) Σ_{i ∈ A_s} μ_i(x)``: the mean of the per-atom spectra ``μ_i`` over the absorbing
sites ``A_s`` of structure ``s`` (all atoms of the absorbing element, or a chosen subset of them), on the grid
stored in the checkpoint (eV for XANES, Å⁻¹ for k-space EXAFS, or a plain index 0…G−1 when the training data
gave no energies, as the a-C DFT set of Kwon et al.). Batched over replicas and differentiable with respect
to the positions (the surrogate depends on distances only, so also with respect to the cell through them).
"""

from __future__ import annotations

from pathlib import Path

import torch
from ase.data import chemical_symbols

from specguide.models.surrogate import GRID_UNITS, SpectrumSurrogate
from specguide.observables.base import Observable
from specguide.pretrained import load_surrogate

# what y is, unless the checkpoint records it (``quantity``; the bundled Si K-edge EXAFS surrogate: k²χ(k))
Y_LABELS = {"xanes": "μ(E) (surrogate, arb. units)", "exafs": "EXAFS as in the training spectra (surrogate)"}


class SurrogateSpectrum(Observable):
    """Structure-averaged spectrum of a surrogate: ``__call__ -> [S, n_grid]``; :meth:`per_atom` -> ``[N, n_grid]``.

    ``surrogate``: a checkpoint path or a loaded :class:`SpectrumSurrogate` (then give ``meta`` as returned
    by :func:`load_surrogate`). ``sites``: atom indices within each structure (the same for every replica)
    to average over instead of all atoms of the absorbing element; every chosen atom must be of that element.
    """

    def __init__(
        self,
        surrogate: str | Path | SpectrumSurrogate,
        meta: dict | None = None,
        *,
        sites: list[int] | torch.Tensor | None = None,
        kind: str | None = None,
    ):
        if isinstance(surrogate, (str, Path)):
            surrogate, meta = load_surrogate(surrogate)
        if meta is None:
            raise ValueError("give the surrogate's metadata (from load_surrogate) with a loaded network")
        if kind is not None and kind != meta["kind"]:
            raise ValueError(f"{meta.get('path', 'surrogate')}: is a {meta['kind']} surrogate, not {kind}")
        self.network = surrogate.eval()
        for parameter in self.network.parameters():
            parameter.requires_grad_(False)
        self.meta = meta
        self.kind = meta["kind"]
        self.absorber = int(meta["absorber"])
        self.grid = torch.as_tensor(meta["grid"], dtype=torch.float64)
        self.sites = None if sites is None else torch.as_tensor(sites, dtype=torch.long).flatten()
        symbol = chemical_symbols[self.absorber]
        edge = "K-edge XANES" if self.kind == "xanes" else "K-edge EXAFS"
        where = "all " + symbol if self.sites is None else f"{self.sites.numel()} chosen {symbol}"
        self.quantity = f"{symbol} {edge}, surrogate {Path(meta.get('path', '')).name}, mean over {where} sites"
        self.x_label = GRID_UNITS[meta["grid_unit"]]
        self.y_label = f"{meta['quantity']} (surrogate)" if meta.get("quantity") else Y_LABELS[self.kind]

    def site_mask(self, numbers: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
        """Boolean ``[N]``: the atoms averaged over (checked: absorbers, chosen sites present)."""
        is_absorber = numbers == self.absorber
        if self.sites is None:
            mask = is_absorber
        else:
            counts = torch.bincount(batch)
            offsets = torch.cumsum(counts, 0) - counts
            local = torch.arange(len(numbers), device=numbers.device) - offsets[batch]
            if int(self.sites.max()) >= int(counts.min()):
                raise ValueError(f"site index {int(self.sites.max())} is beyond the atoms of a structure")
            mask = torch.isin(local, self.sites.to(numbers.device))
            if bool((mask & ~is_absorber).any()):
                raise ValueError(f"chosen sites must all be {chemical_symbols[self.absorber]} atoms")
        present = torch.bincount(batch[mask], minlength=int(batch.max()) + 1)
        if bool((present == 0).any()):
            raise ValueError(f"a structure has no {chemical_symbols[self.absorber]} atom to average the spectrum over")
        return mask

    def per_atom(
        self, positions: torch.Tensor, cells: torch.Tensor, numbers: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Every atom's surrogate spectrum ``[N, n_grid]`` (meaningful for the absorbing element only)."""
        if batch is None:
            batch = torch.zeros(len(numbers), dtype=torch.long, device=numbers.device)
        if next(self.network.parameters()).device != positions.device:  # follow the structures' device
            self.network.to(positions.device)
        return self.network(positions, cells, numbers, batch).to(positions.dtype)

    def __call__(
        self, positions: torch.Tensor, cells: torch.Tensor, numbers: torch.Tensor, batch: torch.Tensor | None = None
    ) -> torch.Tensor:
        if batch is None:
            batch = torch.zeros(len(numbers), dtype=torch.long, device=numbers.device)
        if cells.dim() == 2:
            cells = cells.unsqueeze(0)
        mask = self.site_mask(numbers, batch)
        spectra = self.per_atom(positions, cells, numbers, batch) * mask[:, None].to(positions.dtype)
        n = cells.shape[0]
        sums = torch.zeros(n, spectra.shape[1], dtype=spectra.dtype, device=spectra.device).index_add(0, batch, spectra)
        counts = torch.bincount(batch[mask], minlength=n).to(spectra.dtype)
        return sums / counts[:, None]

    def header(self) -> str:
        unit = self.meta["grid_unit"]
        note = "\ngrid: index 0…G−1 — the training data gave no energies" if unit == "index" else ""
        return f"{self.quantity}{note}\ncolumns: {self.x_label}, {self.y_label}"
