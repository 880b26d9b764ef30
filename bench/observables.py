"""Forward+gradient time of each observable vs the dense all-pairs formulation, and the scaling exponent.

    python bench/observables.py [--sizes 1000 10000 100000] [--repeats 3] [--threads 2]

Structures (float32, the precision of guidance): N atoms at a-Si density (2.33 g/cm³) in a cubic
cell, uniformly random positions (the pair count per atom within r_max sets the cost, and the density
fixes it). The dense reference is the published formulation: minimum-image distances of all N² pairs,
then the same kernel on a dense [pairs, grid] tensor (GLASS supplement 2.4); it runs only where its
estimated memory fits (--dense-gib).
Prints one table (seconds, ratio dense/ours) and the fitted exponent t ∝ N^p per observable.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import torch

from specguide.observables import (
    BondAngleDistribution,
    NeutronDiffraction,
    PairDistribution,
    StructureFactor,
    XRayDiffraction,
)
from specguide.observables.scattering import debye_waller
from specguide.observables.weights import neutron_scattering_length, xray_form_factors

AMU_PER_A3_PER_G_CM3 = 0.602214076
SI_MASS = 28.0855


def random_silicon(n_atoms: int, seed: int = 0, density: float = 2.33) -> tuple[torch.Tensor, torch.Tensor]:
    side = (n_atoms * SI_MASS / (density * AMU_PER_A3_PER_G_CM3)) ** (1 / 3)
    generator = torch.Generator().manual_seed(seed)
    positions = torch.rand(n_atoms, 3, generator=generator, dtype=torch.float32) * side
    return positions, torch.eye(3, dtype=torch.float32)[None] * side


def dense_distances(positions: torch.Tensor, side: float) -> torch.Tensor:
    """Minimum-image distances of all i<j pairs of a cubic cell: the O(N²) step of the dense route."""
    delta = positions[:, None, :] - positions[None, :, :]
    delta = delta - side * torch.round(delta / side)
    i, j = torch.triu_indices(len(positions), len(positions), offset=1)
    return delta[i, j].norm(dim=-1)


def dense_pdf(positions: torch.Tensor, side: float, grid: torch.Tensor, sigma: float) -> torch.Tensor:
    """Dense g(r): Gaussian kernel on a [pairs, n_r] tensor, normalised by the ideal-gas shell."""
    n = len(positions)
    d = dense_distances(positions, side)
    kernel = torch.exp(-0.5 * ((d[:, None] - grid[None, :]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    shell = 4 * math.pi * grid**2 * (n / side**3) * n / 2
    return kernel.sum(0) / shell


def dense_sq(positions: torch.Tensor, side: float, q: torch.Tensor) -> torch.Tensor:
    """Dense Debye S(Q) over all minimum-image pairs: [pairs, n_q] sinc tensor."""
    d = dense_distances(positions, side)
    qr = q[None, :] * d[:, None]
    return 1 + 2 * torch.sinc(qr / math.pi).sum(0) / len(positions)


def dense_adf(positions: torch.Tensor, side: float, grid_deg: torch.Tensor, cutoff: float, sigma_deg: float):
    """Dense bond angles: all [N, N, N] triplets masked by the cutoff."""
    delta = positions[None, :, :] - positions[:, None, :]
    delta = delta - side * torch.round(delta / side)
    d = delta.norm(dim=-1)
    bonded = (d < cutoff) & (d > 0)
    unit = delta / d.clamp(min=1e-9)[..., None]
    cos = torch.einsum("ijx,ikx->ijk", unit, unit).clamp(-1 + 1e-7, 1 - 1e-7)
    mask = bonded[:, :, None] & bonded[:, None, :] & ~torch.eye(len(positions), dtype=torch.bool)[None]
    theta = torch.rad2deg(torch.acos(cos[mask]))
    kernel = torch.exp(-0.5 * ((theta[:, None] - grid_deg[None, :]) / sigma_deg) ** 2)
    histogram = kernel.sum(0)
    return histogram / histogram.sum()


def timed(function, positions: torch.Tensor, repeats: int, warm_up: bool = True) -> float:
    if warm_up:  # first calls pay one-off costs (allocator, neighbour-list set-up, form-factor tables)
        function(positions.clone().requires_grad_(True)).sum().backward()
    best = math.inf
    for _ in range(repeats):
        x = positions.clone().requires_grad_(True)
        start = time.perf_counter()
        function(x).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dense-gib", type=float, default=6.0, help="largest dense tensor to attempt (GiB)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    pdf = PairDistribution(r_max=8.0, dr=0.02, sigma=0.15)
    adf = BondAngleDistribution(cutoff=2.85)
    sq = StructureFactor(1.0, 20.0, 0.05, r_max=8.0)
    xrd = XRayDiffraction(1.0, 20.0, 0.05, r_max=8.0)
    nd = NeutronDiffraction(1.0, 20.0, 0.05, r_max=8.0)
    observables = {"PDF g(r)": pdf, "ADF": adf, "S(Q)": sq, "XRD": xrd, "ND": nd}

    silicon = torch.tensor([14])
    xray_f2 = xray_form_factors(silicon, sq.grid)[0] ** 2
    xray_d, nd_d = debye_waller(sq.grid, xrd.b_iso), debye_waller(sq.grid, nd.b_iso)
    neutron_b2 = neutron_scattering_length(14) ** 2
    rows = []
    for n in args.sizes:
        positions, cells = random_silicon(n)
        side = float(cells[0, 0, 0])
        numbers = torch.full((n,), 14, dtype=torch.long)
        pairs = n * (n - 1) / 2
        dense = {
            "PDF g(r)": (pairs * len(pdf.grid) * 8 * 3, lambda x: dense_pdf(x, side, pdf.grid, pdf.sigma)),
            "ADF": (n**3 * 8 * 6, lambda x: dense_adf(x, side, adf.grid, 2.85, adf.sigma)),
            "S(Q)": (pairs * len(sq.grid) * 8 * 3, lambda x: dense_sq(x, side, sq.grid)),
            # one element: I(Q)/N = f² [1 + D(Q)(S(Q) − 1)], D the Debye-Waller pair damping (see CONVENTIONS)
            "XRD": (pairs * len(sq.grid) * 8 * 3, lambda x: xray_f2 * (1 + xray_d * (dense_sq(x, side, sq.grid) - 1))),
            "ND": (pairs * len(sq.grid) * 8 * 3, lambda x: neutron_b2 * (1 + nd_d * (dense_sq(x, side, sq.grid) - 1))),
        }
        for name, observable in observables.items():
            ours = timed(lambda x, o=observable: o(x, cells, numbers), positions, args.repeats)
            reference = math.nan
            if name in dense and dense[name][0] / 2**30 <= args.dense_gib:
                reference = timed(dense[name][1], positions, 1, warm_up=False)
            rows.append((n, name, ours, reference))
            ratio = f"{reference / ours:8.1f}" if math.isfinite(reference) else "       —"
            dense_text = f"{reference:9.3f}" if math.isfinite(reference) else "        —"
            print(f"N={n:>7d}  {name:<9s} ours {ours:8.3f} s   dense {dense_text} s   dense/ours {ratio}", flush=True)

    print("\nscaling exponent p (t ∝ N^p; fixed overheads flatten the small sizes):")
    for name in observables:
        sizes = np.array([r[0] for r in rows if r[1] == name], dtype=float)
        times = np.array([r[2] for r in rows if r[1] == name])
        if len(sizes) >= 2:
            p_all = np.polyfit(np.log(sizes), np.log(times), 1)[0]
            p_top = np.log(times[-1] / times[-2]) / np.log(sizes[-1] / sizes[-2])
            print(f"  {name:<9s} p = {p_all:.2f} over all sizes, {p_top:.2f} between the two largest")


if __name__ == "__main__":
    main()
