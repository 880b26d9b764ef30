"""Guided inversion of an X-ray S(Q) of held-out Cu–Zr MD with the a-CuZr prior: Delta_ED per modality.

    python bench/invert_cuzr.py [--compositions Cu64Zr36 Cu50Zr50] [--rate 100] [--replicas 4] [--atoms 250]
                                [--steps 256] [--strength 30] [--schedule two-stage] [--t-guide 0.6]
                                [--prior a-CuZr] [--seed 0] [--rows unconditional XRD]

The format of bench/invert_ood.py, one row block per composition instead of per density. For each composition the
target is the mean X-ray-weighted Faber–Ziman S(Q) (f = Z, 1–15 Å⁻¹, Lorch window over the cell's half width) of
the held-out replicas (split 'test') of the bundled MD set ``<composition>_q<rate>``, which the prior never saw.
Rows:

- ``unconditional``: the prior alone at the set's density and composition;
- ``XRD``: a guided inversion (``--schedule``, default two-stage guidance from ``--t-guide``) with that target.

Columns: Delta_ED (GLASS Supplementary 2.6; ≤ 0 = within the MD's spread) of the number g(r) (PDF), the bond angles
within the MD's first-minimum cutoffs (ADF), X-ray (XRD) and neutron (ND) intensities, taken against the held-out
replicas (``truth``) with the diversity of all replicas of the set; the Cu icosahedral (<0,0,12,0>) fraction and
the partial first peaks beside the MD's; wall time. Writes bench/results/invert_cuzr.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from prior_quality_cuzr import measure  # the analysis of the prior-quality bench (bench/ is on the path of a script)
from specguide.analysis.delta_ed import MODALITIES, benchmark_observables, delta_ed, spectra_of
from specguide.analysis.structure import rdf_cutoffs
from specguide.diffusion.inversion import invert
from specguide.diffusion.sampler import generate
from specguide.io import write_json
from specguide.observables import StructureFactor
from specguide.observables.registry import default_r_max
from specguide.observables.target import Target
from specguide.pretrained import load_md_dataset, resolve_prior
from specguide.structure import density_g_cm3

ROWS = ("unconditional", "XRD")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compositions", nargs="+", default=["Cu64Zr36", "Cu50Zr50"])
    parser.add_argument("--rate", type=float, default=100.0, help="quench rate (K/ps) of the MD set")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--atoms", type=int, default=250)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--strength", type=float, default=30.0)
    parser.add_argument("--schedule", default="two-stage", choices=("two-stage", "guided"))
    parser.add_argument("--t-guide", type=float, default=0.6)
    parser.add_argument("--preset", default="fast", choices=("quality", "fast"))
    parser.add_argument("--prior", default="a-CuZr")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "invert_cuzr.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    prior_file = resolve_prior(args.prior)
    results: dict = {"settings": vars(args) | {"out": str(args.out)}, "compositions": {}}
    for composition in args.compositions:
        name = f"{composition}_q{args.rate:g}"
        everything, held_out = load_md_dataset(name), load_md_dataset(name, split="test")
        density = sum(density_g_cm3(a) for a in held_out) / len(held_out)
        half = float(min(a.cell.lengths().min() for a in everything)) / 2
        cutoffs = rdf_cutoffs(everything)
        observables = benchmark_observables(half, cutoffs)
        reference = {m: spectra_of(everything, o) for m, o in observables.items()}
        truth = {m: spectra_of(held_out, o) for m, o in observables.items()}
        sq = StructureFactor(q_min=1.0, q_max=15.0, weighting="xray", r_max=default_r_max(half))
        target = Target(sq, spectra_of(held_out, sq).mean(0), label="X-ray S(Q)")
        md = measure(held_out)
        rows = {}
        for row in args.rows:
            start = time.perf_counter()
            common = dict(preset=args.preset, density_g_cm3=density, n_atoms=args.atoms, n_replicas=args.replicas,
                          steps=args.steps, seed=args.seed, composition=composition, progress=False)  # fmt: skip
            if row == "unconditional":
                structures = generate(prior_file, **common).structures
            else:
                structures = invert(prior_file, [target], strength=args.strength, schedule=args.schedule,
                                    t_guide=args.t_guide, **common).structures  # fmt: skip
            seconds = time.perf_counter() - start
            structures = list(structures)
            scores = {m: delta_ed(reference[m], spectra_of(structures, o), truth[m]) for m, o in observables.items()}
            ours = measure(structures)
            rows[row] = {
                **{key: {m: s[key] for m, s in scores.items()} for key in ("delta_ed", "error", "diversity")},
                "icosahedral_Cu_pct": 100 * ours["icosahedral_Cu"]["mean"],
                "first_peak_A": ours["first_peak_A"],
                "seconds": seconds,
            }
            cells = " ".join(f"{m}={rows[row]['delta_ed'][m]:+.4f}" for m in MODALITIES)
            print(f"{composition} {row:13s} {cells}  Cu ico {rows[row]['icosahedral_Cu_pct']:5.1f}% "
                  f"(MD {100 * md['icosahedral_Cu']['mean']:.1f}%)  {seconds:6.1f} s", flush=True)  # fmt: skip
        results["compositions"][composition] = {
            "reference": name, "density_g_cm3": density, "bond_cutoffs_A": {"-".join(k): v for k, v in cutoffs.items()},
            "md_icosahedral_Cu_pct": 100 * md["icosahedral_Cu"]["mean"], "md_first_peak_A": md["first_peak_A"],
            "rows": rows,
        }  # fmt: skip
        write_json(args.out, results)
    print("\nDelta_ED (≤ 0: within the MD's spread); Cu <0,0,12,0> %")
    print(f"{'composition':>11} {'row':13s} " + " ".join(f"{m:>8s}" for m in MODALITIES) + "   Cu ico")
    for composition, block in results["compositions"].items():
        for row, values in block["rows"].items():
            cells = " ".join(f"{values['delta_ed'][m]:+8.4f}" for m in MODALITIES)
            print(f"{composition:>11} {row:13s} {cells}   {values['icosahedral_Cu_pct']:5.1f} "
                  f"(MD {block['md_icosahedral_Cu_pct']:.1f})")  # fmt: skip
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
