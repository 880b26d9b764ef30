"""Quality of the Cu–Zr metallic-glass prior against held-out MD: Cu icosahedral fraction and partial first peaks.

    python bench/prior_quality_cuzr.py [--prior a-CuZr] [--compositions Cu64Zr36 Cu50Zr50] [--rate 100]
                                       [--replicas 4] [--atoms 250] [--steps 256] [--preset quality] [--seed 0]
                                       [--corrector-steps N] [--restarts N] [--out FILE]

For each composition the reference is the held-out replicas (split 'test') of the bundled MD set
``<composition>_q<rate>`` (and, for comparison, of the other quench rate where bundled); the prior generates
``--replicas`` cells at the set's density and composition. Printed and written to
``bench/results/prior_quality_a-CuZr.json``: the fraction of Cu atoms with Voronoi index <0,0,12,0> (OVITO, the
analysis of ``specguide analyze``) and the first peaks of the partial g_ab(r) and of the X-ray- and neutron-weighted
totals (Gaussian width 0.05 Å, 0.01 Å grid), beside the bars: icosahedral fraction within 3 points, partial first
peaks within 0.03 Å.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from specguide.analysis.order import voronoi_index_statistics
from specguide.analysis.structure import pair_distribution_peaks, pair_distributions
from specguide.diffusion.sampler import generate
from specguide.io import write_json
from specguide.pretrained import list_md_datasets, load_md_dataset
from specguide.structure import density_g_cm3

ICOSAHEDRAL_BAR = 0.03  # fraction of Cu atoms (3 points)
PEAK_BAR = 0.03  # Å
PAIRS = ("Cu-Cu", "Cu-Zr", "Zr-Zr")


def measure(structures: list) -> dict:
    """Cu/Zr icosahedral fractions and first peaks of the partial and weighted g(r) of an ensemble."""
    voronoi = voronoi_index_statistics(structures)["centre"]
    r, curves = pair_distributions(structures)
    peaks = pair_distribution_peaks(r, curves)
    return {
        "n_structures": len(structures),
        "icosahedral_Cu": voronoi["Cu"]["icosahedral"],
        "icosahedral_Zr": voronoi["Zr"]["icosahedral"]["mean"],
        "top_indices_Cu": voronoi["Cu"]["top_indices"],
        "first_peak_A": {name: peaks[name]["first_peak"] for name in (*PAIRS, "total_xray", "total_neutron")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prior", default="a-CuZr")
    parser.add_argument("--compositions", nargs="+", default=["Cu64Zr36", "Cu50Zr50"])
    parser.add_argument("--rate", type=float, default=100.0, help="quench rate (K/ps) of the reference MD set")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--atoms", type=int, default=250)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--preset", default="quality", choices=("quality", "fast"))
    parser.add_argument("--corrector-steps", type=int, default=None, help="override the preset's")
    parser.add_argument("--restarts", type=int, default=None, help="local restarts (override the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "prior_quality_a-CuZr.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results: dict = {"settings": vars(args) | {"out": str(args.out)}, "compositions": {}}
    bundled = set(list_md_datasets())
    for composition in args.compositions:
        name = f"{composition}_q{args.rate:g}"
        held_out = load_md_dataset(name, split="test")
        density = float(np.mean([density_g_cm3(a) for a in held_out]))
        overrides = {} if args.corrector_steps is None else {"corrector_steps": args.corrector_steps}
        if args.restarts is not None:
            overrides |= {"n_restarts": args.restarts, "restart_mode": "local"}
        start = time.perf_counter()
        generated = generate(args.prior, density_g_cm3=density, n_atoms=args.atoms, n_replicas=args.replicas,
                             steps=args.steps, seed=args.seed, composition=composition, preset=args.preset,
                             progress=False, **overrides).structures  # fmt: skip
        wall = time.perf_counter() - start
        row = {"reference": name, "density_g_cm3": density, "generate_wall_s": round(wall, 1),
               "md_held_out": measure(held_out), "prior": measure(list(generated))}  # fmt: skip
        other = f"{composition}_q{10.0 if args.rate == 100.0 else 100.0:g}"
        if other in bundled:
            row["md_other_rate"] = {"reference": other, **measure(load_md_dataset(other, split="test"))}
        md, ours = row["md_held_out"], row["prior"]
        d_ico = ours["icosahedral_Cu"]["mean"] - md["icosahedral_Cu"]["mean"]
        d_peaks = {p: round(ours["first_peak_A"][p] - md["first_peak_A"][p], 3) for p in PAIRS}
        row["bars"] = {
            "icosahedral_Cu_delta_points": round(100 * d_ico, 2),
            "icosahedral_met": abs(d_ico) <= ICOSAHEDRAL_BAR,
            "partial_peak_delta_A": d_peaks,
            "partial_peaks_met": all(abs(v) <= PEAK_BAR + 1e-9 for v in d_peaks.values()),
        }
        results["compositions"][composition] = row
        print(f"{composition} (ρ {density:.3f} g/cm³, {args.replicas} × {args.atoms} atoms, {wall:.0f} s): "
              f"Cu <0,0,12,0> MD {100 * md['icosahedral_Cu']['mean']:.1f} % / prior "
              f"{100 * ours['icosahedral_Cu']['mean']:.1f} % (Δ {100 * d_ico:+.1f}); first peaks MD / prior (Å): "
              + ", ".join(f"{p} {md['first_peak_A'][p]:.2f}/{ours['first_peak_A'][p]:.2f}"
                          for p in (*PAIRS, "total_xray")), flush=True)  # fmt: skip
        write_json(args.out, results)
    print(json.dumps({c: r["bars"] for c, r in results["compositions"].items()}, indent=1))


if __name__ == "__main__":
    main()
