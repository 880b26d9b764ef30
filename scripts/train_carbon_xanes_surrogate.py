"""Train the bundled C K-edge XANES surrogate (src/specguide/data/defaults/surrogates/C-K_XANES.pt).

Data: C-K_XANES_data.npz (scripts/build_carbon_xanes_dataset.py): FEFF10 spectra of a-C sites at 1.5–3.5 g/cm³
and of diamond and graphite. Validation by structure (never trained on): the LAST a-C replica of each density in
the data set, and one rattled diamond and one rattled graphite. After training, measures on the validation
structures the per-atom and structure-mean relative L2 errors next to the coordination-lookup and density-group
baselines (``spectrum_baselines``), per density, and writes them to ``<out>.json`` (next to the checkpoint).

    # the bundled checkpoint and its comparison: both for 12 minutes, one thread each, side by side
    python scripts/train_carbon_xanes_surrogate.py --minutes 12 --threads 1 --out angular.pt
    python scripts/train_carbon_xanes_surrogate.py --minutes 12 --threads 1 --angular-channels 0 --out distance.pt
    python scripts/train_carbon_xanes_surrogate.py --evaluate-only          # the bundled checkpoint
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from specguide.datasets.spectra import load_spectra_bundle  # noqa: E402
from specguide.graph import batch_from_atoms  # noqa: E402
from specguide.models.surrogate import SurrogateConfig  # noqa: E402
from specguide.pretrained import default_surrogates_dir, load_surrogate  # noqa: E402
from specguide.structure import density_g_cm3  # noqa: E402
from specguide.training.surrogate import site_coordination, spectrum_baselines, train_surrogate  # noqa: E402

DATA = default_surrogates_dir() / "C-K_XANES_data.npz"


def _relative_l2(predicted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """‖predicted − truth‖ / ‖truth‖ along the last axis."""
    return np.linalg.norm(predicted - truth, axis=-1) / np.linalg.norm(truth, axis=-1)


def validation_names(names: list[str]) -> list[str]:
    """The last a-C replica of each density present, and the second rattled copy of each crystal."""
    last: dict[str, tuple[int, str]] = {}
    for name in names:
        if name.startswith("a-C_"):
            density, replica = name[4:].split("_r")
            if density not in last or int(replica) > last[density][0]:
                last[density] = (int(replica), name)
    crystals = [n for n in names if n.endswith("_rattled1")]
    return [last[d][1] for d in sorted(last, key=float)] + crystals


def config(angular_channels: int) -> SurrogateConfig:
    """3 Å cutoff (second neighbours of carbon), 16 radial functions, 4 layers; angular invariants up to l = 3."""
    return SurrogateConfig(species=(6,), n_grid=100, hidden=64, n_layers=4, cutoff=3.0, n_rbf=16,
                           angular_channels=angular_channels, l_max=3)  # fmt: skip


def evaluate(checkpoint: Path, data: Path) -> dict:
    """Held-out errors (per atom and structure mean, by density and for the crystals) beside the baselines."""
    dataset = load_spectra_bundle(data)
    net, meta = load_surrogate(checkpoint)
    val = meta["data"]["val_names"]
    train = [dataset.names.index(n) for n in meta["data"]["train_names"]]
    held = [dataset.names.index(n) for n in val]
    out: dict = {"per_structure": {}}
    atom_errors = []
    for name, k in zip(val, held, strict=True):
        atoms, truth, sites = dataset.structures[k], dataset.spectra[k].astype(float), dataset.sites[k]
        with torch.no_grad():
            predicted = net(*batch_from_atoms([atoms], dtype=torch.float32)).double().numpy()[sites]
        atom = _relative_l2(predicted, truth)
        atom_errors.append(atom)
        alone = spectrum_baselines(dataset, train, [k])
        out["per_structure"][name] = {
            "density_g_cm3": round(density_g_cm3(atoms), 3),
            "sites": len(sites),
            "coordination_of_sites": np.bincount(site_coordination(dataset, k), minlength=6).tolist(),
            "rel_l2_atom": float(atom.mean()),
            "rel_l2_structure": float(_relative_l2(predicted.mean(0), truth.mean(0))),
            "cn_lookup_rel_l2_atom": alone["cn_lookup_rel_l2_atom"],
            "density_mean_rel_l2_structure": alone["density_mean_rel_l2_structure"],
        }
    amorphous = [v for n, v in out["per_structure"].items() if n.startswith("a-C_")]
    baselines = spectrum_baselines(dataset, train, [dataset.names.index(n) for n in val if n.startswith("a-C_")])
    out["amorphous"] = {
        "rel_l2_atom": float(np.concatenate([e for n, e in zip(val, atom_errors) if n.startswith("a-C_")]).mean()),
        "rel_l2_structure": float(np.mean([v["rel_l2_structure"] for v in amorphous])),
        "cn_lookup_rel_l2_atom": baselines["cn_lookup_rel_l2_atom"],
        "density_mean_rel_l2_structure": baselines["density_mean_rel_l2_structure"],
        "training_mean_rel_l2_atom": baselines["training_mean_rel_l2_atom"],
    }
    a = out["amorphous"]
    a["ratio_atom_over_cn_lookup"] = a["rel_l2_atom"] / a["cn_lookup_rel_l2_atom"]
    a["ratio_structure_over_density_mean"] = a["rel_l2_structure"] / a["density_mean_rel_l2_structure"]
    everything = spectrum_baselines(dataset, train, held)
    out["all"] = {
        "rel_l2_atom": float(np.concatenate(atom_errors).mean()),
        "rel_l2_structure": float(np.mean([v["rel_l2_structure"] for v in out["per_structure"].values()])),
        **{k: everything[k] for k in ("cn_lookup_rel_l2_atom", "density_mean_rel_l2_structure")},
    }
    out["training"] = {k: meta["training"].get(k) for k in ("steps", "epochs", "train_seconds", "validation")}
    out["network"] = meta["network"]
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=default_surrogates_dir() / "C-K_XANES.pt")
    parser.add_argument("--minutes", type=float, default=12.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--angular-channels", type=int, default=16)
    parser.add_argument("--evaluate-only", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not args.evaluate_only:
        dataset = load_spectra_bundle(args.data)
        train_surrogate(dataset, args.out, kind="xanes", absorber="C", config=config(args.angular_channels),
                        max_time_minutes=args.minutes, seed=args.seed, batch_size=4, lr=args.lr,
                        val_names=validation_names(dataset.names), noise_max=0.8, lr_schedule="cosine",
                        val_every_n_steps=200, progress=False, grid_unit="eV",
                        quantity="normalised μ(E), E − E_F (FEFF)")  # fmt: skip
    result = evaluate(args.out, args.data)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_structure", "network")}, indent=1))
    return result


if __name__ == "__main__":
    main()
