"""Build the bundled Si K-edge EXAFS data set and held-out targets (src/specguide/data/defaults/surrogates/).

Structures (216 Si atoms, cubic cells):
- ``md``: the TRAINING replicas (split='train') of the bundled a-Si MD sets at 1.5, 2.0, 2.5, 3.0, 3.5 g/cm³;
- ``liquid``: LAMMPS Tersoff snapshots of liquid Si (``melt_quench`` stopped after the melt: random start,
  minimisation, ``--liquid-ps`` ps NVT at ``--liquid-K`` K, no quench, no final minimisation) at 2.0, 2.5, 3.0 g/cm³;
- ``random``: random sequential addition with a 2.0 Å minimum distance at 2.0, 2.5, 3.0 g/cm³ (as GLASS).
Per structure, ``--sites`` random Si sites (seeded by ``--seed`` and the structure's index) get FEFF10 K-edge
EXAFS (``specguide.data.feff.site_spectra``, default settings: 6 Å cluster, RPATH 5 Å, NLEG 4, no σ²),
k²χ(k) on EXAFS_GRID_K (2…12 Å⁻¹, 0.05). The data go to ``Si-K_EXAFS_data.npz`` (float32; positions, cells,
per-row spectra with their structure and site index; see ``specguide.data.spectra.load_spectra_bundle``).

Targets: the structure-averaged EXAFS of ONE held-out (split='test') replica of a-Si at 2.5 and at 3.0 g/cm³,
estimated as the mean over ``--target-sites`` random Si sites (an unbiased estimate of the all-site mean),
written as two columns (k in Å⁻¹, k²χ in Å⁻²) to ``a-Si_<density>_test0_exafs.dat``.

Every FEFF run is cached in ``--cache`` (resumable); timings of new runs go to ``<cache>/timings.json``. Run
under nice, one worker per core you own:
    nice -n 10 python scripts/build_surrogate_dataset.py --cache /work/runs/i6b/feff-cache --workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase  # noqa: E402
import numpy as np  # noqa: E402

from specguide.datasets.spectra import save_spectra_bundle  # noqa: E402
from specguide.io import read_extxyz, write_extxyz
from specguide.pretrained import (
    default_surrogates_dir,  # noqa: E402
    load_md_dataset,
)
from specguide.simulate.feff import DEFAULT_SETTINGS, EXAFS_GRID_K, append_timings, site_spectra  # noqa: E402
from specguide.simulate.lammps import MeltQuenchProtocol, melt_quench, random_positions, replica_seeds
from specguide.structure import cubic_cell_length

MD_DENSITIES = (1.5, 2.0, 2.5, 3.0, 3.5)
EXTRA_DENSITIES = (2.0, 2.5, 3.0)
TARGET_DENSITIES = (2.5, 3.0)
N_ATOMS = 216


def liquid(density: float, seed: int, temperature: float, time_ps: float, cache: Path) -> ase.Atoms:
    """A liquid-Si snapshot (Tersoff, NVT at ``temperature`` K for ``time_ps`` ps from a random start); cached."""
    path = cache / f"liquid_{density:g}_{seed}_{temperature:g}K_{time_ps:g}ps.extxyz"
    if path.is_file():
        return read_extxyz(path)[0]
    protocol = MeltQuenchProtocol(
        melt_temperature=temperature,
        melt_time=time_ps,
        quench_temperature=temperature,  # quench time 0
        anneal_time=0.0,
        minimize_final=False,
    )
    atoms = melt_quench("Si", density_g_cm3=density, n_atoms=N_ATOMS, seed=seed, protocol=protocol)
    write_extxyz(path, atoms)
    return atoms


def random_structure(density: float, seed: int, d_min: float = 2.0) -> ase.Atoms:
    """216 Si at random positions in a periodic cube at ``density`` g/cm³, no pair closer than ``d_min`` Å."""
    length = cubic_cell_length({"Si": N_ATOMS}, density)
    pos, used = random_positions(N_ATOMS, length, d_min, np.random.default_rng(seed))
    atoms = ase.Atoms(f"Si{N_ATOMS}", positions=pos, cell=[length] * 3, pbc=True)
    atoms.info.update(min_separation=used)
    return atoms


def choose_sites(n_atoms: int, k: int, seed: int, index: int) -> np.ndarray:
    return np.sort(np.random.default_rng([seed, index]).choice(n_atoms, size=k, replace=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=default_surrogates_dir())
    parser.add_argument("--cache", type=Path, default=Path("feff-cache"))
    parser.add_argument("--sites", type=int, default=16, help="FEFF sites per training structure")
    parser.add_argument("--target-sites", type=int, default=64, help="FEFF sites averaged for each target")
    parser.add_argument("--liquid-per-density", type=int, default=3)
    parser.add_argument("--random-per-density", type=int, default=2)
    parser.add_argument("--liquid-K", type=float, default=3500.0)
    parser.add_argument("--liquid-ps", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("all", "targets", "data"), default="all")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    timings: list[dict] = []
    t_start = time.perf_counter()

    def feff(structures, sites):
        return site_spectra(
            structures, sites, absorber="Si", kind="exafs", workers=args.workers, cache_dir=args.cache, timings=timings
        )

    if args.only in ("all", "targets"):
        for density in TARGET_DENSITIES:
            atoms = load_md_dataset(f"a-Si_{density}", split="test")[0]
            sites = choose_sites(len(atoms), args.target_sites, args.seed + 1000, int(atoms.info["replica"]))
            (spectra,) = feff([atoms], [sites])
            path = args.out_dir / f"a-Si_{density}_test0_exafs.dat"
            header = (
                f"Si K-edge EXAFS k^2 chi(k) (FEFF10, specguide.data.feff default settings) of a-Si_{density} "
                f"test replica {atoms.info['replica']}: mean over {len(sites)} random Si sites (seed "
                f"{args.seed + 1000}) of 216\nk (A^-1)  k^2 chi (A^-2)"
            )
            np.savetxt(path, np.column_stack([EXAFS_GRID_K, spectra.mean(0)]), fmt="%.6g", header=header)
            print(f"wrote {path}")

    if args.only in ("all", "data"):
        structures, names, categories, densities = [], [], [], []
        for density in MD_DENSITIES:
            for atoms in load_md_dataset(f"a-Si_{density}", split="train"):
                structures.append(atoms)
                names.append(f"a-Si_{density}_r{atoms.info['replica']}")
                categories.append("md")
                densities.append(density)
        for density in EXTRA_DENSITIES:
            for i, s in enumerate(replica_seeds(args.seed + 17, args.liquid_per_density)):
                structures.append(liquid(density, s, args.liquid_K, args.liquid_ps, args.cache))
                names.append(f"liquid_{density}_{i}")
                categories.append("liquid")
                densities.append(density)
            for i, s in enumerate(replica_seeds(args.seed + 29, args.random_per_density)):
                structures.append(random_structure(density, s))
                names.append(f"random_{density}_{i}")
                categories.append("random")
                densities.append(density)
        sites = [choose_sites(len(a), args.sites, args.seed, i) for i, a in enumerate(structures)]
        spectra = feff(structures, sites)
        save_spectra_bundle(
            args.out_dir / "Si-K_EXAFS_data.npz", structures, spectra, sites, names, EXAFS_GRID_K,
            category=np.array(categories),
            density_g_cm3=np.array(densities, np.float32),
            metadata=json.dumps(
                dict(
                    kind="exafs",
                    absorber="Si",
                    quantity="k^2 chi(k) in A^-2 on k in A^-1",
                    feff_settings=DEFAULT_SETTINGS.__dict__ | {"cluster_radius": 6.0},
                    seed=args.seed,
                    sites_per_structure=args.sites,
                    liquid=dict(temperature_K=args.liquid_K, time_ps=args.liquid_ps, potential="Tersoff"),
                    random_min_separation_A=2.0,
                )
            ),
        )  # fmt: skip
        rows = sum(len(s) for s in sites)
        print(f"wrote {args.out_dir / 'Si-K_EXAFS_data.npz'}: {len(structures)} structures, {rows} sites")

    print(append_timings(args.cache, timings) + f"; total {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
