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


def _silica_cell() -> ase.Atoms:
    from specguide.pretrained import load_md_dataset

    return load_md_dataset("a-SiO2_2.2", split="test")[0]


def _dump_text(atoms: ase.Atoms, columns: str) -> str:
    types = {"O": 2, "Si": 1}
    lines = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", str(len(atoms)), "ITEM: BOX BOUNDS pp pp pp"]
    lines += [f"0.0 {length:.6f}" for length in atoms.cell.lengths()]
    lines.append(f"ITEM: ATOMS {columns}")
    for k, (symbol, (x, y, z)) in enumerate(zip(atoms.get_chemical_symbols(), atoms.positions)):
        fields = {"id": str(k + 1), "type": str(types[symbol]), "element": symbol, "x": f"{x:.6f}", "y": f"{y:.6f}",
                  "z": f"{z:.6f}"}  # fmt: skip
        lines.append(" ".join(fields[c] for c in columns.split()))
    return "\n".join(lines) + "\n"


def test_lammps_dumps_need_types_unless_they_name_elements_and_never_become_hydrogen(tmp_path):
    atoms = _silica_cell()
    plain = tmp_path / "run.lammpstrj"
    plain.write_text(_dump_text(atoms, "id type x y z"))
    with pytest.raises(InputError, match="--types Si,O") as info:
        read_structures(f"{plain}@lammps-dump-text")
    assert str(plain) in str(info.value)
    (read,) = read_structures(f"{plain}@lammps-dump-text", types="Si,O")
    assert read.get_chemical_formula() == atoms.get_chemical_formula()
    assert np.allclose(read.positions, atoms.positions, atol=1e-5)
    named = tmp_path / "named.lammpstrj"
    named.write_text(_dump_text(atoms, "id element x y z"))
    (read,) = read_structures(named, format="lammps-dump-text")
    assert read.get_chemical_formula() == atoms.get_chemical_formula()
    with pytest.raises(InputError, match="more atom types"):
        read_structures(f"{plain}@lammps-dump-text", types="Si")
    with pytest.raises(InputError, match="element symbols"):
        read_structures(f"{plain}@lammps-dump-text", types="Si,Qq")


def test_lammps_data_take_elements_from_masses_or_types(tmp_path):
    atoms = _silica_cell()
    with_masses = tmp_path / "silica.data"
    ase.io.write(with_masses, atoms, format="lammps-data", specorder=["Si", "O"], masses=True)
    (read,) = read_structures(f"{with_masses}@lammps-data")
    assert read.get_chemical_formula() == atoms.get_chemical_formula()
    bare = tmp_path / "bare.data"
    text = with_masses.read_text()
    start = text.index("Masses")
    end = text.index("Atoms")
    bare.write_text(text[:start] + text[end:])
    with pytest.raises(InputError, match="--types"):
        read_structures(f"{bare}@lammps-data")
    (read,) = read_structures(f"{bare}@lammps-data", types=["Si", "O"])
    assert read.get_chemical_formula() == atoms.get_chemical_formula()
    with pytest.raises(InputError, match="LAMMPS"):
        read_structures(tmp_path / "bare.data", types="Si,O", format="extxyz")
