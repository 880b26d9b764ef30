"""Build the bundled O K-edge site data set (src/specguide/data/defaults/sites/O-K_SiO.npz).

Sites: the symmetry-unique O of every validated Si–O crystal (specguide.sites.crystals), O sites of thermally
perturbed supercells (Gaussian displacements, sigma 0.05–0.1 Å), and O sites of the a-SiO2 2.2 g/cm³ MD set.
Spectra: FEFF10 XANES via specguide.data.feff.site_spectra with cheap settings (no SCF, FMS 4 Å, 5 Å cluster;
measured ~3 s CPU per site), interpolated on -1..19 eV (200 points) relative to FEFF's Fermi level and
normalised to unit area. Every FEFF run is cached in --cache (resumable). Run under nice:
    nice -n 10 python scripts/build_site_dataset.py --cache /work/runs/i8/feff-cache

--append-md FILE --label NAME adds O sites of another structure set (extxyz, e.g. an SiOx melt-quench from
`specguide md melt-quench`) to the existing data set at --out as kind 'amorphous', leaving its sites as they are:
    specguide md melt-quench --composition Si2O --atoms 216 --density 2.25 --potential SiO.tersoff --out md-SiO0.5
    python scripts/build_site_dataset.py --append-md md-SiO0.5/structures.extxyz --label a-SiO0.5_2.25

--append-crystals NAME [NAME ...] adds the unique and perturbed O sites of phases of specguide.sites.crystals
or silicates of specguide.sites.silicates that are not yet in the data set (same recipe as the full build, own
--seed), leaving its sites as they are:
    python scripts/build_site_dataset.py --append-crystals coesite seifertite --seed 1 --cache feff-cache
    python scripts/build_site_dataset.py --append-crystals forsterite enstatite --seed 2 --cache feff-cache
The full build takes the pure SiO2 phases only. --cluster-species O Si keeps only the O whose 3-shell cluster
holds O and Si alone (the species the site model has): in silicates, O bonded within 2.0 Å to Al, H or a
short-bonded Mg/Fe are left out, and phases with no such O are skipped with a message.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import ase  # noqa: E402
import ase.io  # noqa: E402
import numpy as np  # noqa: E402

from specguide.pretrained import (
    default_sites_dir,  # noqa: E402
    load_md_dataset,  # noqa: E402
)
from specguide.simulate.feff import FeffSettings, site_spectra  # noqa: E402
from specguide.sites.clusters import site_cluster, sites_with_cluster_species, unique_sites  # noqa: E402
from specguide.sites.crystals import PHASES, build_phase, validate_silica  # noqa: E402
from specguide.sites.dataset import SiteDataset, load_site_dataset  # noqa: E402
from specguide.sites.silicates import SILICATES, build_silicate, validate_silicate  # noqa: E402

GRID = np.linspace(-1.0, 19.0, 200)
SETTINGS = FeffSettings(xanes_scf_radius=None, xanes_fms_radius=4.0)
CLUSTER_RADIUS = 5.0


def supercell(atoms: ase.Atoms, min_width: float = 9.0) -> ase.Atoms:
    """Repeat ``atoms`` until every perpendicular cell width is ≥ ``min_width`` Å."""
    widths = atoms.get_volume() / np.linalg.norm(np.cross(atoms.cell[[1, 2, 0]], atoms.cell[[2, 0, 1]]), axis=1)
    reps = np.maximum(1, np.ceil(min_width / widths)).astype(int)
    big = atoms.repeat(tuple(reps))
    big.arrays.pop("spacegroup_kinds", None)
    return big


def pick_oxygens(
    frames: list[ase.Atoms], n_sites: int, rng: np.random.Generator
) -> tuple[list[ase.Atoms], list[list[int]]]:
    """``n_sites`` random O sites spread evenly over ``frames`` (at least one per frame)."""
    per_frame = max(1, n_sites // len(frames))
    chosen = [np.sort(rng.choice(np.flatnonzero(f.numbers == 8), per_frame, replace=False)).tolist() for f in frames]
    return list(frames), chosen


def spectra_and_clusters(
    structures: list[ase.Atoms], sites: list[list[int]], args: argparse.Namespace
) -> tuple[np.ndarray, list[ase.Atoms], list[dict], float]:
    """Unit-area FEFF spectra on GRID ``[n_sites, 200]``, the 3-shell clusters, FEFF timings, wall seconds."""
    timings: list[dict] = []
    start = time.time()
    spectra = site_spectra(
        structures,
        sites,
        absorber="O",
        kind="xanes",
        grid=GRID,
        cluster_radius=CLUSTER_RADIUS,
        workers=args.workers,
        cache_dir=args.cache,
        settings=SETTINGS,
        timings=timings,
    )
    wall = time.time() - start
    spec = np.clip(np.concatenate(spectra).astype(np.float64), 0.0, None)
    spec /= np.trapezoid(spec, GRID, axis=1)[:, None]  # unit area on the grid
    clusters = [site_cluster(a, s) for a, ss in zip(structures, sites, strict=True) for s in ss]
    return spec, clusters, timings, wall


def validated_crystal(name: str) -> ase.Atoms:
    """The conventional cell of a SiO2 phase (``PHASES``) or silicate (``SILICATES``) that passes its validation."""
    if name in PHASES:
        atoms = build_phase(name)
        ok = validate_silica(atoms, PHASES[name])["ok"]
    else:
        atoms = build_silicate(name)
        ok = validate_silicate(atoms, SILICATES[name])["ok"]
    if not ok:
        raise SystemExit(f"{name} fails its structure validation; see specguide.sites.crystals / silicates")
    return atoms


def crystal_sites(
    names: list[str], args: argparse.Namespace, rng: np.random.Generator
) -> tuple[list[ase.Atoms], list[list[int]], list[tuple[str, str, float]]]:
    """Structures, O sites and (material, kind, sigma) labels: every symmetry-unique O of each validated phase,
    plus ``--copies`` thermally perturbed supercells (Gaussian sigma 0.05–0.1 Å) with ``--sites-per-copy`` O.
    With ``--cluster-species``, only O whose cluster (in that structure, after perturbation) holds no other
    species are taken; a phase with no such O is skipped with a message."""
    from ase.data import atomic_numbers

    allowed = None if not args.cluster_species else {atomic_numbers[s] for s in args.cluster_species}
    structures, sites, labels = [], [], []
    for name in names:
        atoms = validated_crystal(name)
        all_unique = unique_sites(atoms)
        u = sites_with_cluster_species(atoms, all_unique, allowed).tolist()
        if not u:
            print(f"{name}: no O site whose cluster holds only {args.cluster_species}; skipped")
            continue
        if len(u) < len(all_unique):
            print(f"{name}: {len(u)} of {len(all_unique)} unique O sites have clusters of {args.cluster_species} only")
        structures.append(atoms)
        sites.append(u)
        labels += [(name, "crystal", 0.0)] * len(u)
        big = supercell(atoms)
        for _ in range(args.copies):
            sigma = float(rng.uniform(0.05, 0.1))
            copy = big.copy()
            copy.positions += rng.normal(0.0, sigma, copy.positions.shape)
            oxygens = sites_with_cluster_species(copy, np.flatnonzero(copy.numbers == 8), allowed)
            chosen = np.sort(rng.choice(oxygens, min(args.sites_per_copy, len(oxygens)), replace=False)).tolist()
            structures.append(copy)
            sites.append(chosen)
            labels += [(name, "perturbed", sigma)] * len(chosen)
    return structures, sites, labels


def append_sites(
    args: argparse.Namespace,
    data: SiteDataset,
    structures: list[ase.Atoms],
    sites: list[list[int]],
    labels: list[tuple[str, str, float]],
    record: dict,
) -> None:
    """Compute the spectra and clusters of ``sites``, add them to ``data`` and write it to ``--out`` (atomically)."""
    spec, clusters, timings, wall = spectra_and_clusters(structures, sites, args)
    meta = dict(data.metadata)
    record.update(sites=len(clusters), seed=args.seed, feff_runs_this_call=len(timings))
    meta.setdefault("appended", []).append(dict(record, feff_wall_s_this_call=round(wall, 1)))
    merged = SiteDataset(
        data.grid,
        np.concatenate([data.spectra, spec.astype(np.float32)]),
        data.clusters + clusters,
        np.concatenate([data.material.astype(str), [m for m, _, _ in labels]]),
        np.concatenate([data.kind.astype(str), [k for _, k, _ in labels]]),
        np.concatenate([data.sigma, np.array([s for _, _, s in labels], dtype=np.float32)]),
        meta,
    )
    merged.save(args.out)
    print(f"{len(data)} + {len(clusters)} sites of {record['label']} -> {args.out}")


def append_amorphous(args: argparse.Namespace) -> None:
    """Add ``--amorphous-sites`` O sites of the frames in ``--append-md`` to the data set at ``--out``."""
    if not args.label:
        raise SystemExit("--append-md needs --label (the material name of the new sites, e.g. a-SiO0.5_2.25)")
    data = load_site_dataset(args.out)
    if args.label in set(data.material.tolist()):
        raise SystemExit(f"{args.out} already has sites of {args.label!r}; choose another --label")
    frames = ase.io.read(args.append_md, index=":")
    structures, sites = pick_oxygens(frames, args.amorphous_sites, np.random.default_rng(args.seed))
    labels = [(args.label, "amorphous", 0.0)] * sum(len(s) for s in sites)
    source_info = {k: v for k, v in frames[0].info.items() if isinstance(v, str | int | float)}
    record = dict(label=args.label, source=Path(args.append_md).name, source_info=source_info)
    append_sites(args, data, structures, sites, labels, record)


def append_crystals(args: argparse.Namespace) -> None:
    """Add the unique and perturbed O sites of the phases named in ``--append-crystals`` to ``--out``."""
    known = {**PHASES, **SILICATES}
    unknown = [n for n in args.append_crystals if n not in known]
    if unknown:
        raise SystemExit(
            f"unknown phase(s) {unknown}; specguide.sites.crystals has {sorted(PHASES)}, "
            f"specguide.sites.silicates has {sorted(SILICATES)}"
        )
    data = load_site_dataset(args.out)
    present = sorted(set(args.append_crystals) & set(data.material.tolist()))
    if present:
        raise SystemExit(f"{args.out} already has sites of {present}")
    structures, sites, labels = crystal_sites(args.append_crystals, args, np.random.default_rng(args.seed))
    taken = sorted({m for m, _, _ in labels}, key=args.append_crystals.index)
    record = dict(
        label="+".join(taken),
        source="specguide.sites.crystals / specguide.sites.silicates",
        copies=args.copies,
        sites_per_copy=args.sites_per_copy,
        cluster_species=args.cluster_species,
        references={n: known[n].reference for n in taken},
    )
    append_sites(args, data, structures, sites, labels, record)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=default_sites_dir() / "O-K_SiO.npz")
    parser.add_argument("--cache", type=Path, default=Path("feff-cache"))
    parser.add_argument("--copies", type=int, default=4, help="perturbed copies per crystal")
    parser.add_argument("--sites-per-copy", type=int, default=4)
    parser.add_argument("--amorphous-sites", type=int, default=24)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--append-md", type=Path, default=None, help="extxyz frames whose O sites to add to --out")
    parser.add_argument("--label", default=None, help="material name of the appended sites")
    parser.add_argument("--append-crystals", nargs="+", default=None, help="phases whose O sites to add to --out")
    parser.add_argument(
        "--cluster-species",
        nargs="+",
        default=None,
        help="take only O whose 3-shell cluster holds these elements (e.g. O Si: the site model's species)",
    )
    args = parser.parse_args()
    if args.append_md is not None:
        append_amorphous(args)
        return
    if args.append_crystals is not None:
        append_crystals(args)
        return
    rng = np.random.default_rng(args.seed)

    structures, sites, labels = crystal_sites(list(PHASES), args, rng)  # labels: (material, kind, sigma) per site
    frames = load_md_dataset("a-SiO2_2.2")
    amorphous_structures, amorphous_sites = pick_oxygens(frames, args.amorphous_sites, rng)
    structures += amorphous_structures
    sites += amorphous_sites
    labels += [("a-SiO2_2.2", "amorphous", 0.0)] * sum(len(s) for s in amorphous_sites)

    spec, clusters, timings, wall = spectra_and_clusters(structures, sites, args)
    meta = dict(
        edge="O K",
        grid="E - E_F (eV), FEFF Fermi level, -1..19 eV, 200 points, unit area",
        feff_settings=dict(xanes_scf_radius=None, xanes_fms_radius=4.0, cluster_radius=CLUSTER_RADIUS, corehole="FSR"),
        cluster="3 bonded shells, 2.0 Å bond cutoff, excited O first at the origin",
        seed=args.seed,
        copies=args.copies,
        sites_per_copy=args.sites_per_copy,
        feff_runs_this_call=len(timings),
        feff_wall_s_this_call=round(wall, 1),
        feff_cpu_s_per_run=round(float(np.mean([t["cpu_seconds"] for t in timings])), 2) if timings else None,
    )
    data = SiteDataset(
        GRID,
        spec.astype(np.float32),
        clusters,
        np.array([m for m, _, _ in labels]),
        np.array([k for _, k, _ in labels]),
        np.array([s for _, _, s in labels], dtype=np.float32),
        meta,
    )
    data.save(args.out)
    print(json.dumps(meta, indent=1))
    print(f"{len(data)} sites -> {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
