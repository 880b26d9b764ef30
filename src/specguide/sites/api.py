"""What ``specguide sites generate`` and ``specguide sites evaluate`` run: generation from a spectrum file and
scoring of a model against held-out sites and the template-matching baseline."""

from __future__ import annotations

from pathlib import Path

import ase
import ase.io
import numpy as np
import torch

from specguide.devices import device_record
from specguide.io import InputError, read_columns, refuse_overwrite, write_atomically, write_json
from specguide.pretrained import load_site_model
from specguide.sites.dataset import SiteDataset
from specguide.sites.diffusion import sample_clusters
from specguide.sites.evaluate import (
    compare_clusters,
    consensus_ranking,
    shell_summary,
    soap_similarity,
    template_match,
)


def read_site_spectrum(path: str | Path, grid: np.ndarray) -> np.ndarray:
    """Read a two-column spectrum (energy relative to the edge in eV, intensity), interpolate it on ``grid``
    and normalise it to unit area. Raises ``InputError`` naming the file for unusable input."""
    table = read_columns(path)
    e, y = table[:, 0], table[:, 1]
    if (np.diff(e) <= 0).any():
        raise InputError(f"{path}: energies (column 1) must increase strictly; sort the file")
    if e[0] > grid[0] + 1e-6 or e[-1] < grid[-1] - 1e-6:
        raise InputError(
            f"{path}: covers {e[0]:g}..{e[-1]:g} eV but the model needs {grid[0]:g}..{grid[-1]:g} eV relative to "
            "the edge; give energies relative to the edge onset (E − E_F) over that range"
        )
    values = np.interp(grid, e, y)
    if (values < -1e-3 * np.abs(values).max()).any():
        raise InputError(f"{path}: intensities are negative on the model grid; give an absorption spectrum (≥ 0)")
    area = np.trapezoid(np.clip(values, 0, None), grid)
    if not area > 0:
        raise InputError(f"{path}: the spectrum is zero on {grid[0]:g}..{grid[-1]:g} eV; nothing to condition on")
    return np.clip(values, 0, None) / area


def generate_sites(
    model_name: str | Path,
    spectrum_file: str | Path,
    samples: int = 8,
    n_atoms: int | None = None,
    steps: int = 200,
    seed: int = 0,
    device: str = "auto",
    species: list[str] | None = None,
) -> tuple[list[ase.Atoms], dict]:
    """Clusters generated for the spectrum in ``spectrum_file``, most representative first (the medoid of the
    samples by :func:`~specguide.sites.evaluate.consensus_ranking`), and a summary (per-sample consensus score,
    shell counts, species, distances in Å, first-shell angles in degrees). ``info["sample"]`` keeps each
    cluster's draw index. ``device``: where the model samples (``auto``, ``cpu``, ``cuda[:K]``). ``species``: element
    symbols the clusters may hold (None: all the model's)."""
    from ase.data import atomic_numbers

    model, meta = load_site_model(model_name, map_location=device)
    grid = np.asarray(meta["grid"])
    spec = read_site_spectrum(spectrum_file, grid)
    torch.manual_seed(seed)
    out = sample_clusters(
        model,
        torch.tensor(spec[None] * meta["spectrum_scale"], dtype=torch.float32),
        n_atoms=None if n_atoms is None else [n_atoms],
        samples=samples,
        steps=steps,
        seed=seed,
        allowed_species=None if species is None else tuple(atomic_numbers[s] for s in species),
    )
    drawn = [ase.Atoms(numbers=num, positions=pos, pbc=False) for pos, num in out]
    order, score = consensus_ranking(drawn)
    clusters, per = [], []
    for rank, k in enumerate(order):
        atoms = drawn[k]
        atoms.info.update(sample=int(k), rank=rank, consensus=float(score[k]))
        clusters.append(atoms)
        summary_k = shell_summary(atoms.positions, atoms.numbers)
        per.append(
            dict(
                sample=int(k),
                rank=rank,
                consensus=float(score[k]),
                formula=atoms.get_chemical_formula(),
                n_atoms=len(atoms),
                **summary_k,
            )
        )
    summary = dict(
        model=meta["path"],
        spectrum=str(spectrum_file),
        selected_sample=int(order[0]),
        selection="medoid: highest mean SOAP cosine similarity to the other samples",
        samples=per,
        **device_record(next(model.parameters()).device),
    )
    for s in (1, 2, 3):
        counts = [p[f"shell{s}"]["count"] for p in per]
        summary[f"shell{s}_count_mean"] = float(np.mean(counts))
    return clusters, summary


def write_generation(out: str | Path, clusters: list[ase.Atoms], summary: dict, config: dict, force: bool) -> None:
    """``clusters.extxyz``, ``summary.json`` and ``config.json`` in directory ``out`` (atomic writes)."""
    out = Path(out)
    refuse_overwrite(out, force)
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / "clusters.extxyz", lambda tmp: ase.io.write(tmp, clusters, format="extxyz"))
    write_json(out / "summary.json", summary)
    write_json(out / "config.json", config)


def evaluate_sites(
    model_name: str | Path,
    test: SiteDataset,
    train: SiteDataset,
    samples: int = 4,
    steps: int = 100,
    seed: int = 0,
    given_size: bool = False,
    progress: bool = True,
    device: str = "auto",
) -> dict:
    """Score a model on ``test`` sites: per site, the first generated cluster (``model``, one sample per
    spectrum as in Okubo et al.), the consensus pick among ``samples`` (``model_consensus``, what
    :func:`generate_sites` puts first), the mean over the samples and the best of them by aligned RMSD (an
    oracle: it uses the reference); the template (nearest ``train`` spectrum by MSE, other materials only)
    scored the same way; SOAP cosine similarity of every sample and of the template to the reference. ``device``:
    where the model samples (``auto``, ``cpu``, ``cuda[:K]``)."""
    from rich.progress import track

    model, meta = load_site_model(model_name, map_location=device)
    scale = meta["spectrum_scale"]
    rows = []
    iterator = track(range(len(test)), description="evaluating sites", disable=not progress, transient=True)
    for k in iterator:
        ref = test.clusters[k]
        spec = torch.tensor(test.spectra[k][None] * scale, dtype=torch.float32)
        sizes = [len(ref)] if given_size else None
        gen = sample_clusters(model, spec, n_atoms=sizes, samples=samples, steps=steps, seed=seed + k)
        drawn = [ase.Atoms(numbers=z, positions=p) for p, z in gen]
        scored = [compare_clusters(p, z, ref.positions, ref.numbers) for p, z in gen]
        best = int(np.nanargmin([s["rmsd_all"] for s in scored]))
        pick = int(consensus_ranking(drawn)[0][0])
        soap_samples = [soap_similarity(atoms, ref) for atoms in drawn]
        t = template_match(test.spectra[k], train.spectra, train.material, exclude=str(test.material[k]))
        tmpl = train.clusters[t]
        row = dict(
            site=k,
            material=str(test.material[k]),
            kind=str(test.kind[k]),
            model=scored[0],
            model_consensus=scored[pick],
            consensus_sample=pick,
            model_best_of_samples=scored[best],
            model_mean_over_samples={key: _mean_ignoring_nan([s[key] for s in scored]) for key in scored[0]},
            template=compare_clusters(tmpl.positions, tmpl.numbers, ref.positions, ref.numbers),
            template_material=str(train.material[t]),
            soap_model=soap_samples[0],
            soap_model_consensus=soap_samples[pick],
            soap_model_samples=soap_samples,
            soap_template=soap_similarity(tmpl, ref),
        )
        rows.append(row)
    return dict(summary=summarise(rows), sites=rows, samples=samples, steps=steps, seed=seed, given_size=given_size,
                **device_record(next(model.parameters()).device))  # fmt: skip


def _mean_ignoring_nan(values: list[float]) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) when there are none, e.g. a
    third-shell RMSD when no cluster has a third shell."""
    finite = np.asarray(values, dtype=float)
    finite = finite[~np.isnan(finite)]
    return float(finite.mean()) if finite.size else float("nan")


def summarise(rows: list[dict]) -> dict:
    """Means over sites of the model's and the template's metrics, and the fraction of sites where the
    model's SOAP similarity to the reference beats the template's: for the first sample (as in Okubo et al.),
    for the consensus pick, and over all samples."""
    out: dict = dict(n_sites=len(rows))
    for who in ("model", "model_consensus", "model_best_of_samples", "template"):
        keys = rows[0][who].keys()
        out[who] = {key: _mean_ignoring_nan([r[who][key] for r in rows]) for key in keys}
    for who in ("model", "model_consensus", "template"):
        out[who]["soap"] = float(np.mean([r[f"soap_{who}"] for r in rows]))
    out["model_beats_template"] = float(np.mean([r["soap_model"] > r["soap_template"] for r in rows]))
    out["model_consensus_beats_template"] = float(
        np.mean([r["soap_model_consensus"] > r["soap_template"] for r in rows])
    )
    # every sample, not only the first: the same probability with ``samples`` times the draws
    out["model_beats_template_all_samples"] = float(
        np.mean([s > r["soap_template"] for r in rows for s in r["soap_model_samples"]])
    )
    return out
