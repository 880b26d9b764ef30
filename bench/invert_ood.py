"""Out-of-distribution inversion benchmark (GLASS Fig. 2D on our own MD data): Delta_ED per modality.

    python bench/invert_ood.py [--densities 1.5 2.0 3.0 3.5] [--replicas 8] [--steps 256] [--strength 30]
                               [--core 1] [--corrector-steps 0] [--restarts 0 --restart-mode replica|local --cn 3 4]
                               [--schedule two-stage|guided] [--t-guide 0.6] [--prior a-Si] [--seed 0]

The bundled a-Si prior was trained on a-Si at 2.5 g/cm³ only. For each density with a bundled MD set, the
reference ensemble is that set's replicas and the targets are their mean spectra. ``--core W`` weights the PDF
target's excluded core (below the first-neighbour onset) W times (``core=W`` of a target file). Restarts
(``--restarts``) apply where the target g(r) describes a network, i.e. its first-shell coordination number n1
(from the target itself) is below 5: there an atom with coordination outside ``--cn`` is a defect; the close-packed
3.5 g/cm³ phase (n1 ≈ 9.4) has no such rule and gets none. Rows:

- ``unconditional``: the prior alone at the target density;
- ``PDF``, ``XRD``, ``PDF+XRD``: guided inversions (two-stage, default guidance) with those targets.

Columns: Delta_ED = error − diversity (GLASS Supplementary 2.6; ≤ 0 = within the MD replicas' spread) for
g(r) (PDF), bond angles (ADF), X-ray (XRD) and neutron (ND) intensities, plus the four-fold Si fraction and
wall time. Writes bench/results/invert_ood.json and a heatmap bench/results/invert_ood.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from specguide.analysis.delta_ed import MODALITIES, benchmark_observables, delta_ed_scores, spectra_of
from specguide.analysis.structure import first_shell_coordination
from specguide.chemistry import coordination_fractions
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampler import generate
from specguide.io import write_json
from specguide.observables.measured import core_mask
from specguide.observables.target import Target
from specguide.pretrained import list_md_datasets, load_md_dataset, load_prior, resolve_prior

ROWS = ("unconditional", "PDF", "XRD", "PDF+XRD")
BOND_CUTOFF = 2.85  # Å, Si–Si first minimum
NETWORK_N1 = 5.0  # restarts only where the target's first-shell coordination is below this (a network)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", type=float, nargs="+", default=[1.5, 2.0, 2.5, 3.0, 3.5])
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--strength", type=float, default=30.0)
    parser.add_argument("--core", type=float, default=1.0, help="weight of the PDF target's excluded core")
    parser.add_argument("--restarts", type=int, default=0)
    parser.add_argument("--restart-mode", default="replica", choices=("replica", "local"))
    parser.add_argument("--cn", type=int, nargs=2, default=[3, 4], metavar=("LO", "HI"),
                        help="with --restarts: restart Si atoms whose coordination is outside LO..HI")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--schedule", default="two-stage", choices=("two-stage", "guided"))
    parser.add_argument("--t-guide", type=float, default=0.6, help="guidance starts at this t (two-stage: re-noise)")
    parser.add_argument("--corrector-steps", type=int, default=0, help="Langevin corrector steps per step")
    parser.add_argument("--prior", default="a-Si", help="bundled prior name or checkpoint (default: 2.5-only a-Si)")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "invert_ood")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                        help="only combine result files run side by side (densities or rows) into --out")  # fmt: skip
    args = parser.parse_args()
    if args.merge:
        merge(args.merge, args.out)
        return
    torch.set_num_threads(args.threads)
    available = set(list_md_datasets())
    # the file itself, so that a bundled family name (a-Si) is not redirected to its member at each density:
    # this benchmark is about one prior trained at 2.5 g/cm³ used everywhere
    prior_file = resolve_prior(args.prior)
    network, _ = load_prior(prior_file)
    results: dict = {"settings": vars(args) | {"out": str(args.out)}, "densities": {}}

    for density in args.densities:
        name = f"a-Si_{density:.1f}"
        if name not in available:
            print(f"{name}: no bundled MD data; skipped")
            continue
        reference = load_md_dataset(name)
        half = float(min(a.cell.lengths().min() for a in reference)) / 2
        observables = benchmark_observables(half, BOND_CUTOFF)
        reference_spectra = {m: spectra_of(reference, o) for m, o in observables.items()}
        md_cn4 = 100 * coordination_fractions(reference, {("Si", "Si"): BOND_CUTOFF})["Si"].get(4, 0.0)
        grid, target_gr = observables["PDF"].grid.numpy(), reference_spectra["PDF"].mean(0).numpy()
        core_weights = torch.where(torch.as_tensor(core_mask("gr", grid, target_gr)), args.core, 1.0).double()
        targets = {
            "PDF": Target(observables["PDF"], target_gr, point_weights=core_weights, label="PDF"),
            "XRD": Target(observables["XRD"], reference_spectra["XRD"].mean(0), label="XRD"),
        }
        n1, _ = first_shell_coordination(grid, target_gr, len(reference[0]) / reference[0].get_volume())
        restarts = args.restarts if n1 < NETWORK_N1 else 0
        rows = {}
        for row in args.rows:
            start = time.perf_counter()
            common = dict(preset="fast", density_g_cm3=density, n_atoms=216, n_replicas=args.replicas, steps=args.steps,
                          seed=args.seed, n_restarts=restarts, corrector_steps=args.corrector_steps,
                          progress=False)  # fmt: skip
            if restarts:
                common["cn_range"] = {14: tuple(args.cn)}
                common["restart_mode"] = args.restart_mode
            if row == "unconditional":
                structures = generate(network, **common).structures
            else:
                chosen = [targets[m] for m in row.split("+")]
                structures = invert(
                    prior_file, chosen, strength=args.strength, schedule=args.schedule, t_guide=args.t_guide, **common
                ).structures
            seconds = time.perf_counter() - start
            cn4 = 100 * coordination_fractions(structures, {("Si", "Si"): BOND_CUTOFF})["Si"].get(4, 0.0)
            rows[row] = {**delta_ed_scores(reference_spectra, structures, observables),
                         "four_fold_pct": cn4, "seconds": seconds}  # fmt: skip
            cells = " ".join(f"{m}={rows[row]['delta_ed'][m]:+.4f}" for m in MODALITIES)
            print(f"rho={density:.1f} {row:13s} {cells}  4-fold {cn4:5.1f}% (MD {md_cn4:.1f}%)  {seconds:6.1f} s",
                  flush=True)  # fmt: skip
        results["densities"][f"{density:.1f}"] = {"rows": rows, "md_four_fold_pct": md_cn4, "target_n1": n1,
                                                  "restarts": restarts}  # fmt: skip

    args.out.parent.mkdir(parents=True, exist_ok=True)
    save(results, args.out)


def save(results: dict, stem: Path) -> None:
    """Print the table, write ``STEM.json`` and the heatmap ``STEM.png`` (``ood_3.0_seed1`` keeps its dots)."""
    json_path, png_path = stem.with_name(stem.name + ".json"), stem.with_name(stem.name + ".png")
    write_json(json_path, results)
    print_table(results)
    plot(results, png_path)
    print(f"wrote {json_path} and {png_path}")


def merge(files: list[Path], out: Path) -> None:
    """One table, JSON and heatmap from result files run side by side (other densities or other rows).

    A row of a later file replaces the same row of an earlier one; each row records the file it came from."""
    parts = [json.loads(path.read_text()) for path in files]
    densities: dict = {}
    for path, part in zip(files, parts):
        for density, block in part["densities"].items():
            merged = densities.setdefault(density, {})
            source = block.get("settings_of", str(path))  # a merged file keeps where its rows were run
            rows = merged.get("rows", {}) | {row: values | {"settings_of": values.get("settings_of", source)}
                                             for row, values in block["rows"].items()}  # fmt: skip
            merged.update({k: v for k, v in block.items() if k not in ("rows", "settings_of")})
            merged["rows"] = {row: rows[row] for row in ROWS if row in rows}
    results = {"settings": {str(path): part["settings"] for path, part in zip(files, parts)},
               "densities": {d: densities[d] for d in sorted(densities, key=float)}}  # fmt: skip
    save(results, out)


def print_table(results: dict) -> None:
    print("\nDelta_ED (≤ 0: within the MD replicas' spread); 4-fold Si %")
    print(f"{'density':>7} {'row':13s} " + " ".join(f"{m:>8s}" for m in MODALITIES) + "   4-fold")
    for density, block in results["densities"].items():
        for row, values in block["rows"].items():
            cells = " ".join(f"{values['delta_ed'][m]:+8.4f}" for m in MODALITIES)
            print(
                f"{density:>7} {row:13s} {cells}   {values['four_fold_pct']:5.1f} (MD {block['md_four_fold_pct']:.1f})"
            )


def plot(results: dict, path: Path) -> None:
    from specguide.plotting import plt, save_figure

    densities = list(results["densities"])
    if not densities:
        return
    rows = list(next(iter(results["densities"].values()))["rows"])
    figure, axes = plt.subplots(1, len(rows), figsize=(3.2 * len(rows), 3.4), squeeze=False,
                             sharey=True)  # fmt: skip
    limit = max(abs(v["delta_ed"][m]) for d in densities for v in results["densities"][d]["rows"].values()
                for m in MODALITIES)  # fmt: skip
    for axis, row in zip(axes[0], rows):
        grid = np.array([[results["densities"][d]["rows"][row]["delta_ed"][m] for d in densities] for m in MODALITIES])
        image = axis.imshow(grid, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        axis.set_xticks(range(len(densities)), densities)
        axis.set_yticks(range(len(MODALITIES)), MODALITIES)  # shared: labelled on the first panel only
        axis.set_xlabel("density (g/cm³)")
        axis.set_title(row if row == "unconditional" else f"{row} guided", fontsize=10)
        for (k, j), value in np.ndenumerate(grid):
            axis.text(j, k, f"{value:+.4f}", ha="center", va="center", fontsize=6.5)
    figure.colorbar(image, ax=axes[0].tolist(), label="Delta_ED (error − diversity)")
    figure.suptitle("a-Si prior trained at 2.5 g/cm³ only; targets = mean spectra of MD replicas", fontsize=10)
    save_figure(figure, path)


if __name__ == "__main__":
    main()
