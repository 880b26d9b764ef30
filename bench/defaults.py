"""Realistic by default (issue 29, item 4): what `generate` and `invert` give at their defaults, against the MD.

    python bench/defaults.py                                  # a-Si at 512 atoms, a-SiO2 at 300, seed 0
    python bench/defaults.py --cases a-Si:2.5:512 --replicas 2 --seed 1 --preset fast

For each case ``PRIOR:DENSITY:ATOMS`` (the bundled prior at its training density), with the defaults of the
Python API (``preset="quality"``: the prior's recorded corrector steps and local restarts, the training data's
bond cutoffs, coordination fractions and closest approach):

- ``generate``: ``--replicas`` structures from random starts;
- ``invert``: the same, guided by the g(r) of the held-out MD replicas of that density (as `specguide demo` does);

and reports per species the coordination fractions next to the MD's (the prior's recorded training data at that
density, the same bond cutoffs), the shortest pair per species pair next to the MD's shortest, and wall time.
The bars of the issue: a-Si four-fold ≥ 90 % at 512 atoms; a-SiO2 ≥ 93 % four-fold Si and ≥ 95 % two-fold O; no
pair shorter than the MD's shortest. Writes ``--out`` (default bench/results/defaults) ``.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

from specguide.analysis.summary import summarize
from specguide.api import compute_spectrum
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampler import generate, prior_chemistry
from specguide.io import write_json
from specguide.pretrained import load_md_dataset, load_prior

ROOT = Path(__file__).resolve().parents[1]
DATASET = {"a-Si": "a-Si_{density}", "a-SiO2": "a-SiO2_{density}", "a-C": "a-C_{density}"}
BARS = {"a-Si": {"Si": ("4", 0.90)}, "a-SiO2": {"Si": ("4", 0.93), "O": ("2", 0.95)}}


def score(summary: dict, chemistry, density: float) -> dict:
    reference = chemistry.coordination_at(density)
    out = {"coordination": {s: v["fractions"] for s, v in summary["coordination"].items()},
           "md_coordination": reference, "shortest": summary["shortest_pairs"], "md_shortest": chemistry.shortest,
           "shorter_than_md": summary.get("shorter_than_reference", {})}  # fmt: skip
    return out


def run_case(text: str, args) -> dict:
    prior, density, atoms = text.split(":")
    density, atoms = float(density), int(atoms)
    _, meta = load_prior(prior, density_g_cm3=density)
    chemistry = prior_chemistry(meta)
    rows = {}
    started = time.perf_counter()
    run = generate(prior, density_g_cm3=density, n_atoms=atoms, n_replicas=args.replicas, seed=args.seed,
                   preset=args.preset, progress=not args.quiet)  # fmt: skip
    structures, details = run.structures, {"config": run.config}
    seconds = time.perf_counter() - started
    summary = summarize(structures, chemistry=chemistry, density_g_cm3=density)
    rows["generate"] = {"seconds": round(seconds, 1), **score(summary, chemistry, density),
                        "settings": {k: details["config"][k] for k in ("preset", "corrector_steps", "n_restarts",
                                                                        "restart_mode")}}  # fmt: skip
    family = prior.split("@")[0]
    dataset = DATASET[family].format(density=f"{density:.1f}")
    folder = Path(tempfile.mkdtemp(prefix="bench_defaults_"))
    ase.io.write(folder / "reference.extxyz", load_md_dataset(dataset, split="test"))
    x, y, _ = compute_spectrum(folder / "reference.extxyz", "gr")
    np.savetxt(folder / "gr.dat", np.column_stack([x, y]), header="r g(r)")
    started = time.perf_counter()
    result = invert(prior, [f"gr:{folder / 'gr.dat'}"], density_g_cm3=density, n_atoms=atoms,
                    n_replicas=args.replicas, seed=args.seed, preset=args.preset, progress=not args.quiet)  # fmt: skip
    seconds = time.perf_counter() - started
    losses = {k: v["ensemble_mean_spectrum"] for k, v in result.summary["losses"].items()}
    rows["invert"] = {"seconds": round(seconds, 1), **score(result.summary, chemistry, density), "loss": losses}
    for name, row in rows.items():
        fractions = {s: f"{100 * c.get(BARS.get(family, {}).get(s, ('4', 0))[0], 0):.1f}" for s, c in
                     row["coordination"].items()}  # fmt: skip
        print(f"{text} {name}: {row['seconds']} s; coordination {fractions}; shortest {row['shortest']} "
              f"(MD {row['md_shortest']}); shorter than MD: {row['shorter_than_md'] or 'none'}")  # fmt: skip
    return {"prior": prior, "density_g_cm3": density, "atoms": atoms, "replicas": args.replicas,
            "bars": BARS.get(family), "rows": rows}  # fmt: skip


def table(results: dict) -> str:
    lines = ["| case | run | time (s) | share at the bar's CN: ours / MD | shortest pair: ours / MD (Å) | meets |",
             "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for case, result in results.items():
        bars = result["bars"] or {}
        for name, row in result["rows"].items():
            shares, ok = [], not row["shorter_than_md"]
            for species, (cn, bar) in bars.items():
                ours = row["coordination"].get(species, {}).get(cn, 0.0)
                md = row["md_coordination"].get(species, {}).get(cn, 0.0)
                shares.append(f"{species} CN{cn} {100 * ours:.1f} / {100 * md:.1f} % (bar {100 * bar:.0f})")
                ok &= ours >= bar
            pairs = "; ".join(f"{p} {v:.3f} / {row['md_shortest'].get(p, float('nan')):.3f}"
                              for p, v in row["shortest"].items())  # fmt: skip
            lines.append(f"| {case} | {name} | {row['seconds']:.0f} | {'; '.join(shares)} | {pairs} | "
                         f"{'yes' if ok else 'no'} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=["a-Si:2.5:512", "a-SiO2:2.2:300"])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="quality", choices=("quality", "fast"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "defaults")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {case: run_case(case, args) for case in args.cases}
    settings = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}
    write_json(args.out.with_name(args.out.name + ".json"), {"settings": settings, "results": results})
    text = table(results)
    args.out.with_name(args.out.name + ".md").write_text(text + "\n")
    print("\n" + text)


if __name__ == "__main__":
    main()
