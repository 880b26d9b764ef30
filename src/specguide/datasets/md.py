"""Melt–quench MD data sets as ``scripts/build_md_datasets.py`` writes them: one ``.npz`` per material and density.

Layout: ``positions [R, N, 3]`` and ``cells [R, 3, 3]`` (Å), ``numbers [N]``, optional per-replica ``replica``,
``seed``, ``split`` (train / test) and ``energy_per_atom`` (eV), and ``metadata`` (JSON: name, potential,
protocol, target density in g/cm³, ...). The bundled sets are found by name through
:func:`specguide.pretrained.load_md_dataset`.
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import numpy as np


def read_md_dataset(path: str | Path, split: str | None = None) -> list[ase.Atoms]:
    """The replicas of an MD set file as periodic ``ase.Atoms``.

    ``split``: None (all), 'train' or 'test' (held-out replicas). ``atoms.info`` gets dataset, replica,
    seed, split, energy_per_atom (eV), density_g_cm3 (the target density) and the set's metadata (potential,
    protocol, ...).
    """
    path = Path(path)
    with np.load(path) as z:
        meta = json.loads(str(z["metadata"]))
        pos, cells, numbers = z["positions"].astype(np.float64), z["cells"].astype(np.float64), z["numbers"]
        per = {k: z[k] for k in ("replica", "seed", "split", "energy_per_atom") if k in z.files}
    frames = []
    for r in range(pos.shape[0]):
        sp = str(per["split"][r]) if "split" in per else "train"
        if split is not None and sp != split:
            continue
        a = ase.Atoms(numbers=numbers, positions=pos[r], cell=cells[r], pbc=True)
        a.info.update({k: v for k, v in meta.items() if k in ("potential", "protocol", "system", "lammps_version")})
        a.info.update(
            dataset=meta.get("name", path.stem),
            density_g_cm3=float(meta.get("target_density_g_cm3", np.nan)),
            split=sp,
            **{k: v[r].item() for k, v in per.items() if k != "split"},
        )
        frames.append(a)
    return frames
