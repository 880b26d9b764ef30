"""Spectra of structures (``specguide spectrum``): a structure file, ``ase.Atoms`` or a list of them in, the
frame-averaged spectrum of any kind of :data:`specguide.observables.registry.SPECS` out; grids that cannot be
built or would not fit in memory are refused first with the value that works."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import ase
import numpy as np
import torch

from specguide.devices import resolve_device
from specguide.graph import batch_from_atoms, perpendicular_widths
from specguide.io import InputError, as_structures
from specguide.observables.base import Observable
from specguide.observables.registry import (
    DEFAULT_DQ,
    DEFAULT_DR,
    DEFAULT_Q_MAX,
    DEFAULT_R_MAX,
    DEFAULT_SIGMA,
    build_observable,
    pair_range,
)

MAX_GRID_POINTS = 1_000_000  # output grid points of one spectrum
MAX_FINE_POINTS = 10_000_000  # points of the internal σ/2 histogram grid
MAX_Q = 500.0  # Å⁻¹
MAX_KERNEL_BYTES = 4 * 2**30  # the σ-kernel convolution of a real-space histogram, unfolded
KERNEL_BYTES = 32  # per output point and kernel tap (measured: ~4 float64 moments)


def check_grid(**options: float | None) -> None:
    """``InputError`` naming the option and the fix for a grid that cannot be built: steps and widths (``dr``,
    ``dq``, ``sigma``, ``r_max``) must be finite and > 0, ``0 <= q_min < q_max``, ``adf_cutoff`` > 0, and the
    grids must fit in memory."""
    for name in ("dr", "dq", "sigma", "r_max", "adf_cutoff"):
        value = options.get(name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"--{name.replace('_', '-')} {value:g}: must be a positive number")
    q_min, q_max = options.get("q_min"), options.get("q_max")
    if q_min is not None and q_max is not None and not 0 <= q_min < q_max:
        raise InputError(f"--q-min {q_min:g} --q-max {q_max:g}: need 0 <= q-min < q-max (Å⁻¹)")
    if q_max is not None and q_max > MAX_Q:
        raise InputError(f"--q-max {q_max:g} Å⁻¹: beyond any diffraction measurement; use --q-max ≤ {MAX_Q:g} Å⁻¹")
    r_extent = options.get("r_max") or DEFAULT_R_MAX
    for name, extent, default in (
        ("dr", r_extent, DEFAULT_DR),
        ("dq", (q_max or DEFAULT_Q_MAX) - (q_min or 0.0), DEFAULT_DQ),
    ):
        step = options.get(name) or default
        if extent / step > MAX_GRID_POINTS:
            raise InputError(f"--{name} {step:g}: gives more than {MAX_GRID_POINTS:,} grid points over "
                             f"{extent:g}; use --{name} ≥ {extent / MAX_GRID_POINTS:.3g}")  # fmt: skip
    sigma = options.get("sigma")
    if sigma is not None and 2 * r_extent / sigma > MAX_FINE_POINTS:  # the histogram samples σ/2 (observables/pdf)
        raise InputError(f"--sigma {sigma:g} Å: too narrow to sample over {r_extent:g} Å in memory; "
                         f"use --sigma ≥ {2 * r_extent / MAX_FINE_POINTS:.3g} Å")  # fmt: skip
    if sigma is not None and sigma > r_extent:
        raise InputError(f"--sigma {sigma:g} Å: wider than the whole r range ({r_extent:g} Å); use a width of "
                         "about 0.01–0.1 Å")  # fmt: skip
    width, step = sigma or DEFAULT_SIGMA, options.get("dr") or DEFAULT_DR
    fine = step / max(1, math.ceil(2.0 * step / width))  # the histogram's sub-grid (observables/pdf)
    kernel = 2 * math.ceil(6.0 * width / fine) + 1  # its 6σ Gaussian, applied at every output point
    needed = (r_extent / step) * kernel * KERNEL_BYTES
    if needed > MAX_KERNEL_BYTES:
        raise InputError(f"--dr {step:g} Å with --sigma {width:g} Å: the smoothing spans {kernel:,} steps at each of "
                         f"{r_extent / step:,.0f} points (≈ {needed / 2**30:.0f} GiB); "
                         f"use --dr ≥ {width / 20:.3g} Å (σ/20 resolves the Gaussian)")  # fmt: skip


def compute_spectrum(
    structure: str | Path | ase.Atoms | Sequence[ase.Atoms],
    kind: str,
    *,
    weighting: str = "number",
    r_max: float | None = None,
    types: str | None = None,
    device: str = "cpu",
    **options: float,
) -> tuple[np.ndarray, np.ndarray, Observable]:
    """Spectrum of every frame of ``structure``, averaged over frames.

    ``kind`` is one of gr, pdf, rdf, adf, sq, fq, xrd, nd. ``r_max`` (Å) is the largest pair distance used;
    the default is min(8 Å, half the smallest cell width), and a larger explicit value is refused because
    periodic images of one pair would be counted twice. ``options`` are the other grid settings (``dr``,
    ``sigma`` in Å; ``q_min``, ``q_max``, ``dq`` in Å⁻¹; ``adf_cutoff`` in Å). Returns
    ``(x, y, observable)`` with ``x`` the grid and ``y`` the frame-averaged spectrum. ``structure``: a file (may end
    in ``@FORMAT``; ``types`` names the elements of LAMMPS atom types, ``"Si,O"``), an ``ase.Atoms`` or a list.
    ``device``: where it is computed (``auto``, ``cpu``, ``cuda[:K]``; in float64 everywhere).
    """
    check_grid(r_max=r_max, **options)
    device = resolve_device(device)
    frames = as_structures(structure, types=types)
    structure = structure if isinstance(structure, (str, Path)) else "structures"  # names it in messages
    positions, cells, numbers, batch = (t.to(device) for t in batch_from_atoms(frames))
    half_width = float(perpendicular_widths(cells).min()) / 2
    if r_max is None:
        step = float(options.get("dr") or DEFAULT_DR)
        r_max = min(DEFAULT_R_MAX, math.floor(half_width / step) * step)
        if r_max <= 0:
            raise InputError(f"{structure}: --dr {step:g} Å does not fit into half the cell ({half_width:.3g} Å); "
                             "use a smaller --dr or a larger cell")  # fmt: skip
    try:
        observable = build_observable(kind, weighting=weighting, r_max=r_max, **options)
    except ValueError as exc:
        raise InputError(f"{structure}: {exc}") from None
    needed = pair_range(observable)
    if needed > half_width + 1e-9:
        raise InputError(
            f"{structure}: --r-max {needed:g} Å is beyond half the cell ({half_width:.3g} Å), where periodic "
            f"images of the same pair would be counted; lower --r-max to ≤ {half_width:.3g} Å or replicate the "
            "cell (e.g. ase's atoms.repeat((2, 2, 2)))"
        )
    try:
        with torch.no_grad():
            spectra = observable(positions, cells, numbers, batch)
    except ValueError as exc:  # e.g. an element without tabulated scattering data
        raise InputError(f"{structure}: {exc}") from None
    return observable.grid.numpy(), spectra.mean(0).cpu().numpy(), observable


def surrogate_spectrum(
    structure: str | Path | ase.Atoms | Sequence[ase.Atoms],
    surrogate: str | Path,
    kind: str | None = None,
    per_atom: bool = False,
    types: str | None = None,
    device: str = "cpu",
) -> tuple[np.ndarray, np.ndarray, Observable, list[str]]:
    """XANES / EXAFS of every frame of ``structure`` through a trained surrogate.

    Returns ``(grid, spectra, observable, labels)``: with ``per_atom=False`` one row, the mean over the
    absorbing sites of all frames (labels ``["mean"]``); with ``per_atom=True`` one row per absorbing atom
    (labels ``"f<frame>:a<atom index>"``). ``device``: where the surrogate runs (``auto``, ``cpu``, ``cuda[:K]``).
    """
    from specguide.observables.surrogate import SurrogateSpectrum

    device = resolve_device(device)
    frames = as_structures(structure, types=types)
    structure = structure if isinstance(structure, (str, Path)) else "structures"  # names it in messages
    try:
        observable = SurrogateSpectrum(surrogate, kind=kind)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    positions, cells, numbers, batch = (t.to(device) for t in batch_from_atoms(frames))
    try:
        with torch.no_grad():
            mask = observable.site_mask(numbers, batch)
            if per_atom:
                spectra = observable.per_atom(positions, cells, numbers, batch)[mask]
            else:
                spectra = observable(positions, cells, numbers, batch).mean(0, keepdim=True)
    except ValueError as exc:
        raise InputError(f"{structure}: {exc}") from None
    batch, mask = batch.cpu(), mask.cpu()
    counts = torch.bincount(batch)
    local = torch.arange(len(numbers)) - (torch.cumsum(counts, 0) - counts)[batch]
    labels = [f"f{int(f)}:a{int(a)}" for f, a in zip(batch[mask], local[mask])] if per_atom else ["mean"]
    return observable.grid.numpy(), spectra.double().cpu().numpy(), observable, labels


REPORT_G_SIGMA = 0.05  # Å, Gaussian width of the g(r) that reports draw (fine enough to show the first peak)
REPORT_ANGLE_SIGMA = 2.0  # degrees, Gaussian width of the bond-angle distribution that reports draw
REPORT_ANGLE_STEP = 1.0  # degrees


def structure_curves(
    structures: Sequence[ase.Atoms], bond_cutoffs: dict | float | None, r_max: float | None = None
) -> dict[str, np.ndarray | float | str]:
    """The number-weighted g(r) and the bond-angle distribution that reports draw, per structure.

    One definition for the ensemble and for the reference it is drawn against (a prior's training data):
    g(r) on bin centres up to ``r_max`` (Å; default: :data:`DEFAULT_R_MAX` or half the narrowest cell), Gaussian
    σ :data:`REPORT_G_SIGMA` Å; P(θ) over bonded neighbours (``bond_cutoffs``: ``{(z_a, z_b): Å}`` or
    ``{"Si-O": Å}``, the same cutoffs the coordination numbers use), Gaussian σ :data:`REPORT_ANGLE_SIGMA`°.
    Returns ``r`` [n_r] (Å), ``g`` [S, n_r], ``theta`` [n_θ] (°), ``p_theta`` [S, n_θ] (deg⁻¹) and a
    ``smoothing`` text for figure labels.
    """
    from specguide.observables.adf import BondAngleDistribution
    from specguide.observables.pdf import PairDistribution
    from specguide.observables.registry import default_r_max

    positions, cells, numbers, batch = batch_from_atoms(list(structures), dtype=torch.float64)
    half = float(perpendicular_widths(cells).min()) / 2
    reach = default_r_max(half) if r_max is None else min(float(r_max), default_r_max(half))
    pdf = PairDistribution(r_max=reach, sigma=REPORT_G_SIGMA)
    adf = BondAngleDistribution(cutoff=bond_cutoffs, dtheta=REPORT_ANGLE_STEP, sigma=REPORT_ANGLE_SIGMA)
    with torch.no_grad():
        g = pdf(positions, cells, numbers, batch).numpy()
        p_theta = adf(positions, cells, numbers, batch).numpy()
    return {
        "r": pdf.grid.numpy(),
        "g": g,
        "theta": adf.grid.numpy(),
        "p_theta": p_theta,
        "smoothing": f"Gaussian σ {REPORT_G_SIGMA:g} Å (g), {REPORT_ANGLE_SIGMA:g}° (angles)",
    }
