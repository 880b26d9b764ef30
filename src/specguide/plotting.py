"""Figures people would rather look at than read. Matplotlib with the non-interactive Agg backend."""

from __future__ import annotations

import math
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


def _band(axis, x: np.ndarray, values: np.ndarray, label: str) -> None:
    """Mean ± std over the rows of ``values`` [S, len(x)]."""
    mean, std = values.mean(0), values.std(0)
    axis.plot(x, mean, color="tab:blue", lw=1.2, label=label)
    axis.fill_between(x, mean - std, mean + std, color="tab:blue", alpha=0.3)


def plot_inversion_report(path: Path, result) -> None:
    """The inversion at a glance: each target vs the ensemble (mean ± std), g(r), bond angles, coordination,
    the guidance loss along the trajectory and, if scanned, the density scan."""
    from specguide.observables.spectrum import REPORT_ANGLE_SIGMA, structure_curves

    structures = result.structures
    summary = result.summary
    panels = len(result.targets) + 4 + (1 if summary.get("density_scan") else 0)
    columns = 3
    rows = math.ceil(panels / columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    axes = list(axes.flat)
    for axis, target in zip(axes, result.targets):
        x = target.observable.grid.numpy()
        values = result.spectra[target.label]
        mean, std = values.mean(0), values.std(0)
        active = target.point_weights.numpy() > 0
        seen = target.y.numpy()
        if target.raw is not None:
            raw_x, raw_y = (np.asarray(v) for v in target.raw)
            shown = (raw_x >= x[0]) & (raw_x <= x[-1])
            if not np.allclose(np.interp(x[active], raw_x, raw_y), seen[active], rtol=1e-6, atol=1e-9):
                axis.plot(raw_x[shown], raw_y[shown], color="0.55", lw=0.9, label="data as measured")
                axis.plot(x[active], seen[active], color="k", lw=1.2, label="data as the cell sees them")
            else:
                axis.plot(x[active], seen[active], color="k", lw=1.2, label="data")
        else:
            axis.plot(x[active], seen[active], color="k", lw=1.2, label="target")
        axis.plot(x, mean, color="tab:orange", lw=1.2, label=f"ensemble mean ({len(values)})")
        axis.fill_between(x, mean - std, mean + std, color="tab:orange", alpha=0.3, label="± std")
        loss = summary["losses"][target.label]["ensemble_mean_spectrum"]
        title = f"{target.label}  (loss {loss:.2e})"
        aligned = summary["losses"][target.label].get("alignment")
        if aligned:
            before = result.spectra[f"{target.label} (before alignment)"].mean(0)
            axis.plot(x, before, color="tab:orange", lw=0.9, ls=":", label="ensemble mean, before shift/broadening")
            title += (f"\nshift {aligned['shift_eV']:+.1f} eV, broadening {aligned['gaussian_fwhm_eV']:.2f} eV "
                      f"(Gaussian FWHM), {aligned['lorentzian_fwhm_eV']:.2f} eV (Lorentzian)")  # fmt: skip
        measured = target.metadata.get("measured")
        if measured:  # XAS: the file as measured (its own energies and units), E0 marked, as an inset
            inset = axis.inset_axes([0.62, 0.08, 0.36, 0.34])
            inset.plot(measured["x"], measured["y"], color="0.3", lw=0.8)
            if measured.get("e0_eV"):
                inset.axvline(measured["e0_eV"], color="tab:green", lw=0.8)
            inset.set_title(f"as measured (E0 {measured.get('e0_eV', 0):.1f} eV)", fontsize=6)
            inset.tick_params(labelsize=5)
        axis.set_title(title, fontsize=9)
        axis.set_xlabel(target.observable.x_label)
        axis.set_ylabel(target.observable.y_label)
        axis.legend(fontsize=7, loc="upper right" if measured else "best")
    rest = axes[len(result.targets) :]

    curves = structure_curves(structures, summary["bond_cutoffs"])
    reference = (summary.get("reference") or {}).get("curves")
    reference_label = f"training MD, {reference['density_g_cm3']:.2f} g/cm³" if reference else None
    axis = rest[0]
    _band(axis, curves["r"], curves["g"], f"ensemble ({len(structures)})")
    if reference:
        axis.plot(reference["r"], reference["g"], color="k", lw=0.9, ls="--", label=reference_label)
    shortest = summary.get("min_distance")
    axis.set_title("g(r), number-weighted" + (f" (shortest pair {shortest:.2f} Å)" if shortest else "")
                   + f"\n{curves['smoothing'].split(' (g)')[0]}", fontsize=9)  # fmt: skip
    axis.set_xlabel("r (Å)")
    axis.set_ylabel("g(r)")
    axis.legend(fontsize=7)
    axis = rest[1]
    _band(axis, curves["theta"], curves["p_theta"], f"ensemble ({len(structures)})")
    if reference:
        axis.plot(reference["theta"], reference["p_theta"], color="k", lw=0.9, ls="--", label=reference_label)
    bonds = summary["bond_cutoffs"]
    cutoffs = (", ".join(f"{pair} {value:.2f} Å" for pair, value in bonds.items()) if isinstance(bonds, dict)
               else f"{float(bonds):.2f} Å")  # fmt: skip
    axis.set_title(f"bond angles (bonds: {cutoffs})\nGaussian σ {REPORT_ANGLE_SIGMA:g}°", fontsize=9)
    axis.set_xlabel("angle (°)")
    axis.set_ylabel("P(θ) (1/°)")
    axis.legend(fontsize=7)
    axis = rest[2]
    species = list(summary["coordination"])
    width = 0.8 / max(1, len(species))
    reference = (summary.get("reference") or {}).get("coordination") or {}
    for k, symbol in enumerate(species):
        fractions = summary["coordination"][symbol]["fractions"]
        cns = np.array([int(c) for c in fractions])
        shift = (k - (len(species) - 1) / 2) * width
        axis.bar(cns + shift, [100 * fractions[str(c)] for c in cns], width, label=symbol)
        if symbol in reference:
            ref_cns = np.array([int(c) for c in reference[symbol]])
            axis.scatter(ref_cns + shift, [100 * reference[symbol][str(c)] for c in ref_cns], marker="_", s=200,
                         color="k", zorder=3, label="training MD" if k == 0 else None)  # fmt: skip
    title = "coordination numbers (bars; lines: the prior's training data)" if reference else "coordination numbers"
    hybrid = summary.get("carbon_hybridization")
    if hybrid:
        title += "\nC: " + ", ".join(f"{name} {100 * hybrid[name]['mean']:.1f} ± {100 * hybrid[name]['std']:.1f} %"
                                     for name in ("sp", "sp2", "sp3"))  # fmt: skip
    axis.set_title(title, fontsize=9)
    axis.set_xlabel("CN")
    axis.set_ylabel("% of atoms")
    axis.legend(fontsize=7)
    axis = rest[3]
    history = summary.get("loss_history") or []
    if history:
        axis.semilogy(np.arange(1, len(history) + 1), history, lw=1.0)
    axis.set_title("guidance loss along the guided pass (mean over replicas)", fontsize=9)
    axis.set_xlabel("guided step")
    axis.set_ylabel("loss")
    used = 4
    scan = summary.get("density_scan")
    if scan:
        axis = rest[4]
        axis.plot(scan["densities_g_cm3"], scan["loss"], "o-")
        axis.axvline(scan["best_g_cm3"], color="k", ls=":", lw=1)
        axis.set_title(f"density scan ({scan['scored_by']})", fontsize=9)
        axis.set_xlabel("density (g/cm³)")
        axis.set_ylabel("loss")
        used = 5
    for axis in rest[used:]:
        axis.axis("off")
    for axis in axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)
