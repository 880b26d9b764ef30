"""Train the bundled default priors on the bundled MD data sets (training replicas only).

    python scripts/train_default_priors.py a-Si [--minutes 20] [--seed 0]

Writes src/specguide/data/defaults/priors/<name>.pt and appends the training record to
src/specguide/data/defaults/priors/MODELCARD.md's source table (data, hyperparameters, training time).
The held-out replicas (split == 'test') stay out of training so examples and tests can use them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import ase.io
import torch

from specguide.models.schedule import T_MAX, T_MIN
from specguide.models.score import ScoreNetworkConfig
from specguide.pretrained import load_md_dataset, load_prior
from specguide.training.prior import train_prior

PRIORS_DIR = Path(__file__).resolve().parents[1] / "src" / "specguide" / "data" / "defaults" / "priors"

# name -> (data sets, atomic numbers, cutoff Å). The cutoff reaches just past the second neighbour shell
# (a-C: 2.5 Å, a-Si: 3.84 Å), the scale the score needs to see bond angles.
RECIPES = {
    "a-Si": (["a-Si_2.5"], (14,), 4.2),
    # every bundled a-Si density (1.5-3.5 g/cm³): the prior for inversions away from 2.5 g/cm³
    "a-Si-all": (["a-Si_1.5", "a-Si_2.0", "a-Si_2.5", "a-Si_3.0", "a-Si_3.5"], (14,), 4.2),
    # one density each, fine-tuned from a-Si-all (--init-from a-Si-all): the members `--prior a-Si` picks at
    # those densities (see MODELCARD.md; 2.5 g/cm³ is a-Si.pt itself, 3.5 g/cm³ a-Si-all.pt)
    **{f"a-Si@{d}": ([f"a-Si_{d}"], (14,), 4.2) for d in ("1.5", "2.0", "3.0")},
    "a-C": (["a-C_1.5", "a-C_2.0", "a-C_2.5", "a-C_3.0", "a-C_3.5"], (6,), 3.0),
    # silica at 2.2 g/cm³ (Vashishta melt-quench): 4.2 Å reaches past Si–Si (3.1 Å) and the second Si–O shell
    # with the training-only replicas of a-SiO2_2.2_extra (issue 33: more data); the bundled file's first two stages
    # were trained on a-SiO2_2.2 alone (recipe a-SiO2-first; MODELCARD.md gives the commands)
    "a-SiO2": (["a-SiO2_2.2", "a-SiO2_2.2_extra"], (8, 14), 4.2),
    "a-SiO2-first": (["a-SiO2_2.2"], (8, 14), 4.2),
    # Cu–Zr metallic glass, both compositions quenched at 100 K/ps (Mendelev EAM): 4.5 Å reaches past the first shell
    # of every pair (first minima Cu–Cu ~3.3, Cu–Zr ~3.6, Zr–Zr ~4.2 Å), the scale of the icosahedra around Cu
    "a-CuZr": (["Cu64Zr36_q100", "Cu50Zr50_q100"], (29, 40), 4.5),
    # Kwon et al.'s 25 DFT-MD a-C cells from ../shared (a reference prior for tests and benchmarks; never
    # bundled, since the data stay outside the repository)
    "a-C-kwon": (["shared:data/a-C-xanes-dft/structures/d[0-9]*.vasp"], (6,), 3.0),
}
SHARED_DIR = Path(__file__).resolve().parents[2] / "shared"


def load_training_structures(source: str) -> list:
    """A bundled MD data set's training split, or ``shared:GLOB`` files from ../shared."""
    if source.startswith("shared:"):
        paths = sorted(SHARED_DIR.glob(source.removeprefix("shared:")))
        if not paths:
            raise SystemExit(f"no files match {source} under {SHARED_DIR}")
        return [ase.io.read(p, format="vasp") for p in paths]
    return load_md_dataset(source, split="train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--resume", action="store_true", help="continue from the training state beside --out")
    parser.add_argument("--init-from", default=None, help="start from this prior's weights (fresh optimizer)")
    parser.add_argument("--lr", type=float, default=1e-3, help="RAdam learning rate")
    parser.add_argument("--t-range", type=float, nargs=2, default=[T_MIN, T_MAX], metavar=("LO", "HI"),
                        help="draw training diffusion times from [LO, HI] only (default: the full range)")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    datasets, species, cutoff = RECIPES[args.name]
    structures = [a for d in datasets for a in load_training_structures(d)]
    config = ScoreNetworkConfig(species=species, cutoff=cutoff)
    out = args.out or PRIORS_DIR / f"{args.name}.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    train_prior(
        structures,
        out,
        max_time_minutes=args.minutes,
        seed=args.seed,
        config=config,
        progress=False,
        resume=args.resume,
        init_from=args.init_from,
        lr=args.lr,
        t_range=tuple(args.t_range),
    )
    _, meta = load_prior(out)
    record = dict(
        name=args.name,
        datasets=datasets,
        n_structures=len(structures),
        seed=args.seed,
        init_from=args.init_from,
        lr=args.lr,
        t_range=args.t_range,
        wall_minutes=round((time.time() - start) / 60, 1),
        config=config.to_dict(),
        training=meta.get("training"),
        data=meta.get("data"),
    )
    print(json.dumps(record, indent=2, default=str))


if __name__ == "__main__":
    main()
