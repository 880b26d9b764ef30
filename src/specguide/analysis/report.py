"""``specguide analyze``: every structural metric of an ensemble, side by side with a reference ensemble.

:func:`analyze` returns an :class:`Analysis` (a JSON-ready summary and the arrays behind the figures);
:func:`write_analysis` writes ``analysis.json``, ``config.json``, ``analysis.png`` and ``pair_distribution.dat``
(partial and X-ray/neutron-weighted total g(r); ``reference_pair_distribution.dat`` for the reference).

Bond cutoffs come from the first minimum of the partial g(r) of the *reference* ensemble when one is given
(so both ensembles are counted with the same bonds), else of the structures themselves, unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ase
import numpy as np
import torch

from specguide.analysis import order, rings, structure
from specguide.analysis.delta_ed import benchmark_observables, delta_ed_scores, spectra_of
from specguide.config import Config
from specguide.devices import device_record, resolve_device
from specguide.graph import batch_from_atoms, perpendicular_widths
from specguide.io import InputError, refuse_overwrite, write_json
from specguide.structure import mass_density_g_cm3


@dataclass
class Analysis:
    """``summary``: JSON-ready metrics; ``arrays``: per-ensemble arrays for the figures (keys ``"structures"``
    and ``"reference"``); ``device``: where its torch observables (g(r), Delta_ED spectra) were computed."""

    summary: dict[str, Any]
    arrays: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class AnalyzeConfig(Config):
    """One ``specguide analyze`` request: bond ``cutoffs`` (``{"Si-Si": Å}``; None: the first minimum of each
    partial g(r)), ``max_ring`` (largest ring size searched), ``energy`` (energy per atom with the shipped classical
    potential, or ``potential``), the files read (``files``, ``reference``) and where torch computes the g(r) and
    Delta_ED spectra (``device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:K``; coordination, rings, Voronoi, Steinhardt
    and energies run on the CPU). ``config.json`` records it with the device used (``resolved``)."""

    files: list[str] = field(default_factory=list)
    reference: list[str] = field(default_factory=list)
    cutoffs: dict[str, float] | None = None
    max_ring: int = 10
    energy: bool = True
    potential: str | None = None
    device: str = "auto"


def parse_cutoffs(texts: Sequence[str] | None) -> dict[str, float]:
    """``["Si-Si=2.85"]`` → ``{"Si-Si": 2.85}`` (``InputError`` with the fix for anything malformed)."""
    cutoffs = {}
    for text in texts or []:
        pair, _, value = text.partition("=")
        try:
            distance = float(value)
        except ValueError:
            distance = -1.0
        if "-" not in pair or not distance > 0:
            raise InputError(f"--cutoff {text!r}: write PAIR=Å with a positive distance, e.g. Si-Si=2.85")
        cutoffs[pair.strip()] = distance
    return cutoffs


def _stats(values: np.ndarray) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    return {"mean": float(values.mean()), "std": float(values.std())} if values.size else {"mean": None, "std": None}


def _density(atoms: ase.Atoms) -> float:
    return mass_density_g_cm3(atoms.get_masses().sum(), atoms.get_volume())


def _metrics(
    structures: Sequence[ase.Atoms],
    cutoffs: structure.Cutoffs,
    max_ring: int,
    energy: bool,
    potential: str | None,
    device: torch.device,
) -> tuple[dict, dict]:
    bonds = max(cutoffs.values()) if cutoffs else 3.0
    summary: dict[str, Any] = {"n_structures": len(structures), "n_atoms": [len(a) for a in structures]}
    summary["density_g_cm3"] = _stats(np.array([_density(a) for a in structures]))
    coordination = structure.coordination(structures, cutoffs)
    summary["coordination"] = coordination["species"]
    summary["coordination_pairs"] = coordination["pairs"]
    summary["mean_coordination"] = coordination["mean"]
    angles = structure.bond_angles(structures, cutoffs)
    dihedrals = structure.dihedral_angles(structures, cutoffs)
    summary["bond_angles_deg"] = {**_stats(angles), "histogram": structure.histogram(angles, 0, 180, 2.0)}
    summary["dihedral_angles_deg"] = {**_stats(dihedrals), "histogram": structure.histogram(dihedrals, 0, 180, 5.0)}
    summary["rings"] = rings.ring_statistics(structures, cutoffs, max_size=max_ring)
    q4 = np.concatenate([order.steinhardt(a, 4, bonds) for a in structures])
    q6 = np.concatenate([order.steinhardt(a, 6, bonds) for a in structures])
    summary["steinhardt"] = {"neighbours": f"within {bonds:.3f} Å", "q4": _stats(q4), "q6": _stats(q6)}
    volumes = [order.voronoi_volumes(a) for a in structures]
    summary["voronoi_volume_A3"] = {
        **_stats(np.concatenate(volumes)),
        "max_relative_tiling_error": float(max(abs(v.sum() / a.get_volume() - 1) for v, a in zip(volumes, structures))),
    }
    summary["crystallinity"] = order.crystallinity(structures)
    summary["voronoi_indices"] = order.voronoi_index_statistics(structures)
    r, curves = structure.pair_distributions(structures, device=device)
    summary["pair_distribution"] = {
        "definition": "ensemble-mean partial g_ab(r) and Faber-Ziman totals (number, X-ray f = Z, neutron b_c), "
        "Gaussian width 0.05 Å, 0.01 Å grid; curves in pair_distribution.dat",
        "peaks_A": structure.pair_distribution_peaks(r, curves),
    }
    energies = np.array([])
    if energy:
        from specguide.analysis.energy import energies as compute_energies

        try:
            energies = compute_energies(structures, potential)
            summary["energy_per_atom_eV"] = {**_stats(energies), "values": energies.round(5).tolist(),
                                             "potential": potential or "default for the species"}  # fmt: skip
        except (ValueError, FileNotFoundError, ImportError) as exc:
            summary["energy_per_atom_eV"] = {"available": False, "reason": str(exc)}
    arrays = {
        "angles": angles,
        "dihedrals": dihedrals,
        "q6": q6,
        "volumes": np.concatenate(volumes),
        "energies": energies,
        "pair_distribution": np.column_stack([r, *curves.values()]),
        "pair_distribution_columns": np.array(["r_A", *curves]),
    }
    return summary, arrays


def analyze(
    structures: Sequence[ase.Atoms],
    reference: Sequence[ase.Atoms] | None = None,
    cutoffs: Mapping | float | None = None,
    max_ring: int = 10,
    energy: bool = True,
    potential: str | None = None,
    device: str | torch.device | None = "auto",
) -> Analysis:
    """All metrics of ``structures`` (and of ``reference`` with Delta_ED per modality against it, if given); the
    g(r) and the Delta_ED spectra are computed on ``device`` (:func:`specguide.devices.resolve_device`), the rest on
    the CPU."""
    where = resolve_device(device)
    structures = list(structures)
    if not structures:
        raise InputError("no structures to analyse")
    given = structure.normalize_cutoffs(cutoffs, structures)
    basis = list(reference) if reference else structures
    bond_cutoffs = given if given is not None else structure.rdf_cutoffs(basis, device=where)
    if not bond_cutoffs:
        raise InputError("no bonded pairs below 4 Å: give bond cutoffs (--cutoff Si-Si=2.85)")
    summary, arrays = _metrics(structures, bond_cutoffs, max_ring, energy, potential, where)
    summary = {"cutoffs_A": {"-".join(k): v for k, v in bond_cutoffs.items()},
               "cutoff_source": "given" if given is not None else
               f"first minimum of the partial g(r) of the {'reference' if reference else 'analysed'} ensemble",
               **summary}  # fmt: skip
    result = Analysis(summary, {"structures": arrays}, where)
    if reference:
        ref_summary, ref_arrays = _metrics(list(reference), bond_cutoffs, max_ring, energy, potential, where)
        summary["reference"] = ref_summary
        result.arrays["reference"] = ref_arrays
        if len(reference) >= 2:
            _, cells, _, _ = batch_from_atoms(structures + list(reference))
            half = float(perpendicular_widths(cells).min()) / 2
            observables = benchmark_observables(half, {k: v for k, v in bond_cutoffs.items()})
            reference_spectra = {m: spectra_of(reference, o, where) for m, o in observables.items()}
            summary["delta_ed"] = delta_ed_scores(reference_spectra, structures, observables, where)
        else:
            summary["delta_ed"] = {"available": False, "reason": "Delta_ED needs at least two reference structures"}
    return result


def write_analysis(out_dir: Path, result: Analysis, structures, reference=None, config=None, force=False) -> Path:
    """Write ``analysis.json``, ``config.json`` (``config``, the request, with ``resolved``: the device the result
    was computed on) and the comparison figure ``analysis.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    refuse_overwrite(out_dir, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "analysis.json", result.summary)
    write_json(out_dir / "config.json", {**(config or {}), "resolved": device_record(result.device)})
    for name, arrays in result.arrays.items():
        prefix = "" if name == "structures" else f"{name}_"
        header = "ensemble-mean g(r), Gaussian width 0.05 Å; columns: " + " ".join(arrays["pair_distribution_columns"])
        np.savetxt(out_dir / f"{prefix}pair_distribution.dat", arrays["pair_distribution"], fmt="%.6g", header=header)
    plot_analysis(out_dir / "analysis.png", result, structures, reference)
    return out_dir


def plot_analysis(path: Path, result: Analysis, structures, reference=None) -> None:
    """g(r), bond angles, dihedrals, coordination, rings, q6 and energies: analysed (orange) vs reference (black);
    the g(r) is computed on ``result.device``."""
    from specguide.observables import PairDistribution
    from specguide.observables.registry import default_r_max
    from specguide.plotting import plt, save_figure

    ensembles = [("structures", structures, "tab:orange", result.summary)]
    if reference:
        ensembles.append(("reference", reference, "k", result.summary["reference"]))
    figure, axes = plt.subplots(2, 4, figsize=(18, 7.5))
    axes = axes.ravel()
    for name, frames, color, summary in ensembles:
        arrays = result.arrays[name]
        positions, cells, numbers, batch = batch_from_atoms(list(frames), device=result.device)
        half = float(perpendicular_widths(cells).min()) / 2
        pdf = PairDistribution(r_max=default_r_max(half), sigma=0.05)
        with torch.no_grad():
            g = pdf(positions, cells, numbers, batch).cpu().numpy()
        axes[0].plot(pdf.grid.numpy(), g.mean(0), color=color, lw=1.2, label=f"{name} ({len(frames)})")
        axes[0].fill_between(pdf.grid.numpy(), g.mean(0) - g.std(0), g.mean(0) + g.std(0), color=color, alpha=0.2)
        axes[1].hist(arrays["angles"], bins=90, range=(0, 180), density=True, histtype="step", color=color)
        axes[2].hist(arrays["dihedrals"], bins=36, range=(0, 180), density=True, histtype="step", color=color)
        offset = -0.2 if name == "structures" else 0.2
        for symbol, fractions in summary["coordination"].items():
            cn = np.array([int(k) for k in fractions])
            axes[3].bar(cn + offset, [100 * f for f in fractions.values()], 0.4, color=color, alpha=0.7,
                        label=f"{name} {symbol}")  # fmt: skip
        ring = summary["rings"]["per_atom"]
        sizes = np.array([int(k) for k in ring])
        axes[4].bar(sizes + offset, list(ring.values()), 0.4, color=color, alpha=0.7, label=name)
        axes[5].hist(arrays["q6"], bins=40, range=(0, 1), density=True, histtype="step", color=color)
        volumes = arrays["volumes"]  # a perfect crystal has one value: give the bins a width
        span = (volumes.min() - 0.5, volumes.max() + 0.5)
        axes[6].hist(volumes, bins=40, range=span, density=True, histtype="step", color=color)
        if len(arrays["energies"]):
            level = 0 if name == "structures" else 1
            axes[7].plot(arrays["energies"], np.full(len(arrays["energies"]), level), "o", color=color, alpha=0.7)
            axes[7].set_yticks([0, 1], ["structures", "reference"])
            axes[7].set_ylim(-0.5, 1.5)
    titles = [
        ("g(r), number-weighted, σ = 0.05 Å", "r (Å)", "g(r)"),
        ("bond angles", "θ (°)", "density (1/°)"),
        ("dihedral angles", "φ (°)", "density (1/°)"),
        ("coordination", "CN", "% of atoms"),
        ("shortest-path rings", "ring size", "rings per atom"),
        ("Steinhardt q6 (bonded neighbours)", "q6", "density"),
        ("Voronoi volume", "V (Å³)", "density"),
        ("energy per atom (classical potential)", "E (eV/atom)", ""),
    ]
    for axis, (title, xlabel, ylabel) in zip(axes, titles):
        axis.set_title(title, fontsize=9)
        axis.set_xlabel(xlabel)
        axis.set_ylabel(ylabel)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    axes[3].legend(fontsize=7)
    figure.tight_layout()
    save_figure(figure, path)
