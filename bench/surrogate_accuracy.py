"""Accuracy of the per-atom XANES surrogate on the a-C DFT data of Kwon et al. (structure-level split).

    nice -n 10 python bench/surrogate_accuracy.py train --minutes 10 --out /work/runs/i6/xanes_10min.pt
    # the longer run continues a copy of the 10-minute one for 15 more minutes (25 min in all)
    cd /work/runs/i6; for f in .pt .last.ckpt _logs; do cp -r xanes_10min$f xanes_25min$f; done; cd -
    nice -n 10 python bench/surrogate_accuracy.py train --minutes 15 --out /work/runs/i6/xanes_25min.pt --resume
    python bench/surrogate_accuracy.py report /work/runs/i6/xanes_10min.pt /work/runs/i6/xanes_25min.pt
    # a checkpoint from `specguide train-surrogate` on this set, scored on its held-out amorphous cells
    python bench/surrogate_accuracy.py score dft_angular.pt

``train``: one thread, fixed validation structures (one or two per density, never split by atom).
``report``: for each checkpoint, per-atom and structure-averaged validation errors, the spread between the
DFT mean spectra of the 1.5 / 2.5 / 3.5 g/cm³ groups (training structures), whether each validation
structure's predicted mean spectrum is nearest to its own density group, and the training curves (from the
CSV log next to the checkpoint) -> bench/results/surrogate_accuracy.{json,png}.
``score``: the checkpoint's own held-out structures (``val_names``), amorphous ones only (the set's
``diamond.csv`` and ``graphite.csv`` are ~40x weaker than its amorphous files, another normalisation), per atom
and structure mean, beside the coordination-lookup and density-group baselines built from the amorphous training
structures (``spectrum_baselines``); prints JSON.
The data set gives no energies: the grid is the index 0…99.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from specguide.datasets.spectra import load_spectra_dataset  # noqa: E402
from specguide.graph import batch_from_atoms  # noqa: E402
from specguide.pretrained import load_surrogate  # noqa: E402
from specguide.structure import density_g_cm3  # noqa: E402

DATA = Path(os.environ.get("SPECGUIDE_SHARED", Path(__file__).resolve().parents[2] / "shared")) / "data"
XANES = DATA / "a-C-xanes-dft"
# one or two validation structures per density (g/cm³ from the cell): 1.5, 1.5, 2.0, 2.5, 3.0, 3.5
VAL_NAMES = ["d1.5_2", "d1.5_7", "d0.0_14", "d2.5_3", "d0.0_20", "d0.0_19"]
RESULTS = Path(__file__).resolve().parent / "results"


def load_data():
    return load_spectra_dataset(XANES / "structures", XANES / "xanes", absorber="C")


def train(args) -> None:
    from specguide.training.surrogate import train_surrogate

    torch.set_num_threads(1)
    dataset = load_data()
    train_surrogate(dataset, args.out, kind="xanes", max_time_minutes=args.minutes, val_names=VAL_NAMES,
                    seed=args.seed, val_every_n_steps=100, progress=False, resume=args.resume)  # fmt: skip
    print(f"wrote {args.out}")


def predict(network, atoms) -> np.ndarray:
    positions, cells, numbers, batch = batch_from_atoms([atoms])
    with torch.no_grad():
        return network(positions, cells, numbers, batch).double().numpy()


def rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def curve(ckpt: Path) -> list[dict]:
    """Validation metrics by step from every CSV log of the run (a resumed run adds a version)."""
    logs = sorted((ckpt.parent / f"{ckpt.stem}_logs").glob("version_*/metrics.csv"),
                  key=lambda p: int(p.parent.name.split("_")[1]))  # fmt: skip
    rows = []
    for log in logs:
        with open(log) as handle:
            for row in csv.DictReader(handle):
                if row.get("val/rel_l2_structure"):
                    rows.append({"step": int(row["step"]), **{k: float(v) for k, v in row.items()
                                                               if k.startswith("val/") and v}})  # fmt: skip
    return rows


def report(args) -> None:
    dataset = load_data()
    densities = {name: round(density_g_cm3(a) * 2) / 2 for name, a in zip(dataset.names, dataset.structures)}
    amorphous = [k for k, n in enumerate(dataset.names) if n not in ("diamond", "graphite")]
    out = {"data": str(XANES), "val_names": VAL_NAMES, "grid": "index 0..99 (no energies in the data set)",
           "checkpoints": {}}  # fmt: skip
    for path in args.checkpoints:
        network, meta = load_surrogate(path)
        train_names = set(meta["data"]["train_names"])
        val = [k for k in amorphous if dataset.names[k] in VAL_NAMES]
        assert not train_names & {dataset.names[k] for k in val}, "a validation structure was trained on"
        per_atom_sq, per_atom_rel, per_structure = [], [], {}
        means_true, means_pred = {}, {}
        for k in amorphous + [dataset.names.index("diamond"), dataset.names.index("graphite")]:
            name = dataset.names[k]
            truth = dataset.spectra[k].astype(np.float64)
            predicted = predict(network, dataset.structures[k])[dataset.sites[k]]
            means_true[name], means_pred[name] = truth.mean(0), predicted.mean(0)
            if name in VAL_NAMES:
                per_atom_sq.append(((predicted - truth) ** 2).mean(1))
                per_atom_rel.append(np.linalg.norm(predicted - truth, axis=1) / np.linalg.norm(truth, axis=1))
                per_structure[name] = {"density": densities[name], "rel_l2_mean_spectrum": rel(means_pred[name],
                                       means_true[name])}  # fmt: skip
        # density groups from the TRAINING structures' DFT spectra
        groups = {}
        for d in (1.5, 2.5, 3.5):
            members = [dataset.names[k] for k in amorphous if densities[dataset.names[k]] == d
                       and dataset.names[k] in train_names]  # fmt: skip
            groups[d] = np.mean([means_true[n] for n in members], axis=0)
        spread = {f"{a}-{b}": rel(groups[a], groups[b]) for a, b in ((1.5, 2.5), (2.5, 3.5), (1.5, 3.5))}
        all_groups = {}
        for d in (1.5, 2.0, 2.5, 3.0, 3.5):
            members = [dataset.names[k] for k in amorphous if densities[dataset.names[k]] == d
                       and dataset.names[k] in train_names]  # fmt: skip
            if members:
                all_groups[d] = np.mean([means_true[n] for n in members], axis=0)
        for name, entry in per_structure.items():
            distances = {d: rel(means_pred[name], g) for d, g in all_groups.items()}
            entry["nearest_training_density"] = min(distances, key=distances.get)
            entry["rel_l2_to_own_density_group_dft"] = rel(means_true[name], all_groups[entry["density"]])
        errors = [e["rel_l2_mean_spectrum"] for e in per_structure.values()]
        out["checkpoints"][str(path)] = {
            "train_seconds": meta["training"].get("train_seconds"),
            "steps": meta["training"].get("steps"),
            "per_atom_rmse": float(np.sqrt(np.concatenate(per_atom_sq).mean())),
            "per_atom_rel_l2_mean": float(np.concatenate(per_atom_rel).mean()),
            "per_atom_rel_l2_median": float(np.median(np.concatenate(per_atom_rel))),
            "structure_rel_l2_mean": float(np.mean(errors)),
            "structure_rel_l2_max": float(np.max(errors)),
            "per_structure": per_structure,
            "density_group_spread_rel_l2": spread,
            "crystals_rel_l2_mean_spectrum (trained on)": {
                n: rel(means_pred[n], means_true[n]) for n in ("diamond", "graphite")
            },  # fmt: skip
            "curve": curve(Path(path)),
        }
        entry = out["checkpoints"][str(path)]
        print(f"{path}: {entry['steps']} steps, {entry['train_seconds']} s; "
              f"per-atom RMSE {entry['per_atom_rmse']:.4f}, "
              f"per-atom rel L2 {entry['per_atom_rel_l2_mean']:.3f}; structure-mean rel L2 "
              f"{entry['structure_rel_l2_mean']:.4f} (max {entry['structure_rel_l2_max']:.4f}); density spread "
              + ", ".join(f"{k}: {v:.3f}" for k, v in spread.items()))  # fmt: skip
        for name, e in per_structure.items():
            print(f"  {name} ({e['density']} g/cm³): rel L2 {e['rel_l2_mean_spectrum']:.4f}, nearest group "
                  f"{e['nearest_training_density']}")  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for path, entry in out["checkpoints"].items():
        rows = entry["curve"]
        if rows:
            label = f"{Path(path).stem} ({entry['train_seconds']:.0f} s)"
            axes[0].plot([r["step"] for r in rows], [r["val/rel_l2_structure"] for r in rows], label=label)
            axes[1].plot([r["step"] for r in rows], [r["val/rel_l2_atom"] for r in rows], label=label)
    spread_min = min(out["checkpoints"][next(iter(out["checkpoints"]))]["density_group_spread_rel_l2"].values())
    axes[0].axhline(spread_min, color="k", ls="--", label="smallest spread between 1.5/2.5/3.5 means")
    for ax, title in zip(axes, ("structure-mean spectrum, rel. L2", "per-atom spectrum, rel. L2")):
        ax.set_xlabel("training step")
        ax.set_yscale("log")
        ax.set_title(f"validation: {title}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{args.name}.png", dpi=120)
    print(f"wrote {RESULTS / (args.name + '.json')} and .png")


def score(checkpoint: Path) -> dict:
    """Held-out errors of ``checkpoint`` on its amorphous validation cells, beside the two trivial baselines."""
    from specguide.pretrained import load_surrogate
    from specguide.training.surrogate import spectrum_baselines

    dataset = load_data()
    network, meta = load_surrogate(checkpoint)
    amorphous = [n for n in dataset.names if n.startswith("d")]
    held = [dataset.names.index(n) for n in meta["data"]["val_names"] if n in amorphous]
    train = [dataset.names.index(n) for n in meta["data"]["train_names"] if n in amorphous]
    atom, structure = [], []
    for k in held:
        predicted = predict(network, dataset.structures[k])[dataset.sites[k]]
        truth = np.asarray(dataset.spectra[k], dtype=np.float64)
        atom.append(np.linalg.norm(predicted - truth, axis=1) / np.linalg.norm(truth, axis=1))
        structure.append(rel(predicted.mean(0), truth.mean(0)))
    baselines = spectrum_baselines(dataset, train, held)
    out = {
        "held_out": [dataset.names[k] for k in held],
        "rel_l2_atom": float(np.concatenate(atom).mean()),
        "rel_l2_structure": float(np.mean(structure)),
        "cn_lookup_rel_l2_atom": baselines["cn_lookup_rel_l2_atom"],
        "density_mean_rel_l2_structure": baselines["density_mean_rel_l2_structure"],
        "training": {k: meta["training"].get(k) for k in ("steps", "epochs", "train_seconds")},
    }
    out["ratio_atom_over_cn_lookup"] = out["rel_l2_atom"] / out["cn_lookup_rel_l2_atom"]
    out["ratio_structure_over_density_mean"] = out["rel_l2_structure"] / out["density_mean_rel_l2_structure"]
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--minutes", type=float, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from the Lightning state next to --out")
    p = sub.add_parser("report")
    p.add_argument("checkpoints", nargs="+", type=Path)
    p.add_argument("--name", default="surrogate_accuracy")
    p = sub.add_parser("score")
    p.add_argument("checkpoint", type=Path)
    args = parser.parse_args(argv)
    if args.command == "score":
        print(json.dumps(score(args.checkpoint), indent=1))
    else:
        train(args) if args.command == "train" else report(args)


if __name__ == "__main__":
    sys.exit(main())
