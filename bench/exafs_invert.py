"""EXAFS-guided inversion with the bundled FEFF-trained surrogate, checked with FEFF itself.

    nice -n 10 python bench/exafs_invert.py [--replicas 8] [--feff-sites 8] [--cache DIR]

Targets: the bundled FEFF Si K-edge EXAFS (k²χ, 2–12 Å⁻¹) of ONE held-out MD replica (split='test', replica 10:
never seen by the prior or the surrogate) at 2.5 g/cm³ (prior ``a-Si``, trained at 2.5 only) and at 3.0 g/cm³
(prior ``a-Si-all``, trained on 1.5–3.5): ``src/specguide/data/defaults/surrogates/a-Si_<d>_test0_exafs.dat``,
the mean over 64 random sites (an unbiased estimate of the 216-site mean).

Per case, same seed: unconditional generation (``generate``), then EXAFS-guided inversion (``invert`` with
``exafs:TARGET`` and ``surrogate="Si-K_EXAFS"``) started from those same unconditional structures (re-noised to
``t_guide`` = 0.6 and guided — the second stage of ``invert``'s default two-stage schedule), so the difference is
the guidance alone. Reported, per run (mean ± std over replicas where per replica):
- surrogate misfit: relative L2 ‖S̄ − y‖/‖y‖ of the surrogate's structure-mean spectrum S̄ vs the target y;
- FEFF check: FEFF10 EXAFS (same settings as the data) of ``--feff-sites`` random Si sites per replica, pooled
  mean vs the target (relative L2), so surrogate exploitation would show as a FEFF misfit that does not drop.
  Floors: the same number of random sites of the OTHER held-out replica (11) at that density (what a perfect
  model of the ensemble would score with this many sites) and the surrogate misfit of replicas 10 and 11;
- structure vs the held-out replica 10: relative L2 of g(r) (0.5–8 Å, σ 0.1 Å) and Si coordination
  fractions (2.85 Å cutoff).
Writes bench/results/exafs_invert.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from specguide.chemistry import coordination_fractions  # noqa: E402
from specguide.diffusion.inversion import invert  # noqa: E402
from specguide.diffusion.sampler import generate  # noqa: E402
from specguide.graph import batch_from_atoms  # noqa: E402
from specguide.observables import PairDistribution  # noqa: E402
from specguide.observables.surrogate import SurrogateSpectrum  # noqa: E402
from specguide.pretrained import (
    default_surrogates_dir,  # noqa: E402
    load_md_dataset,  # noqa: E402
)
from specguide.simulate.feff import site_spectra  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
CASES = {"2.5": ("a-Si", 2.5), "3.0": ("a-Si-all", 3.0)}
SURROGATE = "Si-K_EXAFS"


def rel_l2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.norm(a - b, axis=-1) / np.linalg.norm(b, axis=-1)


def stats(values) -> dict:
    values = np.asarray(values, dtype=float)
    per_replica = [round(float(v), 5) for v in values]
    return {"mean": float(values.mean()), "std": float(values.std()), "per_replica": per_replica}


def surrogate_spectra(observable: SurrogateSpectrum, structures) -> np.ndarray:
    with torch.no_grad():
        return observable(*batch_from_atoms(structures)).numpy()


def feff_mean(structures, n_sites: int, seed: int, cache: Path, timings: list) -> tuple[np.ndarray, np.ndarray]:
    """(pooled mean over all chosen sites, per-structure site means) of FEFF k²χ on the data's grid."""
    rng = np.random.default_rng(seed)
    sites = [np.sort(rng.choice(len(a), n_sites, replace=False)) for a in structures]
    spectra = site_spectra(structures, sites, absorber="Si", kind="exafs", workers=1, cache_dir=cache,
                           progress=False, timings=timings)  # fmt: skip
    return np.concatenate(spectra).mean(0), np.stack([s.mean(0) for s in spectra])


def structure_metrics(structures, reference, gr: PairDistribution) -> dict:
    with torch.no_grad():
        g = gr(*batch_from_atoms(structures)).numpy()
        g_ref = gr(*batch_from_atoms([reference])).numpy()[0]
    window = gr.grid.numpy() >= 0.5
    cn = coordination_fractions(structures, {"Si-Si": 2.85})["Si"]
    cn_ref = coordination_fractions(reference, {"Si-Si": 2.85})["Si"]
    return {
        "gr_rel_l2": stats(rel_l2(g[:, window], g_ref[window])),
        "cn_fractions": {str(k): round(float(v), 4) for k, v in cn.items()},
        "cn_fractions_reference": {str(k): round(float(v), 4) for k, v in cn_ref.items()},
        "four_fold": float(cn.get(4, 0.0)),
        "four_fold_reference": float(cn_ref.get(4, 0.0)),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--atoms", type=int, default=216)
    parser.add_argument("--steps", type=int, default=256)
    parser.add_argument("--strength", type=float, default=30.0)
    parser.add_argument("--t-guide", type=float, default=0.6)
    parser.add_argument("--feff-sites", type=int, default=8, help="FEFF sites per replica")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, default=Path("feff-cache"))
    parser.add_argument("--name", default="exafs_invert")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    observable = SurrogateSpectrum(SURROGATE)
    gr = PairDistribution(r_max=8.0, dr=0.02, sigma=0.1)
    result = {"config": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "cases": {}}
    result["config"]["surrogate"] = SURROGATE
    timings: list[dict] = []
    for case in args.cases:
        prior, density = CASES[case]
        target_file = default_surrogates_dir() / f"a-Si_{density}_test0_exafs.dat"
        target = np.loadtxt(target_file)[:, 1]
        tests = load_md_dataset(f"a-Si_{density}", split="test")
        reference = next(a for a in tests if a.info["replica"] == 10)
        other = next(a for a in tests if a.info["replica"] == 11)
        common = dict(
            preset="fast", density_g_cm3=density, n_atoms=args.atoms, n_replicas=args.replicas, steps=args.steps
        )
        t0 = time.perf_counter()
        uncond = generate(prior, seed=args.seed, progress=False, **common).structures
        t1 = time.perf_counter()
        inversion = invert(prior, [f"exafs:{target_file}"], surrogate=SURROGATE, strength=args.strength,
                           t_guide=args.t_guide, init=uncond, seed=args.seed + 1, progress=False, **common)  # fmt: skip
        t2 = time.perf_counter()
        guided = inversion.structures
        runs = {}
        for label, structures in (("unconditional", uncond), ("guided", guided)):
            s = surrogate_spectra(observable, structures)
            pooled, per = feff_mean(structures, args.feff_sites, args.seed + 7, args.cache, timings)
            runs[label] = {
                "surrogate_rel_l2": stats(rel_l2(s, target)),
                "surrogate_rel_l2_ensemble_mean": float(rel_l2(s.mean(0), target)),
                "feff_rel_l2_pooled": float(rel_l2(pooled, target)),
                "feff_rel_l2_per_replica": stats(rel_l2(per, target)),
                "feff_vs_surrogate_rel_l2_pooled": float(rel_l2(s.mean(0), pooled)),
                **structure_metrics(structures, reference, gr),
            }
            print(case, label, json.dumps({k: runs[label][k] for k in (
                "surrogate_rel_l2", "feff_rel_l2_pooled", "four_fold")}), flush=True)  # fmt: skip
        n_floor = args.feff_sites * args.replicas
        floor_pooled, _ = feff_mean([other], n_floor, args.seed + 11, args.cache, timings)
        s_ref = surrogate_spectra(observable, [reference, other])
        result["cases"][case] = {
            "prior": prior,
            "density_g_cm3": density,
            "target": str(target_file.name),
            "runs": runs,
            "floors": {
                f"feff_rel_l2_{n_floor}_sites_of_replica_11": float(rel_l2(floor_pooled, target)),
                "surrogate_rel_l2_replica_10_(target_structure)": float(rel_l2(s_ref[0], target)),
                "surrogate_rel_l2_replica_11": float(rel_l2(s_ref[1], target)),
                "gr_rel_l2_replica_11_vs_10": structure_metrics([other], reference, gr)["gr_rel_l2"]["mean"],
            },
            "seconds": {"unconditional": round(t1 - t0, 1), "guided_stage": round(t2 - t1, 1)},
        }
        print(case, json.dumps(result["cases"][case]["floors"]), flush=True)
    if timings:
        result["feff_cpu_s_per_site"] = float(np.mean([t["cpu_seconds"] for t in timings]))
        result["feff_new_sites"] = len(timings)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    print(f"wrote {RESULTS / f'{args.name}.json'}")


if __name__ == "__main__":
    sys.exit(main())
