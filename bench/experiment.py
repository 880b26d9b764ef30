"""Guided generation vs reverse Monte Carlo on published measurements (issue 29): fit, chemistry, time.

    python bench/experiment.py                              # every data set in data/measured/, defaults
    python bench/experiment.py --datasets silica_nimrod --atoms 300 --replicas 2 --preset fast
    python bench/experiment.py --extra "a-Si=sq:/path/aSi.csv:quantity=S(Q),weighting=xray@a-Si@2.33"

For each measured data set (``data/measured/*``, see its SOURCE.md; ``--extra NAME=TARGET@PRIOR@DENSITY`` adds a
file of your own) this runs

- ``ours``: :func:`specguide.diffusion.inversion.invert` with the bundled prior at the material's literature
  density, the target as the CLI reads it, and the defaults (``--preset``; quality unless told otherwise);
- ``RMC``: :func:`specguide.baselines.rmc.rmc_refine` from random starts of the same composition, density and
  atom count, on the same :class:`~specguide.diffusion.guidance.Target`, with the same closest approach (the
  prior's training data's shortest pairs), given ours' wall time in total (split evenly over its replicas);
- ``prior``: the same prior unguided at the same settings (what the data add).

and reports, for each method's ensemble (its mean spectrum, scored by the target's own observable):

- ``fit_rms``: rms of (model − data as the cell sees them) on the data's own Q (or r) points within the reliable
  range, with the target's scale/offset fit where it has one; the trivial baseline is the rms of the data's own
  structure there (a flat S = 1 model) — ``fit_rms / flat`` is printed;
- coordination (mean CN per species, Si–O bonds at the prior's cutoff), the shortest pair per species pair, the
  first-peak position of each partial g(r), and the bond-angle peaks (O–Si–O at Si, Si–O–Si at O; 2° smoothing),
  against literature values (``LITERATURE``, sources in data/measured/*/SOURCE.md);
- wall time (s) on this machine.

Writes ``--out`` (default bench/results/experiment) ``.json`` with every setting, seed and number, ``.md`` with the
table, and ``.png`` with each data set's fits. The seeds are ``--seed`` (ours, prior) and ``--seed + replica``
(RMC starts and moves).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from specguide.analysis.structure import coordination
from specguide.baselines.rmc import random_start, rmc_refine
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampler import generate, prior_chemistry
from specguide.graph import batch_from_atoms, neighbor_graph, perpendicular_widths
from specguide.io import write_json
from specguide.observables import BondAngleDistribution, PairDistribution
from specguide.observables.target import Target
from specguide.pretrained import load_prior

ROOT = Path(__file__).resolve().parents[1]
MEASURED = ROOT / "data" / "measured"
# Literature values (data/measured/silica_*/SOURCE.md): Mozzi & Warren, J. Appl. Cryst. 2, 164 (1969); Wright,
# J. Non-Cryst. Solids 179, 84 (1994); Grimley, Wright & Sinclair, J. Non-Cryst. Solids 119, 49 (1990).
SILICA = {
    "density_g_cm3": 2.20,
    "coordination": {"Si": 4.0, "O": 2.0},
    "first_peak": {"O-Si": 1.61, "O-O": 2.63, "Si-Si": 3.10},
    "angle_peak": {"O-Si-O": 109.5, "Si-O-Si": 144.0},
    "angle_range": {"Si-O-Si": [144.0, 152.0]},
}
LITERATURE = {"a-SiO2": SILICA}
DATASETS = {
    "silica_nimrod": dict(target="sq:{root}/silica_nimrod/SiO2_NIMROD.mint01", prior="a-SiO2", material="a-SiO2"),
    "silica_epsr": dict(target="sq:{root}/silica_epsr/NeutronSiO2sq.dat:quantity=S(Q)-1,weighting=neutron",
                        prior="a-SiO2", material="a-SiO2"),
    "silica_xray_ag": dict(target="sq:{root}/silica_xray_ag/SiO2_Ag_XRD.int01:quantity=S(Q)-1,weighting=xray",
                           prior="a-SiO2", material="a-SiO2"),
}  # fmt: skip


def fit_rms(target: Target, spectra: np.ndarray) -> tuple[float, float]:
    """(rms of the ensemble-mean fit, rms of a flat model) on the data's own points in the reliable range."""
    grid = target.observable.grid.numpy()
    fitted = target.fitted(torch.as_tensor(spectra).mean(0, keepdim=True)).numpy()[0]
    active = target.point_weights.numpy() > 0
    raw_x = np.asarray(target.raw[0])
    lo, hi = grid[active].min(), grid[active].max()
    inside = (raw_x >= lo) & (raw_x <= hi) & np.isin(np.searchsorted(grid, raw_x).clip(0, len(grid) - 1),
                                                     np.flatnonzero(active))  # fmt: skip
    x = raw_x[inside]
    seen = np.interp(x, grid, target.y.numpy())
    model = np.interp(x, grid, fitted)
    flat = 1.0 if target.kind == "sq" else (0.0 if target.kind == "fq" else float(seen.mean()))
    return float(np.sqrt(np.mean((model - seen) ** 2))), float(np.sqrt(np.mean((flat - seen) ** 2)))


def chemistry_metrics(structures, bond_cutoffs: dict[str, float]) -> dict:
    """Mean coordination per species, shortest pair and partial first peak per pair, bond-angle peaks."""
    cutoffs = {tuple(k.split("-")): v for k, v in bond_cutoffs.items()}
    cn = coordination(structures, cutoffs)
    positions, cells, numbers, batch = batch_from_atoms(structures)
    half = float(perpendicular_widths(cells).min()) / 2
    graph = neighbor_graph(positions, cells, batch, min(4.0, half), full_list=False)
    i, j = graph.edge_index
    code = torch.minimum(numbers[i], numbers[j]) * 119 + torch.maximum(numbers[i], numbers[j])
    shortest = torch.full((119 * 119,), math.inf, dtype=torch.float64)
    shortest = shortest.scatter_reduce(0, code, graph.distances.double(), "amin")
    from ase.data import chemical_symbols

    pairs = {f"{chemical_symbols[c // 119]}-{chemical_symbols[c % 119]}": round(float(shortest[c]), 3)
             for c in torch.nonzero(torch.isfinite(shortest)).flatten().tolist()}  # fmt: skip
    pdf = PairDistribution(r_max=math.floor(min(4.0, half) / 0.01) * 0.01, dr=0.01, sigma=0.03)
    with torch.no_grad():
        partials = pdf.partials(positions.double(), cells.double(), numbers, batch)
    r = pdf.grid.numpy()
    peaks = {}
    for k, label in enumerate(partials.labels):
        g = partials.values[:, k].mean(0).numpy()
        peaks[label] = round(float(r[np.argmax(g)]), 3)
    angles = {}
    species = sorted({s for a in structures for s in a.get_chemical_symbols()})
    if set(species) == {"O", "Si"}:
        for name, centre in (("O-Si-O", "Si"), ("Si-O-Si", "O")):
            adf = BondAngleDistribution(cutoff={k: v for k, v in cutoffs.items()}, centre=[centre], sigma=2.0,
                                        cutoff_scale=0.0)  # fmt: skip
            with torch.no_grad():
                p = adf(positions.double(), cells.double(), numbers, batch).mean(0).numpy()
            angles[name] = round(float(adf.grid.numpy()[np.argmax(p)]), 1)
    return {"coordination": cn["mean"], "coordination_fractions": cn["species"], "shortest": pairs,
            "first_peak": peaks, "angle_peak": angles}  # fmt: skip


def literature_distance(metrics: dict, literature: dict) -> float:
    """Σ |mean CN − literature CN| over species: how far the coordination is from the literature."""
    return round(sum(abs(metrics["coordination"].get(s, 0.0) - v) for s, v in literature["coordination"].items()), 4)


def run_case(name: str, case: dict, args) -> dict:
    prior, material = case["prior"], case["material"]
    literature = LITERATURE.get(material, {})
    density = float(case.get("density", literature.get("density_g_cm3", 0)))
    target_spec = case["target"].format(root=MEASURED)
    _, meta = load_prior(prior, density_g_cm3=density)
    chemistry = prior_chemistry(meta)
    bonds = chemistry.bond_cutoffs
    print(f"\n== {name}: {target_spec} | prior {prior} at {density} g/cm³, {args.atoms} atoms × {args.replicas}")

    started = time.perf_counter()
    result = invert(prior, [target_spec], density_g_cm3=density, n_atoms=args.atoms, n_replicas=args.replicas,
                    seed=args.seed, preset=args.preset, progress=not args.quiet)  # fmt: skip
    seconds = time.perf_counter() - started
    (target,) = result.targets
    rows = {}
    rows["ours"] = {"seconds": round(seconds, 1), "spectra": result.spectra[target.label],
                    "structures": result.structures}  # fmt: skip

    started = time.perf_counter()
    unguided = generate(prior, density_g_cm3=density, n_atoms=args.atoms, n_replicas=args.replicas, seed=args.seed,
                        preset=args.preset, progress=not args.quiet).structures  # fmt: skip
    rows["prior"] = {"seconds": round(time.perf_counter() - started, 1), "structures": unguided}

    composition = chemistry.composition
    rmc_structures, rmc_seconds = [], 0.0
    for replica in range(args.replicas):
        start = random_start(composition, density, args.atoms, seed=args.seed + replica, d_min=chemistry.shortest)
        refined = rmc_refine(start, [target], max_seconds=seconds / args.replicas, d_min=chemistry.shortest,
                             seed=args.seed + replica)  # fmt: skip
        rmc_structures.append(refined.structure)
        rmc_seconds += refined.seconds
    rows["RMC"] = {"seconds": round(rmc_seconds, 1), "structures": rmc_structures}

    out = {"target": target_spec, "prior": prior, "density_g_cm3": density, "atoms": args.atoms, "rows": {},
           "replicas": args.replicas, "notes": target.metadata.get("notes", []), "literature": literature}  # fmt: skip
    curves = {}
    for method, row in rows.items():
        structures = row["structures"]
        positions, cells, numbers, batch = batch_from_atoms(structures)
        with torch.no_grad():
            spectra = target.observable(positions.double(), cells.double(), numbers, batch).numpy()
        rms, flat = fit_rms(target, spectra)
        metrics = chemistry_metrics(structures, bonds)
        curves[method] = target.fitted(torch.as_tensor(spectra).mean(0, keepdim=True)).numpy()[0]
        out["rows"][method] = {"seconds": row["seconds"], "fit_rms": round(rms, 5), "flat_rms": round(flat, 5),
                               "cn_distance_to_literature": literature_distance(metrics, literature) if literature
                               else None, **metrics}  # fmt: skip
        m = out["rows"][method]
        print(f"{method:6s} {row['seconds']:7.1f} s  fit rms {rms:.4f} (flat {flat:.4f})  CN {m['coordination']}  "
              f"shortest {m['shortest']}  angles {m['angle_peak']}")  # fmt: skip
    out["curves"] = {"grid": target.observable.grid.numpy().tolist(), "seen": target.y.numpy().tolist(),
                     "weights": target.point_weights.numpy().tolist(),
                     "raw": [np.asarray(v).tolist() for v in target.raw],
                     **{k: v.tolist() for k, v in curves.items()}}  # fmt: skip
    return out


def _values(mapping: dict, keys: tuple[str, ...], digits: int) -> str:
    return " / ".join(f"{mapping[k]:.{digits}f}" if k in mapping else "–" for k in keys)


def table(results: dict) -> str:
    """Markdown table: one row per data set and method, with the literature first."""
    pairs, angles = ("O-Si", "O-O", "Si-Si"), ("O-Si-O", "Si-O-Si")
    lines = [
        "| data set | method | time (s) | fit rms (flat) | CN Si / O | shortest Si–O / O–O / Si–Si (Å) | "
        "first peak Si–O / O–O / Si–Si (Å) | O–Si–O / Si–O–Si peak (°) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, case in results.items():
        lit = case["literature"]
        if lit:
            lines.append(
                f"| {name} | literature | | | {_values(lit['coordination'], ('Si', 'O'), 2)} | | "
                f"{_values(lit['first_peak'], pairs, 2)} | {lit['angle_peak']['O-Si-O']} / 144–152 |"
            )
        for method, row in case["rows"].items():
            lines.append(
                f"| {name} | {method} | {row['seconds']:.0f} | {row['fit_rms']:.4f} ({row['flat_rms']:.4f}) | "
                f"{_values(row['coordination'], ('Si', 'O'), 3)} | {_values(row['shortest'], pairs, 2)} | "
                f"{_values(row['first_peak'], pairs, 2)} | {_values(row['angle_peak'], angles, 1)} |"
            )
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    from specguide.plotting import plt, save_figure

    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), squeeze=False)
    for axis, (name, case) in zip(axes[0], results.items()):
        c = case["curves"]
        grid, weights = np.asarray(c["grid"]), np.asarray(c["weights"]) > 0
        axis.plot(*c["raw"], color="0.6", lw=0.8, label="data as measured")
        axis.plot(grid[weights], np.asarray(c["seen"])[weights], color="k", lw=1.2, label="data as the cell sees them")
        for method, colour in (("ours", "tab:orange"), ("RMC", "tab:blue"), ("prior", "tab:green")):
            rms = case["rows"][method]["fit_rms"]
            axis.plot(grid, c[method], color=colour, lw=1.0, label=f"{method} (rms {rms:.3f})")
        axis.set_xlim(0, grid[weights].max())
        axis.set_title(f"{name}: {Path(case['target'].split(':')[1]).name}", fontsize=9)
        axis.set_xlabel("Q (Å⁻¹)")
        axis.set_ylabel("S(Q)")
        axis.legend(fontsize=7)
        axis.grid(alpha=0.3)
    figure.tight_layout()
    save_figure(figure, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--extra", action="append", default=[], help="NAME=TARGET@PRIOR@DENSITY (a file of yours)")
    parser.add_argument("--atoms", type=int, default=648)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--preset", default="quality", choices=("quality", "fast"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "experiment")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {name: DATASETS[name] for name in args.datasets}
    for text in args.extra:
        name, _, rest = text.partition("=")
        spec, prior, density = rest.rsplit("@", 2)
        cases[name] = {"target": spec, "prior": prior, "density": float(density), "material": name}
    results = {name: run_case(name, case, args) for name, case in cases.items()}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out.with_name(args.out.name + ".json"), {"settings": settings, "results": results})
    text = table(results)
    (args.out.with_name(args.out.name + ".md")).write_text(text + "\n")
    plot(results, args.out.with_name(args.out.name + ".png"))
    print("\n" + text)


if __name__ == "__main__":
    main()
