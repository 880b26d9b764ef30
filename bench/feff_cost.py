"""Per-site cost and shape of FEFF10 spectra made by specguide.data.feff (the numbers in data/defaults/FEFF.md).

    python bench/feff_cost.py --out DIR [--sites 4] [--workers 1] [--settings default|fast|reference]
                              [--cases a-C a-Si quartz diamond graphite]

Cases (cluster radius 6 Å; results of non-default settings are stored as CASE_SETTINGS):
  a-C       C K-edge XANES, first `--sites` C atoms of the first held-out a-C_2.5 structure (216 atoms, 2.5 g/cm³)
  a-Si      Si K-edge EXAFS, first `--sites` Si atoms of the first held-out a-Si_2.5 structure (216 atoms)
  quartz    O K-edge XANES, `--sites` O atoms of α-quartz (P3₂21, Levien et al. 1980)
  diamond   C K-edge XANES of crystalline diamond (a = 3.567 Å), one site
  graphite  C K-edge XANES of graphite (a = 2.464 Å, c = 6.711 Å, AB stacking), one site
Each case runs with its own fresh cache under OUT/cache-<case> (delete it to re-measure). Writes
OUT/feff_cost.json (per-site wall and CPU seconds, cluster sizes, settings, machine load) and OUT/spectra.npz.
Wall time depends on how busy the machine is (the load average is recorded); CPU seconds are FEFF's own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.lattice.hexagonal import Graphite
from ase.spacegroup import crystal

from specguide.pretrained import load_md_dataset
from specguide.simulate import feff


def alpha_quartz():
    """α-quartz, P3₂21 (154), a = 4.9137 Å, c = 5.4047 Å, Si (0.4697, 0, 0), O (0.4135, 0.2669, 0.1191)
    (Levien et al. 1980) with the origin moved by c/3·2 to ASE's setting of group 154: Si3O6, Si–O 1.604 and
    1.613 Å, Si four-fold, O two-fold."""
    return crystal(
        ["Si", "O"],
        basis=[(0.4697, 0.0, 2 / 3), (0.4135, 0.2669, 0.1191 + 2 / 3)],
        spacegroup=154,
        cellpar=[4.9137, 4.9137, 5.4047, 90, 90, 120],
    )


def cases(n_sites: int) -> dict[str, dict]:
    a_c = load_md_dataset("a-C_2.5", split="test")[0]
    a_si = load_md_dataset("a-Si_2.5", split="test")[0]
    quartz = alpha_quartz()
    o_sites = [i for i, z in enumerate(quartz.numbers) if z == 8][:n_sites]
    return {
        "a-C": dict(structure=a_c, sites=list(range(n_sites)), absorber="C", kind="xanes"),
        "a-Si": dict(structure=a_si, sites=list(range(n_sites)), absorber="Si", kind="exafs"),
        "quartz": dict(structure=quartz, sites=o_sites, absorber="O", kind="xanes"),
        "diamond": dict(structure=bulk("C", "diamond", a=3.567), sites=[0], absorber="C", kind="xanes"),
        "graphite": dict(
            structure=Graphite("C", latticeconstant={"a": 2.464, "c": 6.711}), sites=[0], absorber="C", kind="xanes"
        ),
    }


def local_maxima(x: np.ndarray, y: np.ndarray, min_height: float = 0.3) -> list[list[float]]:
    """``[position, height]`` of the local maxima of y above ``min_height``."""
    k = np.flatnonzero((y[1:-1] > y[:-2]) & (y[1:-1] >= y[2:]) & (y[1:-1] > min_height)) + 1
    return [[float(x[i]), float(y[i])] for i in k]


SETTINGS = {
    "default": feff.DEFAULT_SETTINGS,
    "fast": feff.FAST_SETTINGS,
    "reference": feff.FeffSettings(xanes_scf_radius=4.5, xanes_fms_radius=6.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--settings",
        choices=sorted(SETTINGS),
        default="default",
        help="FEFF settings: default, fast (feff.FAST_SETTINGS) or reference (SCF 4.5 Å, FMS 6 Å: convergence check)",
    )
    parser.add_argument("--cases", nargs="+", default=["a-C", "a-Si", "quartz", "diamond", "graphite"])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    report_path = args.out / "feff_cost.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    spectra = dict(np.load(args.out / "spectra.npz")) if (args.out / "spectra.npz").exists() else {}
    all_cases = cases(args.sites)
    settings = SETTINGS[args.settings]
    for case_name in args.cases:
        case = all_cases[case_name]
        name = case_name if args.settings == "default" else f"{case_name}_{args.settings}"
        timings: list[dict] = []
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        (values,) = feff.site_spectra(
            [case["structure"]],
            [case["sites"]],
            absorber=case["absorber"],
            kind=case["kind"],
            workers=args.workers,
            cache_dir=args.out / f"cache-{name}",
            timings=timings,
            settings=settings,
        )
        wall = time.perf_counter() - t0
        if not timings:  # everything came from the cache: its files record each run's cost
            for path in sorted((args.out / f"cache-{name}").glob("*.npz")):
                with np.load(path) as z:
                    meta = json.loads(str(z["meta"]))
                timings.append({k: meta[k] for k in ("seconds", "cpu_seconds", "n_atoms")} | {"cached": True})
        grid = feff.XANES_GRID_EV if case["kind"] == "xanes" else feff.EXAFS_GRID_K
        mean = values.mean(axis=0)
        spectra[f"{name}_grid"], spectra[f"{name}"] = grid, values
        entry = dict(
            absorber=case["absorber"],
            kind=case["kind"],
            n_sites=len(case["sites"]),
            workers=args.workers,
            total_wall_s=wall,
            sites=timings,
            per_site_wall_s=float(np.mean([t["seconds"] for t in timings])),
            per_site_cpu_s=float(np.mean([t["cpu_seconds"] for t in timings])),
            cluster_atoms=[t["n_atoms"] for t in timings],
            load_average_before=load_before,
            load_average_after=os.getloadavg(),
            settings=dataclasses.asdict(settings),
            machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
        )
        if case["kind"] == "xanes":
            entry["mean_spectrum_maxima_eV"] = local_maxima(grid, mean)
            entry["site_spread_rel"] = float(values.std(axis=0).mean() / np.abs(mean).mean())
        report[name] = entry
        print(
            f"{name}: {len(case['sites'])} sites, {wall:.1f} s; per site {entry['per_site_wall_s']:.1f} s wall, "
            f"{entry['per_site_cpu_s']:.1f} s FEFF CPU; atoms {entry['cluster_atoms']}; load {load_before[0]:.1f}",
            flush=True,
        )
        report_path.write_text(json.dumps(report, indent=2) + "\n")
        np.savez(args.out / "spectra.npz", **spectra)


if __name__ == "__main__":
    main()
