"""Input checks: every bad file gives an InputError that names the file."""

import ase
import ase.build
import ase.io
import numpy as np
import pytest

from specguide.io import InputError, read_columns, read_structures, refuse_overwrite, write_json


def test_reads_a_valid_structure(tmp_path):
    path = tmp_path / "si.extxyz"
    ase.io.write(path, ase.build.bulk("Si", "diamond", 5.43, cubic=True))
    (atoms,) = read_structures(path)
    assert len(atoms) == 8


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("this is not a structure\n"), "check the file format"),
        (
            lambda p: ase.io.write(p, ase.Atoms("Si2", positions=[[0, 0, 0], [0.1, 0, 0]], cell=[5, 5, 5], pbc=True)),
            "overlap",
        ),
        (
            lambda p: ase.io.write(p, ase.Atoms("Si2", positions=[[0, 0, 0], [2, 0, 0]], pbc=False)),
            "zero volume",
        ),
    ],
)
def test_bad_structures_name_the_file(tmp_path, make, message):
    path = tmp_path / "bad.extxyz"
    make(path)
    with pytest.raises(InputError) as info:
        read_structures(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_unknown_format(tmp_path):
    path = tmp_path / "structure.unknownext"
    path.write_text("1 2 3\n")
    with pytest.raises(InputError, match="unknown file format|could not be read"):
        read_structures(path)


def test_columns_with_header_comments_and_commas(tmp_path):
    path = tmp_path / "gr.csv"
    path.write_text("# g(r)\nr,g\n1.0,0.5\n1.1,0.7\n")
    np.testing.assert_allclose(read_columns(path), [[1.0, 0.5], [1.1, 0.7]])


def test_columns_with_nan_are_refused(tmp_path):
    path = tmp_path / "gr.dat"
    path.write_text("1.0 0.5\n1.1 nan\n")
    with pytest.raises(InputError, match="row 2"):
        read_columns(path)


def test_overwrite_needs_force(tmp_path):
    result = tmp_path / "out.json"
    write_json(result, {"a": 1})
    with pytest.raises(InputError, match="--force"):
        refuse_overwrite(result, force=False)
    refuse_overwrite(result, force=True)
    refuse_overwrite(tmp_path / "new", force=False)
