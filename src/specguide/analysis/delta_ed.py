"""Error-minus-diversity (Delta_ED), the GLASS benchmark metric (Guo & Schwalbe-Koda 2026, Supplementary 2.6).

For one spectral modality (one feature, e.g. one partial PDF) with reference spectra ``R [n_ref, n_grid]``
(independent MD replicas) and generated spectra ``G [n_gen, n_grid]``:

- normalisation ``c = max |R|`` over all reference spectra and grid points;
- diversity ``= mean_k std_r(R[r, k]) / c`` (population std over replicas), the natural spread;
- error ``= mean_k |mean_g G[g, k] − mean_r R[r, k]| / c`` (generated spectra averaged first);
- ``Delta_ED = error − diversity``: ≤ 0 means the generated ensemble lies within the reference variability.

When the target was measured on a few *specific* structures (an inversion benchmark: targets from held-out MD
replicas), give their spectra as ``truth``: the error is then taken against the truth's mean, the diversity still
from the reference ensemble (the natural spread of one cell). Only then does returning the measured structures
themselves score best (error 0); against the ensemble mean, the truth's own low-Q scattering, which a faithful
fit of its g(r) reproduces, counts as error (bench/results/README.md, vs_rmc).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import ase
import torch

from specguide.graph import batch_from_atoms
from specguide.observables import BondAngleDistribution, NeutronDiffraction, PairDistribution, XRayDiffraction
from specguide.observables.base import Observable
from specguide.observables.registry import default_r_max


def delta_ed(reference: torch.Tensor, generated: torch.Tensor, truth: torch.Tensor | None = None) -> dict[str, float]:
    """``{"error", "diversity", "delta_ed"}`` of generated vs reference spectra (``[n, n_grid]`` each).

    Extra leading feature axes are allowed as ``[n, ..., n_grid]``: the metric is then computed per feature
    (normalised per feature, as GLASS does per pair or triplet) and averaged over features. ``truth``
    (``[n_truth, ..., n_grid]``, optional): spectra of the structures the target was measured on; the error is
    then taken against their mean instead of the reference mean (normalisation and diversity stay the reference's).
    """
    reference = torch.as_tensor(reference, dtype=torch.float64)
    generated = torch.as_tensor(generated, dtype=torch.float64)
    compared = {"generated": generated}
    if truth is not None:
        compared["truth"] = torch.as_tensor(truth, dtype=torch.float64)
    if reference.dim() < 2 or any(t.dim() < 2 for t in compared.values()):
        raise ValueError("give spectra as [n_structures, n_grid] (one row per structure)")
    for label, spectra in compared.items():
        if reference.shape[1:] != spectra.shape[1:]:
            shapes = f"reference {tuple(reference.shape[1:])}, {label} {tuple(spectra.shape[1:])}"
            raise ValueError(f"grids differ: {shapes}")
    if reference.shape[0] < 2:
        raise ValueError("the diversity needs at least two reference spectra")
    ref = reference.reshape(reference.shape[0], -1, reference.shape[-1])
    gen = generated.reshape(generated.shape[0], -1, generated.shape[-1])
    centre = ref.mean(0) if truth is None else compared["truth"].reshape(-1, *ref.shape[1:]).mean(0)
    norm = ref.abs().amax(dim=(0, 2)).clamp_min(1e-30)  # per feature
    diversity = (ref.std(dim=0, unbiased=False).mean(-1) / norm).mean()
    error = ((gen.mean(0) - centre).abs().mean(-1) / norm).mean()
    return {"error": float(error), "diversity": float(diversity), "delta_ed": float(error - diversity)}


def spectra_of(
    structures: Sequence[ase.Atoms], observable: Observable, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Spectra ``[n_structures, n_grid]`` of a list of structures (no gradient), computed on ``device`` in float64
    and returned on the CPU."""
    positions, cells, numbers, batch = batch_from_atoms(list(structures), dtype=torch.float64, device=device)
    with torch.no_grad():
        return observable(positions, cells, numbers, batch).cpu()


def delta_ed_table(
    reference: Sequence[ase.Atoms],
    generated: Sequence[ase.Atoms],
    observables: Mapping[str, Observable],
) -> dict[str, dict[str, float]]:
    """Delta_ED per modality: ``{name: {"error", "diversity", "delta_ed"}}`` for each observable."""
    return {
        name: delta_ed(spectra_of(reference, observable), spectra_of(generated, observable))
        for name, observable in observables.items()
    }


MODALITIES = ("PDF", "ADF", "XRD", "ND")


def benchmark_observables(half_cell: float, bond_cutoff: float | dict | None = None) -> dict[str, Observable]:
    """The four modalities of the Delta_ED benchmark for cells of half width ``half_cell`` (Å): number g(r) up to
    min(8 Å, half cell), bond angles (``bond_cutoff``, Å), X-ray and neutron I(Q) for 1–15 Å⁻¹."""
    r_max = default_r_max(half_cell)
    return {
        "PDF": PairDistribution(r_max=r_max),
        "ADF": BondAngleDistribution(cutoff=bond_cutoff),
        "XRD": XRayDiffraction(q_min=1.0, q_max=15.0, r_max=r_max),
        "ND": NeutronDiffraction(q_min=1.0, q_max=15.0, r_max=r_max),
    }


def delta_ed_scores(
    reference_spectra: Mapping[str, torch.Tensor],
    generated: Sequence[ase.Atoms],
    observables: Mapping[str, Observable],
    device: torch.device | str = "cpu",
) -> dict[str, dict[str, float]]:
    """``{"delta_ed": {modality: x}, "error": {...}, "diversity": {...}}`` of ``generated`` against precomputed
    reference spectra (one entry per observable); the spectra of ``generated`` are computed on ``device``."""
    scores = {m: delta_ed(reference_spectra[m], spectra_of(generated, o, device)) for m, o in observables.items()}
    return {key: {m: s[key] for m, s in scores.items()} for key in ("delta_ed", "error", "diversity")}
