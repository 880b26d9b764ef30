"""Build the bundled C K-edge XANES data set (src/specguide/data/defaults/surrogates/C-K_XANES_data.npz).

Structures:
- ``md``: the TRAINING replicas (split='train') of the bundled a-C MD sets at 1.5, 2.0, 2.5, 3.0, 3.5 g/cm³
  (216 atoms, Tersoff melt-quench; md/DATACARD.md), taken replica by replica over all densities, so that a
  run stopped early (``--replicas``) still covers every density;
- ``crystal``: diamond (a = 3.567 Å, 64 atoms) and graphite (a = 2.464, c = 6.711 Å, 96 atoms), each perfect
  (one site: every site is equivalent) and rattled (Gaussian 0.1 Å, ``--crystal-sites`` sites; two seeds).

Per a-C structure ``--sites`` random C sites (seeded by ``--seed`` and the structure's index) get FEFF10 C
K-edge XANES (``specguide.data.feff.site_spectra`` with ``FAST_SETTINGS``: SCF 3.5 Å, FMS 4.5 Å, FSR core
hole, 6 Å cluster), normalised mu(E) on XANES_GRID_EV (−10…40 eV relative to FEFF's Fermi level, 100
points). Every FEFF run is cached in ``--cache`` (resumable; rerun with a larger ``--replicas`` to add data);
timings of new runs go to ``<cache>/timings.json``. One worker per core you own, under nice:

    nice -n 10 python scripts/build_carbon_xanes_dataset.py --cache /work/scratch/feff-c --workers 2 --replicas 10
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase  # noqa: E402
import ase.build  # noqa: E402
import numpy as np  # noqa: E402
from ase.lattice.hexagonal import Graphite  # noqa: E402

from specguide.datasets.spectra import save_spectra_bundle  # noqa: E402
from specguide.executors import ExecutorConfig  # noqa: E402
from specguide.pretrained import (
    default_surrogates_dir,  # noqa: E402
    load_md_dataset,  # noqa: E402
)
from specguide.simulate.feff import FAST_SETTINGS, XANES_GRID_EV, append_timings, site_spectra  # noqa: E402

DENSITIES = (1.5, 2.0, 2.5, 3.0, 3.5)
RATTLE = 0.1  # Å


def crystals(seed: int) -> list[tuple[str, ase.Atoms]]:
    """Diamond and graphite, perfect and rattled (two seeds each)."""
    diamond = ase.build.bulk("C", "diamond", a=3.567, cubic=True).repeat(2)
    graphite = Graphite("C", latticeconstant={"a": 2.464, "c": 6.711}, size=(4, 3, 1))
    graphite = ase.Atoms(graphite)  # plain Atoms: orthogonalisable hexagonal cell, 4 x 3 x 1 cells, 48 atoms
    graphite = graphite.repeat((1, 1, 2))
    out = []
    for name, atoms in (("diamond", diamond), ("graphite", graphite)):
        atoms.pbc = True
        out.append((name, atoms))
        for k in range(2):
            rattled = atoms.copy()
            rattled.rattle(RATTLE, seed=seed + 100 * k + (0 if name == "diamond" else 1))
            out.append((f"{name}_rattled{k}", rattled))
    return out


def choose_sites(n_atoms: int, k: int, seed: int, index: int) -> np.ndarray:
    return np.sort(np.random.default_rng([seed, index]).choice(n_atoms, size=min(k, n_atoms), replace=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=default_surrogates_dir() / "C-K_XANES_data.npz")
    parser.add_argument("--cache", type=Path, default=Path("feff-cache"))
    parser.add_argument("--replicas", type=int, default=10, help="training replicas per density (≤ 10)")
    parser.add_argument("--sites", type=int, default=8, help="FEFF sites per a-C structure")
    parser.add_argument("--crystal-sites", type=int, default=4, help="FEFF sites per rattled crystal")
    parser.add_argument("--workers", type=int, default=1, help="local processes (or the workers of --executor)")
    parser.add_argument("--executor", default="local", help="local, dask, slurm, pbs, sge, lsf (docs/cluster.md)")
    parser.add_argument("--scheduler", default=None, help="a running Dask scheduler's address (implies dask)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    timings: list[dict] = []
    t_start = time.perf_counter()

    structures, names, categories, densities, sites = [], [], [], [], []
    for name, atoms in crystals(args.seed):
        structures.append(atoms)
        names.append(name)
        categories.append("crystal")
        densities.append(float(atoms.get_masses().sum() / atoms.get_volume() / 0.602214))
        n = 1 if "rattled" not in name else args.crystal_sites
        sites.append(choose_sites(len(atoms), n, args.seed, len(structures) - 1))
    replicas = {d: load_md_dataset(f"a-C_{d}", split="train") for d in DENSITIES}
    for r in range(args.replicas):
        for density in DENSITIES:
            atoms = replicas[density][r]
            structures.append(atoms)
            names.append(f"a-C_{density}_r{atoms.info['replica']}")
            categories.append("md")
            densities.append(density)
            sites.append(choose_sites(len(atoms), args.sites, args.seed, len(structures) - 1))

    executor = ExecutorConfig.from_cli(args.executor, args.scheduler, args.workers)
    spectra = site_spectra(structures, sites, absorber="C", kind="xanes", settings=FAST_SETTINGS,
                           executor=executor, cache_dir=args.cache, timings=timings)  # fmt: skip
    save_spectra_bundle(
        args.out, structures, spectra, sites, names, XANES_GRID_EV,
        category=np.array(categories),
        density_g_cm3=np.array(densities, np.float32),
        metadata=json.dumps(
            dict(
                kind="xanes",
                absorber="C",
                quantity="normalised mu(E) on E - E_F in eV (FEFF's Fermi level)",
                feff_settings=FAST_SETTINGS.__dict__ | {"cluster_radius": 6.0},
                seed=args.seed,
                executor=executor.to_dict(),
                sites_per_structure=args.sites,
                crystal_rattle_A=RATTLE,
            )
        ),
    )  # fmt: skip
    print(f"wrote {args.out}: {len(structures)} structures, {sum(len(s) for s in sites)} sites")
    print(append_timings(args.cache, timings) + f"; total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
