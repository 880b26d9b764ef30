"""FEFF wrapper (specguide.data.feff): clusters, cache, input checks, and one small real FEFF run."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk

from specguide.simulate import feff

A_SI = 5.431  # Å, diamond Si


def _brute_force_distances(atoms: Atoms, site: int, radius: float, n: int) -> np.ndarray:
    """All distances (images in a (2n+1)³ block) from ``site`` within ``radius``, sorted; the site itself excluded."""
    cell = atoms.cell[:]
    out = []
    for i in range(-n, n + 1):
        for j in range(-n, n + 1):
            for k in range(-n, n + 1):
                shift = np.array([i, j, k]) @ cell
                d = np.linalg.norm(atoms.positions + shift - atoms.positions[site], axis=1)
                out.extend(d[(d <= radius) & (d > 1e-8)].tolist())
    return np.sort(out)


def test_cluster_diamond_shells_primitive_cell():
    si = bulk("Si", "diamond", a=A_SI)  # 2 atoms, face width 3.1 Å ≪ 2 × 6 Å: needs many images
    cluster = feff.absorber_cluster(si, 1, radius=6.0)
    assert np.allclose(cluster.positions[0], 0) and cluster.numbers[0] == 14 and not cluster.pbc.any()
    d = np.linalg.norm(cluster.positions, axis=1)
    assert np.all(np.diff(d) >= -1e-9)  # sorted by distance
    assert np.sum(np.isclose(d, A_SI * np.sqrt(3) / 4, atol=1e-3)) == 4  # 2.35 Å
    assert np.sum(np.isclose(d, A_SI / np.sqrt(2), atol=1e-3)) == 12  # 3.84 Å
    assert np.allclose(np.sort(d[1:]), _brute_force_distances(si, 1, 6.0, n=6))


def test_cluster_matches_brute_force_triclinic_and_mixed_pbc():
    rng = np.random.default_rng(0)
    cell = np.array([[4.0, 0.0, 0.0], [1.3, 3.6, 0.0], [0.7, -0.9, 5.1]])
    atoms = Atoms("SiO2", scaled_positions=rng.random((3, 3)), cell=cell, pbc=True)
    for site in range(3):
        c = feff.absorber_cluster(atoms, site, radius=5.5)
        assert np.allclose(np.linalg.norm(c.positions[1:], axis=1), _brute_force_distances(atoms, site, 5.5, n=4))
    # a slab: no images along c
    slab = atoms.copy()
    slab.pbc = [True, True, False]
    c = feff.absorber_cluster(slab, 0, radius=5.5)
    ref = []
    for i in range(-4, 5):
        for j in range(-4, 5):
            d = np.linalg.norm(slab.positions + np.array([i, j, 0]) @ cell - slab.positions[0], axis=1)
            ref.extend(d[(d <= 5.5) & (d > 1e-8)].tolist())
    assert np.allclose(np.linalg.norm(c.positions[1:], axis=1), np.sort(ref))


def test_cluster_non_periodic_and_bad_site():
    mol = Atoms("CO2", positions=[[0, 0, 0], [1.16, 0, 0], [-1.16, 0, 0]])
    c = feff.absorber_cluster(mol, 1, radius=2.0)
    assert c.get_chemical_symbols() == ["O", "C"] and np.allclose(c.positions[1], [-1.16, 0, 0])
    with pytest.raises(IndexError, match="out of range"):
        feff.absorber_cluster(mol, 3)


def _fake_runner(calls):
    def run(cluster, kind, settings):
        calls.append(len(cluster))
        x = np.linspace(-20, 80, 201) if kind == "xanes" else np.linspace(0, 14, 281)
        return x, np.cos(x * np.linalg.norm(cluster.positions[1])) + 1.0

    return run


def test_cache_hit_runs_no_feff(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(feff, "_run_feff", _fake_runner(calls))
    si = bulk("Si", "diamond", a=A_SI, cubic=True)  # 8 sites
    strained = si.copy()
    strained.set_cell(si.cell[:] * 1.02, scale_atoms=True)
    kw = dict(absorber="Si", kind="exafs", workers=1, cache_dir=tmp_path, progress=False)
    first = feff.site_spectra([si, strained], **kw)
    n_runs = len(calls)
    assert 2 <= n_runs <= 16  # identical clusters (up to 1e-4 Å) share a run
    assert [a.shape for a in first] == [(8, feff.EXAFS_GRID_K.size)] * 2 and first[0].dtype == np.float32
    assert not np.allclose(first[0][0], first[1][0])
    assert len(list(tmp_path.glob("*.npz"))) == n_runs
    again = feff.site_spectra([si, strained], **kw)
    assert len(calls) == n_runs  # everything from the cache
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    # another grid reuses the cached raw spectra; k² weighting is applied on the grid
    grid = np.array([3.0, 4.0])
    sub = feff.site_spectra([si], [[0]], grid=grid, **kw)[0]
    assert len(calls) == n_runs
    x = np.linspace(0, 14, 281)
    y = np.cos(x * A_SI * np.sqrt(3) / 4) + 1.0
    assert np.allclose(sub[0], np.interp(grid, x, y) * grid**2, rtol=1e-5)


def test_failed_site_names_structure_and_site(monkeypatch):
    calls = []

    def broken_when_expanded(cluster, kind, settings):
        calls.append(1)
        if np.linalg.norm(cluster.positions[1]) > 2.4:
            raise RuntimeError("pot: fatal error")
        return np.linspace(-20, 80, 201), np.ones(201)

    monkeypatch.setattr(feff, "_run_feff", broken_when_expanded)
    si = bulk("Si", "diamond", a=A_SI)
    big = bulk("Si", "diamond", a=A_SI * 1.05)
    with pytest.raises(feff.FeffSiteError, match=r"structure 1, site 1 .*pot: fatal error"):
        feff.site_spectra([si, big], [[0], [1]], absorber="Si", workers=1, progress=False)
    assert len(calls) == 3  # one good run, one failure retried once


def test_bad_inputs():
    si = bulk("Si", "diamond", a=A_SI)
    kw = dict(workers=1, progress=False)
    with pytest.raises(ValueError, match="no C atoms"):
        feff.site_spectra([si], absorber="C", **kw)
    with pytest.raises(IndexError, match="structure 0: site 5 out of range"):
        feff.site_spectra([si], [[5]], absorber="Si", **kw)
    with pytest.raises(ValueError, match="non-empty"):
        feff.site_spectra([si], absorber="Si", grid=np.array([]), **kw)
    with pytest.raises(ValueError, match="strictly increasing"):
        feff.site_spectra([si], absorber="Si", grid=np.array([3.0, 2.0]), **kw)
    with pytest.raises(ValueError, match="unknown absorber"):
        feff.site_spectra([si], absorber="Xx", **kw)
    with pytest.raises(ValueError, match="one list each"):
        feff.site_spectra([si, si], [[0]], absorber="Si", **kw)
    sio = Atoms("SiO", positions=[[0, 0, 0], [1.6, 0, 0]])
    with pytest.raises(ValueError, match="site 1 is O, not the absorber Si"):
        feff.site_spectra([sio], [[1]], absorber="Si", **kw)


def _first_shell_peak(k: np.ndarray, k2chi: np.ndarray) -> float:
    """Position (Å) of the largest |FT| of k²chi(k) (Hanning window) over r in 1..3.5 Å."""
    r = np.linspace(1.0, 3.5, 501)
    w = np.hanning(k.size)
    ft = np.abs(((k2chi * w)[None, :] * np.exp(2j * k[None, :] * r[:, None])).sum(axis=1))
    return float(r[np.argmax(ft)])


def test_real_feff_exafs_first_shell(tmp_path):
    """Diamond Si, first shell only (RPATH 2.6 Å): |FT k²chi| peaks at R − (0.3…0.5 Å), and it follows a
    5 % expansion of the lattice (R × 1.05) — FEFF's phase shift is nearly the same."""
    pytest.importorskip("feff10")
    settings = feff.FeffSettings(exafs_rpath=2.6, exafs_kmax=13.0)
    si = bulk("Si", "diamond", a=A_SI)
    big = bulk("Si", "diamond", a=A_SI * 1.05)
    timings = []
    spectra = feff.site_spectra(
        [si, big],
        [[0], [0]],
        absorber="Si",
        kind="exafs",
        cluster_radius=4.0,
        workers=2,
        progress=False,
        settings=settings,
        timings=timings,
    )
    k = feff.EXAFS_GRID_K
    assert all(np.isfinite(s).all() and np.abs(s).max() > 0.1 for s in spectra)
    r_bond = A_SI * np.sqrt(3) / 4
    peaks = [_first_shell_peak(k, s[0]) for s in spectra]
    assert r_bond - 0.55 < peaks[0] < r_bond - 0.25
    assert peaks[1] - peaks[0] == pytest.approx(0.05 * r_bond, abs=0.04)
    assert sorted(t["n_atoms"] for t in timings) == [5, 17]  # the 2nd shell (4.03 Å) leaves the expanded one


def test_real_feff_xanes_edge_and_normalisation():
    """Diamond C K edge, small cluster (3 Å, non-SCF potentials, FMS 3 Å: a few seconds): nothing below the
    edge, the edge rises at E_F (half height within ±3 eV of 0), and the post-edge oscillates about 1 (FEFF's
    normalisation by the atomic background at E_F + 50 eV)."""
    pytest.importorskip("feff10")
    settings = feff.FeffSettings(xanes_scf_radius=None, xanes_fms_radius=3.0)
    diamond = bulk("C", "diamond", a=3.567)
    kw = dict(cluster_radius=3.0, workers=1, progress=False, settings=settings)
    (mu,) = feff.site_spectra([diamond], [[0]], absorber="C", **kw)
    e, mu = feff.XANES_GRID_EV, mu[0]
    assert np.isfinite(mu).all() and (mu >= -1e-3).all()
    assert mu[e < -3].max() < 0.05
    assert 0.8 < mu[e > 20].mean() < 1.2
    half = e[np.argmax(mu > 0.5 * mu[e > 20].mean())]
    assert -3.0 < half < 3.0
