"""The site data set: O K-edge spectra paired with their 3-shell clusters, stored in one compact ``.npz``.

Layout (written by ``scripts/build_site_dataset.py``): ``spectra [n_sites, n_grid]`` float32 (unit area on
``grid``, eV relative to FEFF's Fermi level), ``positions [n_atoms_total, 3]`` float32 (Å, excited atom first
at the origin), ``numbers [n_atoms_total]`` uint8, ``shells [n_atoms_total]`` uint8, ``offsets [n_sites + 1]``,
``material``, ``kind`` (crystal / perturbed / amorphous), ``sigma`` (Å of the thermal perturbation) and
``metadata`` (JSON).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import ase
import numpy as np

from specguide.pretrained import resolve
from specguide.sites.defaults import DEFAULT_SITE_DATA


@dataclass
class SiteDataset:
    """Spectra ``[n, n_grid]`` and clusters (``ase.Atoms``, excited atom first at the origin) of absorbing sites."""

    grid: np.ndarray
    spectra: np.ndarray
    clusters: list[ase.Atoms]
    material: np.ndarray
    kind: np.ndarray
    sigma: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.clusters)

    def subset(self, mask: np.ndarray) -> SiteDataset:
        """The sites where boolean ``mask`` is true."""
        idx = np.flatnonzero(mask)
        return SiteDataset(
            self.grid,
            self.spectra[idx],
            [self.clusters[k] for k in idx],
            self.material[idx],
            self.kind[idx],
            self.sigma[idx],
            self.metadata,
        )

    def save(self, path: str | Path) -> None:
        """Write the compact ``.npz`` (atomically)."""
        from specguide.io import write_atomically

        offsets = np.cumsum([0] + [len(c) for c in self.clusters])
        arrays = dict(
            grid=self.grid.astype(np.float32),
            spectra=self.spectra.astype(np.float32),
            positions=np.concatenate([c.positions for c in self.clusters]).astype(np.float32),
            numbers=np.concatenate([c.numbers for c in self.clusters]).astype(np.uint8),
            shells=np.concatenate([c.arrays["shell"] for c in self.clusters]).astype(np.uint8),
            offsets=offsets.astype(np.int32),
            material=self.material.astype(str),
            kind=self.kind.astype(str),
            sigma=self.sigma.astype(np.float32),
            metadata=np.array(json.dumps(self.metadata)),
        )

        def write(tmp: Path) -> None:
            with tmp.open("wb") as handle:
                np.savez_compressed(handle, **arrays)

        write_atomically(Path(path), write)


def load_site_dataset(path: str | Path | None = None) -> SiteDataset:
    """Load a site data set: a file, or a bundled one by name (default: the bundled ``O-K_SiO``)."""
    path = resolve("site data set", DEFAULT_SITE_DATA if path is None else path)
    with np.load(path) as z:
        off = z["offsets"]
        pos, num, sh = z["positions"].astype(np.float64), z["numbers"].astype(int), z["shells"].astype(int)
        clusters = []
        for a, b in zip(off[:-1], off[1:], strict=True):
            c = ase.Atoms(numbers=num[a:b], positions=pos[a:b], pbc=False)
            c.arrays["shell"] = sh[a:b]
            clusters.append(c)
        return SiteDataset(
            z["grid"].astype(np.float64),
            z["spectra"].astype(np.float32),
            clusters,
            z["material"],
            z["kind"],
            z["sigma"],
            json.loads(str(z["metadata"])),
        )


def split_by_material(
    data: SiteDataset, test_materials: list[str], kinds: list[str] | None = None
) -> tuple[SiteDataset, SiteDataset]:
    """(train, test): test = sites of ``test_materials``; train = the rest restricted to ``kinds`` (if given).

    Raises ``ValueError`` naming the unknown material when one is not in the data set.
    """
    known = set(data.material.tolist())
    unknown = [m for m in test_materials if m not in known]
    if unknown:
        raise ValueError(f"unknown material(s) {unknown}; the data set has {sorted(known)}")
    is_test = np.isin(data.material, test_materials)
    train_mask = ~is_test
    if kinds is not None:
        train_mask &= np.isin(data.kind, kinds)
    return data.subset(train_mask), data.subset(is_test)
