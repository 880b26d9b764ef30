"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The project's shared data folder (``../shared`` next to the repository); skips the test when absent."""
    path = Path(__file__).resolve().parents[1].parent / "shared"
    if not path.is_dir():
        pytest.skip(f"shared data folder {path} is not present on this machine")
    return path


def synthetic_site_spectra(atoms, n_grid: int = 20):
    """Per-atom toy spectra ``[n_atoms, n_grid]``: a Gaussian line whose position grows as the bonds shorten
    (``1.5 Σ_j exp(-(d_ij - 2.35 Å) / 0.25 Å)`` over neighbours within 3.2 Å), a deterministic function of
    each atom's environment."""
    import numpy as np
    from ase.neighborlist import neighbor_list

    i, d = neighbor_list("id", atoms, 3.2)
    centre = 1.5 * np.bincount(i, weights=np.exp(-(d - 2.35) / 0.25), minlength=len(atoms))
    grid = np.arange(n_grid)
    return np.exp(-((grid[None, :] - centre[:, None]) ** 2) / 8.0)


@pytest.fixture(scope="session")
def tiny_spectra_dir(tmp_path_factory) -> Path:
    """``structures/s<k>.vasp`` + ``spectra/s<k>.txt`` (16-atom rattled/strained Si, 20-point toy spectra)."""
    import ase.build
    import numpy as np

    root = tmp_path_factory.mktemp("tiny_spectra")
    (root / "structures").mkdir()
    (root / "spectra").mkdir()
    rng = np.random.default_rng(0)
    for k in range(5):
        atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat((2, 1, 1))
        atoms.set_cell(atoms.cell[:] * (1.0 + 0.015 * (k - 2)), scale_atoms=True)
        atoms.positions += rng.normal(0, 0.15, atoms.positions.shape)
        atoms.wrap()
        atoms.write(root / "structures" / f"s{k}.vasp", format="vasp", direct=True)
        np.savetxt(root / "spectra" / f"s{k}.txt", synthetic_site_spectra(atoms), fmt="%.6f")
    return root


def noisy_silicon_frames(n_frames: int, repeat: int = 2, seed: int = 0) -> list:
    """``n_frames`` diamond-Si supercells (``repeat`` cubic cells per side) with Gaussian noise of 0.1 Å on every
    position, from one generator seeded ``seed``: a tiny training set."""
    import ase.build
    import numpy as np

    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(repeat)
        atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
        frames.append(atoms)
    return frames


@pytest.fixture(scope="session")
def rattled_silicon(tmp_path_factory) -> Path:
    """A folder with ``seed.extxyz`` (64-atom diamond Si rattled by 0.1 Å, seed 0) and ``gr.dat``, its g(r) to 5 Å."""
    import ase.build
    import numpy as np

    from specguide.api import compute_spectrum

    folder = tmp_path_factory.mktemp("rattled_silicon")
    atoms = ase.build.bulk("Si", "diamond", 5.43, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=0)
    atoms.write(folder / "seed.extxyz")
    r, g, _ = compute_spectrum(folder / "seed.extxyz", "gr", r_max=5.0)
    np.savetxt(folder / "gr.dat", np.column_stack([r, g]))
    return folder
