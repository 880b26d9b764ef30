"""Do SCF FEFF spectra tell a bridging O (Si–O–Si) from a non-bridging one (Si–O next to Mg/Fe/Ca) better than the
site data set's non-SCF spectra? (issue 33: the silicate sites made the site model take SiO₂ spectra for
non-bridging O.)

Symmetry-unique O sites of the SiO₂ phases and of the silicates whose O clusters hold only O and Si, computed with
the data set's cheap settings (no SCF, FMS 4 Å) and with SCF 4 Å / FMS 5 Å (the FEFF helper's defaults), both on
the data set's grid (E − E_F, −1..19 eV, unit area). Printed per setting: for every bridging O, whether the nearest
spectrum (MSE) of another material is a bridging or a non-bridging O, and the mean MSE between the classes over the
mean within the bridging class (> 1: the classes are apart).

    python bench/site_spectra_scf.py --cache feff-cache --workers 2
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from specguide.simulate.feff import FeffSettings, site_spectra  # noqa: E402
from specguide.sites.clusters import site_cluster, sites_with_cluster_species, unique_sites  # noqa: E402
from specguide.sites.crystals import PHASES, build_phase  # noqa: E402
from specguide.sites.silicates import SILICATES, build_silicate  # noqa: E402

GRID = np.linspace(-1.0, 19.0, 200)
SETTINGS = {
    "non-SCF, FMS 4 A": FeffSettings(xanes_scf_radius=None, xanes_fms_radius=4.0),
    "SCF 4 A, FMS 5 A": FeffSettings(),
}


def sites() -> tuple[list, list[list[int]], list[str], list[int]]:
    """Structures, their unique O sites with O/Si-only clusters, each site's material and Si count within 2.0 Å."""
    structures, chosen, material, n_si = [], [], [], []
    for name, atoms in [(n, build_phase(n)) for n in PHASES] + [(n, build_silicate(n)) for n in SILICATES]:
        keep = sites_with_cluster_species(atoms, unique_sites(atoms), {8, 14}).tolist()
        material += [name] * len(keep)
        n_si += [int((site_cluster(atoms, o).arrays["shell"] == 1).sum()) for o in keep]
        if keep:
            structures.append(atoms)
            chosen.append(keep)
    return structures, chosen, material, n_si


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=Path("feff-cache"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    structures, chosen, material, n_si = sites()
    material, n_si = np.array(material), np.array(n_si)
    bridging, non_bridging = n_si == 2, n_si == 1
    counts = f"{bridging.sum()} bridging, {non_bridging.sum()} non-bridging, {(n_si == 3).sum()} three-fold"
    print(f"{len(material)} sites: {counts}")
    for label, settings in SETTINGS.items():
        timings: list[dict] = []
        spectra = site_spectra(structures, chosen, absorber="O", kind="xanes", grid=GRID, cluster_radius=5.0,
                               workers=args.workers, cache_dir=args.cache, settings=settings,
                               timings=timings)  # fmt: skip
        spec = np.clip(np.concatenate(spectra).astype(np.float64), 0.0, None)
        spec /= np.trapezoid(spec, GRID, axis=1)[:, None]
        mse = ((spec[:, None] - spec[None]) ** 2).mean(-1)
        mse[material[:, None] == material[None]] = np.inf  # other materials only
        nearest = mse.argmin(1)
        b = np.flatnonzero(bridging)
        to_nbo = non_bridging[nearest[b]].mean()
        within, between = (mse[np.ix_(bridging, other)] for other in (bridging, non_bridging))
        within, between = within[np.isfinite(within)].mean(), between[np.isfinite(between)].mean()
        cpu = np.mean([t["cpu_seconds"] for t in timings]) if timings else float("nan")
        print(f"\n{label} ({len(timings)} FEFF runs now, {cpu:.1f} CPU-s each)")
        print(f"  bridging O whose nearest other-material spectrum is a non-bridging O: {to_nbo:.0%} of {len(b)}")
        print(f"  mean MSE bridging-nonbridging / bridging-bridging: {between / within:.2f}")
        for k in b:
            print(f"    {material[k]:<20} nearest: {material[nearest[k]]:<16} ({n_si[nearest[k]]} Si)")


if __name__ == "__main__":
    main()
