"""Kwon et al.'s conditioning test: does a XANES target steer the coordination of generated a-C?

    nice -n 10 python bench/xanes_conditioning.py --prior /work/runs/a-C.pt \
        --surrogate /work/runs/i6/xanes_10min.pt --out /work/runs/i6/conditioning

Targets: the mean DFT C K-edge XANES (a-C set of Kwon et al., grid = index 0…99, no energies) of the two-fold
carbons and of the four-fold carbons in the surrogate's TRAINING structures (coordination with a 1.85 Å C–C
cutoff). At 2.0 g/cm³, 216-atom cells, the same seed and sampler settings (restarts for CN outside 2–4):
unconditional generation vs XANES-guided inversion (two-stage: unconditional pass, then guided from t = 0.6)
towards each target. Reports the CN fractions per replica (mean ± std) and the surrogate loss to each
target -> bench/results/xanes_conditioning.json.
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

from specguide.chemistry import PairTable, coordination_numbers  # noqa: E402
from specguide.datasets.spectra import load_spectra_dataset  # noqa: E402
from specguide.diffusion.inversion import invert  # noqa: E402
from specguide.diffusion.sampler import generate  # noqa: E402
from specguide.graph import batch_from_atoms  # noqa: E402
from specguide.observables.surrogate import SurrogateSpectrum  # noqa: E402
from specguide.pretrained import (
    load_prior,  # noqa: E402
    load_surrogate,  # noqa: E402
)

SHARED = Path(os.environ.get("SPECGUIDE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
XANES = SHARED / "data" / "a-C-xanes-dft"
CC_CUTOFF = 1.85  # Å
RESULTS = Path(__file__).resolve().parent / "results"


def coordination(structures) -> np.ndarray:
    """``[replicas, 6]``: fraction of carbons with CN 0…5+ (1.85 Å cutoff) per structure."""
    positions, cells, numbers, batch = batch_from_atoms(structures)
    cn = coordination_numbers(positions, cells, numbers, batch, PairTable(CC_CUTOFF)).clamp(max=5)
    counts = torch.zeros(len(structures), 6).index_put_((batch, cn), torch.ones(len(cn)), accumulate=True)
    return (counts / counts.sum(1, keepdim=True)).numpy()


def targets(surrogate_meta: dict, out: Path) -> dict[str, Path]:
    """Mean DFT spectra of two-fold and four-fold carbons of the surrogate's training structures."""
    dataset = load_spectra_dataset(XANES / "structures", XANES / "xanes", absorber="C")
    train = set(surrogate_meta["data"]["train_names"])
    by_cn: dict[int, list[np.ndarray]] = {2: [], 4: []}
    for name, atoms, spectra, sites in zip(dataset.names, dataset.structures, dataset.spectra, dataset.sites):
        if name not in train or name in ("diamond", "graphite"):
            continue
        positions, cells, numbers, batch = batch_from_atoms([atoms])
        cn = coordination_numbers(positions, cells, numbers, batch, PairTable(CC_CUTOFF)).numpy()[sites]
        for k in by_cn:
            by_cn[k].append(spectra[cn == k])
    files = {}
    for k, label in ((2, "sp"), (4, "sp3")):
        mean = np.concatenate(by_cn[k]).mean(0)
        files[label] = out / f"target_{label}.dat"
        header = f"mean DFT C K-edge XANES of {len(np.concatenate(by_cn[k]))} {k}-fold carbons (training set)\n"
        header += "columns: grid index (no energies in the data set), intensity"
        np.savetxt(files[label], np.column_stack([np.arange(len(mean)), mean]), header=header)
    return files


def summary(structures, observable, target_files) -> dict:
    fractions = coordination(structures)
    positions, cells, numbers, batch = batch_from_atoms(structures)
    with torch.no_grad():
        spectra = observable(positions, cells, numbers, batch).double().numpy()
    losses = {}
    for label, path in target_files.items():
        y = np.loadtxt(path)[:, 1]
        losses[label] = float((((spectra - y) ** 2).mean(1) / np.abs(y).max() ** 2).mean())
    return {
        "cn_fraction_mean": {str(k): float(fractions[:, k].mean()) for k in range(6)},
        "cn_fraction_std": {str(k): float(fractions[:, k].std()) for k in range(6)},
        "loss_to_targets": losses,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prior", type=Path, required=True)
    parser.add_argument("--surrogate", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--replicas", type=int, default=16)
    parser.add_argument("--atoms", type=int, default=216)
    parser.add_argument("--density", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--restarts", type=int, default=6)
    parser.add_argument("--strength", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--restart-mode", default="replica", choices=("replica", "local"))
    parser.add_argument("--runs", nargs="+", default=["unconditional", "sp", "sp3"])
    parser.add_argument("--name", default="xanes_conditioning")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    _, surrogate_meta = load_surrogate(args.surrogate)
    target_files = targets(surrogate_meta, args.out)
    observable = SurrogateSpectrum(args.surrogate)
    network, prior_meta = load_prior(args.prior)
    common = dict(preset="fast", density_g_cm3=args.density, n_atoms=args.atoms, n_replicas=args.replicas,
                  steps=args.steps,
                  seed=args.seed, n_restarts=args.restarts, restart_mode=args.restart_mode,
                  progress=False)  # fmt: skip
    result = {"config": {**{k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                         "cc_cutoff_A": CC_CUTOFF, "prior_training_steps": prior_meta["training"].get("steps"),
                         "surrogate_training_steps": surrogate_meta["training"].get("steps")},
              "runs": {}}  # fmt: skip
    start = time.perf_counter()
    if "unconditional" in args.runs:
        structures = generate(network, cn_range={6: (2, 4)}, **common).structures
        result["runs"]["unconditional"] = {**summary(structures, observable, target_files),
                                           "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print("unconditional", result["runs"]["unconditional"], flush=True)
    for label, path in target_files.items():
        if label not in args.runs:
            continue
        start = time.perf_counter()
        inversion = invert(args.prior, [f"xanes:{path}"], surrogate=args.surrogate, strength=args.strength,
                           cn_range={6: (2, 4)}, **common)  # fmt: skip
        result["runs"][f"target_{label}"] = {**summary(inversion.structures, observable, target_files),
                                             "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        print(label, result["runs"][f"target_{label}"], flush=True)
        (args.out / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(result, indent=1))
    runs = result["runs"]
    print("\nCN fractions (mean ± std over replicas), 1.85 Å cutoff")
    for name, run in runs.items():
        cells = [f"CN{k} {100 * run['cn_fraction_mean'][str(k)]:.1f}±{100 * run['cn_fraction_std'][str(k)]:.1f} %"
                 for k in range(1, 5)]  # fmt: skip
        print(f"  {name:14s} " + "  ".join(cells))


if __name__ == "__main__":
    sys.exit(main())
