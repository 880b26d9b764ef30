"""Record in each bundled prior what its training data say about chemistry, and its recommended sampler settings.

    python scripts/annotate_priors.py            # every bundled prior
    python scripts/annotate_priors.py a-SiO2     # one

For each prior in src/specguide/data/defaults/priors/ this reads the training split of the MD data sets it was
trained on (the recipes of scripts/train_default_priors.py), computes their
:class:`specguide.chemistry.Chemistry` (composition, bond cutoffs from the partial g(r), coordination fractions
per density, shortest pair per species pair) and writes it into the checkpoint under ``chemistry``, with the
``quality`` preset under ``sampling`` (see MODELCARD.md for the measurements behind each). The weights are not
touched. New priors get ``chemistry`` from ``train_prior`` itself.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from specguide.analysis.structure import chemistry_of
from specguide.io import write_atomically
from specguide.pretrained import BUNDLED_PRIORS_DIR, bundled_priors

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_default_priors import RECIPES, load_training_structures  # noqa: E402

# the quality preset per prior (MODELCARD.md): four corrector steps and six local restarts from t = 0.3 for a-Si and
# a-C; silica needs sixteen corrector steps (its prior card: 86 % four-fold Si with four, 92.8 % with sixteen) and
# restarts from t = 0.5, where a broken Si–O bond can re-form (docs/benchmarks.md: 91.0 → 92.0 % four-fold Si, no
# pair left closer than the MD's shortest; for a-Si t = 0.5 lowered it, 88.6 → 81.7 % in a guided run)
# a-Si members get twelve restarts: with six, a g(r)-guided 512-atom inversion kept 88.6 % four-fold Si, with twelve
# 91.2 % (bar 90 %; docs/benchmarks.md, seed 0)
QUALITY = {name: {"corrector_steps": 4, "n_restarts": 6, "restart_mode": "local", "t_restart": 0.3} for name in RECIPES}
QUALITY.update({name: {**QUALITY[name], "n_restarts": 12} for name in RECIPES if name.startswith("a-Si")})
QUALITY["a-SiO2"] = {"corrector_steps": 16, "n_restarts": 6, "restart_mode": "local", "t_restart": 0.5}
# a-Si-all serves 3.5 g/cm³, whose MD phase is 9–10-fold: restarts thin classes towards those fractions too


def annotate(name: str) -> dict:
    """Write ``chemistry`` and ``sampling`` into the bundled prior ``name``; returns the chemistry."""
    sources, _, _ = RECIPES[name]
    structures = [atoms for source in sources for atoms in load_training_structures(source)]
    chemistry = chemistry_of(structures, source=f"training split of {', '.join(sources)} ({len(structures)} cells)")
    path = BUNDLED_PRIORS_DIR / f"{name}.pt"
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["chemistry"] = chemistry.to_dict()
    payload["sampling"] = {"quality": QUALITY[name]}
    write_atomically(path, lambda tmp: torch.save(payload, tmp))
    return chemistry.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", default=bundled_priors())
    args = parser.parse_args()
    for name in args.names:
        chemistry = annotate(name)
        print(f"{name}: composition {chemistry['composition']}, bonds {chemistry['bond_cutoffs']}, "
              f"shortest {chemistry['shortest']}")  # fmt: skip


if __name__ == "__main__":
    main()
