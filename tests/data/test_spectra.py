"""Loaders of per-atom spectra: each layout read correctly, each bad file named in the error."""

import shutil

import ase.io
import numpy as np
import pytest

from specguide.datasets.spectra import load_spectra_dataset, read_matrix
from specguide.io import InputError


def test_text_matrices_paired_by_name(tiny_spectra_dir):
    data = load_spectra_dataset(tiny_spectra_dir / "structures", tiny_spectra_dir / "spectra")
    assert data.names == [f"s{k}" for k in range(5)]
    assert data.n_grid == 20 and data.grid is None
    expected = np.loadtxt(tiny_spectra_dir / "spectra" / "s3.txt")
    np.testing.assert_allclose(data.spectra[3], expected, rtol=1e-6)
    np.testing.assert_array_equal(data.sites[3], np.arange(16))


def test_csv_with_index_header_and_npz_and_extxyz(tiny_spectra_dir, tmp_path):
    matrix = np.loadtxt(tiny_spectra_dir / "spectra" / "s0.txt")
    csv = tmp_path / "s0.csv"
    header = ",".join(str(k) for k in range(matrix.shape[1]))
    np.savetxt(csv, matrix, delimiter=",", header=header, comments="")
    np.testing.assert_allclose(read_matrix(csv, 16), matrix)
    data = load_spectra_dataset(tiny_spectra_dir / "structures" / "s0.vasp", csv)
    np.testing.assert_allclose(data.spectra[0], matrix, rtol=1e-6)

    npz = tmp_path / "s0.npz"
    np.savez(npz, spectra=matrix[::2], sites=np.arange(0, 16, 2), grid=np.linspace(280, 300, 20))
    data = load_spectra_dataset(tiny_spectra_dir / "structures" / "s0.vasp", npz)
    np.testing.assert_array_equal(data.sites[0], np.arange(0, 16, 2))
    np.testing.assert_allclose(data.grid, np.linspace(280, 300, 20))

    atoms = ase.io.read(tiny_spectra_dir / "structures" / "s0.vasp")
    per_atom = matrix.copy()
    per_atom[1] = np.nan  # atom 1 has no spectrum
    atoms.arrays["xanes"] = per_atom
    ase.io.write(tmp_path / "with_arrays.extxyz", atoms)
    data = load_spectra_dataset(tmp_path / "with_arrays.extxyz")
    assert list(data.sites[0]) == [0, *range(2, 16)]
    np.testing.assert_allclose(data.spectra[0], matrix[[0, *range(2, 16)]], rtol=1e-6)


def _copy(tiny_spectra_dir, tmp_path):
    shutil.copytree(tiny_spectra_dir, tmp_path / "d")
    return tmp_path / "d"


def test_wrong_atom_count_names_the_file(tiny_spectra_dir, tmp_path):
    root = _copy(tiny_spectra_dir, tmp_path)
    bad = root / "spectra" / "s2.txt"
    np.savetxt(bad, np.loadtxt(bad)[:-1])
    with pytest.raises(InputError, match=r"s2\.txt: 15 spectrum rows but the structure has 16 atoms"):
        load_spectra_dataset(root / "structures", root / "spectra")


def test_wrong_grid_names_the_file(tiny_spectra_dir, tmp_path):
    root = _copy(tiny_spectra_dir, tmp_path)
    bad = root / "spectra" / "s4.txt"
    np.savetxt(bad, np.loadtxt(bad)[:, :-2])
    with pytest.raises(InputError, match=r"s4\.txt: 18 grid points, but .*s0\.txt has 20"):
        load_spectra_dataset(root / "structures", root / "spectra")


def test_nan_ragged_and_unpaired_name_the_file(tiny_spectra_dir, tmp_path):
    root = _copy(tiny_spectra_dir, tmp_path)
    matrix = np.loadtxt(root / "spectra" / "s1.txt")
    matrix[3, 5] = np.nan
    np.savetxt(root / "spectra" / "s1.txt", matrix)
    with pytest.raises(InputError, match=r"s1\.txt: spectrum of atom 3 contains NaN"):
        load_spectra_dataset(root / "structures", root / "spectra")
    (root / "spectra" / "s1.txt").write_text("1 2 3\n4 5\n")
    with pytest.raises(InputError, match=r"s1\.txt: rows have different lengths"):
        load_spectra_dataset(root / "structures", root / "spectra")
    (root / "spectra" / "s1.txt").unlink()
    with pytest.raises(InputError, match=r"s1\.vasp: no spectrum file named s1"):
        load_spectra_dataset(root / "structures", root / "spectra")


def test_extxyz_without_array_names_the_file(tiny_spectra_dir, tmp_path):
    atoms = ase.io.read(tiny_spectra_dir / "structures" / "s0.vasp")
    ase.io.write(tmp_path / "plain.extxyz", atoms)
    with pytest.raises(InputError, match=r"plain\.extxyz \(frame 0\): no per-atom spectrum array"):
        load_spectra_dataset(tmp_path / "plain.extxyz")


def test_kwon_a_c_xanes_layout(shared_dir):
    root = shared_dir / "data" / "a-C-xanes-dft"
    data = load_spectra_dataset(root / "structures", root / "xanes", absorber="C")
    assert len(data) == 27 and data.n_grid == 100
    graphite = data.names.index("graphite")
    assert data.spectra[graphite].shape == (128, 100)  # csv: header row of indices skipped
    first = np.loadtxt(root / "xanes" / "d1.5_1.txt")
    np.testing.assert_allclose(data.spectra[data.names.index("d1.5_1")], first, atol=1e-6)


def test_bundled_exafs_data_set_is_consistent():
    """The bundled Si K-edge EXAFS set: sites in range and Si, finite spectra on the FEFF EXAFS grid, every
    structure labelled, the categories and densities the data card lists."""
    from specguide.datasets.spectra import load_spectra_bundle
    from specguide.pretrained import default_surrogates_dir
    from specguide.simulate.feff import EXAFS_GRID_K

    path = default_surrogates_dir() / "Si-K_EXAFS_data.npz"
    dataset = load_spectra_bundle(path)
    np.testing.assert_allclose(dataset.grid, EXAFS_GRID_K, atol=1e-5)
    assert len(dataset) == len(set(dataset.names)) >= 60
    for atoms, spectra, sites in zip(dataset.structures, dataset.spectra, dataset.sites, strict=True):
        assert len(sites) == len(set(sites.tolist())) >= 8 and spectra.shape == (len(sites), len(EXAFS_GRID_K))
        assert (sites >= 0).all() and (sites < len(atoms)).all() and (atoms.numbers[sites] == 14).all()
        assert np.isfinite(spectra).all() and 0.1 < np.abs(spectra).max() < 20.0  # k²χ in Å⁻², no blow-ups
        assert atoms.get_all_distances(mic=True)[np.triu_indices(len(atoms), 1)].min() > 1.5
    categories = {a.info["category"] for a in dataset.structures}
    assert categories == {"md", "liquid", "random"}
    densities = {round(a.info["density_g_cm3"], 2) for a in dataset.structures if a.info["category"] == "md"}
    assert densities == {1.5, 2.0, 2.5, 3.0, 3.5}
    with np.load(path) as z:
        assert z["spectra"].dtype == np.float32 and z["positions"].dtype == np.float32


def test_spectra_bundle_errors_name_the_file(tmp_path):
    from specguide.datasets.spectra import load_spectra_bundle

    path = tmp_path / "bad.npz"
    np.savez(path, positions=np.zeros((1, 2, 3)), cells=np.eye(3)[None] * 5, numbers=np.full((1, 2), 14),
             names=np.array(["a"]), spectra=np.zeros((1, 4)), structure=np.array([0]), sites=np.array([2]))  # fmt: skip
    with pytest.raises(InputError, match="bad.npz: structure or site index out of range"):
        load_spectra_bundle(path)
    np.savez(path, positions=np.zeros((1, 2, 3)))
    with pytest.raises(InputError, match="bad.npz: missing arrays"):
        load_spectra_bundle(path)


def test_spectra_bundle_round_trip_pads_cells_of_different_sizes(tmp_path):
    """Diamond (8 atoms) and graphite (4 atoms) in one bundle: the smaller is padded with atomic number 0 on
    disk and comes back with its own atoms, sites and spectra; a site beyond a padded cell is refused."""
    import ase.build

    from specguide.datasets.spectra import load_spectra_bundle, save_spectra_bundle

    diamond = ase.build.bulk("C", "diamond", a=3.567, cubic=True)
    graphite = ase.build.graphene(a=2.46, size=(2, 1, 1), vacuum=3.35)
    rng = np.random.default_rng(0)
    spectra = [rng.normal(size=(3, 5)), rng.normal(size=(2, 5))]
    path = save_spectra_bundle(tmp_path / "b.npz", [diamond, graphite], spectra, [[0, 3, 7], [1, 3]], ["d", "g"],
                               np.linspace(0, 4, 5), category=np.array(["crystal", "crystal"]))  # fmt: skip
    data = load_spectra_bundle(path)
    assert [len(a) for a in data.structures] == [8, 4] and data.names == ["d", "g"]
    np.testing.assert_allclose(data.structures[1].positions, graphite.positions, atol=1e-5)
    assert data.sites[1].tolist() == [1, 3] and data.structures[1].info["category"] == "crystal"
    np.testing.assert_allclose(data.spectra[1], spectra[1], atol=1e-6)
    with np.load(path) as z:
        assert z["numbers"].shape == (2, 8) and (z["numbers"][1, 4:] == 0).all()
    save_spectra_bundle(path, [diamond, graphite], spectra, [[0, 3, 7], [1, 5]], ["d", "g"])
    with pytest.raises(InputError, match="b.npz: structure 1 has a site beyond its 4 atoms"):
        load_spectra_bundle(path)


def test_a_file_normalised_differently_is_named(tiny_spectra_dir, tmp_path):
    """The a-C DFT set's crystal files are ~40x weaker than its amorphous ones: such a file is reported, the
    others are not."""
    shutil.copytree(tiny_spectra_dir, tmp_path / "set")
    weak = tmp_path / "set" / "spectra" / "s2.txt"
    np.savetxt(weak, np.loadtxt(weak) / 40.0, fmt="%.8f")
    assert load_spectra_dataset(tiny_spectra_dir / "structures", tiny_spectra_dir / "spectra").scale_outliers() == []
    messages = load_spectra_dataset(tmp_path / "set" / "structures", tmp_path / "set" / "spectra").scale_outliers()
    assert len(messages) == 1 and "s2.txt" in messages[0] and "normalised differently" in messages[0]
