"""`specguide spectrum` and `specguide example`: spectra of structure files, bundled example structures."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from specguide.cli.common import (
    DeviceOption,
    TypesOption,
    app,
    check_device,
    err,
    fail,
)
from specguide.io import InputError
from specguide.observables.registry import (
    DEFAULT_DQ,
    DEFAULT_DR,
    DEFAULT_Q_MAX,
    DEFAULT_Q_MIN,
    DEFAULT_SIGMA,
    KINDS,
    WEIGHTED_KINDS,
    kind_help,
    spec_of,
)

Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)  # --kind choices: the rows of the observables table


class Weighting(str, Enum):
    number = "number"
    xray = "xray"
    neutron = "neutron"


@app.command()
def spectrum(
    structure: Annotated[Path, typer.Argument(help="Structure file readable by ASE (extxyz, POSCAR, CIF, ...).")],
    kind: Annotated[Kind, typer.Option(help=kind_help())],
    weighting: Annotated[
        Weighting, typer.Option(help=f"Pair weighting of totals ({', '.join(WEIGHTED_KINDS)}).")
    ] = Weighting.number,
    r_max: Annotated[
        float | None, typer.Option(help="Largest pair distance used, Å (≤ half the cell; default min(8, half cell)).")
    ] = None,
    dr: Annotated[float, typer.Option(help="Real-space grid step, Å.")] = DEFAULT_DR,
    sigma: Annotated[float, typer.Option(help="Gaussian smoothing of pair distances, Å.")] = DEFAULT_SIGMA,
    q_min: Annotated[
        float, typer.Option(help="Smallest Q, Å⁻¹ (below ~1 Å⁻¹ the finite r-max window dominates).")
    ] = DEFAULT_Q_MIN,
    q_max: Annotated[float, typer.Option(help="Largest Q, Å⁻¹.")] = DEFAULT_Q_MAX,
    dq: Annotated[float, typer.Option(help="Q grid step, Å⁻¹.")] = DEFAULT_DQ,
    adf_cutoff: Annotated[
        float | None, typer.Option(help="Bond cutoff for bond angles, Å (default 1.3 × covalent radii).")
    ] = None,
    surrogate: Annotated[
        Path | None, typer.Option(help="Surrogate checkpoint (train-surrogate) for --kind xanes / exafs.")
    ] = None,
    per_atom: Annotated[
        bool, typer.Option(help="xanes/exafs: one column per absorbing atom instead of the mean.")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="Two-column text file to write (default: print).")] = None,
    plot: Annotated[Path | None, typer.Option(help="Also save a plot (PNG).")] = None,
    device: DeviceOption = None,
    force: Annotated[bool, typer.Option(help="Overwrite existing output files.")] = False,
    types: TypesOption = None,
) -> None:
    """Compute a spectrum of a structure file (averaged over its frames) and write it as two columns."""
    from specguide.api import compute_spectrum
    from specguide.io import refuse_overwrite, write_two_columns

    chosen = check_device(device)
    try:
        for target in (out, plot):
            if target is not None:
                refuse_overwrite(target, force, directory=False)
        if spec_of(kind.value).surrogate:
            _surrogate_spectrum(structure, kind.value, surrogate, per_atom, out, types, chosen)
            return
        options = dict(r_max=r_max, dr=dr, sigma=sigma, q_min=q_min, q_max=q_max, dq=dq, adf_cutoff=adf_cutoff,
                       types=types, device=chosen)  # fmt: skip
        x, y, observable = compute_spectrum(structure, kind.value, weighting=weighting.value, **options)
    except InputError as exc:
        fail(str(exc))
    header = f"{observable.header()}\nsource: {structure}"
    if out is None:
        print("# " + header.replace("\n", "\n# "))
        for xi, yi in zip(x, y):
            print(f"{xi:.6g} {yi:.8g}")
    else:
        write_two_columns(out, x, y, header)
        err.print(f"wrote {out}")
    if plot is not None:
        from specguide.plotting import plot_spectrum

        plot_spectrum(plot, x, y, observable, title=structure.name)
        err.print(f"wrote {plot}")


def _surrogate_spectrum(
    structure: Path,
    kind: str,
    surrogate: Path | None,
    per_atom: bool,
    out: Path | None,
    types: str | None = None,
    device: str = "cpu",
) -> None:
    import numpy as np

    from specguide.api import surrogate_spectrum
    from specguide.io import write_atomically

    if surrogate is None:
        raise InputError(f"--kind {kind} is computed by a learned surrogate: add --surrogate CKPT (train-surrogate)")
    try:
        x, spectra, observable, labels = surrogate_spectrum(structure, surrogate, kind, per_atom, types, device)
    except (FileNotFoundError, ValueError) as exc:
        raise InputError(str(exc)) from None
    header = f"{observable.header()}\nsource: {structure}"
    if per_atom:
        header += "\ncolumns after the first: " + " ".join(labels)
    table = np.column_stack([x, spectra.T])
    if out is None:
        print("# " + header.replace("\n", "\n# "))
        for row in table:
            print(f"{row[0]:.6g} " + " ".join(f"{v:.8g}" for v in row[1:]))
    else:
        write_atomically(out, lambda tmp: np.savetxt(tmp, table, fmt="%.8g", header=header))
        err.print(f"wrote {out}")


@app.command()
def example(
    name: Annotated[
        str, typer.Argument(help="Bundled MD data set, e.g. a-Si (held-out replica at 2.5 g/cm³) or a-Si_1.5.")
    ],
    out: Annotated[Path | None, typer.Option(help="extxyz file to write (default: NAME.extxyz).")] = None,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a held-out replica of a bundled MD data set as extxyz and print its path."""
    from specguide.api import example as example_structure
    from specguide.io import refuse_overwrite, write_extxyz

    try:
        held_out = example_structure(name)
    except ValueError as exc:
        fail(str(exc))
    target = out or Path(f"{name}.extxyz")
    try:
        refuse_overwrite(target, force, directory=False)
    except InputError as exc:
        fail(str(exc))
    write_extxyz(target, held_out)
    print(target)
